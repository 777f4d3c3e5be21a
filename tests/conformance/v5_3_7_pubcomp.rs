//! MQTT 5.0 section 3.7, PUBCOMP sent by the server: PUBCOMP Reason Codes, and no
//! properties beyond the client's Maximum Packet Size.

use starling::protocol::{
    encoded_len, Packet, PacketId, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode,
};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient};

/// The PUBCOMP Reason Codes of section 3.7.2.1.
const PUBCOMP_CODES: [u8; 2] = [0x00, 0x92];

/// Sends PUBREL for `id` and returns the PUBCOMP with its encoded size.
async fn release(c: &mut RawClient, id: PacketId) -> (PubResponse, usize) {
    c.send(Packet::PubRel(PubResponse::new(id))).await;
    let packet = c.expect_packet("PUBCOMP").await;
    let size = encoded_len(&packet, ProtocolVersion::V5);
    match packet {
        Packet::PubComp(r) => {
            assert_eq!(r.packet_id, id);
            (r, size)
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
}

/// [MQTT-3.7.2-1]: the server's PUBCOMPs use PUBCOMP Reason Codes: 0x00 for the
/// PUBREL of a QoS 2 message it received, 0x92 (Packet Identifier not found) for a
/// PUBREL of an id it does not hold, also the same id once completed.
/// [MQTT-3.7.2-2], [MQTT-3.7.2-3]: with a client Maximum Packet Size of 16 each comes
/// within 16 bytes, with no Reason String and no User Property.
#[tokio::test]
async fn server_pubcomp_uses_pubcomp_codes_within_maximum_packet_size() {
    let broker = BrokerProcess::start();
    bounded(async {
        let props = Properties {
            maximum_packet_size: Some(16),
            ..Properties::default()
        };
        let mut c = RawClient::connected_v5(broker.addr(), "comp", props).await;
        let id = PacketId::new(9).expect("id");
        c.send(Packet::Publish(publish_packet(
            "comp/t",
            QoS::ExactlyOnce,
            b"x",
            Some(id),
        )))
        .await;
        match c.expect_packet("PUBREC").await {
            Packet::PubRec(r) => assert_eq!(r.packet_id, id),
            other => panic!("expected PUBREC, got {other:?}"),
        }
        let not_found = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        let cases = [
            (PacketId::new(10).expect("id"), not_found),
            (id, ReasonCode::SUCCESS),
            (id, not_found),
        ];
        for (pid, want) in cases {
            let (r, size) = release(&mut c, pid).await;
            assert_eq!(r.reason, want, "PUBREL {pid:?}");
            assert!(PUBCOMP_CODES.contains(&r.reason.0));
            assert!(size <= 16, "PUBCOMP of {size} bytes");
            assert!(r.properties.is_empty(), "{r:?}");
        }
    })
    .await;
}
