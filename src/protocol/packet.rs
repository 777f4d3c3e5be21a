//! The packets of MQTT 3.1, 3.1.1 and 5.0 as plain values. Fields that exist only in 5.0
//! (properties, reason codes) are ignored when encoding for an older level.

use bytes::Bytes;
use bytestring::ByteString;

use super::properties::Properties;
use super::types::{PacketId, ProtocolVersion, QoS, ReasonCode};
use crate::topic::{TopicFilter, TopicName};

/// Every MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResponse),
    PubRec(PubResponse),
    PubRel(PubResponse),
    PubComp(PubResponse),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
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
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1.1) or Clean Start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties,
    /// May be empty; the session decides whether that is allowed.
    pub client_id: ByteString,
    pub will: Option<LastWill>,
    pub username: Option<ByteString>,
    pub password: Option<Bytes>,
}

/// The will message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (5.0): will delay interval, message expiry, content type ...
    pub properties: Properties,
}

/// CONNACK (section 3.2). `reason` holds a 5.0 reason code; for 3.1.1 it is mapped to a
/// return code with [`ReasonCode::to_v3_connack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// PUBLISH (section 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    /// The QoS with the packet id that QoS 1 and 2 carry and QoS 0 does not.
    pub flow: Flow,
    pub retain: bool,
    /// Empty only in 5.0 when a topic alias stands for the name.
    pub topic: TopicName,
    pub properties: Properties,
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
    AtMostOnce,
    AtLeastOnce(PacketId),
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

    pub fn qos(self) -> QoS {
        match self {
            Flow::AtMostOnce => QoS::AtMostOnce,
            Flow::AtLeastOnce(_) => QoS::AtLeastOnce,
            Flow::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

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
    pub packet_id: PacketId,
    pub reason: ReasonCode,
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
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
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
    pub packet_id: PacketId,
    pub properties: Properties,
    /// At least one entry [MQTT-3.8.3-3].
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
}

/// SUBACK (section 3.9): one reason code per filter, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    pub properties: Properties,
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBSCRIBE (section 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    pub properties: Properties,
    /// At least one entry [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
}

/// UNSUBACK (section 3.11). 3.1.1 has no payload, so `reasons` is not encoded there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    pub properties: Properties,
    pub reasons: Vec<ReasonCode>,
}

/// DISCONNECT (section 3.14); 3.1.1 carries neither reason nor properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
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
    pub reason: ReasonCode,
    pub properties: Properties,
}
