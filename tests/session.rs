//! Sessions, takeover, wills, keepalive and client identifiers, over the raw client.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bounded, connect_packet, session_expiry, topic, BrokerProcess, RawClient};
use starling::protocol::{LastWill, Packet, Properties, ProtocolVersion, QoS, ReasonCode};

/// Subscribes `id` (persistent), disconnects, has another client publish `n` QoS 1
/// messages, reconnects and asserts session present and the `n` messages in order.
async fn offline_queue(broker: &BrokerProcess, v5: bool, id: &str, n: usize) {
    let addr = broker.addr();
    let t = format!("{id}/t");
    let props = if v5 {
        session_expiry(60)
    } else {
        Properties::default()
    };
    let mut sub = RawClient::open(addr).await;
    let ack = if v5 {
        sub.connect_v5(id, false, 60, props.clone()).await
    } else {
        sub.connect_v311(id, false, 60).await
    };
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(!ack.session_present, "no session existed for {id}");
    sub.subscribe(&[(&t, QoS::AtLeastOnce)]).await;
    sub.disconnect().await;

    let mut publ = RawClient::connected_v311(addr, &format!("{id}-pub"), true).await;
    for i in 0..n {
        publ.publish(&t, QoS::AtLeastOnce, false, format!("m{i}").as_bytes())
            .await;
    }

    let mut sub = RawClient::open(addr).await;
    let ack = if v5 {
        sub.connect_v5(id, false, 60, props).await
    } else {
        sub.connect_v311(id, false, 60).await
    };
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(ack.session_present, "CONNACK session present must be 1");
    for i in 0..n {
        let p = sub.recv_publish_acked().await;
        assert_eq!(p.topic.as_str(), t);
        assert_eq!(
            p.payload,
            Bytes::from(format!("m{i}")),
            "queued message {i} in order"
        );
        assert_eq!(p.qos(), QoS::AtLeastOnce);
    }
}

// 3.1.1 [MQTT-3.1.2-4], [MQTT-3.1.2-5], [MQTT-3.2.2-2], [MQTT-4.6.0-6]: a clean-session-0
// session keeps its subscription and queues QoS 1 messages, delivered in order.
#[tokio::test]
async fn persistent_session_v311_receives_queued_messages_in_order() {
    let broker = BrokerProcess::start();
    bounded(offline_queue(&broker, false, "persist4", 10)).await;
}

// 5.0 [MQTT-3.1.2-5], [MQTT-3.1.2-6], [MQTT-3.2.2-3]: clean start 0 + session expiry 60.
#[tokio::test]
async fn persistent_session_v5_receives_queued_messages_in_order() {
    let broker = BrokerProcess::start();
    bounded(offline_queue(&broker, true, "persist5", 10)).await;
}

// 3.1.1 [MQTT-3.1.2-6], [MQTT-3.2.2-1]: clean session discards the old session: session
// present 0, no subscription, nothing queued.
#[tokio::test]
async fn clean_session_starts_empty_and_gets_nothing_queued() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v311(addr, "cleaner", false).await;
        sub.subscribe(&[("clean/t", QoS::AtLeastOnce)]).await;
        sub.disconnect().await;
        let mut publ = RawClient::connected_v311(addr, "cleaner-pub", true).await;
        publ.publish("clean/t", QoS::AtLeastOnce, false, b"queued")
            .await;

        let mut sub = RawClient::open(addr).await;
        let ack = sub.connect_v311("cleaner", true, 60).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(
            !ack.session_present,
            "clean session must report session present 0"
        );
        sub.subscribe(&[("clean/end", QoS::AtLeastOnce)]).await;
        publ.publish("clean/t", QoS::AtLeastOnce, false, b"live")
            .await;
        publ.publish("clean/end", QoS::AtLeastOnce, false, b"end")
            .await;
        let p = sub.recv_publish_acked().await;
        assert_eq!(
            p.topic.as_str(),
            "clean/end",
            "old session state leaked: {p:?}"
        );
    })
    .await;
}

