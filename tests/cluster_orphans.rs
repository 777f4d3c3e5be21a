//! Cluster mode, black box: node liveness (`STARLING_NODES`) and what hangs on it.
//! Three `nats-server`s and three nodes with a short liveness TTL and sweep interval:
//! the persistent sessions of a node killed with -9 expire on schedule (swept by another
//! node), and `$SYS/cluster/...` shows every node's values and the live nodes on every
//! node. Skipped, with a message, only where nats-server is not installed and `CI` is
//! unset.

mod common;

use std::time::{Duration, Instant};

use common::{
    nats_server_or_skip, session_expiry, text, BrokerProcess, Event, NatsCluster, RawClient,
    StarlingCluster,
};
use starling::protocol::{Packet, Properties, QoS, ReasonCode};
use tokio::sync::{Mutex, MutexGuard};

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());
/// Bound of one test body (the cluster's start is bounded on its own).
const BODY: Duration = Duration::from_secs(120);
/// How long an orphaned session may take to go, past its expiry interval: the TTL, a
/// sweep round to mark it, one to expire it, and JetStream's own delays.
const EXPIRY_SLACK: Duration = Duration::from_secs(30);
/// The short expiry interval.
const SHORT: u32 = 4;

/// Three NATS servers and three nodes with `$SYS` every second, a 1.5 s liveness TTL
/// and sweeps every 300 ms.
async fn start(test: &str) -> Option<(MutexGuard<'static, ()>, StarlingCluster)> {
    let bin = nats_server_or_skip(test)?;
    let guard = SERIAL.lock().await;
    let nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let nodes = (0..3)
        .map(|i| {
            let mut mine = urls.clone();
            mine.rotate_left(i);
            let mine: Vec<String> = mine.iter().map(|u| format!("{u:?}")).collect();
            let config = format!(
                "[server]\nsys_interval_secs = 1\n\
                 [cluster]\nenabled = true\nurls = [{}]\nnode_id = \"node{i}\"\nreplicas = 3\n\
                 node_ttl_ms = 1500\nsweep_interval_ms = 300\n",
                mine.join(", ")
            );
            BrokerProcess::start_cluster_node(&config)
        })
        .collect();
    Some((guard, StarlingCluster { nodes, nats }))
}

/// The subjects stored for `client_id` in `STARLING_STATE` (tombstones included).
async fn stored(js: &async_nats::jetstream::Context, client_id: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let stream = js.get_stream("STARLING_STATE").await.expect("state stream");
    let filter = starling::JsStore::client_filter(client_id);
    let mut info = stream
        .info_builder()
        .subjects(filter)
        .fetch()
        .await
        .expect("info");
    let mut out = Vec::new();
    while let Some((subject, _)) = info.try_next().await.expect("subjects") {
        out.push(subject);
    }
    out
}

