//! Cluster mode's operations surface, black box: two Starling nodes on three
//! nats-servers, each with its `[http]` listener.
//! - `/metrics`: the NATS connection gauge follows the servers going away and coming
//!   back, message-log writes are timed, and a persistent session resumed on the other
//!   node counts a replay and the messages it read back.
//! - `/api/v1` answers cluster-wide: node 0 lists, shows and kicks a client of node 1,
//!   lists its subscriptions, and deletes a retained message on every node.
//!
//! Skipped, with a message, only where nats-server is not installed and `CI` is unset.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{http_get, http_request};
use common::{
    bounded, drain, free_port, nats_server_or_skip, node_config, session_expiry, BrokerProcess,
    NatsCluster, RawClient,
};
use prometheus_parse::{Scrape, Value};
use starling::protocol::{Properties, QoS, ReasonCode};
use tokio::sync::Mutex;

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());
const TOKEN: &str = "0123456789abcdef-cluster-admin";

/// A node on `urls` with its HTTP listener (and admin token in `dir`); the listener's
/// address.
fn node(i: usize, urls: &[String], dir: &std::path::Path) -> (BrokerProcess, SocketAddr) {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("write token");
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let toml = format!(
        "{}[http]\nbind = \"{http}\"\ntoken_file = {:?}\n",
        node_config(i, urls),
        token.display().to_string()
    );
    (BrokerProcess::start_cluster_node(&toml), http)
}

/// An admin request: the status and the JSON body.
fn api(http: SocketAddr, method: &str, path: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {TOKEN}");
    let r = http_request(http, method, path, Some(&auth), None);
    let body = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, body)
}

/// The `client_id`s of a list answer's items.
fn ids(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["client_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
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
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let (a, http_a) = node(0, &urls, dir.path());
    let (b, http_b) = node(1, &urls, dir.path());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_answers_cluster_wide() {
    let Some(bin) = nats_server_or_skip("the_admin_api_answers_cluster_wide") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let (a, http_a) = node(0, &urls, dir.path());
    let (b, http_b) = node(1, &urls, dir.path());
    bounded(async {
        let mut far = RawClient::connected_v5(b.addr(), "on-b", Properties::default()).await;
        far.subscribe(&[("adm/#", QoS::AtLeastOnce)]).await;
        let mut near = RawClient::connected_v5(a.addr(), "on-a", Properties::default()).await;
        near.subscribe(&[("adm/a", QoS::AtMostOnce)]).await;
        near.publish("adm/r", QoS::AtLeastOnce, true, b"kept").await;
        assert_eq!(&far.recv_publish_acked().await.payload[..], b"kept");

        let (status, list) = api(http_a, "GET", "/api/v1/clients");
        assert_eq!(status, 200, "{list}");
        let listed = ids(&list);
        assert!(
            listed.contains(&"on-a".to_owned()) && listed.contains(&"on-b".to_owned()),
            "{list}"
        );
        assert_eq!(list["total"], listed.len());
        let (_, page) = api(http_a, "GET", "/api/v1/clients?limit=1&page=2");
        assert_eq!(ids(&page), ["on-b"], "sorted, then paged: {page}");

        let (status, one) = api(http_a, "GET", "/api/v1/clients/on-b");
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["connected"], true);
        assert_eq!(one["protocol"], "5.0");
        assert_eq!(one["subscriptions"][0]["filter"], "adm/#");
        assert_eq!(api(http_a, "GET", "/api/v1/clients/nobody").0, 404);

        let (_, subs) = api(http_a, "GET", "/api/v1/subscriptions?filter=adm/%23");
        assert_eq!(
            ids(&subs),
            ["on-b", "on-a"],
            "by filter, then client: {subs}"
        );

        let (status, kicked) = api(http_a, "DELETE", "/api/v1/clients/on-b");
        assert_eq!(status, 200, "{kicked}");
        let d = far.expect_closed().await;
        assert_eq!(d.map(|d| d.reason), Some(ReasonCode::ADMINISTRATIVE_ACTION));

        let (status, _) = api(http_a, "DELETE", "/api/v1/retained/adm/r");
        assert_eq!(status, 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, retained) = api(http_b, "GET", "/api/v1/retained?topic=adm/%23");
            if retained["total"] == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still retained on node 1: {retained}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}
