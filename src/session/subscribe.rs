//! SUBSCRIBE and UNSUBSCRIBE from the client: checked against the server's capabilities
//! (see `policy`), handed to the router, answered with SUBACK/UNSUBACK; retained
//! messages follow the SUBACK.

use actix::prelude::*;
use tracing::debug;

use super::actor::Session;
use super::policy::{check_subscription_ids, grant};
use crate::delivery::{Outgoing, SubEntry};
use crate::hooks::{Access, Decision, Pending};
use crate::metrics::Limit;
use crate::protocol::Packet;
use crate::protocol::{QoS, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe};
use crate::router::messages::{
    Reshare, Subscribe as RouterSubscribe, Unsubscribe as RouterUnsubscribe,
};
use crate::router::SubscribeOutcome;
use crate::topic::TopicFilter;

impl Session {
    pub(super) fn on_subscribe(&mut self, s: Subscribe, ctx: &mut Context<Self>) {
        let caps = &self.shared.config.capabilities;
        let ids = &s.properties.subscription_identifiers;
        if let Err(refusal) = check_subscription_ids(caps, ids) {
            self.fail(ctx, refusal.reason, refusal.text);
            return;
        }
        let limits = &self.shared.config.limits;
        let mut grants: Vec<Grant> = s
            .filters
            .iter()
            .map(
                |(filter, options)| match limits.topic_levels_allowed(filter.as_str()) {
                    true => grant(caps, filter, options.qos),
                    false => {
                        self.shared.metrics.limits.hit(Limit::TopicLevels);
                        Err(ReasonCode::TOPIC_FILTER_INVALID)
                    }
                },
            )
            .collect();
        let mut late = Vec::new();
        for (i, ((filter, _), g)) in s.filters.iter().zip(grants.iter_mut()).enumerate() {
            if g.is_err() {
                continue;
            }
            match self.authorize(Access::Subscribe, filter.as_str()) {
                Pending::Ready(Decision::Allow) => {}
                Pending::Ready(Decision::Deny) => *g = Err(ReasonCode::NOT_AUTHORIZED),
                Pending::Later(f) => late.push(async move { (i, f.await) }),
            }
        }
        if late.is_empty() {
            return self.subscribe_granted(s, grants, ctx);
        }
        // Waits for the authorizer (within the hook budget) before anything else.
        let decided = futures::future::join_all(late).into_actor(self);
        ctx.wait(decided.map(move |decisions, act, ctx| {
            for (i, decision) in decisions {
                if decision == Decision::Deny {
                    grants[i] = Err(ReasonCode::NOT_AUTHORIZED);
                }
            }
            act.subscribe_granted(s, grants, ctx);
        }));
    }

    /// Subscribes to what was granted and answers SUBACK.
    fn subscribe_granted(&mut self, s: Subscribe, grants: Vec<Grant>, ctx: &mut Context<Self>) {
        for ((filter, _), g) in s.filters.iter().zip(&grants) {
            if *g == Err(ReasonCode::NOT_AUTHORIZED) {
                debug!(client_id = %self.state.client_id, %filter, "subscription not authorized");
            }
        }
        let id = s.properties.subscription_identifiers.first().copied();
        let packet_id = s.packet_id;
        let Verdicts {
            filters,
            granted,
            mut reasons,
            places,
        } = verdicts(s, grants, id);
        if filters.is_empty() {
            self.send(&Packet::SubAck(SubAck {
                packet_id,
                properties: Default::default(),
                reasons,
            }));
            return;
        }
        let announce = self
            .shared
            .hooks
            .has_events()
            .then(|| filter_names(&filters));
        let request = self.router.send(RouterSubscribe {
            client_id: self.state.client_id.clone(),
            filters,
            from: None,
        });
        let fut = async move {
            let reply = request.await.ok()?;
            let durable = match reply.durable {
                Some(d) => d.wait().await,
                None => true,
            };
            durable.then_some(reply.outcomes)
        };
        let fut = fut.into_actor(self).map(move |outcomes, act, ctx| {
            let Some(outcomes) = outcomes else {
                act.fail(
                    ctx,
                    ReasonCode::UNSPECIFIED_ERROR,
                    "subscription not stored",
                );
                return;
            };
            act.refuse_over_quota(&outcomes, &places, &mut reasons);
            act.send(&Packet::SubAck(SubAck {
                packet_id,
                properties: Default::default(),
                reasons,
            }));
            if let Some(filters) = announce {
                let added = |i: &usize| !outcomes[*i].over_quota;
                let filters = (0..filters.len()).filter(added).map(|i| filters[i].clone());
                let qos: Vec<QoS> = (0..granted.len())
                    .filter(added)
                    .map(|i| granted[i])
                    .collect();
                act.announce_subscribed(filters.collect(), &qos);
            }
            act.queue_retained(outcomes, granted, id, ctx);
        });
        ctx.wait(fut);
    }

    /// The SUBACK codes of filters the router did not add because the client holds as
    /// many subscriptions as it may: 0x97 Quota exceeded (3.1.1: 0x80, by the encoder).
    fn refuse_over_quota(
        &self,
        outcomes: &[SubscribeOutcome],
        places: &[usize],
        reasons: &mut [ReasonCode],
    ) {
        for (outcome, &place) in outcomes.iter().zip(places) {
            if outcome.over_quota {
                let max = self.shared.config.limits.max_subscriptions_per_client;
                debug!(client_id = %self.state.client_id, max, "subscription limit reached; filter refused");
                self.shared.metrics.limits.hit(Limit::Subscriptions);
                reasons[place] = ReasonCode::QUOTA_EXCEEDED;
            }
        }
    }

