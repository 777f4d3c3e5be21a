//! Publishing as plain state: [`RouterState::publish`] turns one published message into
//! a [`Plan`] (which sessions get which delivery now, handed to the caller's [`Sink`] as
//! it is decided, so that nothing is buffered twice; which are held; what the store must
//! write; how many sessions matched), and [`RouterState::plan_deliveries`] does the
//! same for deliveries found otherwise (from another node, a replay, a shared
//! subscription's hand-over). No actor is involved: the router actor's sink only says
//! where each client's session is ([`Target`]), then sends what the plan says.

use std::sync::Arc;

use super::state::{Delivery, RouterState, Shares};
use crate::delivery::Outgoing;
use crate::message::{ClientId, Message};
use crate::persistence::convert::message_record;
use crate::persistence::{Op, QueuedDelivery};
use crate::protocol::{PacketId, QoS};

/// Where a client's deliveries go, as the caller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<A> {
    /// To its session, at this address.
    Send(A),
    /// Held until its session's replay of the message log is done.
    Hold,
    /// Nowhere: no session is registered for it.
    Gone,
}

/// Where a plan's deliveries go: the caller says where each client's session is, then
/// takes each delivery as the plan decides it. A pair of closures `(target, send)` is
/// one.
pub trait Sink {
    /// How the caller finds a session again when its delivery comes (an address, a
    /// slot in an outbox).
    type Slot;
    /// Where `client`'s deliveries go.
    fn target(&mut self, client: &ClientId) -> Target<Self::Slot>;
    /// One delivery to the session that [`Sink::target`] found.
    fn send(&mut self, client: ClientId, slot: Self::Slot, out: Outgoing);
}

impl<A, T, S> Sink for (T, S)
where
    T: FnMut(&ClientId) -> Target<A>,
    S: FnMut(ClientId, A, Outgoing),
{
    type Slot = A;
    fn target(&mut self, client: &ClientId) -> Target<A> {
        (self.0)(client)
    }
    fn send(&mut self, client: ClientId, slot: A, out: Outgoing) {
        (self.1)(client, slot, out)
    }
}

/// One locally published message and how to publish it.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    pub msg: &'a Arc<Message>,
    /// A QoS 2 publish: its packet id, stored when the publisher's session is
    /// persistent (so a re-sent PUBLISH after a restart is recognised [MQTT-4.3.3-9]).
    pub inbound_qos2: Option<PacketId>,
    /// Which shared subscriptions this node serves.
    pub shares: Shares<'a>,
    /// Whether anything is stored (false with `durability = "memory"`).
    pub store: bool,
}

/// What to do with one message, besides the deliveries sent as it is made. Reused from
/// message to message.
#[derive(Debug, Default)]
pub struct Plan {
    /// Sessions it was handed to (sent or held).
    pub matched: usize,
    /// Deliveries held for sessions replaying the message log.
    pub hold: Vec<Delivery>,
    /// Persistent sessions whose stored queue gets the message (QoS 1/2).
    pub targets: Vec<QueuedDelivery>,
    /// Other store writes of the same batch: the retained copy, an inbound QoS 2 id.
    pub ops: Vec<Op>,
    /// The matching step's output, kept for its allocation.
    matches: Vec<Delivery>,
}

impl Plan {
    /// True when the store has something to write for this message.
    pub fn stores(&self) -> bool {
        !self.targets.is_empty() || !self.ops.is_empty()
    }

    /// Empties the plan; the caller took what it carried out, so the vectors are
    /// usually empty already and the check is all it costs.
    #[inline]
    fn clear(&mut self) {
        self.matched = 0;
        if !self.hold.is_empty() || !self.targets.is_empty() || !self.ops.is_empty() {
            self.hold.clear();
            self.targets.clear();
            self.ops.clear();
        }
    }
}

impl RouterState {
    /// Plans one locally published message: its retained copy (kept here, and stored),
    /// the publisher's inbound QoS 2 id (stored), then every matching subscription.
    pub fn publish(&mut self, p: Publish<'_>, sink: &mut impl Sink, plan: &mut Plan) {
        plan.clear();
        if p.msg.retain {
            self.retain(p.msg);
            if p.store {
                plan.ops.push(retained_op(p.msg));
            }
        }
        if let (Some(id), Some(publisher)) = (p.inbound_qos2, &p.msg.publisher) {
            if p.store && self.is_persistent(publisher) {
                plan.ops.push(Op::PutInboundQos2 {
                    client_id: publisher.clone(),
                    packet_id: id.get(),
                });
            }
        }
        let mut matches = std::mem::take(&mut plan.matches);
        self.route_into(p.msg, p.shares, &mut matches);
        self.plan_into(p.msg, matches.drain(..), p.store, sink, plan);
        plan.matches = matches;
    }

    /// Plans `deliveries` of `msg` found by other means. The store ops the caller put
    /// in `plan.ops` stay and join the same batch.
    pub fn plan_deliveries(
        &mut self,
        msg: &Arc<Message>,
        deliveries: impl IntoIterator<Item = Delivery>,
        store: bool,
        sink: &mut impl Sink,
        plan: &mut Plan,
    ) {
        let extra = std::mem::take(&mut plan.ops);
        plan.clear();
        plan.ops = extra;
        self.plan_into(msg, deliveries, store, sink, plan);
    }

    /// Splits deliveries into sent, held and gone; a QoS 1/2 delivery sent to a
    /// persistent session takes the next number of its stored queue.
    fn plan_into<S: Sink>(
        &mut self,
        msg: &Arc<Message>,
        deliveries: impl IntoIterator<Item = Delivery>,
        store: bool,
        sink: &mut S,
        plan: &mut Plan,
    ) {
        for d in deliveries {
            let slot = match sink.target(&d.client) {
                Target::Gone => continue,
                Target::Hold => {
                    plan.matched += 1;
                    plan.hold.push(d);
                    continue;
                }
                Target::Send(slot) => slot,
            };
            plan.matched += 1;
            let seq = match (d.qos, store) {
                (QoS::AtMostOnce, _) | (_, false) => None,
                _ => self.next_seq(&d.client),
            };
            if let Some(seq) = seq {
                plan.targets.push(QueuedDelivery {
                    client: d.client.clone(),
                    seq,
                    qos: d.qos,
                    retain: d.retain,
                    sub_ids: d.sub_ids.clone(),
                });
            }
            let out = Outgoing {
                msg: Arc::clone(msg),
                qos: d.qos,
                retain: d.retain,
                sub_ids: d.sub_ids,
                seq,
                share: d.share,
                receipt: d.receipt,
            };
            sink.send(d.client, slot, out);
        }
    }
}

/// The store's copy of a retained message, or its deletion (empty payload).
fn retained_op(msg: &Message) -> Op {
    if msg.payload.is_empty() {
        Op::DeleteRetained {
            topic: msg.topic.as_str().to_owned(),
        }
    } else {
        Op::PutRetained(message_record(msg))
    }
}
