//! Cluster mode under injected faults (`fault-injection` builds): three `nats-server`s
//! and three Starling nodes, as in tests/cluster.rs. Skipped, with a message, only where
//! nats-server is not installed and `CI` is unset.
#![cfg(feature = "fault-injection")]

mod common;
#[path = "cluster/replay.rs"]
mod replay;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    await_routes, connect_persistent, drain, nats_server_or_skip, recv_payload, text,
    BrokerProcess, RawClient, StarlingCluster,
};
use starling::protocol::{Properties, QoS, ReasonCode};

const BODY: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(500);

// A persistent session resumes on node 2 after kill -9 of its node, and node 2's router
// fails on the message log replay's answer while the session's new deliveries are held
// and a publisher streams QoS 1: after the restart the router asks for the replay again
// and releases what it holds, so every acknowledged message arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_fails_while_a_replay_holds_deliveries() {
    let Some(bin) = nats_server_or_skip("router_fails_while_a_replay_holds_deliveries") else {
        return;
    };
    let mut cluster = StarlingCluster::start(&bin);
    let body = replay::every_acknowledged_message_arrives_despite(&mut cluster, &["ReplayDone"]);
    tokio::time::timeout(BODY, body)
        .await
        .expect("cluster test body exceeded its bound");
}

// The same resume, with two failures on node 2: the restore of the session's
// subscriptions (its CONNECT is refused, the client connects again), then the release
// of the held deliveries, after one went out and the next was taken from the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_fails_restoring_a_session_and_releasing_held_deliveries() {
    let name = "router_fails_restoring_a_session_and_releasing_held_deliveries";
    let Some(bin) = nats_server_or_skip(name) else {
        return;
    };
    let mut cluster = StarlingCluster::start(&bin);
    let faults = ["RestoreSession", "ReplayDone/held"];
    let body = replay::every_acknowledged_message_arrives_despite(&mut cluster, &faults);
    tokio::time::timeout(BODY, body)
        .await
        .expect("cluster test body exceeded its bound");
}

// A QoS 1 stream from node 1 to a persistent subscriber on node 2, while node 2's
// router fails once in each handler that cluster events run: a message from another
// node (its publisher was answered already), a retained message from the cluster's
// stream, a new connection finding nothing stored, and another node taking a session
// over. Every acknowledged message arrives, delivery does not stall, the retained
// message stays on node 2, and the session taken over is closed on node 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_handlers_fail_while_a_qos1_stream_crosses_the_cluster() {
    let name = "cluster_handlers_fail_while_a_qos1_stream_crosses_the_cluster";
    let Some(bin) = nats_server_or_skip(name) else {
        return;
    };
    let cluster = StarlingCluster::start(&bin);
    tokio::time::timeout(BODY, stream_despite_faults(&cluster))
        .await
        .expect("cluster test body exceeded its bound");
}

// Node 2 knows only NATS server 2 (as in tests/cluster_partition.rs); killing it cuts
// the node off, and after the grace its router evicts the local sessions, told once by
// the isolation watcher. The router fails in that eviction (`EvictSessions`): the 5.0
// client on node 2 must still get DISCONNECT 0x9C, not stay connected to a node the
// cluster no longer hears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_eviction_still_closes_the_isolated_nodes_clients() {
    let name = "a_failed_eviction_still_closes_the_isolated_nodes_clients";
    let Some(bin) = nats_server_or_skip(name) else {
        return;
    };
    let mut cluster =
        StarlingCluster::start_with(&bin, "isolation_grace_ms = 500\n", |i, urls| match i {
            2 => vec![urls[2].clone()],
            _ => vec![urls[i].clone(), urls[1 - i].clone()],
        });
    let body = async {
        let n2 = cluster.addr(2);
        let mut v5 = RawClient::connected_v5(n2, "evict-v5", Properties::default()).await;
        let mut arm = RawClient::connected_v311(n2, "arm-evict", true).await;
        arm.publish(
            "$fault/router/EvictSessions",
            QoS::AtLeastOnce,
            false,
            b"arm",
        )
        .await;
        arm.disconnect().await;
        cluster.nats.servers[2].kill9();
        // The grace, and the NATS client noticing the loss (seconds).
        let disconnect = v5.expect_closed_within(WAIT).await;
        assert_eq!(
            disconnect.map(|d| d.reason),
            Some(ReasonCode::USE_ANOTHER_SERVER),
            "the 5.0 client on the isolated node gets DISCONNECT 0x9C"
        );
        let log = cluster.nodes[2].log_text();
        assert!(
            log.contains("injected fault in router EvictSessions"),
            "node 2's router failed in EvictSessions"
        );
    };
    tokio::time::timeout(BODY, body)
        .await
        .expect("cluster test body exceeded its bound");
}

