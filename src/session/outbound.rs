//! Messages towards the client: routed deliveries enter the bounded queue, and `pump`
//! moves them to the socket within the in-flight window and the write buffer's
//! high-water mark.

use std::time::Instant;

use actix::prelude::*;
use tracing::{debug, trace, warn};

use super::actor::Session;
use super::aliases::AliasUse;
use super::lifecycle::Phase;
use super::messages::{Deliver, DeliverBatch};
use super::writer::HIGH_WATER;
use crate::delivery::{Enqueued, Outgoing};
use crate::message::{Encoding, Variant};
use crate::metrics::DropReason;
use crate::protocol::{encoded_len, Flow, Packet, PacketId, Properties, Publish, QoS};
use crate::topic::TopicName;

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, d: Deliver, ctx: &mut Self::Context) {
        if self.shared.hooks.authorizes() {
            return self.deliver_all(vec![d.0], ctx);
        }
        if self.accept(d.0) {
            self.pump_guarded(ctx);
        }
    }
}

impl Handler<DeliverBatch> for Session {
    type Result = ();

    fn handle(&mut self, batch: DeliverBatch, ctx: &mut Self::Context) {
        self.deliver_all(batch.0, ctx);
    }
}

impl Session {
    /// Queues one delivery; false when it was not kept.
    pub(super) fn accept(&mut self, d: Outgoing) -> bool {
        if self.life.phase() == Phase::Gone {
            return false;
        }
        if self.link.is_none() && d.qos == QoS::AtMostOnce {
            // QoS 0 is not kept for an absent client.
            self.state.dropped += 1;
            self.shared
                .metrics
                .add_dropped(DropReason::ClientOffline, 1);
            return false;
        }
        let (before, seq) = (self.state.dropped, d.seq);
        let enqueued = match self.link {
            Some(_) => self.state.enqueue(d),
            None => self.state.enqueue_offline(d),
        };
        if enqueued.was_full() {
            let dropped = self.state.dropped - before;
            self.on_queue_full(&enqueued, seq, dropped);
        } else if enqueued == Enqueued::Overshoot {
            self.on_overshoot();
        }
        true
    }

    /// The queue took a message beyond its limit (`backpressure`): its pressure goes on
    /// and the publishers the router reaches it for are held back until it drains.
    fn on_overshoot(&mut self) {
        let Some(pressure) = &self.pressure else {
            return;
        };
        let (len, bytes) = (self.state.queue_len(), self.state.queued_bytes());
        if pressure.follow(len, bytes, self.state.limits()) {
            debug!(client_id = %self.state.client_id, queued = len, "queue over its limit; holding publishers back");
        }
        self.warn_full_once("holding its publishers back");
    }

    /// Once the queue has drained to half its limits, the held publishers go on.
    fn follow_pressure(&mut self) {
        if let Some(pressure) = self.pressure.as_ref().filter(|p| p.handle().is_on()) {
            let (len, bytes) = (self.state.queue_len(), self.state.queued_bytes());
            if pressure.follow(len, bytes, self.state.limits()) {
                debug!(client_id = %self.state.client_id, queued = len, "queue drained; publishers released");
            }
        }
    }

    /// A full queue dropped `dropped` messages: they are counted, what was stored is
    /// forgotten by the store too (a restart would bring it back otherwise), and the
    /// first time this session's queue is full a warning says so.
    fn on_queue_full(&mut self, enqueued: &Enqueued, new_seq: Option<u64>, dropped: u64) {
        let metrics = &self.shared.metrics;
        metrics.add_dropped(DropReason::QueueFull, dropped);
        match enqueued {
            Enqueued::Dropped => self.forget_stored(new_seq),
            Enqueued::DisplacedOldest(seqs) => {
                for &seq in seqs {
                    self.forget_stored(Some(seq));
                }
            }
            Enqueued::Queued | Enqueued::DisplacedQos0 | Enqueued::Overshoot => {}
        }
        self.warn_full_once("dropping messages");
    }

    /// The first time this session's queue is full, a warning says what happens now.
    fn warn_full_once(&mut self, doing: &str) {
        if self.state.warned_full {
            return;
        }
        self.state.warned_full = true;
        let limits = &self.shared.config.limits;
        warn!(
            client_id = %self.state.client_id,
            max_messages = limits.max_queued_messages,
            max_bytes = limits.max_queued_bytes,
            policy = ?limits.queue_full,
            "session queue full: {doing} (logged once per session)"
        );
    }

    pub(super) fn pump_guarded(&mut self, ctx: &mut Context<Self>) {
        let run = std::panic::AssertUnwindSafe(|| self.pump(ctx));
        if std::panic::catch_unwind(run).is_err() {
            self.crash(ctx);
        }
    }
}

