//! Cluster mode under injected faults (`fault-injection` builds): three `nats-server`s
//! and three Starling nodes, as in tests/cluster.rs. Skipped, with a message, only where
//! nats-server is not installed and `CI` is unset.
#![cfg(feature = "fault-injection")]

mod common;
#[path = "cluster/replay.rs"]
mod replay;

use std::time::Duration;

use common::{nats_server_or_skip, StarlingCluster};

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
    let body = replay::every_acknowledged_message_arrives_despite(&mut cluster, "ReplayDone");
    tokio::time::timeout(BODY, body)
        .await
        .expect("cluster test body exceeded its bound");
}
