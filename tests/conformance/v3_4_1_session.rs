//! MQTT 3.1.1 section 4.1, session state: a session lasts as long as its connection.

use std::time::{Duration, Instant};

use starling::protocol::{Packet, PubResponse, QoS};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient};

/// [MQTT-4.1.0-2]: a session lasts at least as long as its network connection. A clean
/// session kept alive by PINGREQs (keep alive 1 s) for three seconds, well past its
/// keep-alive interval, keeps all its state: the subscription, the unacknowledged QoS 1
/// delivery to the client and the QoS 2 message received from it awaiting PUBREL.
#[tokio::test]
async fn clean_session_state_lasts_while_the_connection_does() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        assert!(!c.connect_v311("lasting", true, 1).await.reason.is_error());
        c.subscribe(&[("last/#", QoS::AtLeastOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "lasting-pub", true).await;
        p.publish("last/a", QoS::AtLeastOnce, false, b"before")
            .await;
        let before = c.expect_publish().await;
        let inbound = c.next_packet_id();
        c.send(Packet::Publish(publish_packet(
            "last/own",
            QoS::ExactlyOnce,
            b"mine",
            Some(inbound),
        )))
        .await;
        c.wait_for(
            "PUBREC",
            |p| matches!(p, Packet::PubRec(r) if r.packet_id == inbound),
        )
        .await;
        // The own QoS 2 message is routed back to this subscriber too.
        let own = c.expect_publish().await;
        assert_eq!(own.payload.as_ref(), b"mine");

        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(400)).await;
            c.send(Packet::PingReq).await;
            c.wait_for("PINGRESP", |p| matches!(p, Packet::PingResp))
                .await;
        }

        c.send(Packet::PubAck(PubResponse::new(
            before.packet_id().expect("id"),
        )))
        .await;
        c.ack(&own).await;
        c.send(Packet::PubRel(PubResponse::new(inbound))).await;
        c.wait_for(
            "PUBCOMP",
            |p| matches!(p, Packet::PubComp(r) if r.packet_id == inbound),
        )
        .await;
        p.publish("last/b", QoS::AtLeastOnce, false, b"after").await;
        let after = c.recv_publish_acked().await;
        assert_eq!(after.payload.as_ref(), b"after");
        assert!(
            !after.dup,
            "no re-send of a state the session lost: {after:?}"
        );
    })
    .await;
}
