//! The MQTT 5.0 client state of a [`PersistentClient`](super::PersistentClient)'s
//! connection, without I/O: it turns the client's commands into encoded packets (with
//! packet ids, held back beyond the broker's Receive Maximum), answers each request
//! when its acknowledgement arrives, and turns the session's PUBLISHes into
//! [`Delivery`]s that owe their acknowledgement. The connection task
//! (`client_end.rs`) writes [`Requests::out`] and feeds back what it reads.

use std::collections::VecDeque;

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;
use tracing::debug;

use super::deliveries::Delivery;
use super::{refused, LocalMessage, Refused};
use crate::protocol::{
    encode_packet, encoded_len, Disconnect, EncodeError, Flow, Packet, PacketId, Properties,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions,
    UnsubAck, Unsubscribe,
};
use crate::topic::{TopicFilter, TopicName};

/// Where the answer to one request goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T, Refused>>;

/// A request of the client to its connection task.
pub(super) enum Command {
    Publish {
        publish: Outbound,
        reply: Reply<()>,
    },
    Subscribe {
        filter: TopicFilter,
        qos: QoS,
        reply: Reply<QoS>,
    },
    Unsubscribe {
        filter: TopicFilter,
        reply: Reply<()>,
    },
    /// The acknowledgement of a message the application took.
    Ack(Packet),
    /// DISCONNECT (normal); answered once the session closed the connection.
    Disconnect {
        done: oneshot::Sender<()>,
    },
}

/// A PUBLISH to send, before it has its packet id.
pub(super) struct Outbound {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: Properties,
}

impl Outbound {
    fn packet(&self, id: Option<PacketId>) -> Packet {
        let flow = match id {
            Some(id) => Flow::with_id(self.qos, id),
            None => Flow::AtMostOnce,
        };
        Packet::Publish(Publish {
            dup: false,
            flow,
            retain: self.retain,
            topic: self.topic.clone(),
            properties: self.properties.clone(),
            payload: self.payload.clone(),
        })
    }
}

/// A request waiting for the broker's acknowledgement, by packet id.
enum Pending {
    /// QoS 1 until PUBACK; QoS 2 until PUBCOMP (or an error PUBREC).
    Publish(Reply<()>),
    Subscribe(Reply<QoS>),
    Unsubscribe(Reply<()>),
}

impl Pending {
    fn fail(self, why: Refused) {
        // The client may have stopped waiting: nobody to tell then.
        match self {
            Pending::Publish(reply) | Pending::Unsubscribe(reply) => drop(reply.send(Err(why))),
            Pending::Subscribe(reply) => drop(reply.send(Err(why))),
        }
    }
}

/// The client side of one connection.
pub(super) struct Requests {
    /// Encoded packets to write, in order.
    pub out: BytesMut,
    /// The broker's Maximum Packet Size.
    max_packet: usize,
    /// The broker's Receive Maximum.
    send_quota: usize,
    pending: HashMap<PacketId, Pending>,
    next_id: PacketId,
    /// QoS 1/2 publishes waiting for room under the broker's Receive Maximum.
    held: VecDeque<(Outbound, Reply<()>)>,
    /// QoS 1/2 publishes sent and not yet acknowledged.
    in_flight: usize,
    /// QoS 2 messages taken and PUBREC'd on this connection, until their PUBREL.
    awaiting_rel: HashSet<PacketId>,
}

impl Requests {
    /// Before CONNACK: no limits known yet.
    pub fn new() -> Requests {
        Requests {
            out: BytesMut::new(),
            max_packet: usize::MAX,
            send_quota: usize::from(u16::MAX),
            pending: HashMap::new(),
            next_id: PacketId::MIN,
            held: VecDeque::new(),
            in_flight: 0,
            awaiting_rel: HashSet::new(),
        }
    }

    /// The broker's Receive Maximum and Maximum Packet Size, from its CONNACK.
    pub fn set_limits(&mut self, receive_maximum: Option<u16>, max_packet: Option<u32>) {
        self.send_quota = usize::from(receive_maximum.unwrap_or(u16::MAX));
        self.max_packet = max_packet.map_or(usize::MAX, |m| m as usize);
    }

