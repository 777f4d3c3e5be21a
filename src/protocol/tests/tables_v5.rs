//! Byte-literal tables for MQTT 5.0: exact bytes <-> packet.

use bytes::Bytes;

use super::check_row;
use super::tables::{connect, filter, pid, publish, topic};
use crate::protocol::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, Properties, PropertyFields,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscriptionOptions, UnsubAck, Unsubscribe, UserProperty,
};

fn user(k: &str, v: &str) -> UserProperty {
    UserProperty {
        key: k.into(),
        value: v.into(),
    }
}

fn connect_with_props() -> Connect {
    Connect {
        properties: Properties::from(PropertyFields {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(20),
            user_properties: vec![user("k", "v")],
            ..PropertyFields::default()
        }),
        will: Some(LastWill {
            topic: topic("w"),
            payload: Bytes::from_static(b"bye"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::from(PropertyFields {
                payload_format_indicator: Some(1),
                will_delay_interval: Some(5),
                ..PropertyFields::default()
            }),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        ..connect(ProtocolVersion::V5)
    }
}

fn publish_with_props() -> Publish {
    Publish {
        properties: Properties::from(PropertyFields {
            message_expiry_interval: Some(60),
            content_type: Some("t".into()),
            subscription_identifiers: vec![1, 200],
            topic_alias: Some(5),
            user_properties: vec![user("k", "v")],
            ..PropertyFields::default()
        }),
        ..publish(QoS::AtLeastOnce, Some(7), "a", b"x")
    }
}

fn reason_string(s: &str) -> Properties {
    Properties::from(PropertyFields {
        reason_string: Some(s.into()),
        ..PropertyFields::default()
    })
}

fn rows() -> Vec<(&'static str, Packet)> {
    let alias_only = Publish {
        properties: Properties::from(PropertyFields {
            topic_alias: Some(1),
            ..PropertyFields::default()
        }),
        ..publish(QoS::AtMostOnce, None, "", b"")
    };
    let sub = Subscribe {
        packet_id: pid(1),
        properties: Properties::from(PropertyFields {
            subscription_identifiers: vec![7],
            ..PropertyFields::default()
        }),
        filters: vec![
            (
                filter("a/+"),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                filter("$share/g/x"),
                SubscriptionOptions::with_qos(QoS::AtMostOnce),
            ),
        ],
    };
    let connack_props = Properties::from(PropertyFields {
        receive_maximum: Some(10),
        maximum_qos: Some(1),
        shared_subscription_available: Some(0),
        ..PropertyFields::default()
    });
    vec![
        (
            "10 0F 00 04 4D 51 54 54 05 02 00 3C 00 00 02 63 31",
            Packet::Connect(Box::new(connect(ProtocolVersion::V5))),
        ),
        (
            "10 34 00 04 4D 51 54 54 05 C6 00 3C 0F 11 00 00 0E 10 21 00 14 26 00 01 6B 00 01 76 \
             00 02 63 31 07 01 01 18 00 00 00 05 00 01 77 00 03 62 79 65 00 01 75 00 01 70",
            Packet::Connect(Box::new(connect_with_props())),
        ),
        (
            "20 03 01 00 00",
            Packet::ConnAck(ConnAck {
                session_present: true,
                reason: ReasonCode::SUCCESS,
                properties: Properties::default(),
            }),
        ),
        (
            "20 0A 00 00 07 21 00 0A 24 01 2A 00",
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::SUCCESS,
                properties: connack_props,
            }),
        ),
        (
            "20 03 00 8A 00",
            Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::BANNED,
                properties: Properties::default(),
            }),
        ),
        (
            "30 08 00 03 61 2F 62 00 68 69",
            Packet::Publish(publish(QoS::AtMostOnce, None, "a/b", b"hi")),
        ),
        (
            "32 1F 00 01 61 00 07 18 02 00 00 00 3C 03 00 01 74 0B 01 0B C8 01 23 00 05 \
             26 00 01 6B 00 01 76 78",
            Packet::Publish(publish_with_props()),
        ),
        ("30 06 00 00 03 23 00 01", Packet::Publish(alias_only)),
        ("40 02 00 0A", Packet::PubAck(PubResponse::new(pid(10)))),
        (
            "40 03 00 0A 10",
            Packet::PubAck(PubResponse {
                reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
                ..PubResponse::new(pid(10))
            }),
        ),
        (
            "50 08 00 0A 80 04 1F 00 01 65",
            Packet::PubRec(PubResponse {
                packet_id: pid(10),
                reason: ReasonCode::UNSPECIFIED_ERROR,
                properties: reason_string("e"),
            }),
        ),
        (
            "62 03 00 0A 92",
            Packet::PubRel(PubResponse {
                reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
                ..PubResponse::new(pid(10))
            }),
        ),
        ("70 02 00 0A", Packet::PubComp(PubResponse::new(pid(10)))),
        (
            "82 18 00 01 02 0B 07 00 03 61 2F 2B 2D 00 0A 24 73 68 61 72 65 2F 67 2F 78 00",
            Packet::Subscribe(sub),
        ),
        (
            "90 05 00 01 00 01 8F",
            Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Properties::default(),
                reasons: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::TOPIC_FILTER_INVALID],
            }),
        ),
        (
            "A2 08 00 02 00 00 03 61 2F 62",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(2),
                properties: Properties::default(),
                filters: vec![filter("a/b")],
            }),
        ),
        (
            "B0 05 00 02 00 00 11",
            Packet::UnsubAck(UnsubAck {
                packet_id: pid(2),
                properties: Properties::default(),
                reasons: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
            }),
        ),
        ("C0 00", Packet::PingReq),
        ("D0 00", Packet::PingResp),
        (
            "E0 00",
            Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)),
        ),
        (
            "E0 01 04",
            Packet::Disconnect(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL)),
        ),
        (
            "E0 07 8B 05 11 00 00 00 00",
            Packet::Disconnect(Disconnect {
                reason: ReasonCode::SERVER_SHUTTING_DOWN,
                properties: Properties::from(PropertyFields {
                    session_expiry_interval: Some(0),
                    ..PropertyFields::default()
                }),
            }),
        ),
        (
            "F0 00",
            Packet::Auth(Auth {
                reason: ReasonCode::SUCCESS,
                properties: Properties::default(),
            }),
        ),
        (
            "F0 09 18 07 15 00 04 53 43 52 4D",
            Packet::Auth(Auth {
                reason: ReasonCode::CONTINUE_AUTHENTICATION,
                properties: Properties::from(PropertyFields {
                    authentication_method: Some("SCRM".into()),
                    ..PropertyFields::default()
                }),
            }),
        ),
    ]
}