impl Session {
    /// Moves queued messages to the socket while the window and buffer allow; counts
    /// the expired ones it skipped and reports the queue's length (also when the
    /// client is away: deliveries to an offline session come through here too).
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        let before = self.state.expired;
        self.pump_queue(ctx);
        let expired = self.state.expired - before;
        self.shared
            .metrics
            .add_dropped(DropReason::Expired, expired);
        self.queued.sync(self.state.queue_len());
        self.shared.metrics.add_sent_tally(&mut self.sent);
        self.follow_pressure();
    }

    fn pump_queue(&mut self, _ctx: &mut Context<Self>) {
        if self.life.phase() != Phase::Live {
            return;
        }
        let window = usize::from(self.accepted.outbound_window);
        let mut now = None;
        loop {
            match self.writer_mut() {
                Some(w) if !w.is_closing() && w.buffered() < HIGH_WATER => {}
                _ => return,
            }
            let Some((out, packet_id)) = self
                .state
                .next_to_send(window, || *now.get_or_insert_with(Instant::now))
            else {
                return;
            };
            if self.send_shared(&out, packet_id) {
                continue;
            }
            let mut packet = self.publish_packet(&out, packet_id, false);
            let alias = self.apply_alias(&mut packet);
            if let Some(max) = self.accepted.client_max_packet_size {
                if encoded_len(&packet, self.accepted.protocol) > max as usize {
                    // [MQTT-3.1.2-25]: too large for this client; discarded as if sent.
                    trace!(client_id = %self.state.client_id, "message over client's maximum packet size");
                    if let Some(id) = packet_id {
                        self.state.discard_inflight(id);
                    }
                    self.state.dropped += 1;
                    self.shared.metrics.add_dropped(DropReason::TooLarge, 1);
                    continue;
                }
            }
            self.send_publish(&packet, alias);
        }
    }

    /// Sends the delivery from the message's shared encoding when every receiver of its
    /// kind gets the same bytes: no subscription identifiers, no expiry to count down,
    /// no topic alias. False when it must be encoded for this receiver alone.
    fn send_shared(&mut self, out: &Outgoing, packet_id: Option<PacketId>) -> bool {
        let v5 = self.is_v5();
        if !out.sub_ids.is_empty() || out.msg.expires_at.is_some() {
            return false;
        }
        if v5 && self.out_aliases.lookup(&out.msg.topic) != AliasUse::None {
            return false;
        }
        let variant = match packet_id {
            None => Variant::Qos0 { retain: out.retain },
            Some(_) => Variant::WithPacketId,
        };
        let Some(enc) = out.msg.encoded(Encoding { v5, variant }) else {
            return false;
        };
        if let Some(max) = self.accepted.client_max_packet_size {
            if enc.len() > max as usize {
                // [MQTT-3.1.2-25]: too large for this client; discarded as if sent.
                trace!(client_id = %self.state.client_id, "message over client's maximum packet size");
                if let Some(id) = packet_id {
                    self.state.discard_inflight(id);
                }
                self.state.dropped += 1;
                self.shared.metrics.add_dropped(DropReason::TooLarge, 1);
                return true;
            }
        }
        if let Some(w) = self.writer_mut() {
            w.send_encoded(enc, out.qos, out.retain, packet_id);
            self.sent.add(out.qos, out.msg.payload.len());
        }
        true
    }

    /// Sends a PUBLISH whose alias use was decided by [`Session::apply_alias`], and
    /// remembers a newly assigned alias.
    pub(super) fn send_publish(&mut self, packet: &Packet, alias: AliasUse) {
        if let Packet::Publish(p) = packet {
            self.out_aliases.commit(&p.topic, alias);
            self.sent.add(p.qos(), p.payload.len());
        }
        self.send(packet);
    }

    /// Replaces a PUBLISH's topic by an alias where one is (or can be) assigned
    /// [MQTT-3.3.2-11]: the full name with a new alias, an empty name with a known one.
    pub(super) fn apply_alias(&self, packet: &mut Packet) -> AliasUse {
        let Packet::Publish(p) = packet else {
            return AliasUse::None;
        };
        let alias = self.out_aliases.lookup(&p.topic);
        match alias {
            AliasUse::None => {}
            AliasUse::Assign(a) => p.properties.topic_alias = Some(a),
            AliasUse::Known(a) => {
                p.properties.topic_alias = Some(a);
                p.topic = TopicName::empty();
            }
        }
        alias
    }

    /// The PUBLISH for one delivery; 5.0 gets subscription identifiers and the remaining
    /// message expiry [MQTT-3.3.2-6].
    pub(super) fn publish_packet(
        &self,
        out: &Outgoing,
        packet_id: Option<PacketId>,
        dup: bool,
    ) -> Packet {
        let msg = &out.msg;
        let properties = if !self.is_v5() {
            Properties::default()
        } else if out.sub_ids.is_empty() && msg.expires_at.is_none() {
            msg.properties.clone()
        } else {
            let mut p = msg.properties.clone();
            p.subscription_identifiers.clone_from(&out.sub_ids);
            p.message_expiry_interval = msg.remaining_expiry(Instant::now());
            p
        };
        debug_assert_eq!(packet_id.is_some(), out.qos != QoS::AtMostOnce);
        let flow = match packet_id {
            Some(id) => Flow::with_id(out.qos, id),
            None => Flow::AtMostOnce,
        };
        Packet::Publish(Publish {
            dup,
            flow,
            retain: out.retain,
            topic: msg.topic.clone(),
            properties,
            payload: msg.payload.clone(),
        })
    }
}
