//! MQTT 5.0 section 3.11, UNSUBACK: optional properties only within the client's
//! Maximum Packet Size, and only Unsubscribe Reason Codes.

use starling::protocol::{
    encoded_len, Packet, PacketId, Properties, ProtocolVersion, QoS, ReasonCode, Unsubscribe,
    UserProperty,
};

use crate::common::{bounded, filter, BrokerProcess, RawClient};

/// The Unsubscribe Reason Codes of section 3.11.3.
const UNSUBACK_CODES: [u8; 7] = [0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];

/// [MQTT-3.11.2-1], [MQTT-3.11.2-2]: with a client Maximum Packet Size of 16, an
/// UNSUBACK for ten filters (15 bytes) leaves no room for a Reason String or a User
/// Property (3 bytes at least): the UNSUBACK still comes, within 16 bytes, with neither,
/// though the UNSUBSCRIBE carried a User Property and half its filters were unknown.
/// [MQTT-3.11.3-1], [MQTT-3.11.3-2]: its codes are Unsubscribe Reason Codes, in
/// filter order.
#[tokio::test]
async fn unsuback_properties_never_exceed_the_clients_maximum_packet_size() {
    let broker = BrokerProcess::start();
    bounded(async {
        let props = Properties {
            maximum_packet_size: Some(16),
            ..Properties::default()
        };
        let mut c = RawClient::connected_v5(broker.addr(), "ua-small", props).await;
        let names: Vec<String> = (0..10).map(|i| format!("ua/{i}")).collect();
        let subscribed: Vec<(&str, QoS)> = names
            .iter()
            .step_by(2)
            .map(|n| (n.as_str(), QoS::AtLeastOnce))
            .collect();
        c.subscribe(&subscribed).await;
        let packet_id = PacketId::new(77).expect("id");
        c.send(Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties: Properties {
                user_properties: vec![UserProperty {
                    key: "why".into(),
                    value: "testing".into(),
                }],
                ..Properties::default()
            },
            filters: names.iter().map(|n| filter(n)).collect(),
        }))
        .await;
        let packet = c.expect_packet("UNSUBACK").await;
        let size = encoded_len(&packet, ProtocolVersion::V5);
        let Packet::UnsubAck(ack) = packet else {
            panic!("expected UNSUBACK, got {packet:?}");
        };
        assert!(size <= 16, "UNSUBACK of {size} bytes");
        assert_eq!(ack.packet_id, packet_id);
        assert_eq!(ack.properties.reason_string, None);
        assert!(ack.properties.user_properties.is_empty(), "{ack:?}");
        let expected: Vec<ReasonCode> = (0..10)
            .map(|i| match i % 2 {
                0 => ReasonCode::SUCCESS,
                _ => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            })
            .collect();
        assert_eq!(ack.reasons, expected);
        assert!(ack.reasons.iter().all(|r| UNSUBACK_CODES.contains(&r.0)));
    })
    .await;
}
