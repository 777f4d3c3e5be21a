//! Shared body of the PUBACK (3.4) and PUBREC (3.5) tests: both answer a client's
//! PUBLISH, with the same reason codes and the same Maximum Packet Size rules.

use starling::protocol::{
    encoded_len, Packet, Properties, PropertyFields, ProtocolVersion, PubResponse, QoS, ReasonCode,
    UserProperty,
};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient};

/// The PUBACK / PUBREC Reason Codes (sections 3.4.2.1 and 3.5.2.1 list the same ones).
pub const PUBLISH_ACK_CODES: [u8; 9] = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];

/// Sends a PUBLISH at `qos` (1: PUBACK, 2: PUBREC) with a User Property and returns the
/// acknowledgement and its encoded size; a successful QoS 2 flow is finished with
/// PUBREL/PUBCOMP.
pub async fn ack_for(
    c: &mut RawClient,
    qos: QoS,
    topic: &str,
    utf8: bool,
    payload: &[u8],
) -> (PubResponse, usize) {
    let id = c.next_packet_id();
    let mut p = publish_packet(topic, qos, payload, Some(id));
    if utf8 {
        p.properties.payload_format_indicator = Some(1);
    }
    p.properties.user_properties = vec![UserProperty {
        key: "k".into(),
        value: "v".into(),
    }];
    c.send(Packet::Publish(p)).await;
    let packet = c.expect_packet("PUBACK/PUBREC").await;
    let size = encoded_len(&packet, ProtocolVersion::V5);
    let r = match (qos, packet) {
        (QoS::AtLeastOnce, Packet::PubAck(r)) | (QoS::ExactlyOnce, Packet::PubRec(r)) => r,
        (_, other) => panic!("expected the {qos:?} acknowledgement, got {other:?}"),
    };
    assert_eq!(r.packet_id, id);
    if qos == QoS::ExactlyOnce && !r.reason.is_error() {
        c.send(Packet::PubRel(PubResponse::new(id))).await;
        match c.expect_packet("PUBCOMP").await {
            Packet::PubComp(done) => assert_eq!(done.reason, ReasonCode::SUCCESS),
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
    }
    (r, size)
}

/// 0x00 when a subscriber matched, 0x10 when none did, 0x99 for a payload marked UTF-8
/// that is not; each one of the listed codes.
pub async fn reason_codes_are_listed(prefix: &str, qos: QoS) {
    let broker = BrokerProcess::start();
    bounded(async {
        let props = Properties::default;
        let matched = format!("{prefix}/matched");
        let nobody = format!("{prefix}/nobody");
        let mut sub =
            RawClient::connected_v5(broker.addr(), &format!("{prefix}-sub"), props()).await;
        sub.subscribe(&[(&matched, QoS::AtMostOnce)]).await;
        let mut c =
            RawClient::connected_v5(broker.addr(), &format!("{prefix}-codes"), props()).await;
        let cases = [
            (&matched, false, &b"ok"[..], ReasonCode::SUCCESS),
            (&nobody, false, b"ok", ReasonCode::NO_MATCHING_SUBSCRIBERS),
            (
                &matched,
                true,
                b"\xff\xfe",
                ReasonCode::PAYLOAD_FORMAT_INVALID,
            ),
        ];
        for (topic, utf8, payload, want) in cases {
            let (r, _) = ack_for(&mut c, qos, topic, utf8, payload).await;
            assert_eq!(r.reason, want, "{topic} {payload:?}");
            assert!(PUBLISH_ACK_CODES.contains(&r.reason.0));
        }
    })
    .await;
}

/// An error acknowledgement carries its Reason String when it fits (default Maximum
/// Packet Size); with a client Maximum Packet Size of 16 it comes within 16 bytes with
/// no Reason String and no User Property (the PUBLISH's is never echoed).
pub async fn properties_fit_maximum_packet_size(prefix: &str, qos: QoS) {
    let broker = BrokerProcess::start();
    bounded(async {
        let topic = format!("{prefix}/t");
        let roomy_id = format!("{prefix}-roomy");
        let mut roomy =
            RawClient::connected_v5(broker.addr(), &roomy_id, Properties::default()).await;
        let (r, _) = ack_for(&mut roomy, qos, &topic, true, b"\xff").await;
        assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(r.properties.reason_string.is_some(), "{r:?}");
        assert!(r.properties.user_properties.is_empty(), "{r:?}");
        let props = Properties::from(PropertyFields {
            maximum_packet_size: Some(16),
            ..PropertyFields::default()
        });
        let mut small =
            RawClient::connected_v5(broker.addr(), &format!("{prefix}-small"), props).await;
        let (r, size) = ack_for(&mut small, qos, &topic, true, b"\xff").await;
        assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(size <= 16, "acknowledgement of {size} bytes");
        assert_eq!(r.properties.reason_string, None);
        assert!(r.properties.user_properties.is_empty(), "{r:?}");
    })
    .await;
}
