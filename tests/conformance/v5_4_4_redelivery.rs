//! MQTT 5.0 section 4.4, message delivery retry: unacknowledged PUBLISH and PUBREL
//! packets are re-sent with their original Packet Identifiers when the client resumes
//! its session, and at no other time; a PUBACK or PUBREC with an error code ends the
//! delivery.

use std::time::Duration;

use starling::protocol::{
    Packet, PacketId, Properties, PropertyFields, PubResponse, Publish, QoS, ReasonCode,
};

use crate::common::{bounded, session_expiry, BrokerProcess, RawClient};

/// Connects `id` with Session Expiry 300 (Clean Start 0) and the given properties,
/// asserting whether a session was present.
async fn resume(broker: &BrokerProcess, id: &str, extra: Properties, present: bool) -> RawClient {
    let mut c = RawClient::open(broker.addr()).await;
    let props = Properties::from(PropertyFields {
        session_expiry_interval: Some(300),
        ..(*extra).clone()
    });
    let ack = c.connect_v5(id, false, 60, props).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert_eq!(ack.session_present, present, "Session Present of {id}");
    c
}

async fn publisher(broker: &BrokerProcess, id: &str) -> RawClient {
    RawClient::connected_v5(broker.addr(), id, Properties::default()).await
}

fn id_of(p: &Publish) -> PacketId {
    p.packet_id()
        .expect("QoS > 0 PUBLISH has a Packet Identifier")
}

/// [MQTT-4.4.0-1]: unacknowledged QoS 1 and QoS 2 PUBLISHes are not re-sent while the
/// connection lasts; when the client reconnects with Clean Start 0 they are re-sent,
/// in order, with their original Packet Identifiers and DUP 1.
#[tokio::test]
async fn unacknowledged_publishes_are_resent_on_resume_only() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = resume(&broker, "rd-pub", Properties::default(), false).await;
        c.subscribe(&[("rd/t", QoS::ExactlyOnce)]).await;
        let mut p = publisher(&broker, "rd-pub-src").await;
        p.publish("rd/t", QoS::AtLeastOnce, false, b"one").await;
        p.publish("rd/t", QoS::ExactlyOnce, false, b"two").await;
        let first = [c.expect_publish().await, c.expect_publish().await];
        assert_eq!(first[0].qos(), QoS::AtLeastOnce);
        assert_eq!(first[1].qos(), QoS::ExactlyOnce);
        assert!(first.iter().all(|m| !m.dup));
        c.expect_nothing(Duration::from_millis(1500)).await;
        drop(c);
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut c = resume(&broker, "rd-pub", Properties::default(), true).await;
        for original in &first {
            let again = c.expect_publish().await;
            assert_eq!(again.payload, original.payload);
            assert_eq!(again.packet_id(), original.packet_id());
            assert_eq!(again.qos(), original.qos());
            assert!(again.dup, "a re-sent PUBLISH has DUP 1");
            c.ack(&again).await;
        }
        c.expect_nothing(Duration::from_millis(500)).await;
    })
    .await;
}

/// [MQTT-4.4.0-1]: a PUBREL that was not acknowledged (no PUBCOMP) is re-sent with
/// its Packet Identifier when the client resumes the session, and the PUBLISH is not
/// (it was acknowledged by the PUBREC); once PUBCOMP arrives, nothing is re-sent on a
/// further resume. While connected, the PUBREL is not repeated.
#[tokio::test]
async fn unacknowledged_pubrel_is_resent_on_resume() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = resume(&broker, "rd-rel", Properties::default(), false).await;
        c.subscribe(&[("rel/t", QoS::ExactlyOnce)]).await;
        let mut p = publisher(&broker, "rd-rel-src").await;
        p.publish("rel/t", QoS::ExactlyOnce, false, b"q2").await;
        let m = c.expect_publish().await;
        let id = id_of(&m);
        c.send(Packet::PubRec(PubResponse::new(id))).await;
        match c.expect_packet("PUBREL").await {
            Packet::PubRel(r) => assert_eq!(r.packet_id, id),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        c.expect_nothing(Duration::from_millis(1500)).await;
        drop(c);
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut c = resume(&broker, "rd-rel", Properties::default(), true).await;
        match c.expect_packet("re-sent PUBREL").await {
            Packet::PubRel(r) => assert_eq!(r.packet_id, id),
            other => panic!("expected the PUBREL again, got {other:?}"),
        }
        c.expect_nothing(Duration::from_millis(500)).await;
        c.send(Packet::PubComp(PubResponse::new(id))).await;
        c.disconnect().await;

        let mut c = resume(&broker, "rd-rel", Properties::default(), true).await;
        c.expect_nothing(Duration::from_millis(800)).await;
    })
    .await;
}

