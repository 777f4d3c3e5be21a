//! A client's publish before the router sees it: the authorizer and the interceptor
//! hooks ([`crate::hooks`]). A late answer holds this session (`ctx.wait`: no packet
//! and no delivery is handled meanwhile, so the order of publishes and their
//! acknowledgements holds) for at most the hook budget; the router never waits.

use std::sync::Arc;

use actix::prelude::*;
use tracing::debug;

use super::actor::Session;
use super::policy::{reserved_topic, Refusal};
use crate::hooks::{Pending, Vetted};
use crate::message::Message;
use crate::metrics::DropReason;
use crate::metrics::Limit;
use crate::protocol::{Packet, PacketId, PubResponse, QoS, ReasonCode};

impl Session {
    /// Routes `msg` once the hooks let it through.
    pub(super) fn vet_and_route(
        &mut self,
        msg: Arc<Message>,
        ack: Option<(QoS, PacketId)>,
        ctx: &mut Context<Self>,
    ) {
        if reserved_topic(&msg.topic) {
            debug!(client_id = %self.state.client_id, topic = %msg.topic, "publish to $SYS refused");
            return self.on_vetted(Vetted::Denied, ack, ctx);
        }
        let limits = &self.shared.config.limits;
        if !limits.topic_levels_allowed(msg.topic.as_str()) {
            let max = limits.max_topic_levels;
            debug!(client_id = %self.state.client_id, max, "publish to a topic with too many levels refused");
            self.shared.metrics.limits.hit(Limit::TopicLevels);
            let refusal = Refusal {
                reason: ReasonCode::TOPIC_NAME_INVALID,
                text: "too many topic levels",
            };
            return self.refuse_unrouted(ack, refusal);
        }
        if !self.shared.hooks.vets_publishes() {
            return self.route(msg, ack, ctx);
        }
        // The only reference: moved out, not copied.
        let msg = Arc::try_unwrap(msg).unwrap_or_else(|shared| Message::clone(&shared));
        match self.shared.hooks.vet_publish(&self.client, msg) {
            Pending::Ready(vetted) => self.on_vetted(vetted, ack, ctx),
            Pending::Later(f) => {
                let f = f
                    .into_actor(self)
                    .map(move |vetted, act, ctx| act.on_vetted(vetted, ack, ctx));
                ctx.wait(f);
            }
        }
    }

    fn on_vetted(&mut self, vetted: Vetted, ack: Option<(QoS, PacketId)>, ctx: &mut Context<Self>) {
        match vetted {
            Vetted::Allowed(msg) => self.route(msg, ack, ctx),
            Vetted::Dropped => {
                debug!(client_id = %self.state.client_id, "publish dropped by a hook");
                self.shared.metrics.add_dropped(DropReason::Hook, 1);
                self.acknowledge_unrouted(ack);
            }
            Vetted::Denied => {
                debug!(client_id = %self.state.client_id, "publish not authorized");
                self.shared
                    .metrics
                    .add_dropped(DropReason::NotAuthorized, 1);
                let refusal = Refusal {
                    reason: ReasonCode::NOT_AUTHORIZED,
                    text: "not authorized",
                };
                self.refuse_unrouted(ack, refusal);
            }
        }
    }

    /// Answers a publish that is refused, not routed: 5.0 ends its flow with the error
    /// code (a QoS 2 id is not kept); 3.1.1 has no way to say it, so it is acknowledged
    /// and dropped.
    fn refuse_unrouted(&mut self, ack: Option<(QoS, PacketId)>, refusal: Refusal) {
        match ack {
            Some((qos, id)) if self.is_v5() => {
                if qos == QoS::ExactlyOnce {
                    self.state.on_pubrel(id);
                }
                self.refuse_publish(qos, id, refusal);
            }
            _ => self.acknowledge_unrouted(ack),
        }
    }

    /// Acknowledges a publish that is not routed as one that nobody subscribed to, in
    /// its turn among the acknowledgements.
    fn acknowledge_unrouted(&mut self, ack: Option<(QoS, PacketId)>) {
        let Some((qos, id)) = ack else { return };
        let mut resp = PubResponse::new(id);
        if self.is_v5() {
            resp.reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
        }
        let packet = match qos {
            QoS::AtLeastOnce => Packet::PubAck(resp),
            _ => Packet::PubRec(resp),
        };
        self.inbound.flow.push_ack(packet);
        self.flush_acks();
    }
}