    /// Appends `packet` to [`out`](Self::out), or says why it cannot be sent.
    pub fn encode(&mut self, packet: &Packet) -> Result<(), Refused> {
        if encoded_len(packet, ProtocolVersion::V5) > self.max_packet {
            let why = "larger than the broker's Maximum Packet Size";
            return Err(refused(ReasonCode::PACKET_TOO_LARGE, why));
        }
        encode_packet(packet, ProtocolVersion::V5, &mut self.out).map_err(|e| match e {
            EncodeError::TooLarge(why) => refused(ReasonCode::PACKET_TOO_LARGE, why),
            EncodeError::Invalid(why) => refused(ReasonCode::PROTOCOL_ERROR, why),
            EncodeError::Io(_) => refused(ReasonCode::UNSPECIFIED_ERROR, "i/o error"),
        })
    }

    /// Appends a packet of the client's own making (acknowledgements, PINGREQ): small,
    /// always encodable.
    pub fn send(&mut self, packet: &Packet) {
        if let Err(why) = self.encode(packet) {
            debug!(why = why.why, "packet not sent");
        }
    }

    /// Carries out a command; for DISCONNECT, returns whom to tell once the broker
    /// has closed the connection.
    pub fn handle(&mut self, command: Command) -> Option<oneshot::Sender<()>> {
        match command {
            Command::Publish { publish, reply } if publish.qos == QoS::AtMostOnce => {
                let _ = reply.send(self.encode(&publish.packet(None)));
            }
            Command::Publish { publish, reply } if self.in_flight >= self.send_quota => {
                self.held.push_back((publish, reply));
            }
            Command::Publish { publish, reply } => self.start_publish(publish, reply),
            Command::Subscribe { filter, qos, reply } => {
                let options = SubscriptionOptions::with_qos(qos);
                let packet = |packet_id| {
                    Packet::Subscribe(Subscribe {
                        packet_id,
                        properties: Properties::default(),
                        filters: vec![(filter, options)],
                    })
                };
                self.request(packet, Pending::Subscribe(reply));
            }
            Command::Unsubscribe { filter, reply } => {
                let packet = |packet_id| {
                    Packet::Unsubscribe(Unsubscribe {
                        packet_id,
                        properties: Properties::default(),
                        filters: vec![filter],
                    })
                };
                self.request(packet, Pending::Unsubscribe(reply));
            }
            Command::Ack(packet) => {
                if let Packet::PubRec(r) = &packet {
                    self.awaiting_rel.insert(r.packet_id);
                }
                self.send(&packet);
            }
            Command::Disconnect { done } => {
                let normal = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
                self.send(&Packet::Disconnect(normal));
                return Some(done);
            }
        }
        None
    }

    /// A message of the session, with the acknowledgement it owes once taken; `None`
    /// for a QoS 2 message this connection took already (answered again instead).
    pub fn on_publish(&mut self, p: Publish) -> Option<Delivery> {
        let ack = match p.flow {
            Flow::AtMostOnce => None,
            Flow::AtLeastOnce(id) => Some(Packet::PubAck(PubResponse::new(id))),
            Flow::ExactlyOnce(id) if self.awaiting_rel.contains(&id) => {
                self.send(&Packet::PubRec(PubResponse::new(id)));
                return None;
            }
            Flow::ExactlyOnce(id) => Some(Packet::PubRec(PubResponse::new(id))),
        };
        let message = LocalMessage {
            qos: p.qos(),
            topic: p.topic,
            payload: p.payload,
            retain: p.retain,
            properties: p.properties,
        };
        Some(Delivery { message, ack })
    }

    /// PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK or UNSUBACK (anything else is ignored).
    pub fn on_ack(&mut self, packet: Packet) {
        match packet {
            Packet::PubAck(r) | Packet::PubComp(r) => self.on_publish_done(r),
            Packet::PubRec(r) if r.reason.is_error() => self.on_publish_done(r),
            Packet::PubRec(r) => self.send(&Packet::PubRel(PubResponse::new(r.packet_id))),
            Packet::PubRel(r) => {
                // Also for an id this connection never saw (PUBREC'd before a restart).
                self.awaiting_rel.remove(&r.packet_id);
                self.send(&Packet::PubComp(PubResponse::new(r.packet_id)));
            }
            Packet::SubAck(a) => self.on_suback(a),
            Packet::UnsubAck(a) => self.on_unsuback(a),
            _ => {}
        }
    }

