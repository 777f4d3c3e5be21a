//! Cluster mode, black box: each node's log feed reads only what its plain subscriptions
//! match (`/metrics`: `starling_cluster_feed_entries_total`), and a subscription made
//! while QoS 1 traffic flows gets every message published after its SUBACK although the
//! feed recreates its consumer for it. Three nats-servers and three nodes, each with an
//! `[http]` listener. Skipped, with a message, only where nats-server is not installed
//! and `CI` is unset.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::http_get;
use common::{
    bounded, drain, free_port, nats_server_or_skip, node_config, recv_payload, text, BrokerProcess,
    Event, NatsCluster, RawClient,
};
use prometheus_parse::{Scrape, Value};
use starling::protocol::{Packet, QoS};
use tokio::sync::Mutex;

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());
const FEED_ENTRIES: &str = "starling_cluster_feed_entries_total";

/// Node `i` on `urls` (preferring server `i`), with its HTTP listener's address.
fn node(i: usize, urls: &[String]) -> (BrokerProcess, SocketAddr) {
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut mine = urls.to_vec();
    mine.rotate_left(i);
    let toml = format!("{}[http]\nbind = \"{http}\"\n", node_config(i, &mine));
    (BrokerProcess::start_cluster_node(&toml), http)
}

/// The value of the counter `name` on `http`'s `/metrics`.
fn counter(http: SocketAddr, name: &str) -> f64 {
    let (status, body) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reads_only_the_log_entries_it_is_interested_in() {
    let Some(bin) = nats_server_or_skip("a_node_reads_only_the_log_entries_it_is_interested_in")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let nodes: Vec<_> = (0..3).map(|i| node(i, &urls)).collect();
    let addr = |i: usize| nodes[i].0.addr();
    let http = |i: usize| nodes[i].1;
    const N: usize = 50;
    bounded(async {
        // Node 1 wants `feed/only-b`; node 2 wants something else; node 0 nothing.
        let mut b = RawClient::connected_v311(addr(1), "feed-b", true).await;
        b.subscribe(&[("feed/only-b", QoS::AtLeastOnce)]).await;
        let mut c = RawClient::connected_v311(addr(2), "feed-c", true).await;
        c.subscribe(&[("feed/other/#", QoS::AtLeastOnce)]).await;
        let before: Vec<f64> = (0..3).map(|i| counter(http(i), FEED_ENTRIES)).collect();

        let mut publisher = RawClient::connected_v311(addr(0), "feed-pub", true).await;
        for i in 0..N {
            let payload = format!("m{i}");
            publisher
                .publish("feed/only-b", QoS::AtLeastOnce, false, payload.as_bytes())
                .await;
        }
        // The marker comes after them in the log: once node 2 routed it, its feed is
        // past every entry above.
        publisher
            .publish("feed/other/x", QoS::AtLeastOnce, false, b"marker")
            .await;
        let got = drain(&mut b, Duration::from_millis(500), Duration::from_secs(15)).await;
        assert_eq!(got.len(), N, "node 1's subscriber gets every message");
        recv_payload(&mut c, "marker", Duration::from_secs(15)).await;

        let after: Vec<f64> = (0..3).map(|i| counter(http(i), FEED_ENTRIES)).collect();
        let grew: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        assert_eq!(
            grew[1], N as f64,
            "node 1 reads the {N} entries it wants: {grew:?}"
        );
        assert_eq!(grew[2], 1.0, "node 2 reads only its marker: {grew:?}");
        assert_eq!(grew[0], 0.0, "node 0 subscribes to nothing: {grew:?}");
    })
    .await;
    drop(nodes);
}

/// Publishes QoS 1 messages `0, 1, ...` on `topic` one after the other until `stop`;
/// `sending` holds the number of the one being sent.
async fn stream(mut c: RawClient, topic: &str, sending: Arc<AtomicU32>, stop: Arc<AtomicBool>) {
    let mut i = 0u32;
    while !stop.load(Ordering::SeqCst) {
        sending.store(i, Ordering::SeqCst);
        c.publish(topic, QoS::AtLeastOnce, false, format!("{i}").as_bytes())
            .await;
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_made_while_traffic_flows_gets_everything_after_its_suback() {
    let Some(bin) = nats_server_or_skip(
        "a_subscription_made_while_traffic_flows_gets_everything_after_its_suback",
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let nodes: Vec<_> = (0..3).map(|i| node(i, &urls)).collect();
    const SUBSCRIBERS: usize = 4;
    const AFTER: u32 = 60;
    bounded(async {
        // Node 1 already follows other traffic, so its feed has a consumer with a filter
        // and a position that moves.
        let mut busy_sub = RawClient::connected_v311(nodes[1].0.addr(), "busy-sub", true).await;
        busy_sub.subscribe(&[("busy/#", QoS::AtLeastOnce)]).await;
        let stop = Arc::new(AtomicBool::new(false));
        let busy = RawClient::connected_v311(nodes[2].0.addr(), "busy-pub", true).await;
        let busy_sending = Arc::new(AtomicU32::new(0));
        let busy_task = tokio::spawn(stream(busy, "busy/x", busy_sending, stop.clone()));
        let flow = RawClient::connected_v311(nodes[0].0.addr(), "flow-pub", true).await;
        let sending = Arc::new(AtomicU32::new(0));
        let flow_task = tokio::spawn(stream(flow, "flow/t", sending.clone(), stop.clone()));

        // Subscribers join node 1 one after the other while both streams flow; each
        // SUBACK adds filters new to the node.
        let mut subs = Vec::new();
        for k in 0..SUBSCRIBERS {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let mut s =
                RawClient::connected_v311(nodes[1].0.addr(), &format!("flow-sub-{k}"), true).await;
            let extra = format!("flow/extra/{k}");
            s.subscribe(&[
                ("flow/t", QoS::AtLeastOnce),
                (extra.as_str(), QoS::AtLeastOnce),
            ])
            .await;
            // What is sent from now on was published after the SUBACK.
            let first = sending.load(Ordering::SeqCst) + 1;
            subs.push((s, first));
        }
        let last_first = subs.last().map_or(0, |(_, f)| *f);
        let deadline = Instant::now() + Duration::from_secs(15);
        while sending.load(Ordering::SeqCst) < last_first + AFTER {
            assert!(Instant::now() < deadline, "the stream stalled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let _ = flow_task.await;
        let _ = busy_task.await;
        let end = sending.load(Ordering::SeqCst);

        for (k, (s, first)) in subs.iter_mut().enumerate() {
            let mut got = Vec::new();
            loop {
                match s.next_event(Duration::from_secs(10)).await {
                    Event::Packet(Packet::Publish(p)) => {
                        s.ack(&p).await;
                        let i: u32 = text(&p).parse().expect("a number");
                        got.push(i);
                        if i == end {
                            break;
                        }
                    }
                    Event::Packet(_) => {}
                    other => panic!("subscriber {k}: {other:?} after {:?}", got.last()),
                }
            }
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "subscriber {k} got them in order, once"
            );
            let missing: Vec<u32> = (*first..=end).filter(|i| !got.contains(i)).collect();
            assert!(
                missing.is_empty(),
                "subscriber {k} (SUBACK before {first}) misses {missing:?}"
            );
        }
        let stray = drain(
            &mut busy_sub,
            Duration::from_millis(200),
            Duration::from_secs(5),
        )
        .await;
        assert!(!stray.is_empty(), "the busy stream reached node 1");
    })
    .await;
    drop(nodes);
}
