//! The flow of inbound publishes as plain state: the acknowledgements in arrival order
//! [MQTT-4.6.0-2], each sent once its publish is routed (and durable), and the routing
//! window past which the socket is not read (TCP backpressure instead of acknowledging
//! and dropping). The actor feeds it events and pulls the acknowledgements ready to
//! write with [`Inflow::next_ack`], as quinn pulls `poll_transmit` from quinn-proto.

use std::collections::VecDeque;

use crate::protocol::{Packet, PacketId, PubResponse, QoS, ReasonCode};

/// Inbound publishes routed but not yet answered by the router before reading pauses.
const ROUTE_WINDOW: usize = 128;
/// Reading resumes once no more than this many are unanswered.
const ROUTE_RESUME: usize = ROUTE_WINDOW / 2;
/// Failed publishes in a row (not routed, or their store write failed) that a 5.0
/// client is told of one by one (PUBACK 0x80); the next one counts as the store staying
/// down, and closes the connection (DISCONNECT 0x80).
const FAILURES_ANSWERED: u32 = 3;

/// A routed publish's place among the acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot(u64);

/// A QoS 1/2 publish waiting for the router: where its acknowledgement goes and what
/// it acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AckSlot {
    slot: Slot,
    qos: QoS,
    id: PacketId,
}

/// What the actor does after handing a publish to the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sent {
    /// Passed back to [`Inflow::on_routed`] with the router's answer.
    pub ack: Option<AckSlot>,
    /// The window is full: stop reading the socket.
    pub pause: bool,
}

/// What the actor does once the router has answered a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answered {
    /// Enough of the window is free again: read the socket.
    pub resume: bool,
    /// Not routed or not stored: the connection closes, nothing more is acknowledged.
    pub failed: bool,
}

/// The session's pending acknowledgements and routing window.
#[derive(Debug, Default)]
pub(super) struct Inflow {
    /// Acknowledgements in arrival order; `None` until the router has answered.
    acks: VecDeque<Option<Packet>>,
    /// Sequence number of `acks[0]`.
    acks_base: u64,
    routes_in_flight: usize,
    /// QoS 1 publishes not yet acknowledged (the receive maximum counts them).
    unacked_qos1: usize,
    /// Publishes that failed in a row (see [`FAILURES_ANSWERED`]).
    failures_in_row: u32,
}

impl Inflow {
    /// QoS 1 publishes not yet acknowledged.
    pub fn unacked_qos1(&self) -> usize {
        self.unacked_qos1
    }

    /// True while acknowledgements wait for the router's answer.
    pub fn acks_pending(&self) -> bool {
        !self.acks.is_empty()
    }

    /// True while routed publishes await the router's answer.
    pub fn routing(&self) -> bool {
        self.routes_in_flight > 0
    }

    /// Forgets acknowledgements not yet sent (their publishes stay unacknowledged).
    pub fn clear_acks(&mut self) {
        self.acks.clear();
    }

    /// An acknowledgement decided without the router (a re-sent QoS 2 PUBLISH, a
    /// refused publish): it goes out in its turn.
    pub fn push_ack(&mut self, packet: Packet) {
        if let Packet::PubAck(_) = packet {
            self.unacked_qos1 += 1; // undone as the PUBACK goes out
        }
        self.acks.push_back(Some(packet));
    }

    /// A publish goes to the router; QoS 1/2 take the next acknowledgement slot.
    pub fn on_route(&mut self, qos: QoS, id: Option<PacketId>) -> Sent {
        let ack = match (qos, id) {
            (QoS::AtMostOnce, _) | (_, None) => None,
            (qos, Some(id)) => {
                if qos == QoS::AtLeastOnce {
                    self.unacked_qos1 += 1;
                }
                self.acks.push_back(None);
                let slot = Slot(self.acks_base + self.acks.len() as u64 - 1);
                Some(AckSlot { slot, qos, id })
            }
        };
        self.routes_in_flight += 1;
        Sent {
            ack,
            pause: self.routes_in_flight >= ROUTE_WINDOW,
        }
    }

    /// The router answered: `matched` sessions got the publish (`None`: the router is
    /// gone or the store failed, so it is not acknowledged and the pending
    /// acknowledgements are dropped). Fills the publish's slot; 5.0 says when no one
    /// subscribed.
    pub fn on_routed(
        &mut self,
        matched: Option<usize>,
        ack: Option<AckSlot>,
        v5: bool,
    ) -> Answered {
        self.routes_in_flight = self.routes_in_flight.saturating_sub(1);
        let resume = self.routes_in_flight <= ROUTE_RESUME;
        let Some(matched) = matched else {
            return self.on_failed(ack, v5, resume);
        };
        self.failures_in_row = 0;
        if let Some(AckSlot { slot, qos, id }) = ack {
            let mut resp = PubResponse::new(id);
            if matched == 0 && v5 {
                resp.reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
            }
            let packet = match qos {
                QoS::AtLeastOnce => Packet::PubAck(resp),
                _ => Packet::PubRec(resp),
            };
            self.fill(slot, packet);
        }
        Answered {
            resume,
            failed: false,
        }
    }

    /// A publish not routed or not stored: a 5.0 QoS 1 publish is answered PUBACK
    /// 0x80 while failures are few in a row; otherwise (3.1.1 has no way to say it; a
    /// QoS 2 id would have to be forgotten; the store stays down) the connection
    /// closes and nothing pending is acknowledged.
    fn on_failed(&mut self, ack: Option<AckSlot>, v5: bool, resume: bool) -> Answered {
        self.failures_in_row += 1;
        match ack {
            Some(AckSlot {
                slot,
                qos: QoS::AtLeastOnce,
                id,
            }) if v5 && self.failures_in_row <= FAILURES_ANSWERED => {
                let mut resp = PubResponse::new(id);
                resp.reason = ReasonCode::UNSPECIFIED_ERROR;
                self.fill(slot, Packet::PubAck(resp));
                Answered {
                    resume,
                    failed: false,
                }
            }
            _ => {
                self.acks.clear();
                Answered {
                    resume,
                    failed: true,
                }
            }
        }
    }

    /// Decides the acknowledgement waiting in `slot` (gone after a clear: nothing).
    fn fill(&mut self, slot: Slot, packet: Packet) {
        let index = slot.0.checked_sub(self.acks_base).map(|i| i as usize);
        if let Some(entry) = index.and_then(|i| self.acks.get_mut(i)) {
            *entry = Some(packet);
        }
    }

    /// The next acknowledgement to write: the oldest, once it is decided.
    pub fn next_ack(&mut self) -> Option<Packet> {
        let Some(Some(_)) = self.acks.front() else {
            return None;
        };
        let packet = self.acks.pop_front().flatten()?;
        self.acks_base += 1;
        if let Packet::PubAck(_) = packet {
            self.unacked_qos1 = self.unacked_qos1.saturating_sub(1);
        }
        Some(packet)
    }
}

#[cfg(test)]
#[path = "inflow_tests.rs"]
mod tests;
