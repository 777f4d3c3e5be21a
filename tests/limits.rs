//! `[limits]` over the wire (the broker binary, raw clients at both protocol levels):
//! the subscription limit per client, the topic level limit, the session expiry cap
//! (5.0 told in CONNACK, 3.1.1 persistent sessions expiring), and the full-queue policy
//! (`drop_new`, `drop_oldest`) with what a restart brings back.

mod common;

use std::time::Duration;

use common::{bounded, publish_packet, session_expiry, BrokerProcess, RawClient};
use starling::protocol::{Packet, Properties, QoS, ReasonCode};

const Q1: QoS = QoS::AtLeastOnce;

// SUBACK 0x97 Quota exceeded (3.1.1: 0x80) for each new filter beyond
// max_subscriptions_per_client; a held filter may be renewed; a refused filter gets
// nothing.
#[actix_rt::test]
async fn subscriptions_beyond_the_limit_get_quota_exceeded() {
    let broker = BrokerProcess::start_with_limits(&[("max_subscriptions_per_client", 2)]);
    bounded(async {
        let mut v5 = RawClient::connected_v5(broker.addr(), "subs-v5", Properties::default()).await;
        let ack = v5.subscribe(&[("a", Q1), ("b", Q1), ("c", Q1)]).await;
        let granted = ReasonCode::granted(Q1);
        assert_eq!(ack.reasons, [granted, granted, ReasonCode::QUOTA_EXCEEDED]);
        let ack = v5.subscribe(&[("a", QoS::AtMostOnce), ("d", Q1)]).await;
        let renewed = ReasonCode::granted(QoS::AtMostOnce);
        assert_eq!(ack.reasons, [renewed, ReasonCode::QUOTA_EXCEEDED]);
        let mut publisher = RawClient::connected_v311(broker.addr(), "subs-pub", true).await;
        publisher.publish("c", Q1, false, b"refused filter").await;
        publisher.publish("b", Q1, false, b"held filter").await;
        let got = v5.recv_publish_acked().await;
        assert_eq!(
            (got.topic.as_str(), got.payload.as_ref()),
            ("b", &b"held filter"[..])
        );
        let mut v311 = RawClient::connected_v311(broker.addr(), "subs-v311", true).await;
        let ack = v311.subscribe(&[("a", Q1), ("b", Q1), ("c", Q1)]).await;
        assert_eq!(ack.reasons, [granted, granted, ReasonCode(0x80)]);
    })
    .await;
}

/// Sends a QoS 1 PUBLISH and returns its PUBACK's reason code.
async fn puback_reason(client: &mut RawClient, topic: &str) -> ReasonCode {
    let id = client.next_packet_id();
    let publish = publish_packet(topic, Q1, b"x", Some(id));
    client.send(Packet::Publish(publish)).await;
    let is_ack = |p: &Packet| matches!(p, Packet::PubAck(a) if a.packet_id == id);
    match client.wait_for("PUBACK", is_ack).await {
        Packet::PubAck(a) => a.reason,
        _ => unreachable!(),
    }
}

