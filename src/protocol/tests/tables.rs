//! Byte-literal tables for MQTT 3.1.1 (and one 3.1 CONNECT): exact bytes <-> packet.

use bytes::Bytes;

use super::check_row;
use crate::protocol::{
    ConnAck, Connect, Disconnect, Flow, LastWill, Packet, PacketId, Properties, ProtocolVersion,
    PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};
use crate::topic::{TopicFilter, TopicName};

pub(super) fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

pub(super) fn topic(s: &str) -> TopicName {
    TopicName::new_allow_empty(s).unwrap()
}

pub(super) fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

pub(super) fn connect(protocol: ProtocolVersion) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        properties: Properties::default(),
        client_id: "c1".into(),
        will: None,
        username: None,
        password: None,
    }
}

pub(super) fn publish(qos: QoS, id: Option<u16>, t: &str, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        flow: Flow::new(qos, id.map(pid)).expect("QoS and packet id go together"),
        retain: false,
        topic: topic(t),
        properties: Properties::default(),
        payload: Bytes::from_static(payload),
    }
}

fn rows() -> Vec<(&'static str, Packet)> {
    let full = Connect {
        clean_start: false,
        keep_alive: 10,
        will: Some(LastWill {
            topic: topic("w"),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        ..connect(ProtocolVersion::V311)
    };
    let dup_retain = Publish {
        dup: true,
        retain: true,
        ..publish(QoS::AtLeastOnce, Some(10), "a/b", b"hi")
    };
    let sub = Subscribe {
        packet_id: pid(1),
        properties: Properties::default(),
        filters: vec![
            (
                filter("a/+"),
                SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            ),
            (filter("#"), SubscriptionOptions::with_qos(QoS::ExactlyOnce)),
        ],
    };
    vec![
        (
            "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 02 63 31",
            Packet::Connect(Box::new(connect(ProtocolVersion::V311))),
        ),
        (
            "10 1C 00 04 4D 51 54 54 04 EC 00 0A 00 02 63 31 00 01 77 00 03 62 79 65 \
             00 01 75 00 01 70",
            Packet::Connect(Box::new(full)),
        ),
        (
            "20 02 01 00",
            Packet::ConnAck(ConnAck {
                session_present: true,
                reason: ReasonCode::SUCCESS,
                properties: Properties::default(),
            }),
        ),
        (
            "20 02 00 05",
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::NOT_AUTHORIZED,
                properties: Properties::default(),
            }),
        ),
        (
            "30 07 00 03 61 2F 62 68 69",
            Packet::Publish(publish(QoS::AtMostOnce, None, "a/b", b"hi")),
        ),
        (
            "3B 09 00 03 61 2F 62 00 0A 68 69",
            Packet::Publish(dup_retain),
        ),
        (
            "34 07 00 01 74 00 01 78 79",
            Packet::Publish(publish(QoS::ExactlyOnce, Some(1), "t", b"xy")),
        ),
        ("40 02 00 0A", Packet::PubAck(PubResponse::new(pid(10)))),
        ("50 02 00 0A", Packet::PubRec(PubResponse::new(pid(10)))),
        ("62 02 00 0A", Packet::PubRel(PubResponse::new(pid(10)))),
        ("70 02 00 0A", Packet::PubComp(PubResponse::new(pid(10)))),
        (
            "82 0C 00 01 00 03 61 2F 2B 01 00 01 23 02",
            Packet::Subscribe(sub),
        ),
        (
            "90 05 00 01 01 02 80",
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Properties::default(),
                reasons: vec![ReasonCode(1), ReasonCode(2), ReasonCode(0x80)],
            }),
        ),
        (
            "A2 07 00 02 00 03 61 2F 62",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(2),
                properties: Properties::default(),
                filters: vec![filter("a/b")],
            }),
        ),
        (
            "B0 02 00 02",
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(2),
                properties: Properties::default(),
                reasons: vec![],
            }),
        ),
        ("C0 00", Packet::PingReq),
        ("D0 00", Packet::PingResp),
        (
            "E0 00",
            Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)),
        ),
    ]
}

#[test]
fn v311_byte_table() {
    for (bytes, packet) in rows() {
        check_row(ProtocolVersion::V311, bytes, &packet);
    }
}

#[test]
fn v31_connect() {
    check_row(
        ProtocolVersion::V31,
        "10 10 00 06 4D 51 49 73 64 70 03 02 00 3C 00 02 63 31",
        &Packet::Connect(Box::new(connect(ProtocolVersion::V31))),
    );
    // Other packets of 3.1 are those of 3.1.1.
    check_row(
        ProtocolVersion::V31,
        "30 07 00 03 61 2F 62 68 69",
        &Packet::Publish(publish(QoS::AtMostOnce, None, "a/b", b"hi")),
    );
}

#[test]
fn v3_drops_v5_only_fields() {
    use crate::protocol::tests::encode;
    // A SUBACK error code becomes 0x80, a CONNACK reason its return code, UNSUBACK and
    // DISCONNECT lose their payload.
    let suback = Packet::SubAck(SubAck {
        packet_id: pid(1),
        properties: Properties::default(),
        reasons: vec![ReasonCode::QUOTA_EXCEEDED, ReasonCode::GRANTED_QOS_1],
    });
    assert_eq!(
        encode(&suback, ProtocolVersion::V311),
        super::hex("90 04 00 01 80 01")
    );
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason: ReasonCode::BANNED,
        properties: Properties::default(),
    });
    assert_eq!(
        encode(&connack, ProtocolVersion::V311),
        super::hex("20 02 00 05")
    );
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: pid(2),
        properties: Properties::default(),
        reasons: vec![ReasonCode::SUCCESS],
    });
    assert_eq!(
        encode(&unsuback, ProtocolVersion::V311),
        super::hex("B0 02 00 02")
    );
    let disconnect = Packet::Disconnect(Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN));
    assert_eq!(
        encode(&disconnect, ProtocolVersion::V311),
        super::hex("E0 00")
    );
    let puback = Packet::PubAck(PubResponse {
        reason: ReasonCode::QUOTA_EXCEEDED,
        ..PubResponse::new(pid(3))
    });
    assert_eq!(
        encode(&puback, ProtocolVersion::V311),
        super::hex("40 02 00 03")
    );
    let auth = Packet::Auth(crate::protocol::Auth {
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    });
    let mut buf = bytes::BytesMut::new();
    assert!(matches!(
        crate::protocol::encode_packet(&auth, ProtocolVersion::V311, &mut buf),
        Err(crate::protocol::EncodeError::Invalid(_))
    ));
    assert!(buf.is_empty());
}