/// [MQTT-4.4.0-2]: a PUBACK with a reason code >= 0x80 acknowledges the PUBLISH: with a
/// Receive Maximum of 1 the next message follows at once, and the refused one is not
/// re-sent, neither on the connection nor when the session is resumed.
#[tokio::test]
async fn error_puback_acknowledges_the_publish() {
    let broker = BrokerProcess::start();
    bounded(async {
        let window = Properties::from(PropertyFields {
            receive_maximum: Some(1),
            ..PropertyFields::default()
        });
        let mut c = resume(&broker, "rd-nack1", window.clone(), false).await;
        c.subscribe(&[("nack1/t", QoS::AtLeastOnce)]).await;
        let mut p = publisher(&broker, "rd-nack1-src").await;
        p.publish("nack1/t", QoS::AtLeastOnce, false, b"refused")
            .await;
        p.publish("nack1/t", QoS::AtLeastOnce, false, b"next").await;
        let m = c.expect_publish().await;
        assert_eq!(m.payload.as_ref(), b"refused");
        let mut nack = PubResponse::new(id_of(&m));
        nack.reason = ReasonCode::UNSPECIFIED_ERROR;
        c.send(Packet::PubAck(nack)).await;
        let next = c.expect_publish().await;
        assert_eq!(next.payload.as_ref(), b"next");
        assert!(!next.dup);
        c.ack(&next).await;
        c.expect_nothing(Duration::from_millis(500)).await;
        c.disconnect().await;

        let mut c = resume(&broker, "rd-nack1", window, true).await;
        c.expect_nothing(Duration::from_millis(800)).await;
    })
    .await;
}

/// [MQTT-4.4.0-2]: a PUBREC with a reason code >= 0x80 acknowledges the PUBLISH: no
/// PUBREL follows, the next message takes the freed slot (Receive Maximum 1), and
/// nothing of the refused message is re-sent when the session is resumed.
#[tokio::test]
async fn error_pubrec_acknowledges_the_publish() {
    let broker = BrokerProcess::start();
    bounded(async {
        let window = Properties::from(PropertyFields {
            receive_maximum: Some(1),
            ..(*session_expiry(300)).clone()
        });
        let mut c = resume(&broker, "rd-nack2", window.clone(), false).await;
        c.subscribe(&[("nack2/t", QoS::ExactlyOnce)]).await;
        let mut p = publisher(&broker, "rd-nack2-src").await;
        p.publish("nack2/t", QoS::ExactlyOnce, false, b"refused")
            .await;
        p.publish("nack2/t", QoS::ExactlyOnce, false, b"next").await;
        let m = c.expect_publish().await;
        assert_eq!(m.payload.as_ref(), b"refused");
        let mut nack = PubResponse::new(id_of(&m));
        nack.reason = ReasonCode::UNSPECIFIED_ERROR;
        c.send(Packet::PubRec(nack)).await;
        // The next packet is the next message, not a PUBREL for the refused one.
        let next = c.expect_publish().await;
        assert_eq!(next.payload.as_ref(), b"next");
        c.ack(&next).await;
        c.expect_nothing(Duration::from_millis(500)).await;
        c.disconnect().await;

        let mut c = resume(&broker, "rd-nack2", window, true).await;
        c.expect_nothing(Duration::from_millis(800)).await;
    })
    .await;
}
