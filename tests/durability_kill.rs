//! Crash durability, black box: the broker is SIGKILLed (no shutdown code runs) and
//! started again on the same data directory and port. With the default
//! `durability = "sync"`, a PUBACK/PUBCOMP promises that the message reached the disk
//! for every persistent subscriber, so nothing acknowledged may be lost; QoS 2 messages
//! must also never be delivered twice (the receiving client follows method B of
//! MQTT 3.1.1 section 4.3.3 across its reconnect, see `common::Collector`).

mod common;

use std::time::Duration;

use common::{
    bounded, check_retained, connect_persistent, missing, publish_pipelined, publish_retained,
    subscribe_offline, BrokerProcess, Collector, Published, RawClient, Stop,
};
use starling::protocol::QoS;

/// Reconnects `id` after the restart (asserting session present) and collects until
/// 2 s pass without a packet.
async fn collect_rest(broker: &BrokerProcess, id: &str, col: &mut Collector) {
    let (mut c, present) = connect_persistent(broker, id).await;
    assert!(
        present,
        "{id}: session present must be 1 after kill -9 and restart"
    );
    let stop = col.run(&mut c, None, Duration::from_secs(2)).await;
    assert_eq!(
        stop,
        Stop::Silence,
        "{id}: connection dropped after restart"
    );
    c.disconnect().await;
}

// kill -9 right after the last PUBACK/PUBCOMP: every acknowledged message is delivered
// after the restart (QoS 1 at least once, QoS 2 exactly once) and retained messages are
// intact.
#[tokio::test]
async fn kill9_after_last_ack_loses_nothing() {
    let mut broker = BrokerProcess::start();
    let (q1, q2) = bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        subscribe_offline(&broker, "s2", "d/q2", QoS::ExactlyOnce).await;
        let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
        publish_retained(&mut p, 50).await;
        let q1 = publish_pipelined(&mut p, "d/q1", QoS::AtLeastOnce, 0..500, 50, None).await;
        let q2 = publish_pipelined(
            &mut p,
            "d/q2",
            QoS::ExactlyOnce,
            0..500,
            50,
            Some((500, &mut broker)),
        )
        .await;
        (q1, q2)
    })
    .await;
    assert_eq!(q1.completed.len(), 500, "QoS 1 publishes acknowledged");
    assert_eq!(q2.completed.len(), 500, "QoS 2 publishes completed");
    broker.restart();
    bounded(async {
        let mut s1 = Collector::new(0);
        collect_rest(&broker, "s1", &mut s1).await;
        let lost = missing(&q1.completed, &s1);
        assert!(
            lost.is_empty(),
            "s1 (QoS 1): {} of 500 acknowledged messages lost: {lost:?}; duplicates: {} copies",
            lost.len(),
            s1.duplicate_copies()
        );
        eprintln!(
            "kill9_after_last_ack: s1 acked 500, received {} distinct, {} duplicate copies",
            s1.counts.len(),
            s1.duplicate_copies()
        );
        let mut s2 = Collector::new(0);
        collect_rest(&broker, "s2", &mut s2).await;
        let lost = missing(&q2.completed, &s2);
        assert!(
            lost.is_empty() && s2.duplicates().is_empty(),
            "s2 (QoS 2): lost {lost:?}, duplicates {:?}",
            s2.duplicates()
        );
        check_retained(&broker, 50).await;
    })
    .await;
}

