//! MQTT 3.1.1 section 4.4, message redelivery: what a resumed session re-sends.

use std::time::Duration;

use starling::protocol::{Packet, PubResponse, QoS};

use crate::common::{bounded, BrokerProcess, RawClient};

/// [MQTT-4.4.0-1]: when a client reconnects with Clean Session 0, the server re-sends
/// the unacknowledged PUBLISHes (QoS 1, and QoS 2 before PUBREC) with DUP 1, and the
/// PUBREL of a QoS 2 delivery whose PUBREC it had (not the PUBLISH again), all with
/// their original packet identifiers and in their original order.
#[tokio::test]
async fn resumed_session_resends_publish_and_pubrel_with_original_ids() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "redeliver", false).await;
        s.subscribe(&[("re/t", QoS::ExactlyOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "redeliver-pub", true).await;
        p.publish("re/t", QoS::ExactlyOnce, false, b"released")
            .await;
        p.publish("re/t", QoS::AtLeastOnce, false, b"qos1").await;
        p.publish("re/t", QoS::ExactlyOnce, false, b"qos2").await;
        let released = s.expect_publish().await;
        let qos1 = s.expect_publish().await;
        let qos2 = s.expect_publish().await;
        let rel_id = released.packet_id().expect("id");
        s.send(Packet::PubRec(PubResponse::new(rel_id))).await;
        match s.expect_packet("PUBREL").await {
            Packet::PubRel(r) => assert_eq!(r.packet_id, rel_id),
            other => panic!("want PUBREL, got {other:?}"),
        }
        drop(s);

        let mut s = RawClient::open(broker.addr()).await;
        assert!(s.connect_v311("redeliver", false, 60).await.session_present);
        match s.expect_packet("re-sent PUBREL").await {
            Packet::PubRel(r) => assert_eq!(r.packet_id, rel_id),
            other => panic!("want the PUBREL re-sent first, got {other:?}"),
        }
        for want in [&qos1, &qos2] {
            let got = s.expect_publish().await;
            assert_eq!(got.packet_id(), want.packet_id(), "original id: {got:?}");
            assert_eq!(
                (got.qos(), got.payload.clone()),
                (want.qos(), want.payload.clone())
            );
            assert!(got.dup, "DUP 1 on the re-sent PUBLISH: {got:?}");
            s.ack(&got).await;
        }
        s.send(Packet::PubComp(PubResponse::new(rel_id))).await;
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}
