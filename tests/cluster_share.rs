//! Cluster mode, black box: a `$share` group spanning nodes survives the death of one
//! of them. Three `nats-server`s with JetStream and three Starling nodes, as in
//! tests/cluster.rs. Skipped, with a message, only where nats-server is not installed
//! and `CI` is unset.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    await_routes, connect_persistent, nats_server_or_skip, text, Event, RawClient, StarlingCluster,
};
use starling::protocol::{Packet, Properties, PropertyFields, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const BODY: Duration = Duration::from_secs(150);
const WAIT: Duration = Duration::from_secs(10);
/// Messages published.
const N: u32 = 1500;
/// The node dies once its members got this many.
const BEFORE_KILL: usize = 150;
/// How long the group may take to get every acknowledged message after the publisher
/// finished: a dead node's unacknowledged messages go to another node after the log
/// consumer's ack wait (5 s).
const COMPLETE: Duration = Duration::from_secs(40);
const FILTER: &str = "$share/g/sh/#";

/// What the group's members received.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Every payload number any member got.
    all: BTreeSet<u32>,
    /// How many the members on the node that dies got.
    doomed: usize,
}

// `$share/g/sh/#` has a slow clean member (receive maximum 10, each PUBACK 5 ms late)
// and a persistent one on node 1, and a clean one on node 2, while node 0 publishes a
// QoS 1 stream. Node 1 is killed (kill -9) with messages queued and in flight for its
// members; the persistent member resumes on node 2. Every acknowledged message reaches
// at least one member of the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_group_survives_a_member_node_kill() {
    let Some(bin) = nats_server_or_skip("share_group_survives_a_member_node_kill") else {
        return;
    };
    let mut cluster = StarlingCluster::start(&bin);
    tokio::time::timeout(BODY, node_dies_mid_stream(&mut cluster))
        .await
        .expect("cluster test body exceeded its bound");
}

async fn node_dies_mid_stream(cluster: &mut StarlingCluster) {
    let slow = PropertyFields {
        receive_maximum: Some(10),
        ..PropertyFields::default()
    };
    let mut members = vec![
        RawClient::connected_v5(cluster.addr(1), "sh-slow", Properties::from(slow)).await,
        connect_persistent(&cluster.nodes[1], "sh-kept").await.0,
        RawClient::connected_v5(cluster.addr(2), "sh-other", Properties::default()).await,
    ];
    for m in &mut members {
        m.subscribe(&[(FILTER, QoS::AtLeastOnce)]).await;
    }
    let mut p = RawClient::connected_v5(cluster.addr(0), "sh-pub", Properties::default()).await;
    await_routes(&mut p, "sh/probe", &mut members, &[0, 0, 0]).await;
    let (seen_tx, mut seen) = watch::channel(Seen::default());
    let mut tasks = Vec::new();
    let lags = [Duration::from_millis(5), Duration::ZERO, Duration::ZERO];
    for (i, (m, lag)) in members.into_iter().zip(lags).enumerate() {
        tasks.push(member(m, seen_tx.clone(), i < 2, lag));
    }
    let publisher = tokio::spawn(async move {
        for i in 1..=N {
            let payload = format!("sh-{i}");
            p.publish("sh/x", QoS::AtLeastOnce, false, payload.as_bytes())
                .await;
        }
        p.disconnect().await;
    });
    let before = tokio::time::timeout(WAIT * 3, seen.wait_for(|s| s.doomed >= BEFORE_KILL));
    let before = matches!(before.await, Ok(Ok(_)));
    assert!(before, "node 1's members got {BEFORE_KILL} messages");
    cluster.nodes[1].kill9();
    tokio::time::timeout(WAIT * 6, publisher)
        .await
        .expect("publisher bounded")
        .expect("every publish acknowledged");
    let (resumed, present) = connect_persistent(&cluster.nodes[2], "sh-kept").await;
    assert!(present, "the persistent member's session survives its node");
    tasks.push(member(resumed, seen_tx.clone(), false, Duration::ZERO));
    let all = (1..=N).collect::<BTreeSet<u32>>();
    let complete = tokio::time::timeout(COMPLETE, seen.wait_for(|s| s.all.is_superset(&all)));
    let complete = matches!(complete.await, Ok(Ok(_)));
    let got = seen.borrow().clone();
    for t in &tasks {
        t.abort();
    }
    let missing: Vec<u32> = all.difference(&got.all).copied().collect();
    assert!(
        complete && missing.is_empty(),
        "{} acknowledged messages reached no member of the group: {missing:?} \
         (node 1's members got {} before and at the kill)",
        missing.len(),
        got.doomed
    );
}

/// Receives as a member of the group, acknowledging each message `lag` after it came,
/// until its connection closes (its node died) or the task is aborted.
fn member(
    mut c: RawClient,
    seen: watch::Sender<Seen>,
    doomed: bool,
    lag: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match c.next_event(WAIT * 10).await {
                Event::Packet(Packet::Publish(m)) => {
                    let n = number(&text(&m));
                    seen.send_modify(|s| {
                        s.all.extend(n);
                        s.doomed += usize::from(doomed && n.is_some());
                    });
                    if !lag.is_zero() {
                        tokio::time::sleep(lag).await;
                    }
                    c.ack(&m).await;
                }
                Event::Packet(_) => {}
                Event::Closed | Event::Error(_) | Event::Timeout => return,
            }
        }
    })
}

/// The number in a payload `sh-<n>` (`None` for a probe).
fn number(payload: &str) -> Option<u32> {
    payload.strip_prefix("sh-").and_then(|n| n.parse().ok())
}