// A topic with more than max_topic_levels levels: PUBACK 0x90 for 5.0, acknowledged
// and dropped for 3.1.1, and a filter with more gets 0x8F (3.1.1: 0x80).
#[actix_rt::test]
async fn topics_with_too_many_levels_are_refused() {
    let broker = BrokerProcess::start_with_limits(&[("max_topic_levels", 3)]);
    bounded(async {
        let mut sub =
            RawClient::connected_v5(broker.addr(), "levels-sub", Properties::default()).await;
        let ack = sub.subscribe(&[("#", Q1), ("a/b/c/+", Q1)]).await;
        assert_eq!(
            ack.reasons,
            [ReasonCode::granted(Q1), ReasonCode::TOPIC_FILTER_INVALID]
        );
        let mut v5 =
            RawClient::connected_v5(broker.addr(), "levels-v5", Properties::default()).await;
        assert_eq!(
            puback_reason(&mut v5, "a/b/c/d").await,
            ReasonCode::TOPIC_NAME_INVALID
        );
        assert_eq!(puback_reason(&mut v5, "a/b/c").await, ReasonCode::SUCCESS);
        let mut v311 = RawClient::connected_v311(broker.addr(), "levels-v311", true).await;
        assert_eq!(
            puback_reason(&mut v311, "x/y/z/w").await,
            ReasonCode::SUCCESS
        );
        assert_eq!(puback_reason(&mut v311, "x/y/z").await, ReasonCode::SUCCESS);
        let ack = v311.subscribe(&[("x/y/z/#", Q1)]).await;
        assert_eq!(ack.reasons, [ReasonCode(0x80)]);
        // Only the topics within the limit were routed, in order.
        for want in ["a/b/c", "x/y/z"] {
            let got = sub.recv_publish_acked().await;
            assert_eq!(got.topic.as_str(), want);
        }
        sub.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

// max_session_expiry_secs: a 5.0 client asking for more is told the cap in CONNACK; a
// 3.1.1 persistent session, which never expires by the protocol, expires after it.
#[actix_rt::test]
async fn session_expiry_is_capped_for_both_protocol_levels() {
    let broker = BrokerProcess::start_with_limits(&[("max_session_expiry_secs", 2)]);
    let addr = broker.addr();
    bounded(async {
        let mut v5 = RawClient::open(broker.addr()).await;
        let ack = v5
            .connect_v5("cap-v5", false, 60, session_expiry(3600))
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert_eq!(ack.properties.session_expiry_interval, Some(2));
        let asked = |secs| async move {
            let mut c = RawClient::open(addr).await;
            let ack = c
                .connect_v5("cap-v5-short", true, 60, session_expiry(secs))
                .await;
            ack.properties.session_expiry_interval
        };
        assert_eq!(asked(1).await, None, "within the cap: nothing to say");

        let reconnect = || async {
            let mut c = RawClient::open(addr).await;
            let ack = c.connect_v311("cap-311", false, 60).await;
            assert_eq!(ack.reason, ReasonCode::SUCCESS);
            (c, ack.session_present)
        };
        let (c, _) = reconnect().await;
        c.disconnect().await;
        let (c, present) = reconnect().await;
        assert!(present, "the session outlives its connection");
        c.disconnect().await;
        // Twice the cap: the session is gone.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let (_c, present) = reconnect().await;
        assert!(!present, "the 3.1.1 session expired after the cap");
    })
    .await;
}

/// An offline persistent subscriber of `q/t` gets six QoS 1 messages into a queue of
/// three, then the broker restarts; returns the payloads the subscriber gets back.
async fn overflow_then_restart(broker: &mut BrokerProcess) -> Vec<String> {
    let mut slow = RawClient::connected_v311(broker.addr(), "slow", false).await;
    slow.subscribe(&[("q/t", Q1)]).await;
    slow.disconnect().await;
    let mut publisher = RawClient::connected_v311(broker.addr(), "fast", true).await;
    for i in 0..6 {
        publisher
            .publish("q/t", Q1, false, format!("m{i}").as_bytes())
            .await;
    }
    broker.logged("session queue full", 1).await;
    publisher.disconnect().await;
    broker.terminate();
    broker.restart();
    let mut slow = RawClient::open(broker.addr()).await;
    let ack = slow.connect_v311("slow", false, 60).await;
    assert!(ack.session_present);
    let mut got = Vec::new();
    for _ in 0..3 {
        let p = slow.recv_publish_acked().await;
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    slow.expect_nothing(Duration::from_millis(300)).await;
    assert_eq!(
        broker.log_text().matches("session queue full").count(),
        1,
        "the first drop is logged, once"
    );
    got
}

const SMALL_QUEUE: &str = "[server]\nworkers = 1\n\n[limits]\nmax_queued_messages = 3\n";

// queue_full = "drop_new" (the default): the first three stay; the dropped ones do not
// come back from the store after a restart.
#[actix_rt::test]
async fn a_full_queue_drops_new_messages_by_default() {
    let mut broker = BrokerProcess::start_with_config(Some(SMALL_QUEUE));
    bounded(async {
        assert_eq!(overflow_then_restart(&mut broker).await, ["m0", "m1", "m2"]);
    })
    .await;
}

// queue_full = "drop_oldest": the last three stay, across a restart.
#[actix_rt::test]
async fn drop_oldest_keeps_the_newest_messages() {
    let toml = format!("{SMALL_QUEUE}queue_full = \"drop_oldest\"\n");
    let mut broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        assert_eq!(overflow_then_restart(&mut broker).await, ["m3", "m4", "m5"]);
    })
    .await;
}
