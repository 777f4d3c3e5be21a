//! SUBSCRIBE and UNSUBSCRIBE from the client: checked against the server's capabilities
//! (see `policy`), handed to the router, answered with SUBACK/UNSUBACK; retained
//! messages follow the SUBACK.

use actix::prelude::*;

use super::actor::Session;
use super::policy::{check_subscription_ids, grant};
use crate::delivery::{Outgoing, SubEntry};
use crate::protocol::Packet;
use crate::protocol::{QoS, ReasonCode, SubAck, Subscribe, UnsubAck, Unsubscribe};
use crate::router::messages::{
    Reshare, Subscribe as RouterSubscribe, Unsubscribe as RouterUnsubscribe,
};

impl Session {
    pub(super) fn on_subscribe(&mut self, s: Subscribe, ctx: &mut Context<Self>) {
        let caps = &self.shared.config.capabilities;
        let ids = &s.properties.subscription_identifiers;
        if let Err(refusal) = check_subscription_ids(caps, ids) {
            self.fail(ctx, refusal.reason, refusal.text);
            return;
        }
        let id = ids.first().copied();
        // One verdict per filter, in order: the granted QoS or the refusing code.
        let verdicts: Vec<Result<QoS, ReasonCode>> = s
            .filters
            .iter()
            .map(|(filter, options)| grant(caps, filter, options.qos))
            .collect();
        let filters: Vec<_> = s
            .filters
            .into_iter()
            .zip(&verdicts)
            .filter_map(|((filter, mut options), verdict)| {
                options.qos = *verdict.as_ref().ok()?;
                Some((filter, SubEntry { options, id }))
            })
            .collect();
        let granted: Vec<QoS> = verdicts.iter().filter_map(|v| v.ok()).collect();
        let reasons: Vec<ReasonCode> = verdicts
            .iter()
            .map(|v| match v {
                Ok(qos) => ReasonCode::granted(*qos),
                Err(code) => *code,
            })
            .collect();
        let packet_id = s.packet_id;
        if filters.is_empty() {
            self.send(&Packet::SubAck(SubAck {
                packet_id,
                properties: Default::default(),
                reasons,
            }));
            return;
        }
        let request = self.router.send(RouterSubscribe {
            client_id: self.state.client_id.clone(),
            filters,
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
            act.send(&Packet::SubAck(SubAck {
                packet_id,
                properties: Default::default(),
                reasons,
            }));
            // Retained messages follow the SUBACK [MQTT-3.3.1-9], flagged retained.
            for (outcome, qos) in outcomes.into_iter().zip(granted) {
                for msg in outcome.retained {
                    let qos = msg.qos.min(qos);
                    let sub_ids = id.into_iter().collect();
                    act.state.enqueue(Outgoing {
                        msg,
                        qos,
                        retain: true,
                        sub_ids,
                        seq: None,
                        share: None,
                    });
                }
            }
            act.pump(ctx);
        });
        ctx.wait(fut);
    }

    pub(super) fn on_unsubscribe(&mut self, u: Unsubscribe, ctx: &mut Context<Self>) {
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
    pub(super) fn hand_over_shared(&mut self, ctx: &mut Context<Self>) {
        let items = self.state.shared_handover();
        if items.is_empty() {
            return;
        }
        let msgs: Vec<_> = items
            .iter()
            .map(|o| std::sync::Arc::clone(&o.msg))
            .collect();
        let ask = self.router.send(Reshare {
            from: self.state.client_id.clone(),
            items,
        });
        let fut = ask.into_actor(self).map(move |placed, act, _| {
            // (No answer: the router failed, and every message stays here.)
            let Ok(Some(placed)) = placed else { return };
            let gone: Vec<_> = msgs
                .into_iter()
                .zip(placed)
                .filter_map(|(m, p)| p.then_some(m))
                .collect();
            act.state.remove_handed_over(&gone);
        });
        ctx.wait(fut);
    }
}