// 3.1.1 [MQTT-3.1.4-2] (5.0 [MQTT-3.1.4-3]): a second CONNECT with the same client id
// closes the first connection; the session continues on the new one.
#[tokio::test]
async fn session_takeover_v311_closes_old_connection_and_keeps_subscription() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut first = RawClient::connected_v311(addr, "taker4", false).await;
        first.subscribe(&[("take4/t", QoS::AtLeastOnce)]).await;
        let mut second = RawClient::open(addr).await;
        let ack = second.connect_v311("taker4", false, 60).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(ack.session_present, "the taken-over session is present");
        let d = first.expect_closed().await;
        assert!(d.is_none(), "3.1.1 has no server DISCONNECT, got {d:?}");

        let mut publ = RawClient::connected_v311(addr, "taker4-pub", true).await;
        publ.publish("take4/t", QoS::AtLeastOnce, false, b"to-new")
            .await;
        let p = second.recv_publish_acked().await;
        assert_eq!(p.payload.as_ref(), b"to-new");
    })
    .await;
}

// 5.0 [MQTT-3.1.4-3]: the existing connection gets DISCONNECT 0x8E (Session taken over)
// and is closed; the session continues on the new connection.
#[tokio::test]
async fn session_takeover_v5_sends_disconnect_0x8e() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut first = RawClient::open(addr).await;
        let ack = first
            .connect_v5("taker5", true, 60, session_expiry(60))
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        first.subscribe(&[("take5/t", QoS::AtLeastOnce)]).await;

        let mut second = RawClient::open(addr).await;
        let ack = second
            .connect_v5("taker5", false, 60, session_expiry(60))
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(ack.session_present, "the taken-over session is present");
        let d = first.expect_closed().await;
        assert_eq!(d.map(|d| d.reason), Some(ReasonCode::SESSION_TAKEN_OVER));

        let mut publ = RawClient::connected_v311(addr, "taker5-pub", true).await;
        publ.publish("take5/t", QoS::AtLeastOnce, false, b"to-new")
            .await;
        let p = second.recv_publish_acked().await;
        assert_eq!(p.payload.as_ref(), b"to-new");
    })
    .await;
}

fn with_will(id: &str, keepalive: u16) -> starling::protocol::Connect {
    let mut c = connect_packet(ProtocolVersion::V311, id, true, keepalive);
    c.will = Some(LastWill {
        topic: topic(&format!("will/{id}")),
        payload: Bytes::from(format!("{id} gone")),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    });
    c
}

async fn will_observer(broker: &BrokerProcess, id: &str) -> RawClient {
    let mut obs = RawClient::connected_v311(broker.addr(), id, true).await;
    obs.subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
    obs
}

// 3.1.1 [MQTT-3.1.2-8]: the will is published when the connection closes without
// DISCONNECT.
#[tokio::test]
async fn will_published_on_abnormal_close() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = will_observer(&broker, "will-obs1").await;
        let mut w = RawClient::open(broker.addr()).await;
        assert_eq!(
            w.connect(with_will("w1", 60)).await.reason,
            ReasonCode::SUCCESS
        );
        drop(w);
        let p = obs.recv_publish_acked().await;
        assert_eq!(p.topic.as_str(), "will/w1");
        assert_eq!(p.payload.as_ref(), b"w1 gone");
    })
    .await;
}

// 3.1.1 [MQTT-3.1.2-10] (5.0 [MQTT-3.1.2-10]): after a normal DISCONNECT the will is
// deleted, not published.
#[tokio::test]
async fn will_not_published_after_normal_disconnect() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = will_observer(&broker, "will-obs2").await;
        let mut w = RawClient::open(broker.addr()).await;
        assert_eq!(
            w.connect(with_will("w2", 60)).await.reason,
            ReasonCode::SUCCESS
        );
        w.disconnect().await;
        let mut publ = RawClient::connected_v311(broker.addr(), "will-pub2", true).await;
        publ.publish("will/end", QoS::AtLeastOnce, false, b"end")
            .await;
        let p = obs.recv_publish_acked().await;
        assert_eq!(
            p.topic.as_str(),
            "will/end",
            "will published after DISCONNECT: {p:?}"
        );
        // No event marks "the will was not sent": a short settle window.
        obs.expect_nothing(Duration::from_millis(500)).await;
    })
    .await;
}

