//! Cluster mode's `/metrics` series, black box: two Starling nodes on three
//! nats-servers. The NATS connection gauge follows the servers going away and coming
//! back, message-log writes are timed, and a persistent session resumed on the other
//! node counts a replay and the messages it read back. Skipped, with a message, only
//! where nats-server is not installed and `CI` is unset.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::http_get;
use common::{
    bounded, drain, free_port, nats_server_or_skip, node_config, session_expiry, BrokerProcess,
    NatsCluster, RawClient,
};
use prometheus_parse::{Scrape, Value};
use starling::protocol::{Properties, QoS};

/// A node on `urls` with its HTTP listener; the listener's address.
fn node(i: usize, urls: &[String]) -> (BrokerProcess, SocketAddr) {
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let toml = format!("{}[http]\nbind = \"{http}\"\n", node_config(i, urls));
    (BrokerProcess::start_cluster_node(&toml), http)
}

/// The sum of `name`'s samples (a histogram: its count).
fn value(http: SocketAddr, name: &str) -> f64 {
    let (status, body) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

/// Waits (up to 20 s) until `name` satisfies `ok`.
async fn metric_becomes(http: SocketAddr, name: &str, ok: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = value(http, name);
        if ok(v) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_series_follow_nats_the_log_and_replays() {
    let Some(bin) = nats_server_or_skip("cluster_series_follow_nats_the_log_and_replays") else {
        return;
    };
    let mut nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let (a, http_a) = node(0, &urls);
    let (b, http_b) = node(1, &urls);
    bounded(async {
        assert_eq!(value(http_a, "starling_cluster_nats_connected"), 1.0);
        assert_eq!(value(http_a, "starling_cluster_replays_total"), 0.0);

        // A persistent subscriber on node 0 goes away; five QoS 1 messages are written
        // to the log for it; it comes back on node 1, which replays the log.
        let mut sub = RawClient::connected_v5(a.addr(), "m-sub", session_expiry(300)).await;
        sub.subscribe(&[("m/#", QoS::AtLeastOnce)]).await;
        sub.disconnect().await;
        let mut publisher = RawClient::connected_v5(a.addr(), "m-pub", Properties::default()).await;
        for i in 0..5 {
            publisher
                .publish("m/x", QoS::AtLeastOnce, false, format!("{i}").as_bytes())
                .await;
        }
        assert!(value(http_a, "starling_cluster_log_write_seconds") >= 5.0);
        let mut sub = RawClient::open(b.addr()).await;
        let ack = sub
            .connect_v5("m-sub", false, 30, session_expiry(300))
            .await;
        assert!(ack.session_present);
        let got = drain(
            &mut sub,
            Duration::from_millis(500),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(got.len(), 5, "every message reaches the resumed session");
        metric_becomes(http_b, "starling_cluster_replays_total", |v| v >= 1.0).await;

        // Every NATS server goes away, then comes back.
        for s in &mut nats.servers {
            s.kill9();
        }
        metric_becomes(http_a, "starling_cluster_nats_connected", |v| v == 0.0).await;
        metric_becomes(http_a, "starling_cluster_nats_disconnects_total", |v| {
            v >= 1.0
        })
        .await;
        for s in &mut nats.servers {
            s.restart();
        }
        metric_becomes(http_a, "starling_cluster_nats_connected", |v| v == 1.0).await;
    })
    .await;
}
