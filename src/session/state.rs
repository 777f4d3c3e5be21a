//! A session's plain state (section 4.1): outbound in-flight and queued messages, packet
//! id allocation, and inbound QoS 2 packet ids awaiting PUBREL. No actix here.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::inflight::InflightList;
use crate::delivery::Queue;
pub use crate::delivery::{Enqueued, Outgoing, QueueLimits};
use crate::message::{ClientId, Message};
use crate::protocol::{PacketId, ProtocolVersion, QoS};

/// Where an outbound QoS 1/2 message stands in its acknowledgement flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREC received and PUBREL sent, waiting for PUBCOMP.
    Released,
}

/// An outbound QoS 1/2 message sent and not yet fully acknowledged.
#[derive(Debug, Clone)]
pub struct Inflight {
    pub packet_id: PacketId,
    pub out: Outgoing,
    pub stage: Stage,
}

/// The result of an acknowledgement from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckResult {
    /// The acknowledgement matched a message in flight (stored as `seq`, if it is).
    Matched { seq: Option<u64> },
    /// No message in flight had that packet id, or it was at another stage.
    Unknown,
}

/// Everything a session keeps while its client is connected or away.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub client_id: ClientId,
    pub protocol: ProtocolVersion,
    next_packet_id: PacketId,
    inflight: InflightList,
    queue: VecDeque<Outgoing>,
    queued_bytes: usize,
    /// Inbound QoS 2 packet ids whose PUBREC was sent and PUBREL not yet received.
    awaiting_rel: HashSet<PacketId>,
    limits: QueueLimits,
    /// Messages dropped because the queue was full or the message expired.
    pub dropped: u64,
    /// The queue was found full once already (and a warning logged).
    pub warned_full: bool,
    /// Of those, the messages that expired while queued.
    pub expired: u64,
}

impl SessionState {
    pub fn new(client_id: ClientId, protocol: ProtocolVersion, limits: QueueLimits) -> Self {
        SessionState {
            client_id,
            protocol,
            next_packet_id: PacketId::new(1).unwrap_or_else(|| unreachable!()),
            inflight: InflightList::default(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            awaiting_rel: HashSet::new(),
            limits,
            dropped: 0,
            warned_full: false,
            expired: 0,
        }
    }

    pub fn set_limits(&mut self, limits: QueueLimits) {
        self.limits = limits;
    }

    /// Messages queued, not yet sent.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    #[cfg(test)]
    pub fn inflight_len(&self) -> usize {
        self.inflight.count()
    }

    /// Queues a message, applying the full-queue policy ([`Queue::offer`]).
    pub fn enqueue(&mut self, out: Outgoing) -> Enqueued {
        let mut queue = Queue {
            items: &mut self.queue,
            bytes: &mut self.queued_bytes,
            dropped: &mut self.dropped,
        };
        queue.offer(out, self.limits)
    }

    /// Queues a message for a client that is away: `backpressure` drops the new
    /// message as `drop_new` does (no publisher waits for a client that may not come
    /// back).
    pub fn enqueue_offline(&mut self, out: Outgoing) -> Enqueued {
        let limits = QueueLimits {
            backpressure: false,
            ..self.limits
        };
        let mut queue = Queue {
            items: &mut self.queue,
            bytes: &mut self.queued_bytes,
            dropped: &mut self.dropped,
        };
        queue.offer(out, limits)
    }

    /// The queue's limits.
    pub fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    /// Bytes queued, not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    fn push(&mut self, out: Outgoing) {
        self.queued_bytes += out.msg.size();
        self.queue.push_back(out);
    }

    /// Copies of the messages that came through a shared subscription and that another
    /// member of the group may take over (section 4.8.2): QoS 1 messages in flight
    /// without PUBACK, and QoS 1/2 messages still queued (never sent). A QoS 2 message
    /// already sent stays: its delivery must be completed with this client when it
    /// reconnects and never go to another [MQTT-4.8.2-4] [MQTT-4.8.2-5]. Queued QoS 0
    /// messages stay too (they go on the offline rule).
    pub fn shared_handover(&self) -> Vec<Outgoing> {
        let in_flight = self
            .inflight
            .iter()
            .map(|i| &i.out)
            .filter(|o| o.qos == QoS::AtLeastOnce);
        let queued = self.queue.iter().filter(|o| o.qos != QoS::AtMostOnce);
        in_flight
            .chain(queued)
            .filter(|o| o.share.is_some())
            .cloned()
            .collect()
    }

    /// Removes the messages (by identity) that another member took over.
    pub fn remove_handed_over(&mut self, gone: &[Arc<Message>]) {
        let is_gone = |o: &Outgoing| gone.iter().any(|g| Arc::ptr_eq(g, &o.msg));
        self.inflight.retain(|i| !is_gone(&i.out));
        let before = self.queue.len();
        self.queue.retain(|o| !is_gone(o));
        if self.queue.len() != before {
            self.queued_bytes = self.queue.iter().map(|o| o.msg.size()).sum();
        }
    }

    /// Drops queued QoS 0 messages (used when the client goes offline: QoS 0 is not kept
    /// for an absent client).
    pub fn drop_queued_qos0(&mut self) {
        let before = self.queue.len();
        self.queue.retain(|o| o.qos != QoS::AtMostOnce);
        self.dropped += (before - self.queue.len()) as u64;
        self.queued_bytes = self.queue.iter().map(|o| o.msg.size()).sum();
    }