// 3.1.1 [MQTT-3.1.2-24] (5.0 [MQTT-3.1.2-22]): silent for 1.5 x keepalive -> closed and
// the will published.
#[tokio::test]
async fn keepalive_expiry_closes_connection_and_publishes_will() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = will_observer(&broker, "will-obs3").await;
        let mut w = RawClient::open(broker.addr()).await;
        assert_eq!(
            w.connect(with_will("ka1", 1)).await.reason,
            ReasonCode::SUCCESS
        );
        let start = Instant::now();
        w.expect_closed_within(Duration::from_secs(4)).await;
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "closed before keepalive: {took:?}"
        );
        let p = obs.recv_publish_acked().await;
        assert_eq!(p.topic.as_str(), "will/ka1");
    })
    .await;
}

// 3.1.1 [MQTT-3.12.4-1]: PINGREQ -> PINGRESP; pings keep a keepalive-1 connection open
// for 3 s (twice 1.5 x keepalive).
#[tokio::test]
async fn pingreq_gets_pingresp_and_keeps_connection_alive() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        assert_eq!(
            c.connect_v311("pinger", true, 1).await.reason,
            ReasonCode::SUCCESS
        );
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.send(Packet::PingReq).await;
            let p = c.expect_packet("PINGRESP").await;
            assert_eq!(p, Packet::PingResp);
        }
        let ack = c.subscribe(&[("ping/t", QoS::AtMostOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_0]);
    })
    .await;
}

// 3.1.1 [MQTT-3.1.3-6]: a zero-length client id with clean session 1 is accepted.
#[tokio::test]
async fn zero_length_client_id_with_clean_session_accepted_v311() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v311("", true, 60).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(!ack.session_present);
        c.subscribe(&[("anon/t", QoS::AtLeastOnce)]).await;
        c.publish("anon/t", QoS::AtLeastOnce, false, b"self").await;
        assert_eq!(c.recv_publish_acked().await.payload.as_ref(), b"self");
    })
    .await;
}

// 3.1.1 [MQTT-3.1.3-8]: zero-length client id with clean session 0 -> CONNACK return
// code 2 (identifier rejected), then close.
#[tokio::test]
async fn zero_length_client_id_without_clean_session_refused_v311() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v311("", false, 60).await;
        assert_eq!(ack.reason.to_v3_connack(), 2, "CONNACK {ack:?}");
        assert!(
            !ack.session_present,
            "[MQTT-3.2.2-4] session present 0 on refusal"
        );
        c.expect_closed().await;
    })
    .await;
}

// 5.0 [MQTT-3.1.3-6], [MQTT-3.2.2-16]: empty client id -> the CONNACK carries an
// Assigned Client Identifier.
#[tokio::test]
async fn zero_length_client_id_v5_gets_assigned_identifier() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("", true, 60, Properties::default()).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        let assigned = ack.properties.assigned_client_identifier.clone();
        assert!(
            assigned.as_ref().is_some_and(|id| !id.is_empty()),
            "no Assigned Client Identifier in {ack:?}"
        );
        let mut other = RawClient::open(broker.addr()).await;
        let ack2 = other.connect_v5("", true, 60, Properties::default()).await;
        assert_ne!(
            ack2.properties.assigned_client_identifier, assigned,
            "ids must be unique"
        );
    })
    .await;
}

// 3.1.1 [MQTT-4.4.0-1], [MQTT-3.3.1-1]: an unacknowledged QoS 1 delivery is re-sent on
// reconnect of the persistent session, with its original packet id and DUP = 1.
#[tokio::test]
async fn unacked_qos1_delivery_resent_with_dup_after_reconnect() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v311(addr, "redeliver", false).await;
        sub.subscribe(&[("redo/t", QoS::AtLeastOnce)]).await;
        let mut publ = RawClient::connected_v311(addr, "redeliver-pub", true).await;
        publ.publish("redo/t", QoS::AtLeastOnce, false, b"m1").await;
        let first = sub.expect_publish().await;
        assert_eq!(first.payload.as_ref(), b"m1");
        assert!(!first.dup, "first delivery has DUP = 0 [MQTT-4.3.2-1]");
        drop(sub); // no PUBACK, no DISCONNECT

        let mut sub = RawClient::open(addr).await;
        let ack = sub.connect_v311("redeliver", false, 60).await;
        assert!(ack.session_present);
        let again = sub.expect_publish().await;
        assert_eq!(again.payload.as_ref(), b"m1");
        assert!(again.dup, "re-delivery must set DUP = 1");
        assert_eq!(
            again.packet_id(),
            first.packet_id(),
            "original packet identifier"
        );
        sub.ack(&again).await;
    })
    .await;
}