/// Upper bound of messages the stream publishes.
const MAX_STREAM: u32 = 20_000;
const RESTARTED: &str = "router restarted";

async fn stream_despite_faults(cluster: &StarlingCluster) {
    let (mut sub, present) = connect_persistent(&cluster.nodes[2], "l-sub").await;
    assert!(!present);
    sub.subscribe(&[("l/#", QoS::AtLeastOnce)]).await;
    let mut p = RawClient::connected_v5(cluster.addr(1), "l-pub", Properties::default()).await;
    await_routes(&mut p, "l/probe", std::slice::from_mut(&mut sub), &[0]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until(p, Arc::clone(&stop)));
    // Until nothing arrives for 2 s: a stall ends it early, and messages go missing.
    let subscriber = tokio::spawn(async move { drain(&mut sub, QUIET * 4, BODY).await });
    let node = &cluster.nodes[2];
    let mut moved = connect_persistent(node, "l-moved").await.0;
    for handler in [
        "RouteRemote",
        "RetainRemote",
        "ForgetClient",
        "RemoteTakeover",
    ] {
        let n = count(node, RESTARTED);
        let mut arm =
            RawClient::connected_v5(cluster.addr(2), "l-arm", Properties::default()).await;
        let topic = format!("$fault/router/{handler}");
        arm.publish(&topic, QoS::AtLeastOnce, false, b"arm").await;
        arm.disconnect().await;
        match handler {
            "RetainRemote" => {
                let mut r =
                    RawClient::connected_v5(cluster.addr(1), "l-ret", Properties::default()).await;
                r.publish("l-ret/x", QoS::AtLeastOnce, true, b"kept").await;
                r.disconnect().await;
            }
            "ForgetClient" => {
                let (fresh, present) = connect_persistent(node, "l-fresh").await;
                assert!(!present);
                fresh.disconnect().await;
            }
            "RemoteTakeover" => {
                let (there, present) = connect_persistent(&cluster.nodes[0], "l-moved").await;
                assert!(present, "the session moved to node 0");
                moved.expect_closed_within(WAIT).await;
                there.disconnect().await;
            }
            // Run by the stream.
            _ => {}
        }
        logged_again(node, RESTARTED, n).await;
    }
    stop.store(true, Ordering::SeqCst);
    let published = tokio::time::timeout(WAIT * 3, publisher)
        .await
        .expect("publisher bounded")
        .expect("every publish acknowledged");
    let got: BTreeSet<u32> = subscriber
        .await
        .expect("subscriber")
        .iter()
        .map(|m| number(&text(m)))
        .collect();
    let missing: Vec<u32> = (1..=published).filter(|i| !got.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "{} of {published} acknowledged messages never delivered: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let mut reader =
        RawClient::connected_v5(cluster.addr(2), "l-read", Properties::default()).await;
    reader.subscribe(&[("l-ret/#", QoS::AtLeastOnce)]).await;
    let kept = recv_payload(&mut reader, "kept", WAIT).await;
    assert!(kept.retain, "the retained message stayed on node 2");
    let log = node.log_text();
    for handler in [
        "RouteRemote",
        "RetainRemote",
        "ForgetClient",
        "RemoteTakeover",
    ] {
        let injected = format!("injected fault in router {handler}");
        assert!(
            log.contains(&injected),
            "the fault {handler} fired on node 2"
        );
    }
}

/// Publishes `l/i` (payload `l-i`) at QoS 1 for i = 1, 2, ..., each once the previous
/// was acknowledged, until `stop`; returns how many were acknowledged.
async fn publish_until(mut p: RawClient, stop: Arc<AtomicBool>) -> u32 {
    let mut i = 0;
    while i < MAX_STREAM && !stop.load(Ordering::SeqCst) {
        i += 1;
        let payload = format!("l-{i}");
        p.publish(
            &format!("l/{i}"),
            QoS::AtLeastOnce,
            false,
            payload.as_bytes(),
        )
        .await;
    }
    p.disconnect().await;
    i
}

fn number(payload: &str) -> u32 {
    payload
        .strip_prefix("l-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected payload {payload:?}"))
}

/// How often the node's log says `text`.
fn count(node: &BrokerProcess, text: &str) -> usize {
    node.log_text().matches(text).count()
}

/// Waits (up to 10 s) until the log says `text` more than `before` times.
async fn logged_again(node: &BrokerProcess, text: &str, before: usize) {
    let deadline = Instant::now() + WAIT;
    while count(node, text) <= before {
        assert!(Instant::now() < deadline, "no new {text:?} in the log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