/// Polls until `done(subjects of client_id)` holds, within `within`; how long it took.
async fn wait_stored(
    js: &async_nats::jetstream::Context,
    client_id: &str,
    within: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let subjects = stored(js, client_id).await;
        if done(&subjects) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{client_id}: stored {subjects:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 5.0 persistent session on `node` with a subscription, stored in JetStream.
async fn persistent(cluster: &StarlingCluster, node: usize, id: &str, expiry: u32) -> RawClient {
    let mut c = RawClient::open(cluster.addr(node)).await;
    let ack = c.connect_v5(id, true, 60, session_expiry(expiry)).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    c.subscribe(&[(&format!("orphan/{id}"), QoS::AtLeastOnce)])
        .await;
    c
}

/// Reconnects `id` with clean start 0 on `node`; session present.
async fn resume(cluster: &StarlingCluster, node: usize, id: &str) -> bool {
    let mut c = RawClient::open(cluster.addr(node)).await;
    let ack = c.connect_v5(id, false, 60, session_expiry(600)).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    ack.session_present
}

/// How many nodes logged the expiry of `client_id`: waits (bounded) for the first, then
/// a little for any other.
async fn expiries(cluster: &StarlingCluster, client_id: &str) -> usize {
    let count = || {
        cluster.nodes[1..]
            .iter()
            .filter(|n| {
                n.log_text()
                    .lines()
                    .any(|l| l.contains("orphaned session expired") && l.contains(client_id))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while count() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another sweeper would have acted within a round or two.
    tokio::time::sleep(Duration::from_secs(1)).await;
    count()
}

/// Two persistent sessions on node 0 (expiry 4 s and 10 min), node 0 killed with -9:
/// the short one's stored state goes once its expiry passed, removed by exactly one of
/// the two sweeping nodes (reconnecting on node 1 finds no session), the long one stays
/// (reconnecting finds it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_session_expires() {
    let Some((_serial, mut cluster)) = start("orphaned_session_expires").await else {
        return;
    };
    tokio::time::timeout(BODY, async {
        let nats = async_nats::connect(cluster.nats.urls()[1].as_str())
            .await
            .expect("NATS");
        let js = async_nats::jetstream::new(nats);
        let _short = persistent(&cluster, 0, "o-short", SHORT).await;
        let _long = persistent(&cluster, 0, "o-long", 600).await;
        for id in ["o-short", "o-long"] {
            // The record and the subscription.
            wait_stored(&js, id, Duration::from_secs(10), |s| s.len() >= 2).await;
        }
        cluster.nodes[0].kill9();
        let killed = Instant::now();
        let took = wait_stored(&js, "o-short", EXPIRY_SLACK, |s| s.is_empty()).await;
        assert!(
            killed.elapsed() >= Duration::from_secs(SHORT.into()),
            "expired after {took:?}, before its expiry interval"
        );
        assert_eq!(
            expiries(&cluster, "o-short").await,
            1,
            "one node expired it"
        );
        let long = stored(&js, "o-long").await;
        assert!(long.len() >= 2, "the long session stays: {long:?}");
        assert!(
            !resume(&cluster, 1, "o-short").await,
            "the expired session is gone"
        );
        assert!(
            resume(&cluster, 2, "o-long").await,
            "the session within its expiry is still there"
        );
    })
    .await
    .expect("test body exceeded its bound");
}

/// A condition on a message's topic and payload.
type Want = dyn Fn(&str, &str) -> bool;

/// Reads `$SYS/cluster/#` on `c` until each of `wants` (topic, payload) has matched a
/// message, within `within`.
async fn await_sys(c: &mut RawClient, within: Duration, wants: &[&Want]) {
    let deadline = Instant::now() + within;
    let mut met = vec![false; wants.len()];
    let mut seen = Vec::new();
    while met.contains(&false) {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_event(left).await {
            Event::Packet(Packet::Publish(p)) => {
                let (topic, payload) = (p.topic.to_string(), text(&p));
                for (i, want) in wants.iter().enumerate() {
                    met[i] |= want(&topic, &payload);
                }
                seen.push(format!("{topic}={payload}"));
            }
            Event::Packet(_) => {}
            other => panic!("$SYS/cluster: {other:?}; met {met:?}; seen {seen:?}"),
        }
    }
}

/// A subscriber on node 1 to `$SYS/cluster/#` sees the three live nodes and values of
/// nodes 0 and 2 (node 0's client count follows a connection there); once node 0 is
/// killed, the list drops it and its subtree is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_cluster_wide() {
    let Some((_serial, mut cluster)) = start("sys_cluster_wide").await else {
        return;
    };
    tokio::time::timeout(BODY, async {
        let mut c =
            RawClient::connected_v5(cluster.addr(1), "sys-sub", Properties::default()).await;
        c.subscribe(&[("$SYS/cluster/#", QoS::AtMostOnce)]).await;
        let all =
            |t: &str, p: &str| t == "$SYS/cluster/nodes" && p == r#"["node0","node1","node2"]"#;
        let up0 = |t: &str, p: &str| t == "$SYS/cluster/node0/uptime" && p.ends_with("seconds");
        let up2 = |t: &str, p: &str| t == "$SYS/cluster/node2/uptime" && p.ends_with("seconds");
        await_sys(&mut c, Duration::from_secs(20), &[&all, &up0, &up2]).await;
        // Values that do not change reach a new subscriber as retained messages (a
        // subscriber that was first on its node may miss the live copy of a value
        // published while its subscription was on its way: the retained mirror has it).
        let mut r =
            RawClient::connected_v5(cluster.addr(1), "sys-ret", Properties::default()).await;
        r.subscribe(&[("$SYS/cluster/#", QoS::AtMostOnce)]).await;
        let conn0 = |t: &str, p: &str| {
            t == "$SYS/cluster/node0/clients/connected" && p.parse::<u64>().is_ok()
        };
        let sent2 =
            |t: &str, p: &str| t == "$SYS/cluster/node2/messages/sent" && p.parse::<u64>().is_ok();
        let subs2 = |t: &str, _: &str| t == "$SYS/cluster/node2/subscriptions/count";
        await_sys(
            &mut r,
            Duration::from_secs(20),
            &[&all, &conn0, &sent2, &subs2],
        )
        .await;
        // A client of node 0's, seen from node 1.
        let _there = RawClient::connected_v5(cluster.addr(0), "sys-x", Properties::default()).await;
        let one = |t: &str, p: &str| t == "$SYS/cluster/node0/clients/connected" && p == "1";
        await_sys(&mut c, Duration::from_secs(20), &[&one]).await;
        cluster.nodes[0].kill9();
        let two = |t: &str, p: &str| t == "$SYS/cluster/nodes" && p == r#"["node1","node2"]"#;
        let gone = |t: &str, p: &str| t == "$SYS/cluster/node0/uptime" && p.is_empty();
        await_sys(&mut c, Duration::from_secs(20), &[&two, &gone]).await;
    })
    .await
    .expect("test body exceeded its bound");
}