#[test]
fn v5_byte_table() {
    for (bytes, packet) in rows() {
        check_row(ProtocolVersion::V5, bytes, &packet);
    }
}

#[test]
fn v5_long_forms_decode_to_short_forms() {
    use super::decode_one;
    let v5 = Some(ProtocolVersion::V5);
    // Reason 0 written out, empty properties written out: same packets as the short forms.
    let puback = decode_one(&super::hex("40 04 00 0A 00 00"), v5).unwrap();
    assert_eq!(puback, Packet::PubAck(PubResponse::new(pid(10))));
    let puback = decode_one(&super::hex("40 03 00 0A 00"), v5).unwrap();
    assert_eq!(puback, Packet::PubAck(PubResponse::new(pid(10))));
    let disconnect = decode_one(&super::hex("E0 02 00 00"), v5).unwrap();
    assert_eq!(
        disconnect,
        Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION))
    );
}

#[test]
fn user_properties_repeat_in_order() {
    // PUBACK with user properties (b,2) then (a,1) then (b,3).
    let bytes = "40 19 00 01 00 15 26 00 01 62 00 01 32 26 00 01 61 00 01 31 26 00 01 62 00 01 33";
    let expected = Packet::PubAck(PubResponse {
        packet_id: pid(1),
        reason: ReasonCode::SUCCESS,
        properties: Properties::from(PropertyFields {
            user_properties: vec![user("b", "2"), user("a", "1"), user("b", "3")],
            ..PropertyFields::default()
        }),
    });
    check_row(ProtocolVersion::V5, bytes, &expected);
}
