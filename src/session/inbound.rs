//! Packets from the client: PUBLISH and its acknowledgements, SUBSCRIBE, UNSUBSCRIBE,
//! PINGREQ and DISCONNECT. The order of acknowledgements and the routing window are
//! decided by [`Inflow`]; this file carries its decisions out (the read gate, writes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::debug;

use super::actor::Session;
use super::gate::Gate;
use super::hold::Holds;
use super::inflow::{AckSlot, Inflow};
use super::lifecycle::{Close, Phase};
use super::policy::{check_payload, check_publish, Refusal};
use super::rate::PublishRate;
use super::state::AckResult;
use crate::config::Limits;
use crate::message::Message;
use crate::metrics::Limit;
use crate::protocol::{
    encoded_len, DecodeError, Disconnect, Flow, Packet, PacketId, PubResponse, Publish, QoS,
    ReasonCode,
};
use crate::router::messages::Route;
use crate::topic::TopicName;

/// The session's inbound bookkeeping.
pub(super) struct Inbound {
    /// Topic aliases the client set (5.0, section 3.3.2.3.4); allocated with the first.
    #[allow(clippy::box_collection)] // 8 bytes inline instead of a HashMap's 48
    aliases: Option<Box<HashMap<u16, TopicName>>>,
    alias_max: u16,
    /// Pending acknowledgements and the routing window.
    pub flow: Inflow,
    /// Closed while the routing window is full: the socket is not read.
    pub gate: Gate,
    /// The client's publish rate and bandwidth, when limited.
    rate: Option<PublishRate>,
    /// Closed while the client is over its publish rate: the socket is not read.
    pub rate_gate: Gate,
    /// The waits holding the client back (full subscriber queues, memory).
    pub holds: Holds,
}

impl Inbound {
    pub fn new(limits: &Limits) -> Inbound {
        // One gate set for the three reasons not to read the socket.
        let gate = Gate::default();
        Inbound {
            aliases: None,
            alias_max: limits.topic_alias_maximum,
            flow: Inflow::default(),
            rate: PublishRate::new(limits, Instant::now()),
            rate_gate: gate.sibling(1),
            holds: Holds::with_gate(gate.sibling(2)),
            gate,
        }
    }
}

