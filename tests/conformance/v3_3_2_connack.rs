//! MQTT 3.1.1 section 3.2, CONNACK: it is the server's first packet, and a refusal no
//! return code describes is a close without CONNACK.

use std::time::Duration;

use starling::protocol::{Packet, ProtocolVersion, QoS};

use crate::common::{
    bounded, connect_packet, mqtt_str, raw_connect, raw_packet, BrokerProcess, Event, RawClient,
};

/// [MQTT-3.2.0-1]: the first packet the server sends is CONNACK, also when messages
/// are waiting: queued ones for a resumed persistent session, and a retained one for a
/// SUBSCRIBE written in the same segment as the CONNECT.
#[tokio::test]
async fn connack_comes_before_anything_else() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v311(broker.addr(), "first", false).await;
        sub.subscribe(&[("first/#", QoS::AtLeastOnce)]).await;
        sub.disconnect().await;
        let mut p = RawClient::connected_v311(broker.addr(), "first-pub", true).await;
        for text in ["q1", "q2"] {
            p.publish("first/q", QoS::AtLeastOnce, false, text.as_bytes())
                .await;
        }
        p.publish("first/r", QoS::AtLeastOnce, true, b"retained")
            .await;

        let mut c = RawClient::open(broker.addr()).await;
        c.send(Packet::Connect(Box::new(connect_packet(
            ProtocolVersion::V311,
            "first",
            false,
            60,
        ))))
        .await;
        match c.next_event(Duration::from_secs(5)).await {
            Event::Packet(Packet::ConnAck(a)) => assert!(a.session_present, "{a:?}"),
            other => panic!("first packet: want CONNACK, got {other:?}"),
        }
        for text in ["q1", "q2"] {
            assert_eq!(
                c.recv_publish_acked().await.payload.as_ref(),
                text.as_bytes()
            );
        }

        let mut bytes = raw_connect(4, 0x02, "first-same-write", None);
        let mut subscribe = vec![0x00, 0x07];
        subscribe.extend(mqtt_str(b"first/r"));
        subscribe.push(0x01);
        bytes.extend(raw_packet(0x82, &subscribe));
        let mut c = RawClient::open(broker.addr()).await;
        c.send_raw(&bytes).await;
        match c.next_event(Duration::from_secs(5)).await {
            Event::Packet(Packet::ConnAck(a)) => assert!(!a.reason.is_error(), "{a:?}"),
            other => panic!("first packet: want CONNACK, got {other:?}"),
        }
        match c.expect_packet("SUBACK").await {
            Packet::SubAck(a) => assert_eq!(a.packet_id.get(), 7),
            other => panic!("want SUBACK, got {other:?}"),
        }
        assert_eq!(c.recv_publish_acked().await.payload.as_ref(), b"retained");
    })
    .await;
}

/// [MQTT-3.2.2-6]: when none of the 3.1.1 return codes fits, the server closes without
/// CONNACK. Starling does so for a CONNECT larger than `max_packet_size` (3.1.1 has no
/// "packet too large" code) and for a Will Topic with a wildcard (a malformed CONNECT).
#[tokio::test]
async fn refusal_without_a_return_code_closes_without_connack() {
    let broker = BrokerProcess::start_with_limits(&[("max_packet_size", 1024)]);
    bounded(async {
        let mut body = mqtt_str(b"MQTT");
        body.extend_from_slice(&[4, 0xC2, 0, 60]);
        body.extend(mqtt_str(b"too-large"));
        body.extend(mqtt_str(&[b'u'; 1500]));
        body.extend(mqtt_str(b"pass"));
        let too_large = raw_packet(0x10, &body);

        let mut body = mqtt_str(b"MQTT");
        body.extend_from_slice(&[4, 0x06, 0, 60]);
        body.extend(mqtt_str(b"wild-will"));
        body.extend(mqtt_str(b"will/#"));
        body.extend(mqtt_str(b"bye"));
        let wild_will = raw_packet(0x10, &body);

        for (what, bytes) in [("too large", too_large), ("will topic will/#", wild_will)] {
            let mut c = RawClient::open(broker.addr()).await;
            c.send_raw(&bytes).await;
            let reply = c.read_raw_until_closed(Duration::from_secs(5)).await;
            assert!(
                reply.is_empty(),
                "{what}: want close without CONNACK, got {reply:02x?}"
            );
        }
        RawClient::connected_v311(broker.addr(), "still-serving", true).await;
    })
    .await;
}
