//! MQTT 5.0 section 3.9, SUBACK: optional properties only within the client's Maximum
//! Packet Size, and only Subscribe Reason Codes.

use starling::protocol::{
    encoded_len, Packet, PacketId, Properties, ProtocolVersion, QoS, ReasonCode, Subscribe,
    SubscriptionOptions, UserProperty,
};

use crate::common::{bounded, filter, BrokerProcess, RawClient};

/// The Subscribe Reason Codes of section 3.9.3.
const SUBACK_CODES: [u8; 12] = [
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];

/// No shared or wildcard subscriptions, Maximum QoS 1: refusals and downgrades to report.
const LIMITED: &str = "[capabilities]\nmaximum_qos = 1\nwildcard_subscriptions = false\n\
                       shared_subscriptions = false\n";

/// [MQTT-3.9.2-1], [MQTT-3.9.2-2]: with a client Maximum Packet Size of 16, a SUBACK
/// for ten filters (15 bytes), most of them refused (0x9E shared, 0xA2 wildcards not
/// available), has no room for a Reason String or User Property: it comes, within 16
/// bytes, with neither, though the SUBSCRIBE carried a User Property.
/// [MQTT-3.9.3-2]: each code is a Subscribe Reason Code (granted QoS capped at 1).
#[tokio::test]
async fn suback_properties_never_exceed_the_clients_maximum_packet_size() {
    let broker = BrokerProcess::start_with_config(Some(LIMITED));
    bounded(async {
        let props = Properties {
            maximum_packet_size: Some(16),
            ..Properties::default()
        };
        let mut c = RawClient::connected_v5(broker.addr(), "sa-small", props).await;
        let wanted = [
            (
                "$share/g/a",
                QoS::AtLeastOnce,
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
            (
                "w/+",
                QoS::AtMostOnce,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
            ("plain/2", QoS::ExactlyOnce, ReasonCode::GRANTED_QOS_1),
            (
                "w/#",
                QoS::AtLeastOnce,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
            ("plain/0", QoS::AtMostOnce, ReasonCode::GRANTED_QOS_0),
            (
                "$share/g/#",
                QoS::AtMostOnce,
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
            (
                "+",
                QoS::ExactlyOnce,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
            ("plain/1", QoS::AtLeastOnce, ReasonCode::GRANTED_QOS_1),
            (
                "#",
                QoS::AtMostOnce,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
            (
                "$share/h/b",
                QoS::ExactlyOnce,
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ),
        ];
        let packet_id = PacketId::new(300).expect("id");
        c.send(Packet::Subscribe(Subscribe {
            packet_id,
            properties: Properties {
                user_properties: vec![UserProperty {
                    key: "why".into(),
                    value: "testing".into(),
                }],
                ..Properties::default()
            },
            filters: wanted
                .iter()
                .map(|(f, q, _)| (filter(f), SubscriptionOptions::with_qos(*q)))
                .collect(),
        }))
        .await;
        let packet = c.expect_packet("SUBACK").await;
        let size = encoded_len(&packet, ProtocolVersion::V5);
        let Packet::SubAck(ack) = packet else {
            panic!("expected SUBACK, got {packet:?}");
        };
        assert!(size <= 16, "SUBACK of {size} bytes");
        assert_eq!(ack.packet_id, packet_id);
        assert_eq!(ack.properties.reason_string, None);
        assert!(ack.properties.user_properties.is_empty(), "{ack:?}");
        let expected: Vec<ReasonCode> = wanted.iter().map(|w| w.2).collect();
        assert_eq!(ack.reasons, expected);
        assert!(ack.reasons.iter().all(|r| SUBACK_CODES.contains(&r.0)));
    })
    .await;
}

/// [MQTT-3.9.3-2]: on a default broker the codes for requested QoS 0, 1 and 2, for
/// wildcard and shared filters are granted QoS values, Subscribe Reason Codes all.
#[tokio::test]
async fn suback_codes_are_subscribe_reason_codes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "sa-codes", Properties::default()).await;
        let ack = c
            .subscribe(&[
                ("c/0", QoS::AtMostOnce),
                ("c/1", QoS::AtLeastOnce),
                ("c/2", QoS::ExactlyOnce),
                ("c/+/x", QoS::ExactlyOnce),
                ("$share/g/c/#", QoS::AtLeastOnce),
            ])
            .await;
        let (q0, q1, q2) = (
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::GRANTED_QOS_2,
        );
        assert_eq!(ack.reasons, vec![q0, q1, q2, q2, q1]);
        assert!(ack.reasons.iter().all(|r| SUBACK_CODES.contains(&r.0)));
    })
    .await;
}
