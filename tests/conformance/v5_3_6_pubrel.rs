//! MQTT 5.0 section 3.6, PUBREL: the fixed-header flags of a client's PUBREL, and the
//! PUBRELs the server sends (PUBREL Reason Codes, no properties beyond the client's
//! Maximum Packet Size).

use starling::protocol::{
    encoded_len, Packet, PacketId, Properties, PropertyFields, ProtocolVersion, PubResponse, QoS,
    ReasonCode,
};

use crate::common::{bounded, publish_packet, raw_packet, BrokerProcess, RawClient};

/// The PUBREL Reason Codes of section 3.6.2.1.
const PUBREL_CODES: [u8; 2] = [0x00, 0x92];

/// Starts a QoS 2 flow as sender with packet id 5 and waits for its PUBREC.
async fn publish_qos2(broker: &BrokerProcess, client_id: &str) -> RawClient {
    let mut c = RawClient::connected_v5(broker.addr(), client_id, Properties::default()).await;
    let id = PacketId::new(5);
    c.send(Packet::Publish(publish_packet(
        "rel/t",
        QoS::ExactlyOnce,
        b"x",
        id,
    )))
    .await;
    match c.expect_packet("PUBREC").await {
        Packet::PubRec(r) => assert_eq!(Some(r.packet_id), id),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    c
}

/// [MQTT-3.6.1-1]: PUBREL fixed-header flags other than 0010 are malformed: DISCONNECT
/// 0x81 and close. With 0010 the same bytes get PUBCOMP 0x00.
#[tokio::test]
async fn pubrel_with_flags_other_than_0010_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        for first in [0x60, 0x63, 0x6A, 0x64] {
            let mut c = publish_qos2(&broker, "rel-flags").await;
            c.send_raw(&raw_packet(first, &[0x00, 0x05])).await;
            let d = c.expect_closed().await;
            assert_eq!(
                d.map(|d| d.reason),
                Some(ReasonCode::MALFORMED_PACKET),
                "{first:#x}"
            );
        }
        let mut c = publish_qos2(&broker, "rel-flags").await;
        c.send_raw(&raw_packet(0x62, &[0x00, 0x05])).await;
        match c.expect_packet("PUBCOMP").await {
            Packet::PubComp(r) => {
                assert_eq!((r.packet_id.get(), r.reason), (5, ReasonCode::SUCCESS))
            }
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
    })
    .await;
}

/// Reads the next packet as a PUBREL, with its encoded size.
async fn expect_pubrel(c: &mut RawClient) -> (PubResponse, usize) {
    let packet = c.expect_packet("PUBREL").await;
    let size = encoded_len(&packet, ProtocolVersion::V5);
    match packet {
        Packet::PubRel(r) => (r, size),
        other => panic!("expected PUBREL, got {other:?}"),
    }
}

/// [MQTT-3.6.2-1]: the server's PUBRELs use PUBREL Reason Codes: 0x00 after the PUBREC
/// of its delivery, 0x92 (Packet Identifier not found) after a PUBREC for an id it has
/// not sent. [MQTT-3.6.2-2], [MQTT-3.6.2-3]: with a client Maximum Packet Size of 16
/// both come within 16 bytes, with no Reason String and no User Property.
#[tokio::test]
async fn server_pubrel_uses_pubrel_codes_within_maximum_packet_size() {
    let broker = BrokerProcess::start();
    bounded(async {
        let props = Properties::from(PropertyFields {
            maximum_packet_size: Some(16),
            ..PropertyFields::default()
        });
        let mut sub = RawClient::connected_v5(broker.addr(), "rel-sub", props).await;
        sub.subscribe(&[("rel/t", QoS::ExactlyOnce)]).await;
        let mut p = publish_qos2(&broker, "rel-pub").await;
        p.send(Packet::PubRel(PubResponse::new(
            PacketId::new(5).expect("id"),
        )))
        .await;
        let m = sub.expect_publish().await;
        let id = m.packet_id().expect("QoS 2 id");
        let unknown = PacketId::new(id.get().wrapping_add(1000).max(1)).expect("id");
        sub.send(Packet::PubRec(PubResponse::new(unknown))).await;
        let (r, size) = expect_pubrel(&mut sub).await;
        assert_eq!(
            (r.packet_id, r.reason),
            (unknown, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        );
        for (r, size) in [(r, size), {
            sub.send(Packet::PubRec(PubResponse::new(id))).await;
            expect_pubrel(&mut sub).await
        }] {
            assert!(PUBREL_CODES.contains(&r.reason.0), "{r:?}");
            assert!(size <= 16, "PUBREL of {size} bytes");
            assert!(r.properties.is_empty(), "{r:?}");
        }
        sub.send(Packet::PubComp(PubResponse::new(id))).await;
    })
    .await;
}
