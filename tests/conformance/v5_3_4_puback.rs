//! MQTT 5.0 section 3.4, PUBACK sent by the server: PUBACK Reason Codes only, and
//! optional properties only within the client's Maximum Packet Size.

use starling::protocol::{
    encoded_len, Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode, UserProperty,
};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient};

/// The PUBACK Reason Codes of section 3.4.2.1.
const PUBACK_CODES: [u8; 9] = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];

/// Sends a QoS 1 PUBLISH with id 1 and returns the PUBACK and its encoded size.
async fn puback_for(
    c: &mut RawClient,
    topic: &str,
    utf8: bool,
    payload: &[u8],
) -> (PubResponse, usize) {
    let mut p = publish_packet(topic, QoS::AtLeastOnce, payload, c.next_packet_id().into());
    if utf8 {
        p.properties.payload_format_indicator = Some(1);
    }
    p.properties.user_properties = vec![UserProperty {
        key: "k".into(),
        value: "v".into(),
    }];
    let id = p.packet_id;
    c.send(Packet::Publish(p)).await;
    let packet = c.expect_packet("PUBACK").await;
    let size = encoded_len(&packet, ProtocolVersion::V5);
    match packet {
        Packet::PubAck(r) if Some(r.packet_id) == id => (r, size),
        other => panic!("expected PUBACK for {id:?}, got {other:?}"),
    }
}

/// [MQTT-3.4.2-1]: the server's PUBACKs use PUBACK Reason Codes: 0x00 when a
/// subscriber matched, 0x10 when none did, 0x99 for a payload marked UTF-8 that is not.
#[tokio::test]
async fn puback_reason_codes_are_puback_codes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "pa-sub", Properties::default()).await;
        sub.subscribe(&[("pa/matched", QoS::AtMostOnce)]).await;
        let mut c = RawClient::connected_v5(broker.addr(), "pa-codes", Properties::default()).await;
        let cases = [
            ("pa/matched", false, &b"ok"[..], ReasonCode::SUCCESS),
            (
                "pa/nobody",
                false,
                b"ok",
                ReasonCode::NO_MATCHING_SUBSCRIBERS,
            ),
            (
                "pa/matched",
                true,
                b"\xff\xfe",
                ReasonCode::PAYLOAD_FORMAT_INVALID,
            ),
        ];
        for (topic, utf8, payload, want) in cases {
            let (r, _) = puback_for(&mut c, topic, utf8, payload).await;
            assert_eq!(r.reason, want, "{topic} {payload:?}");
            assert!(PUBACK_CODES.contains(&r.reason.0));
        }
    })
    .await;
}

/// [MQTT-3.4.2-2], [MQTT-3.4.2-3]: an error PUBACK carries its Reason String when it
/// fits (default Maximum Packet Size), but with a client Maximum Packet Size of 16 the
/// PUBACK comes within 16 bytes with no Reason String and no User Property (the
/// PUBLISH's User Property is not echoed either way).
#[tokio::test]
async fn puback_properties_never_exceed_the_clients_maximum_packet_size() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut roomy =
            RawClient::connected_v5(broker.addr(), "pa-roomy", Properties::default()).await;
        let (r, _) = puback_for(&mut roomy, "pa/t", true, b"\xff").await;
        assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(r.properties.reason_string.is_some(), "{r:?}");
        assert!(r.properties.user_properties.is_empty(), "{r:?}");
        let props = Properties {
            maximum_packet_size: Some(16),
            ..Properties::default()
        };
        let mut small = RawClient::connected_v5(broker.addr(), "pa-small", props).await;
        let (r, size) = puback_for(&mut small, "pa/t", true, b"\xff").await;
        assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(size <= 16, "PUBACK of {size} bytes");
        assert_eq!(r.properties.reason_string, None);
        assert!(r.properties.user_properties.is_empty(), "{r:?}");
    })
    .await;
}