/// The crash-while-online scenario for one subscriber at `qos`: the subscriber is online
/// and acking slowly while 2,000 messages are published; the broker is SIGKILLed after
/// ~1,000 acknowledged publishes; after the restart the subscriber reconnects (with the
/// same collector, so QoS 2 method B state carries over) and collects the rest.
/// Returns (what the publisher saw, collector, distinct received before the kill).
async fn kill_while_online(qos: QoS) -> (Published, Collector, usize) {
    let t0 = std::time::Instant::now();
    let (id, t) = match qos {
        QoS::AtLeastOnce => ("s1", "d/q1"),
        _ => ("s2", "d/q2"),
    };
    let mut broker = BrokerProcess::start();
    // 1 ms of sleep per message read: slower than the publisher (about 1,000 group
    // commits a second here), so at the kill a backlog of acknowledged messages is
    // queued or in flight towards the subscriber, not just a few.
    let mut col = Collector::new(1);
    let (acked, before) = bounded(async {
        let (mut sub, present) = connect_persistent(&broker, id).await;
        assert!(!present);
        sub.subscribe(&[(t, qos)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
        let (published, stop) = tokio::join!(
            publish_pipelined(&mut p, t, qos, 0..2000, 50, Some((1000, &mut broker))),
            col.run(&mut sub, None, Duration::from_secs(5)),
        );
        assert!(published.closed, "the publisher must see the connection drop");
        assert_eq!(stop, Stop::Closed, "{id} must see the connection drop");
        eprintln!(
            "{id}: kill after {:?}: sent {}, completed {}, PUBREC'd {}, sub publishes {}, distinct {}",
            t0.elapsed(),
            published.sent,
            published.completed.len(),
            published.recd.len(),
            col.publishes,
            col.counts.len()
        );
        let before = col.counts.len();
        (published, before)
    })
    .await;
    broker.restart();
    col.slow_every = 0;
    bounded(collect_rest(&broker, id, &mut col)).await;
    eprintln!(
        "{id}: after restart: sub publishes {} distinct {}",
        col.publishes,
        col.counts.len()
    );
    (acked, col, before)
}

// kill -9 while a QoS 1 subscriber is online and receiving: every PUBACKed message
// reaches it at least once across its two connections.
#[tokio::test]
async fn kill9_while_subscriber_online_receiving() {
    let (published, col, before) = kill_while_online(QoS::AtLeastOnce).await;
    let acked = published.completed;
    let lost = missing(&acked, &col);
    let summary = format!(
        "QoS 1: {} PUBACKed, {before} received before the kill, {} distinct in total, \
         {} duplicate copies, {} lost",
        acked.len(),
        col.counts.len(),
        col.duplicate_copies(),
        lost.len()
    );
    eprintln!("kill9_while_subscriber_online_receiving: {summary}");
    assert!(acked.len() >= 1000, "{summary}");
    assert!(lost.is_empty(), "{summary}; lost {lost:?}");
}

// The QoS 2 variant: every PUBCOMPed message reaches the subscriber exactly once across
// its two connections (the subscriber suppresses re-sends of packet ids it PUBREC'd and
// has not seen released, as a real client must).
#[tokio::test]
async fn kill9_while_qos2_subscriber_online_receiving() {
    let (published, col, before) = kill_while_online(QoS::ExactlyOnce).await;
    let acked = published.completed;
    let lost = missing(&acked, &col);
    // sync durability also promises that a PUBREC is sent only once the message is on
    // disk for its subscribers, so PUBREC'd messages must not be lost either.
    let lost_recd = missing(&published.recd, &col);
    let dups = col.duplicates();
    let summary = format!(
        "QoS 2: {} PUBCOMPed, {before} received before the kill, {} distinct in total, \
         {} re-sends suppressed by method B, {} duplicate deliveries, {} lost",
        acked.len(),
        col.counts.len(),
        col.suppressed,
        col.duplicate_copies(),
        lost.len()
    );
    eprintln!("kill9_while_qos2_subscriber_online_receiving: {summary}");
    assert!(acked.len() >= 1000, "{summary}");
    assert!(lost.is_empty(), "{summary}; lost {lost:?}");
    assert!(dups.is_empty(), "{summary}; duplicated {dups:?}");
    assert!(
        lost_recd.is_empty(),
        "{summary}; PUBREC'd ({}) but lost: {lost_recd:?}",
        published.recd.len()
    );
}
