//! MQTT 3.1.1 section 3.3, PUBLISH: the DUP flag the server sends, what RETAIN 0 and a
//! QoS 0 RETAIN 1 do to the stored retained message, the topic name as first field,
//! and a PUBLISH the server does not allow.

use std::time::Duration;

use starling::protocol::{Packet, QoS};

use crate::common::{bounded, mqtt_str, raw_packet, BrokerProcess, RawClient};

/// PUBLISH bytes: fixed-header byte, topic, packet id when given, payload.
fn raw_publish(first_byte: u8, topic: &str, packet_id: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let mut body = mqtt_str(topic.as_bytes());
    if let Some(id) = packet_id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    body.extend_from_slice(payload);
    raw_packet(first_byte, &body)
}

/// The retained messages a new subscriber to `filter` receives (none within 500 ms ends
/// the list).
async fn retained(broker: &BrokerProcess, id: &str, filter: &str) -> Vec<(String, Vec<u8>)> {
    let mut c = RawClient::connected_v311(broker.addr(), id, true).await;
    c.subscribe(&[(filter, QoS::AtLeastOnce)]).await;
    let mut got = Vec::new();
    while let crate::common::Event::Packet(Packet::Publish(p)) =
        c.next_event(Duration::from_millis(500)).await
    {
        assert!(p.retain, "a retained message is sent with RETAIN 1: {p:?}");
        c.ack(&p).await;
        got.push((p.topic.as_str().to_owned(), p.payload.to_vec()));
    }
    got
}

/// [MQTT-3.3.1-3]: the DUP flag of an outgoing PUBLISH says only whether that PUBLISH is
/// a retransmission: a QoS 1 PUBLISH received with DUP 1 reaches a QoS 1 subscriber
/// with DUP 0 (first transmission); [MQTT-3.3.1-2]: and a QoS 0 subscriber with DUP 0.
#[tokio::test]
async fn incoming_dup_is_not_propagated() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s1 = RawClient::connected_v311(broker.addr(), "dup-s1", true).await;
        s1.subscribe(&[("dup/t", QoS::AtLeastOnce)]).await;
        let mut s0 = RawClient::connected_v311(broker.addr(), "dup-s0", true).await;
        s0.subscribe(&[("dup/t", QoS::AtMostOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "dup-pub", true).await;
        p.send_raw(&raw_publish(0x3A, "dup/t", Some(9), b"resent"))
            .await;
        match p.expect_packet("PUBACK").await {
            Packet::PubAck(a) => assert_eq!(a.packet_id.get(), 9),
            other => panic!("want PUBACK, got {other:?}"),
        }
        let got1 = s1.recv_publish_acked().await;
        assert_eq!(
            (got1.qos(), got1.dup),
            (QoS::AtLeastOnce, false),
            "{got1:?}"
        );
        let got0 = s0.expect_publish().await;
        assert_eq!((got0.qos(), got0.dup), (QoS::AtMostOnce, false), "{got0:?}");
    })
    .await;
}

/// [MQTT-3.3.1-2], inbound side: a QoS 0 PUBLISH with DUP 1 is malformed; the server
/// closes the connection and does not route it.
#[tokio::test]
async fn qos0_publish_with_dup_is_closed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "dup0-sub", true).await;
        s.subscribe(&[("dup0/#", QoS::AtMostOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "dup0-pub", true).await;
        p.send_raw(&raw_publish(0x38, "dup0/t", None, b"bad")).await;
        assert_eq!(p.expect_closed().await, None);
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.3.1-7]: a QoS 0 PUBLISH with RETAIN 1 discards the retained message of its
/// topic; Starling stores it as the new retained message (the SHOULD).
#[tokio::test]
async fn qos0_retained_publish_replaces_the_retained_message() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut p = RawClient::connected_v311(broker.addr(), "r0-pub", true).await;
        p.publish("r0/t", QoS::ExactlyOnce, true, b"old qos 2")
            .await;
        p.publish("r0/t", QoS::AtMostOnce, true, b"new qos 0").await;
        // QoS 0 has no acknowledgement: a QoS 1 round trip orders it behind the publish.
        p.publish("r0/marker", QoS::AtLeastOnce, false, b"m").await;
        let got = retained(&broker, "r0-sub", "r0/#").await;
        assert_eq!(got, vec![("r0/t".to_owned(), b"new qos 0".to_vec())]);
    })
    .await;
}

/// [MQTT-3.3.1-12]: a PUBLISH with RETAIN 0 is not stored and neither removes nor
/// replaces the retained message of its topic, not even with an empty payload.
#[tokio::test]
async fn retain_0_publish_leaves_the_retained_message_alone() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut p = RawClient::connected_v311(broker.addr(), "r-pub", true).await;
        p.publish("keep/t", QoS::AtLeastOnce, true, b"retained")
            .await;
        p.publish("keep/t", QoS::AtLeastOnce, false, b"not retained")
            .await;
        p.publish("keep/t", QoS::AtLeastOnce, false, b"").await;
        p.publish("keep/other", QoS::AtLeastOnce, false, b"never stored")
            .await;
        let got = retained(&broker, "r-sub", "keep/#").await;
        assert_eq!(got, vec![("keep/t".to_owned(), b"retained".to_vec())]);
    })
    .await;
}

/// [MQTT-3.3.2-1]: the Topic Name is the first field of the variable header: a PUBLISH
/// too short to hold the topic its length prefix announces, or with no topic at all,
/// is malformed and closes the connection without being routed.
#[tokio::test]
async fn publish_without_a_whole_topic_name_is_closed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "tn-sub", true).await;
        s.subscribe(&[("#", QoS::AtMostOnce)]).await;
        let cases = [
            raw_packet(0x30, &[0x00, 0x08, b'a', b'/', b'b']),
            raw_packet(0x30, &[0x00]),
            raw_packet(0x30, &[]),
            raw_packet(0x32, &[0x00, 0x01]),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let mut p = RawClient::connected_v311(broker.addr(), &format!("tn-{i}"), true).await;
            p.send_raw(bytes).await;
            assert_eq!(p.expect_closed().await, None, "case {bytes:02x?}");
        }
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.3.5-2]: a PUBLISH the server does not allow gets either the normal
/// acknowledgement or a close. Starling, configured without retained messages, closes
/// a 3.1.1 client that publishes a retained message (no PUBACK) and routes nothing.
#[tokio::test]
async fn publish_not_allowed_closes_the_connection() {
    let config = "[capabilities]\nretain_available = false\n";
    let broker = BrokerProcess::start_with_config(Some(config));
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "deny-sub", true).await;
        s.subscribe(&[("deny/#", QoS::AtLeastOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "deny-pub", true).await;
        p.send_raw(&raw_publish(0x33, "deny/t", Some(1), b"retained"))
            .await;
        assert_eq!(p.expect_closed().await, None, "closed, no PUBACK");
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}