impl StreamHandler<Result<Packet, DecodeError>> for Session {
    fn handle(&mut self, item: Result<Packet, DecodeError>, ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        match item {
            Ok(packet) => {
                let run = std::panic::AssertUnwindSafe(|| self.on_packet(packet, ctx));
                if std::panic::catch_unwind(run).is_err() {
                    self.crash(ctx);
                }
            }
            Err(DecodeError::Io(error)) => {
                debug!(client_id = %self.state.client_id, %error, "read failed");
                self.close(ctx, Close::Lost);
            }
            Err(error) => {
                debug!(client_id = %self.state.client_id, %error, "bad packet; closing");
                self.fail(ctx, error.reason_code(), &error.to_string());
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.close(ctx, Close::Lost);
    }
}

impl Session {
    /// Stops reading from the client for `pause` (it is over its publish rate); what
    /// it already sent is handled as usual.
    fn pause_reading(&mut self, pause: Duration, ctx: &mut Context<Self>) {
        if self.inbound.rate_gate.is_closed() {
            return;
        }
        debug!(client_id = %self.state.client_id, ?pause, "over the publish rate; reading paused");
        self.inbound.rate_gate.close();
        self.shared.metrics.limits.hit(Limit::PublishRate);
        ctx.run_later(pause, |act, _| act.inbound.rate_gate.open());
    }

    fn on_packet(&mut self, packet: Packet, ctx: &mut Context<Self>) {
        tracing::trace!(phase = ?self.life.phase(), kind = packet.packet_type(), "packet in");
        if self.life.phase() != Phase::Live {
            return;
        }
        match packet {
            Packet::Publish(p) => self.on_publish(p, ctx),
            Packet::PubAck(r) => {
                if let AckResult::Matched { seq } = self.state.on_puback(r.packet_id) {
                    self.forget_stored(seq);
                }
                self.pump_after_ack(ctx);
            }
            Packet::PubRec(r) => self.on_pubrec(r, ctx),
            Packet::PubRel(r) => {
                let known = self.state.on_pubrel(r.packet_id);
                if known {
                    self.forget_inbound_qos2(r.packet_id);
                }
                let mut comp = PubResponse::new(r.packet_id);
                if !known && self.is_v5() {
                    comp.reason = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                }
                self.send(&Packet::PubComp(comp));
            }
            Packet::PubComp(r) => {
                if let AckResult::Matched { seq } = self.state.on_pubcomp(r.packet_id) {
                    self.forget_stored(seq);
                }
                self.pump_after_ack(ctx);
            }
            Packet::Subscribe(s) => self.on_subscribe(s, ctx),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u, ctx),
            Packet::PingReq => self.send(&Packet::PingResp),
            Packet::Disconnect(d) => self.on_disconnect(d, ctx),
            Packet::Auth(a) => self.on_auth(a, ctx),
            // [MQTT-3.1.0-2] a second CONNECT, and packets only a server sends.
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => {
                let why = "unexpected packet type from a client";
                self.fail(ctx, ReasonCode::PROTOCOL_ERROR, why);
            }
        }
    }

    /// An acknowledgement freed a place in the in-flight window (or the packet id a
    /// stored message waits for): what is queued may go now. With nothing queued there is
    /// nothing to move, and every metric `pump` reports is as it was (the usual case
    /// with a large window: most acknowledgements come with an empty queue).
    #[inline]
    fn pump_after_ack(&mut self, ctx: &mut Context<Self>) {
        if self.state.queue_len() > 0 {
            self.pump(ctx);
        }
    }

    fn on_pubrec(&mut self, r: PubResponse, ctx: &mut Context<Self>) {
        let id = r.packet_id;
        if r.reason.is_error() {
            // 5.0: an error PUBREC ends the flow for that message (section 4.3.3).
            if let AckResult::Matched { seq } = self.state.on_pubrec(id) {
                self.state.on_pubcomp(id);
                self.forget_stored(seq);
            }
            self.pump(ctx);
            return;
        }
        let mut rel = PubResponse::new(id);
        let seq = match self.state.on_pubrec(id) {
            AckResult::Matched { seq } => seq,
            AckResult::Unknown => {
                if self.is_v5() {
                    rel.reason = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                }
                None
            }
        };
        let durable = seq.and_then(|seq| self.store_released(seq, id));
        let Some(durable) = durable else {
            self.send(&Packet::PubRel(rel));
            return;
        };
        // PUBREL only once "released" is on disk: after a crash the broker must send
        // PUBREL again, never the PUBLISH (the client may already have forgotten it).
        let fut = async move { durable.wait().await }.into_actor(self);
        ctx.spawn(fut.map(move |ok, act, ctx| match ok {
            true => act.send(&Packet::PubRel(rel)),
            false => act.fail(ctx, ReasonCode::UNSPECIFIED_ERROR, "state not stored"),
        }));
    }

    fn on_publish(&mut self, mut p: Publish, ctx: &mut Context<Self>) {
        #[cfg(feature = "fault-injection")]
        if p.topic.as_str() == "$fault/session" {
            panic!("injected session fault");
        }
        tracing::trace!(topic = %p.topic, qos = ?p.qos(), retain = p.retain, "publish in");
        self.shared.metrics.add_received(p.qos(), p.payload.len());
        if let Some(rate) = &mut self.inbound.rate {
            let pause = rate.charge(p.topic.as_str().len() + p.payload.len(), Instant::now());
            if !pause.is_zero() {
                self.pause_reading(pause, ctx);
            }
        }
        if self.shared.memory.is_some() {
            self.hold_for_memory(ctx);
        }
        if let Err(refusal) = check_publish(&self.shared.config.capabilities, p.qos(), p.retain) {
            // 3.1.1 has no DISCONNECT from the server: the connection just closes.
            self.fail(ctx, refusal.reason, refusal.text);
            return;
        }
        if !p.properties.subscription_identifiers.is_empty() {
            // [MQTT-3.3.4-6]: only the server puts Subscription Identifiers in a PUBLISH.
            let why = "a PUBLISH from a client carries a Subscription Identifier";
            self.fail(ctx, ReasonCode::PROTOCOL_ERROR, why);
            return;
        }
        if let Err((reason, why)) = self.resolve_alias(&mut p) {
            self.fail(ctx, reason, why);
            return;
        }
        // (A QoS 1/2 PUBLISH always has its packet id: `Flow`.)
        let ack = match p.flow {
            Flow::AtMostOnce => None,
            Flow::AtLeastOnce(id) => Some((QoS::AtLeastOnce, id)),
            Flow::ExactlyOnce(id) => Some((QoS::ExactlyOnce, id)),
        };
        let validate = self.shared.config.limits.validate_utf8_payloads;
        let payload_ok = check_payload(validate, &p.properties, &p.payload);
        if let Some((qos, id)) = ack {
            let unacked = self.inbound.flow.unacked_qos1() + self.state.awaiting_rel_len();
            let max = usize::from(self.shared.config.limits.receive_maximum);
            if self.is_v5() && unacked >= max {
                // [MQTT-3.3.4-8]: more unacknowledged QoS 1/2 publishes than allowed.
                let why = "more unacknowledged QoS 1/2 publishes than Receive Maximum";
                self.fail(ctx, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED, why);
                return;
            }
            if let Err(refusal) = payload_ok {
                // Not routed; the flow ends with the error code (section 4.13.2).
                self.refuse_publish(qos, id, refusal);
                return;
            }
            if qos == QoS::ExactlyOnce && !self.state.begin_inbound_qos2(id) {
                // A re-sent QoS 2 PUBLISH: answer again, deliver once [MQTT-4.3.3-9].
                let rec = Packet::PubRec(PubResponse::new(id));
                self.inbound.flow.push_ack(rec);
                self.flush_acks();
                return;
            }
        } else if let Err(refusal) = payload_ok {
            self.fail(ctx, refusal.reason, refusal.text);
            return;
        }
        // Built in place in its Arc: no copy of the message on the way to the router.
        let msg = Arc::new(self.message_from(p));
        self.vet_and_route(msg, ack, ctx);
    }

    /// Acknowledges a QoS 1/2 publish that is not routed with an error code, in its
    /// turn among the acknowledgements; the Reason String only when the client accepts
    /// problem information [MQTT-3.1.2-29].
    pub(super) fn refuse_publish(&mut self, qos: QoS, id: PacketId, refusal: Refusal) {
        let mut resp = PubResponse::new(id);
        resp.reason = refusal.reason;
        if self.accepted.request_problem_information {
            resp.properties.reason_string = Some(refusal.text.into());
        }
        let wrap = |r| match qos {
            QoS::AtLeastOnce => Packet::PubAck(r),
            _ => Packet::PubRec(r),
        };
        let mut packet = wrap(resp.clone());
        let max = self.accepted.client_max_packet_size.unwrap_or(u32::MAX) as usize;
        if encoded_len(&packet, self.accepted.protocol) > max {
            // Never beyond the client's Maximum Packet Size [MQTT-3.4.2-2].
            resp.properties = Default::default();
            packet = wrap(resp);
        }
        self.inbound.flow.push_ack(packet);
        self.flush_acks();
    }

    /// Applies a 5.0 topic alias: sets it when a name comes with it, looks it up when not.
    fn resolve_alias(&mut self, p: &mut Publish) -> Result<(), (ReasonCode, &'static str)> {
        // Taken only when set: writing to empty properties would allocate them.
        let alias = match p.properties.topic_alias {
            Some(_) => p.properties.topic_alias.take(),
            None => None,
        };
        let Some(alias) = alias else {
            return if p.topic.is_empty() {
                Err((
                    ReasonCode::PROTOCOL_ERROR,
                    "empty topic name without topic alias",
                ))
            } else {
                Ok(())
            };
        };
        if alias == 0 || alias > self.inbound.alias_max {
            // [MQTT-3.3.2-9]
            return Err((ReasonCode::TOPIC_ALIAS_INVALID, "topic alias out of range"));
        }
        if p.topic.is_empty() {
            p.topic = self
                .inbound
                .aliases
                .as_ref()
                .and_then(|a| a.get(&alias))
                .cloned()
                .ok_or((
                    ReasonCode::PROTOCOL_ERROR,
                    "topic alias not set on this connection",
                ))?;
        } else {
            self.inbound
                .aliases
                .get_or_insert_with(Box::default)
                .insert(alias, p.topic.clone());
        }
        Ok(())
    }

    fn message_from(&self, p: Publish) -> Message {
        let qos = p.qos();
        let mut properties = p.properties;
        if !properties.subscription_identifiers.is_empty() {
            properties.subscription_identifiers.clear();
        }
        let expires_at = properties
            .message_expiry_interval
            .map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
        Message {
            qos,
            topic: p.topic,
            payload: p.payload,
            retain: p.retain,
            properties,
            expires_at,
            publisher: Some(self.state.client_id.clone()),
            encoded: Default::default(),
        }
    }

    /// Hands a message to the router; the acknowledgement goes out once it is routed
    /// and, in `sync` durability, once persistent subscribers' copies are on disk.
    pub(super) fn route(
        &mut self,
        msg: Arc<Message>,
        ack: Option<(QoS, PacketId)>,
        ctx: &mut Context<Self>,
    ) {
        if self.route_fast(&msg, ack, ctx) {
            return;
        }
        // What this turn routed itself goes first.
        self.flush_fast();
        self.fast.sent_to_router();
        let sent = self.inbound.flow.on_route(msg.qos, ack.map(|(_, id)| id));
        let inbound_qos2 = ack
            .filter(|(q, _)| *q == QoS::ExactlyOnce)
            .map(|(_, id)| id);
        let request = self.router.send(Route { msg, inbound_qos2 });
        let fut = async move {
            let Ok(routed) = request.await else {
                return (None, u64::MAX);
            };
            let durable = match routed.durable {
                Some(d) => d.wait().await,
                None => true,
            };
            let after = routed.after;
            (durable.then_some((routed.matched, routed.pressured)), after)
        };
        let slot = sent.ack;
        let fut = fut.into_actor(self).map(move |(routed, after), act, ctx| {
            act.fast.answered(after);
            let (matched, pressured) = routed.unzip();
            act.on_routed(matched, slot, ctx);
            if let Some(pressured) = pressured {
                act.hold_for_pressure(pressured, ctx);
            }
        });
        ctx.spawn(fut);
        if sent.pause {
            // Stop reading the socket until the router catches up.
            self.inbound.gate.close();
        }
    }

    /// A publish was routed to `matched` sessions (`None`: the router is gone or the
    /// store failed, so it is not acknowledged): send the acknowledgements that are
    /// ready, and finish a close that waited for them.
    fn on_routed(&mut self, matched: Option<usize>, ack: Option<AckSlot>, ctx: &mut Context<Self>) {
        let answered = self.inbound.flow.on_routed(matched, ack, self.is_v5());
        if answered.resume {
            self.inbound.gate.open();
        }
        if answered.failed {
            let why = "publish not routed or stored";
            self.fail(ctx, ReasonCode::UNSPECIFIED_ERROR, why);
            self.stop_if_idle(ctx);
            return;
        }
        self.flush_acks();
        let actions = self.life.acks_settled(self.facts());
        self.perform(actions, ctx);
    }

    /// Sends the acknowledgements that are ready, in order.
    pub(super) fn flush_acks(&mut self) {
        while let Some(packet) = self.inbound.flow.next_ack() {
            self.send(&packet);
        }
    }

    fn on_disconnect(&mut self, d: Disconnect, ctx: &mut Context<Self>) {
        if let Some(expiry) = d.properties.session_expiry_interval {
            // [MQTT-3.14.2-2]: a session that expired at close cannot be extended now.
            if self.accepted.session_expiry == 0 && expiry != 0 {
                let why = "session expiry set in DISCONNECT after a CONNECT with none";
                self.fail(ctx, ReasonCode::PROTOCOL_ERROR, why);
                return;
            }
            self.accepted.session_expiry =
                expiry.min(self.shared.config.limits.max_session_expiry_secs);
        }
        let send_will = d.reason == ReasonCode::DISCONNECT_WITH_WILL;
        self.close(ctx, Close::ClientDisconnect { send_will });
    }
}
