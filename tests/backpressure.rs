//! `[limits] queue_full = "backpressure"` against the broker binary: four pipelined QoS 1
//! publishers flood one subscriber that reads about ten times slower, through a queue of
//! 20 messages. Nothing acknowledged is lost (every message arrives, in order per
//! publisher), the broker's memory stays bounded, and `/metrics` shows the publishers
//! were held back. The same scenario with `drop_new` loses messages: the test can fail.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::overload::{flood, metric, read_slowly, Received, SILENCE};
use common::{bounded, free_port, BrokerProcess, RawClient};
use starling::protocol::QoS;

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: u32 = 300;
/// 32 KiB: the whole flood is 37.5 MiB, so a queue that kept it all would show.
const SIZE: usize = 32 * 1024;
const WINDOW: usize = 32;

/// A broker with a queue of 20 messages, the given policy and `/metrics`.
fn broker(policy: &str) -> (BrokerProcess, SocketAddr) {
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let toml = format!(
        "[http]\nbind = \"{http}\"\n\n[limits]\nmax_queued_messages = 20\nqueue_full = \"{policy}\"\n"
    );
    (BrokerProcess::start_with_config(Some(&toml)), http)
}

/// The flood against one slow subscriber; returns what each publisher had acknowledged
/// and what the subscriber got.
async fn scenario(broker: &BrokerProcess) -> (Vec<Vec<u32>>, Received) {
    let mut sub = RawClient::connected_v311(broker.addr(), "slow", true).await;
    sub.subscribe(&[("bp/#", QoS::AtLeastOnce)]).await;
    let mut publishers = Vec::new();
    for who in 0..PUBLISHERS {
        let c = RawClient::connected_v311(broker.addr(), &format!("fast-{who}"), true).await;
        let topic = format!("bp/{who}");
        publishers.push(async move { flood(c, who, &topic, PER_PUBLISHER, SIZE, WINDOW).await });
    }
    let want = PUBLISHERS * PER_PUBLISHER as usize;
    // ~1 ms a message: the publishers, unheld, send ten times as fast or more.
    let pause = Duration::from_millis(1);
    let reader = read_slowly(&mut sub, want, pause, SILENCE, || broker.rss_kib());
    let (acked, got) = tokio::join!(futures::future::join_all(publishers), reader);
    (acked, got)
}

#[actix_rt::test]
async fn backpressure_holds_publishers_and_loses_nothing() {
    let (broker, http) = broker("backpressure");
    let baseline_kib = broker.rss_kib();
    let (acked, got) = bounded(scenario(&broker)).await;
    let all: Vec<u32> = (0..PER_PUBLISHER).collect();
    for (who, acked) in acked.iter().enumerate() {
        assert_eq!(acked, &all, "publisher {who}: every message acknowledged");
        assert_eq!(
            got.per_publisher.get(&who),
            Some(&all),
            "publisher {who}: all, in order"
        );
    }
    let held = metric(http, "starling_limit_hits_total", "limit", "queue_full");
    assert!(held >= 1.0, "publishers were held back: {held}");
    let dropped = metric(
        http,
        "starling_messages_dropped_total",
        "reason",
        "queue_full",
    );
    assert_eq!(dropped, 0.0);
    // Queue 20 + 64 in flight + what the publishers' windows add: a few MiB of payload.
    let grown_mib = got.peak_rss_kib.saturating_sub(baseline_kib) / 1024;
    eprintln!("backpressure: held {held} times, RSS {baseline_kib} KiB + {grown_mib} MiB at peak");
    assert!(
        grown_mib < 24,
        "RSS grew by {grown_mib} MiB (baseline {baseline_kib} KiB)"
    );
    assert!(
        broker.log_text().contains("holding its publishers back"),
        "the full queue is logged"
    );
}

// The same flood with drop_new: the acknowledged messages that did not fit are lost.
#[actix_rt::test]
async fn drop_new_loses_messages_in_the_same_scenario() {
    let (broker, http) = broker("drop_new");
    let (acked, got) = bounded(scenario(&broker)).await;
    let acked: usize = acked.iter().map(Vec::len).sum();
    assert_eq!(
        acked,
        PUBLISHERS * PER_PUBLISHER as usize,
        "all acknowledged"
    );
    eprintln!(
        "drop_new: {} of {acked} acknowledged messages arrived",
        got.total()
    );
    assert!(
        got.total() < acked,
        "some were dropped: {} of {acked} arrived",
        got.total()
    );
    let dropped = metric(
        http,
        "starling_messages_dropped_total",
        "reason",
        "queue_full",
    );
    assert_eq!(dropped as usize, acked - got.total());
    assert_eq!(
        metric(http, "starling_limit_hits_total", "limit", "queue_full"),
        0.0
    );
}
