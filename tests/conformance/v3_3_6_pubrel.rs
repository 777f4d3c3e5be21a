//! MQTT 3.1.1 section 3.6, PUBREL: the reserved fixed-header flags.

use starling::protocol::Packet;

use crate::common::{bounded, mqtt_str, raw_packet, BrokerProcess, RawClient, Witness};

/// Starts a QoS 2 PUBLISH with packet id 5 and waits for its PUBREC.
async fn publish_qos2(c: &mut RawClient) {
    let mut body = mqtt_str(b"rel/t");
    body.extend_from_slice(&[0x00, 0x05]);
    body.extend_from_slice(b"x");
    c.send_raw(&raw_packet(0x34, &body)).await;
    match c.expect_packet("PUBREC").await {
        Packet::PubRec(r) => assert_eq!(r.packet_id.get(), 5),
        other => panic!("want PUBREC, got {other:?}"),
    }
}

/// [MQTT-3.6.1-1]: PUBREL's fixed-header flags must be 0010; with any other value the
/// server closes the connection (no PUBCOMP). With 0010 it answers PUBCOMP.
#[tokio::test]
async fn pubrel_with_wrong_flags_is_closed() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        let mut good = RawClient::connected_v311(broker.addr(), "rel-good", true).await;
        publish_qos2(&mut good).await;
        good.send_raw(&[0x62, 0x02, 0x00, 0x05]).await;
        match good.expect_packet("PUBCOMP").await {
            Packet::PubComp(r) => assert_eq!(r.packet_id.get(), 5),
            other => panic!("want PUBCOMP, got {other:?}"),
        }
        for first_byte in [0x60u8, 0x63, 0x6A] {
            let mut c = RawClient::connected_v311(broker.addr(), "rel-bad", true).await;
            publish_qos2(&mut c).await;
            c.send_raw(&[first_byte, 0x02, 0x00, 0x05]).await;
            assert_eq!(c.expect_closed().await, None, "flags {first_byte:02x}");
        }
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}
