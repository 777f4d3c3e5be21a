//! MQTT 3.1.1 section 4.8, handling errors: a transient error while handling an inbound
//! packet closes that connection. The errors are real panics made by the test-only
//! `fault-injection` feature, so this module is built only with it
//! (`cargo test --features fault-injection --test conformance v3_4_8`).

use starling::protocol::{Packet, PacketId, QoS};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient, Witness};

/// [MQTT-4.8.0-2]: a transient error while processing an inbound packet closes the
/// connection it came on. The session failing on a QoS 1 PUBLISH, and the persistence
/// actor failing to store a retained QoS 1 PUBLISH: each time the connection closes
/// (3.1.1: no DISCONNECT) without a PUBACK, and other clients are served on.
#[tokio::test]
async fn transient_error_on_an_inbound_packet_closes_its_connection() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        for (id, topic, retain) in [
            ("fault-session", "$fault/session", false),
            ("fault-store", "$fault/persistence", true),
        ] {
            let mut c = RawClient::connected_v311(broker.addr(), id, true).await;
            let mut p = publish_packet(topic, QoS::AtLeastOnce, b"boom", PacketId::new(1));
            p.retain = retain;
            c.send(Packet::Publish(p)).await;
            assert_eq!(c.expect_closed().await, None, "{topic}: closed, no PUBACK");
            witness.check().await;
        }
        broker.assert_alive();
    })
    .await;
}