    /// The connection ended: every request waiting is refused with `why`.
    pub fn fail_all(&mut self, why: &Refused) {
        for (_, pending) in self.pending.drain() {
            pending.fail(why.clone());
        }
        for (_, reply) in self.held.drain(..) {
            let _ = reply.send(Err(why.clone()));
        }
    }

    /// PUBACK, PUBCOMP, or a PUBREC with an error code: the publish flow is over.
    fn on_publish_done(&mut self, r: PubResponse) {
        let Some(Pending::Publish(reply)) = self.take_pending(r.packet_id, is_publish) else {
            return;
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        let outcome = match r.reason.is_error() {
            true => Err(refused(r.reason, "the broker refused the message")),
            false => Ok(()),
        };
        let _ = reply.send(outcome);
        self.release_held();
    }

    fn on_suback(&mut self, a: SubAck) {
        let Some(Pending::Subscribe(reply)) = self.take_pending(a.packet_id, is_subscribe) else {
            return;
        };
        let code = a.reasons.first().copied();
        let code = code.unwrap_or(ReasonCode::PROTOCOL_ERROR);
        let outcome = match QoS::from_u8(code.0).filter(|_| !code.is_error()) {
            Some(granted) => Ok(granted),
            None => Err(refused(code, "the broker refused the subscription")),
        };
        let _ = reply.send(outcome);
    }

    fn on_unsuback(&mut self, a: UnsubAck) {
        let Some(Pending::Unsubscribe(reply)) = self.take_pending(a.packet_id, is_unsubscribe)
        else {
            return;
        };
        let code = a.reasons.first().copied().unwrap_or(ReasonCode::SUCCESS);
        let outcome = match code.is_error() {
            true => Err(refused(code, "the broker refused the unsubscribe")),
            false => Ok(()),
        };
        let _ = reply.send(outcome);
    }

    /// The request waiting under `id`, when it is of the kind `of` accepts (an
    /// acknowledgement of another kind is the broker's mistake: ignored).
    fn take_pending(&mut self, id: PacketId, of: fn(&Pending) -> bool) -> Option<Pending> {
        if !self.pending.get(&id).is_some_and(of) {
            debug!(packet_id = %id, "acknowledgement for no such request");
            return None;
        }
        self.pending.remove(&id)
    }

    fn start_publish(&mut self, publish: Outbound, reply: Reply<()>) {
        let packet = |id| publish.packet(Some(id));
        if self.request(packet, Pending::Publish(reply)) {
            self.in_flight += 1;
        }
    }

    /// Sends the packet `make` builds with a free packet id and keeps `pending` under
    /// that id; or refuses `pending` with why it could not be sent (false).
    fn request(&mut self, make: impl FnOnce(PacketId) -> Packet, pending: Pending) -> bool {
        let Some(id) = self.free_id() else {
            let why = "every packet identifier is in use";
            pending.fail(refused(ReasonCode::UNSPECIFIED_ERROR, why));
            return false;
        };
        if let Err(why) = self.encode(&make(id)) {
            pending.fail(why);
            return false;
        }
        self.pending.insert(id, pending);
        true
    }

    /// Publishes held for room under the broker's Receive Maximum, while there is room.
    fn release_held(&mut self) {
        while self.in_flight < self.send_quota {
            let Some((publish, reply)) = self.held.pop_front() else {
                return;
            };
            self.start_publish(publish, reply);
        }
    }

    /// The next packet id no request waits under.
    fn free_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let id = self.next_id;
            self.next_id = id.next();
            if !self.pending.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }
}

fn is_publish(p: &Pending) -> bool {
    matches!(p, Pending::Publish(_))
}

fn is_subscribe(p: &Pending) -> bool {
    matches!(p, Pending::Subscribe(_))
}

fn is_unsubscribe(p: &Pending) -> bool {
    matches!(p, Pending::Unsubscribe(_))
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
