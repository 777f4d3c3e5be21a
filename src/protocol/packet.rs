//! The packets of MQTT 3.1, 3.1.1 and 5.0 as plain values. Fields that exist only in 5.0
//! (properties, reason codes) are ignored when encoding for an older level.

use bytes::Bytes;
use bytestring::ByteString;

use super::properties::Properties;
use super::types::{PacketId, ProtocolVersion, QoS, ReasonCode};
use crate::topic::{TopicFilter, TopicName};

/// Every MQTT control packet (section 2.1.2 gives the type numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (1), client to server; boxed, being the largest packet.
    Connect(Box<Connect>),
    /// CONNACK (2), server to client.
    ConnAck(ConnAck),
    /// PUBLISH (3), either way.
    Publish(Publish),
    /// PUBACK (4): acknowledges a QoS 1 PUBLISH.
    PubAck(PubResponse),
    /// PUBREC (5): first answer to a QoS 2 PUBLISH.
    PubRec(PubResponse),
    /// PUBREL (6): answers PUBREC.
    PubRel(PubResponse),
    /// PUBCOMP (7): answers PUBREL, ending a QoS 2 exchange.
    PubComp(PubResponse),
    /// SUBSCRIBE (8), client to server.
    Subscribe(Subscribe),
    /// SUBACK (9), server to client.
    SubAck(SubAck),
    /// UNSUBSCRIBE (10), client to server.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (11), server to client.
    UnsubAck(UnsubAck),
    /// PINGREQ (12), client to server; no body.
    PingReq,
    /// PINGRESP (13), server to client; no body.
    PingResp,
    /// DISCONNECT (14): client to server, and also server to client in 5.0.
    Disconnect(Disconnect),
    /// AUTH (15, 5.0 only): a step of enhanced authentication, either way.
    Auth(Auth),
}

impl Packet {
    /// The control packet type number of the fixed header (1 = CONNECT ... 15 = AUTH).
    pub fn packet_type(&self) -> u8 {
        match self {
            Packet::Connect(_) => 1,
            Packet::ConnAck(_) => 2,
            Packet::Publish(_) => 3,
            Packet::PubAck(_) => 4,
            Packet::PubRec(_) => 5,
            Packet::PubRel(_) => 6,
            Packet::PubComp(_) => 7,
            Packet::Subscribe(_) => 8,
            Packet::SubAck(_) => 9,
            Packet::Unsubscribe(_) => 10,
            Packet::UnsubAck(_) => 11,
            Packet::PingReq => 12,
            Packet::PingResp => 13,
            Packet::Disconnect(_) => 14,
            Packet::Auth(_) => 15,
        }
    }
}

/// CONNECT (section 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The protocol name and level it declares; the connection speaks it from then on.
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1.1) or Clean Start (5.0).
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 turns the keep alive mechanism off (section 3.1.2.10).
    pub keep_alive: u16,
    /// CONNECT properties (5.0): session expiry, receive maximum, authentication ...
    pub properties: Properties,
    /// May be empty; the session decides whether that is allowed.
    pub client_id: ByteString,
    /// The will message, when the Will Flag is set.
    pub will: Option<LastWill>,
    /// The user name, when the User Name Flag is set.
    pub username: Option<ByteString>,
    /// The password (binary data), when the Password Flag is set.
    pub password: Option<Bytes>,
}

/// The will message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// The Will Topic.
    pub topic: TopicName,
    /// The Will Payload.
    pub payload: Bytes,
    /// The Will QoS.
    pub qos: QoS,
    /// The Will Retain flag: the will is published as a retained message.
    pub retain: bool,
    /// Will properties (5.0): will delay interval, message expiry, content type ...
    pub properties: Properties,
}

/// CONNACK (section 3.2). `reason` holds a 5.0 reason code; for 3.1.1 it is mapped to a
/// return code with [`ReasonCode::to_v3_connack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// The Session Present flag: the server resumed a stored session.
    pub session_present: bool,
    /// The Connect Reason Code (0x00 accepts the connection).
    pub reason: ReasonCode,
    /// CONNACK properties (5.0): what the server supports and assigns.
    pub properties: Properties,
}

/// PUBLISH (section 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The DUP flag: this may be a re-delivery (QoS 1/2 only [MQTT-3.3.1-2]).
    pub dup: bool,
    /// The QoS with the packet id that QoS 1 and 2 carry and QoS 0 does not.
    pub flow: Flow,
    /// The RETAIN flag.
    pub retain: bool,
    /// Empty only in 5.0 when a topic alias stands for the name.
    pub topic: TopicName,
    /// PUBLISH properties (5.0): expiry, topic alias, user properties ...
    pub properties: Properties,
    /// The application payload, a zero-copy slice when decoded.
    pub payload: Bytes,
}

impl Publish {
    /// The QoS it is published at.
    pub fn qos(&self) -> QoS {
        self.flow.qos()
    }

    /// Its packet id: `Some` exactly at QoS 1 and 2.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.flow.packet_id()
    }
}

