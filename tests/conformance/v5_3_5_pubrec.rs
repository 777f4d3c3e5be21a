//! MQTT 5.0 section 3.5, PUBREC sent by the server: PUBREC Reason Codes only, and
//! optional properties only within the client's Maximum Packet Size.

use starling::protocol::{
    encoded_len, Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode, UserProperty,
};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient};

/// The PUBREC Reason Codes of section 3.5.2.1.
const PUBREC_CODES: [u8; 9] = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];

/// Sends a QoS 2 PUBLISH and returns the PUBREC and its encoded size; a successful
/// flow is finished with PUBREL/PUBCOMP.
async fn pubrec_for(
    c: &mut RawClient,
    topic: &str,
    utf8: bool,
    payload: &[u8],
) -> (PubResponse, usize) {
    let id = c.next_packet_id();
    let mut p = publish_packet(topic, QoS::ExactlyOnce, payload, Some(id));
    if utf8 {
        p.properties.payload_format_indicator = Some(1);
    }
    p.properties.user_properties = vec![UserProperty {
        key: "k".into(),
        value: "v".into(),
    }];
    c.send(Packet::Publish(p)).await;
    let packet = c.expect_packet("PUBREC").await;
    let size = encoded_len(&packet, ProtocolVersion::V5);
    let Packet::PubRec(r) = packet else {
        panic!("expected PUBREC, got {packet:?}");
    };
    assert_eq!(r.packet_id, id);
    if !r.reason.is_error() {
        c.send(Packet::PubRel(PubResponse::new(id))).await;
        match c.expect_packet("PUBCOMP").await {
            Packet::PubComp(done) => assert_eq!(done.reason, ReasonCode::SUCCESS),
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
    }
    (r, size)
}

/// [MQTT-3.5.2-1]: the server's PUBRECs use PUBREC Reason Codes: 0x00 when a
/// subscriber matched, 0x10 when none did, 0x99 for a payload marked UTF-8 that is not.
#[tokio::test]
async fn pubrec_reason_codes_are_pubrec_codes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "pr-sub", Properties::default()).await;
        sub.subscribe(&[("pr/matched", QoS::AtMostOnce)]).await;
        let mut c = RawClient::connected_v5(broker.addr(), "pr-codes", Properties::default()).await;
        let cases = [
            ("pr/matched", false, &b"ok"[..], ReasonCode::SUCCESS),
            (
                "pr/nobody",
                false,
                b"ok",
                ReasonCode::NO_MATCHING_SUBSCRIBERS,
            ),
            (
                "pr/matched",
                true,
                b"\xff\xfe",
                ReasonCode::PAYLOAD_FORMAT_INVALID,
            ),
        ];
        for (topic, utf8, payload, want) in cases {
            let (r, _) = pubrec_for(&mut c, topic, utf8, payload).await;
            assert_eq!(r.reason, want, "{topic} {payload:?}");
            assert!(PUBREC_CODES.contains(&r.reason.0));
        }
    })
    .await;
}

/// [MQTT-3.5.2-2], [MQTT-3.5.2-3]: an error PUBREC carries its Reason String when it
/// fits (default Maximum Packet Size), but with a client Maximum Packet Size of 16 it
/// comes within 16 bytes with no Reason String and no User Property.
#[tokio::test]
async fn pubrec_properties_never_exceed_the_clients_maximum_packet_size() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut roomy =
            RawClient::connected_v5(broker.addr(), "pr-roomy", Properties::default()).await;
        let (r, _) = pubrec_for(&mut roomy, "pr/t", true, b"\xff").await;
        assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(r.properties.reason_string.is_some(), "{r:?}");
        assert!(r.properties.user_properties.is_empty(), "{r:?}");
        let props = Properties {
            maximum_packet_size: Some(16),
            ..Properties::default()
        };
        let mut small = RawClient::connected_v5(broker.addr(), "pr-small", props).await;
        let (r, size) = pubrec_for(&mut small, "pr/t", true, b"\xff").await;
        assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(size <= 16, "PUBREC of {size} bytes");
        assert_eq!(r.properties.reason_string, None);
        assert!(r.properties.user_properties.is_empty(), "{r:?}");
    })
    .await;
}
