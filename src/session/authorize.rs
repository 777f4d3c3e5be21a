//! The authorizer and hooks as a session calls them for its client: subscribe events,
//! and the receipt check on each delivery (retained ones too) before it is queued.
//! A late answer holds this session alone (`ctx.wait`), so deliveries keep their order.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use tracing::{info, trace};

use super::actor::Session;
use super::messages::Recheck;
use crate::delivery::Outgoing;
use crate::hooks::{Access, Decision, Event, Pending};
use crate::protocol::QoS;
use crate::router::messages::Unsubscribe;
use crate::topic::TopicFilter;

impl Handler<Recheck> for Session {
    type Result = ();

    /// Drops the subscriptions the authorizer no longer allows. The client is not told
    /// (MQTT has no server-side unsubscribe); it simply receives nothing more there.
    fn handle(&mut self, Recheck(filters): Recheck, ctx: &mut Self::Context) {
        let checks = filters.into_iter().map(|filter| {
            let decision = self.authorize(Access::Subscribe, filter.as_str());
            async move {
                let decision = match decision {
                    Pending::Ready(d) => d,
                    Pending::Later(f) => f.await,
                };
                (decision == Decision::Deny).then_some(filter)
            }
        });
        let denied = futures::future::join_all(checks).into_actor(self);
        ctx.wait(denied.map(|denied, act, _| {
            let filters: Vec<TopicFilter> = denied.into_iter().flatten().collect();
            if filters.is_empty() {
                return;
            }
            info!(client_id = %act.state.client_id, ?filters, "subscriptions no longer authorized; dropped");
            act.router.do_send(Unsubscribe {
                client_id: act.state.client_id.clone(),
                filters,
            });
        }));
    }
}

impl Session {
    /// May this client do `access` on `topic`?
    pub(super) fn authorize(&self, access: Access, topic: &str) -> Pending<Decision> {
        self.shared.hooks.authorize(&self.client, access, topic)
    }

    /// Tells the hooks which filters were subscribed to, at what QoS.
    pub(super) fn announce_subscribed(&self, filters: Vec<TopicFilter>, granted: &[QoS]) {
        for (filter, &qos) in filters.into_iter().zip(granted) {
            let client = Arc::clone(&self.client);
            self.shared.hooks.event(|| Event::Subscribed {
                client,
                filter,
                qos,
            });
        }
    }

    /// Tells the hooks which filters were unsubscribed from (those that existed).
    pub(super) fn announce_unsubscribed(&self, filters: Vec<TopicFilter>, existed: &[bool]) {
        for (filter, _) in filters.into_iter().zip(existed).filter(|(_, e)| **e) {
            let client = Arc::clone(&self.client);
            self.shared
                .hooks
                .event(|| Event::Unsubscribed { client, filter });
        }
    }

    /// Queues deliveries (each one authorized for receipt when an authorizer decides)
    /// and sends what the window allows.
    pub(super) fn deliver_all(&mut self, deliveries: Vec<Outgoing>, ctx: &mut Context<Self>) {
        if self.shared.hooks.authorizes() {
            return self.deliver_authorized(deliveries.into(), ctx);
        }
        let mut any = false;
        for d in deliveries {
            any |= self.accept(d);
        }
        if any {
            self.pump_guarded(ctx);
        }
    }

    /// Queues the deliveries the client may receive, in order; at a late answer, waits
    /// for it (handling nothing else) and goes on with the rest.
    fn deliver_authorized(&mut self, mut rest: VecDeque<Outgoing>, ctx: &mut Context<Self>) {
        let mut any = false;
        while let Some(d) = rest.pop_front() {
            match self.authorize(Access::Receive, d.msg.topic.as_str()) {
                Pending::Ready(Decision::Allow) => any |= self.accept(d),
                Pending::Ready(Decision::Deny) => self.withhold(d),
                Pending::Later(decision) => {
                    if any {
                        self.pump_guarded(ctx);
                    }
                    let f = decision.into_actor(self).map(move |decision, act, ctx| {
                        match decision {
                            Decision::Allow => {
                                if act.accept(d) {
                                    act.pump_guarded(ctx);
                                }
                            }
                            Decision::Deny => act.withhold(d),
                        }
                        act.deliver_authorized(rest, ctx);
                    });
                    ctx.wait(f);
                    return;
                }
            }
        }
        if any {
            self.pump_guarded(ctx);
        }
    }

    /// A delivery the client may not receive: not sent, and forgotten by the store.
    fn withhold(&mut self, d: Outgoing) {
        trace!(client_id = %self.state.client_id, topic = %d.msg.topic, "delivery not authorized");
        self.forget_stored(d.seq);
    }
}