/// A PUBLISH's QoS and packet id together, so that a QoS 1/2 PUBLISH without a packet
/// id [MQTT-2.2.1-3] or a QoS 0 one with one [MQTT-2.2.1-2] cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// QoS 0, no packet id.
    AtMostOnce,
    /// QoS 1 with its packet id.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet id.
    ExactlyOnce(PacketId),
}

impl Flow {
    /// `qos` with `id`: `None` when they do not go together.
    pub fn new(qos: QoS, id: Option<PacketId>) -> Option<Flow> {
        match (qos, id) {
            (QoS::AtMostOnce, None) => Some(Flow::AtMostOnce),
            (QoS::AtLeastOnce, Some(id)) => Some(Flow::AtLeastOnce(id)),
            (QoS::ExactlyOnce, Some(id)) => Some(Flow::ExactlyOnce(id)),
            _ => None,
        }
    }

    /// QoS 1 or 2 with `id`; QoS 0 ignores it.
    pub fn with_id(qos: QoS, id: PacketId) -> Flow {
        match qos {
            QoS::AtMostOnce => Flow::AtMostOnce,
            QoS::AtLeastOnce => Flow::AtLeastOnce(id),
            QoS::ExactlyOnce => Flow::ExactlyOnce(id),
        }
    }

    /// The QoS.
    pub fn qos(self) -> QoS {
        match self {
            Flow::AtMostOnce => QoS::AtMostOnce,
            Flow::AtLeastOnce(_) => QoS::AtLeastOnce,
            Flow::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet id: `Some` exactly at QoS 1 and 2.
    pub fn packet_id(self) -> Option<PacketId> {
        match self {
            Flow::AtMostOnce => None,
            Flow::AtLeastOnce(id) | Flow::ExactlyOnce(id) => Some(id),
        }
    }
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape (sections 3.4 to 3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResponse {
    /// The packet id of the PUBLISH (or PUBREC, PUBREL) it answers.
    pub packet_id: PacketId,
    /// The reason code (5.0; 3.1.1 has none and always means success).
    pub reason: ReasonCode,
    /// Properties (5.0): reason string, user properties.
    pub properties: Properties,
}

impl PubResponse {
    /// A success response with no properties.
    pub fn new(packet_id: PacketId) -> PubResponse {
        PubResponse {
            packet_id,
            reason: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }
    }
}

/// Retain handling option of a subscription (5.0, section 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription did not already exist.
    SendIfNew = 1,
    /// Do not send retained messages.
    DoNotSend = 2,
}

/// The options byte of one SUBSCRIBE entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// The Maximum QoS the subscriber asks for.
    pub qos: QoS,
    /// No Local (5.0): the subscriber's own publishes are not sent back to it.
    pub no_local: bool,
    /// Retain As Published (5.0): forwarded messages keep their RETAIN flag (otherwise
    /// it is cleared, except for retained messages sent at subscribe time).
    pub retain_as_published: bool,
    /// Retain Handling (5.0): when retained messages are sent.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options of a 3.1.1 subscription: just the requested QoS.
    pub fn with_qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// SUBSCRIBE (section 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Echoed by the SUBACK.
    pub packet_id: PacketId,
    /// SUBSCRIBE properties (5.0): a subscription identifier, user properties.
    pub properties: Properties,
    /// At least one entry [MQTT-3.8.3-3].
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
}

/// SUBACK (section 3.9): one reason code per filter, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The packet id of the SUBSCRIBE it answers.
    pub packet_id: PacketId,
    /// Properties (5.0): reason string, user properties.
    pub properties: Properties,
    /// The granted QoS ([`ReasonCode::granted`]) or a failure, per filter.
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBSCRIBE (section 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Echoed by the UNSUBACK.
    pub packet_id: PacketId,
    /// UNSUBSCRIBE properties (5.0): user properties.
    pub properties: Properties,
    /// At least one entry [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
}

/// UNSUBACK (section 3.11). 3.1.1 has no payload, so `reasons` is not encoded there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// The packet id of the UNSUBSCRIBE it answers.
    pub packet_id: PacketId,
    /// Properties (5.0): reason string, user properties.
    pub properties: Properties,
    /// One reason code per filter, in order (5.0).
    pub reasons: Vec<ReasonCode>,
}

/// DISCONNECT (section 3.14); 3.1.1 carries neither reason nor properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// The Disconnect Reason Code (5.0); 0x00 is a normal disconnection.
    pub reason: ReasonCode,
    /// Properties (5.0): session expiry, reason string, server reference ...
    pub properties: Properties,
}

impl Disconnect {
    /// A DISCONNECT with this reason and no properties.
    pub fn new(reason: ReasonCode) -> Disconnect {
        Disconnect {
            reason,
            properties: Properties::default(),
        }
    }
}

/// AUTH (section 3.15, 5.0 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// 0x00 Success, 0x18 Continue authentication or 0x19 Re-authenticate.
    pub reason: ReasonCode,
    /// Properties: the authentication method and data, reason string, user properties.
    pub properties: Properties,
}
