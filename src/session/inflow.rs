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
            self.acks.clear();
            return Answered {
                resume,
                failed: true,
            };
        };
        if let Some(AckSlot { slot, qos, id }) = ack {
            let mut resp = PubResponse::new(id);
            if matched == 0 && v5 {
                resp.reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
            }
            let packet = match qos {
                QoS::AtLeastOnce => Packet::PubAck(resp),
                _ => Packet::PubRec(resp),
            };
            let index = slot.0.checked_sub(self.acks_base).map(|i| i as usize);
            if let Some(entry) = index.and_then(|i| self.acks.get_mut(i)) {
                *entry = Some(packet);
            }
        }
        Answered {
            resume,
            failed: false,
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