    /// Retained messages follow the SUBACK [MQTT-3.3.1-9], flagged retained, at the
    /// lower of their QoS and the granted one.
    /// They are authorized for receipt like any delivery.
    fn queue_retained(
        &mut self,
        outcomes: Vec<SubscribeOutcome>,
        granted: Vec<QoS>,
        id: Option<u32>,
        ctx: &mut Context<Self>,
    ) {
        let mut retained = Vec::new();
        for (outcome, qos) in outcomes.into_iter().zip(granted) {
            for msg in outcome.retained {
                let qos = msg.qos.min(qos);
                let sub_ids = id.into_iter().collect();
                retained.push(Outgoing {
                    msg,
                    qos,
                    retain: true,
                    sub_ids,
                    seq: None,
                    share: None,
                    receipt: None,
                });
            }
        }
        self.deliver_all(retained, ctx);
    }

    pub(super) fn on_unsubscribe(&mut self, u: Unsubscribe, ctx: &mut Context<Self>) {
        let announce = self.shared.hooks.has_events().then(|| u.filters.clone());
        let request = RouterUnsubscribe {
            client_id: self.state.client_id.clone(),
            filters: u.filters,
        };
        let packet_id = u.packet_id;
        let fut = self
            .router
            .send(request)
            .into_actor(self)
            .map(move |res, act, ctx| {
                let existed = match res {
                    Ok(Some(existed)) => existed,
                    Ok(None) => {
                        act.fail(ctx, ReasonCode::UNSPECIFIED_ERROR, "unsubscribe failed");
                        return;
                    }
                    Err(_) => {
                        act.fail(ctx, ReasonCode::SERVER_UNAVAILABLE, "router unavailable");
                        return;
                    }
                };
                if let Some(filters) = announce {
                    act.announce_unsubscribed(filters, &existed);
                }
                let reasons = existed
                    .into_iter()
                    .map(|e| {
                        if e {
                            ReasonCode::SUCCESS
                        } else {
                            ReasonCode::NO_SUBSCRIPTION_EXISTED
                        }
                    })
                    .collect();
                act.send(&Packet::UnsubAck(UnsubAck {
                    packet_id,
                    properties: Default::default(),
                    reasons,
                }));
            });
        ctx.wait(fut);
    }
}

impl Session {
    /// The connection is gone: unacknowledged messages from shared subscriptions go to
    /// another online member of their group (section 4.8.2); those no one else takes
    /// stay here, to be re-sent (DUP) if the client returns. Nothing else is handled
    /// until the router has answered, so a reconnecting client cannot get them too.
    /// A router that failed meanwhile (no answer) is asked once more once restarted: a
    /// session that is not persistent ends next, and what stays here is lost.
    pub(super) fn hand_over_shared(&mut self, ctx: &mut Context<Self>) {
        let items = self.state.shared_handover();
        if items.is_empty() {
            return;
        }
        let msgs: Vec<_> = items
            .iter()
            .map(|o| std::sync::Arc::clone(&o.msg))
            .collect();
        let (router, from) = (self.router.clone(), self.state.client_id.clone());
        let ask = async move {
            let again = items.clone();
            let reshare = |items| Reshare {
                from: from.clone(),
                items,
            };
            match router.send(reshare(items)).await {
                Ok(None) => router.send(reshare(again)).await,
                answer => answer,
            }
        };
        let fut = ask.into_actor(self).map(move |placed, act, _| {
            // (No answer: the router failed twice, and every message stays here.)
            let Ok(Some(placed)) = placed else { return };
            let gone: Vec<_> = msgs
                .into_iter()
                .zip(placed)
                .filter_map(|(m, p)| p.then_some(m))
                .collect();
            act.state.remove_handed_over(&gone);
            act.queued.sync(act.state.queue_len());
        });
        ctx.wait(fut);
    }
}

/// What a SUBSCRIBE asks for, checked against the capabilities.
struct Verdicts {
    /// The filters granted, for the router.
    filters: Vec<(TopicFilter, SubEntry)>,
    /// Their granted QoS, in order.
    granted: Vec<QoS>,
    /// The SUBACK's codes, one per requested filter in order: granted QoS or refusal.
    reasons: Vec<ReasonCode>,
    /// Where each of `filters` is among the requested ones (its place in `reasons`).
    places: Vec<usize>,
}

fn filter_names(filters: &[(TopicFilter, SubEntry)]) -> Vec<TopicFilter> {
    filters.iter().map(|(f, _)| f.clone()).collect()
}

/// A filter's granted QoS, or why it is refused.
type Grant = Result<QoS, ReasonCode>;

fn verdicts(s: Subscribe, verdicts: Vec<Grant>, id: Option<u32>) -> Verdicts {
    let filters = s
        .filters
        .into_iter()
        .zip(&verdicts)
        .filter_map(|((filter, mut options), verdict)| {
            options.qos = *verdict.as_ref().ok()?;
            Some((filter, SubEntry { options, id }))
        })
        .collect();
    let granted = verdicts.iter().filter_map(|v| v.ok()).collect();
    let places = (0..verdicts.len())
        .filter(|&i| verdicts[i].is_ok())
        .collect();
    let reasons = verdicts
        .iter()
        .map(|v| match v {
            Ok(qos) => ReasonCode::granted(*qos),
            Err(code) => *code,
        })
        .collect();
    Verdicts {
        filters,
        granted,
        reasons,
        places,
    }
}