    /// Takes the next message that may be sent now, given the in-flight window. QoS 1/2
    /// messages get a packet id and enter the in-flight list. Expired messages are
    /// skipped [MQTT-3.3.2-5]; `now` is asked only for messages that have an expiry
    /// (reading the clock for every delivery shows in profiles).
    #[inline]
    pub fn next_to_send(
        &mut self,
        window: usize,
        mut now: impl FnMut() -> Instant,
    ) -> Option<(Outgoing, Option<PacketId>)> {
        loop {
            let head = self.queue.front()?;
            if head.qos != QoS::AtMostOnce && self.inflight.count() >= window {
                return None;
            }
            let packet_id = match head.seq {
                // A stored message's id follows from its number, so a restart re-sends it
                // with the same id [MQTT-4.4.0-1]; wait while that id is still in use.
                Some(seq) if head.qos != QoS::AtMostOnce => {
                    let id = packet_id_for_seq(seq);
                    if self.inflight.contains_id(id) {
                        return None;
                    }
                    Some(id)
                }
                _ => None,
            };
            let out = self.queue.pop_front()?;
            self.queued_bytes -= out.msg.size();
            if out.msg.expires_at.is_some() && out.msg.is_expired(now()) {
                self.dropped += 1;
                self.expired += 1;
                // Expired for every member alike: nobody else should get it either.
                out.settle();
                continue;
            }
            if out.qos == QoS::AtMostOnce {
                out.settle();
                return Some((out, None));
            }
            let packet_id = packet_id.unwrap_or_else(|| self.allocate_packet_id());
            self.inflight.push_back(Inflight {
                packet_id,
                out: out.clone(),
                stage: Stage::Published,
            });
            return Some((out, Some(packet_id)));
        }
    }

    /// A packet id not used by any message in flight [MQTT-2.2.1-3].
    fn allocate_packet_id(&mut self) -> PacketId {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = id.next();
            if !self.inflight.contains_id(id) {
                return id;
            }
        }
    }

    /// PUBACK for a QoS 1 message.
    #[inline]
    pub fn on_puback(&mut self, id: PacketId) -> AckResult {
        self.remove_inflight(id, QoS::AtLeastOnce, Stage::Published)
    }

    /// PUBREC for a QoS 2 message; the caller answers with PUBREL either way
    /// (5.0: with 0x92 when unknown).
    pub fn on_pubrec(&mut self, id: PacketId) -> AckResult {
        match self.inflight.get_mut(id) {
            Some(i) if i.out.qos == QoS::ExactlyOnce => {
                i.stage = Stage::Released;
                i.out.settle();
                AckResult::Matched { seq: i.out.seq }
            }
            _ => AckResult::Unknown,
        }
    }

    /// PUBCOMP for a released QoS 2 message.
    pub fn on_pubcomp(&mut self, id: PacketId) -> AckResult {
        self.remove_inflight(id, QoS::ExactlyOnce, Stage::Released)
    }

    fn remove_inflight(&mut self, id: PacketId, qos: QoS, stage: Stage) -> AckResult {
        match self
            .inflight
            .remove_if(id, |i| i.out.qos == qos && i.stage == stage)
        {
            Some(i) => {
                i.out.settle();
                AckResult::Matched { seq: i.out.seq }
            }
            None => AckResult::Unknown,
        }
    }

    /// The in-flight message with this packet id.
    pub fn inflight_get(&self, id: PacketId) -> Option<&Inflight> {
        self.inflight.get(id)
    }

    /// A session as stored: in-flight messages (with their packet id and whether PUBREL
    /// was sent) and queued ones in stored order, and inbound QoS 2 ids awaiting PUBREL.
    pub fn restore(
        client_id: ClientId,
        protocol: ProtocolVersion,
        limits: QueueLimits,
        entries: Vec<(Outgoing, Option<PacketId>, bool)>,
        awaiting_rel: Vec<PacketId>,
    ) -> SessionState {
        let mut s = SessionState::new(client_id, protocol, limits);
        for (out, packet_id, released) in entries {
            match packet_id {
                Some(packet_id) => {
                    let stage = if released {
                        Stage::Released
                    } else {
                        Stage::Published
                    };
                    s.inflight.push_back(Inflight {
                        packet_id,
                        out,
                        stage,
                    });
                }
                None => s.push(out),
            }
        }
        s.awaiting_rel.extend(awaiting_rel);
        s
    }

    /// Forgets an in-flight message that could not be sent (too large for the client).
    pub fn discard_inflight(&mut self, id: PacketId) {
        self.inflight.retain(|i| i.packet_id != id);
    }

    /// The in-flight messages in the order they were first sent, to re-send on
    /// reconnect [MQTT-4.4.0-1].
    pub fn inflight(&self) -> impl Iterator<Item = &Inflight> {
        self.inflight.iter()
    }

    /// Records an inbound QoS 2 packet id; false when it was already awaiting PUBREL
    /// (a re-sent PUBLISH that must not be delivered again [MQTT-4.3.3-9]).
    pub fn begin_inbound_qos2(&mut self, id: PacketId) -> bool {
        self.awaiting_rel.insert(id)
    }

    /// PUBREL from the client; true when the id was awaiting it.
    pub fn on_pubrel(&mut self, id: PacketId) -> bool {
        self.awaiting_rel.remove(&id)
    }

    pub fn awaiting_rel_len(&self) -> usize {
        self.awaiting_rel.len()
    }
}

/// The packet id of the stored message numbered `seq`: 1..=65535, cycling.
pub fn packet_id_for_seq(seq: u64) -> PacketId {
    let id = (seq.wrapping_sub(1) % 65_535) as u16 + 1;
    PacketId::new(id).unwrap_or_else(|| unreachable!("1..=65535 is never zero"))
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
