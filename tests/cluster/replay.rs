//! kill -9 of a node while a persistent session on it receives QoS 1 from a publisher
//! on another node (used by tests/cluster.rs).

use std::collections::BTreeSet;

use starling::protocol::{Packet, Properties, QoS, ReasonCode};

use super::common::{
    await_routes, connect_persistent, drain, text, Event, RawClient, StarlingCluster,
};
use super::{QUIET, WAIT};

/// Messages published; the node dies after the subscriber got [`BEFORE_KILL`].
const N: u32 = 300;
const BEFORE_KILL: usize = 40;

/// The subscriber on node 0 acknowledges what it gets; after 40 messages node 0 is
/// killed while the publisher on node 1 goes on. Once every publish was acknowledged,
/// the subscriber resumes on node 2: every acknowledged message arrives (some twice:
/// QoS 1), in publish order after what it already had.
#[allow(dead_code)]
pub async fn every_acknowledged_message_arrives(cluster: &mut StarlingCluster) {
    resume_after_kill(cluster, &[]).await;
}

/// The same, with failures of the router `faults` (handler names, or fault points such
/// as `ReplayDone/held`) armed on node 2 before the resume (`fault-injection` builds),
/// and a second publisher streaming during it. A resume the fault refused is retried.
#[allow(dead_code)]
pub async fn every_acknowledged_message_arrives_despite(
    cluster: &mut StarlingCluster,
    faults: &[&str],
) {
    resume_after_kill(cluster, faults).await;
}

async fn resume_after_kill(cluster: &mut StarlingCluster, faults: &[&str]) {
    let (mut sub, present) = connect_persistent(&cluster.nodes[0], "k-sub").await;
    assert!(!present);
    sub.subscribe(&[("k/#", QoS::AtLeastOnce)]).await;
    let mut p = RawClient::connected_v5(cluster.addr(1), "k-pub", Properties::default()).await;
    await_routes(&mut p, "k/probe", std::slice::from_mut(&mut sub), &[0]).await;
    let publisher = stream(p, 1..=N);
    let mut before = Vec::new();
    while before.len() < BEFORE_KILL {
        match sub.next_event(WAIT).await {
            Event::Packet(Packet::Publish(m)) => {
                sub.ack(&m).await;
                if !m.payload.starts_with(b"probe") {
                    before.push(number(&text(&m)));
                }
            }
            Event::Packet(_) => {}
            other => panic!("subscriber before the kill: {other:?} after {before:?}"),
        }
    }
    cluster.nodes[0].kill9();
    tokio::time::timeout(WAIT * 6, publisher)
        .await
        .expect("publisher bounded")
        .expect("every publish acknowledged");
    let during = match faults {
        [] => None,
        faults => Some(arm_and_stream(cluster, faults).await),
    };
    let (mut again, present) = resume(cluster.addr(2), "k-sub").await;
    assert!(present, "the session survives kill -9 of its node");
    let total = match during {
        None => N,
        Some((resumed, during)) => {
            let _ = resumed.send(());
            tokio::time::timeout(WAIT * 6, during)
                .await
                .expect("second publisher bounded")
                .expect("every publish acknowledged")
        }
    };
    let after: Vec<u32> = drain(&mut again, QUIET * 4, WAIT * 3)
        .await
        .iter()
        .map(|m| number(&text(m)))
        .collect();
    let got: BTreeSet<u32> = before.iter().chain(&after).copied().collect();
    let missing: Vec<u32> = (1..=total).filter(|i| !got.contains(i)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never delivered: {missing:?} (before the kill: {before:?}; after: {after:?})"
    );
    // Order: the first copy of each new message comes in publish order.
    let had: BTreeSet<u32> = before.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let firsts: Vec<u32> = after
        .iter()
        .copied()
        .filter(|i| !had.contains(i) && seen.insert(*i))
        .collect();
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "new messages out of order after the resume: {firsts:?}"
    );
    for fault in faults {
        let injected = format!("injected fault in router {fault}");
        assert!(
            cluster.nodes[2].log_text().contains(&injected),
            "the fault {fault} fired on node 2"
        );
    }
    again.disconnect().await;
}

/// The second publisher: at most this many messages, paced by [`PACE`], and at least
/// [`AFTER_RESUME`] of them once the session resumed, so that it still publishes while
/// the resumed session's replay holds its deliveries (the fault point
/// `ReplayDone/held` needs two held), however long the resume took.
const DURING_MAX: u32 = 2_000;
const AFTER_RESUME: u32 = 100;
const PACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Connects `id` persistently (3.1.1) to `addr`; a refused CONNECT (the router failed
/// while resuming the session) is retried, three attempts in all.
async fn resume(addr: std::net::SocketAddr, id: &str) -> (RawClient, bool) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut c = RawClient::open(addr).await;
        let ack = c.connect_v311(id, false, 60).await;
        if ack.reason == ReasonCode::SUCCESS {
            return (c, ack.session_present);
        }
        assert!(attempts < 3, "CONNECT of {id} refused {attempts} times");
    }
}

/// Arms the faults on node 2, then starts publishing `k/301...` from node 1 until
/// [`AFTER_RESUME`] messages after the returned sender fires (the session resumed). The
/// task answers the last number published.
async fn arm_and_stream(
    cluster: &StarlingCluster,
    faults: &[&str],
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<u32>,
) {
    let mut arm = RawClient::connected_v5(cluster.addr(2), "k-arm", Properties::default()).await;
    for fault in faults {
        let topic = format!("$fault/router/{fault}");
        arm.publish(&topic, QoS::AtLeastOnce, false, b"arm").await;
    }
    arm.disconnect().await;
    let mut p = RawClient::connected_v5(cluster.addr(1), "k-pub2", Properties::default()).await;
    let (resumed, mut on_resume) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut pace = tokio::time::interval(PACE);
        let mut last = N + DURING_MAX;
        for i in N + 1..=N + DURING_MAX {
            pace.tick().await;
            let (topic, payload) = (format!("k/{i}"), format!("k-{i}"));
            p.publish(&topic, QoS::AtLeastOnce, false, payload.as_bytes())
                .await;
            if on_resume.try_recv().is_ok() {
                last = last.min(i + AFTER_RESUME);
            }
            if i == last {
                break;
            }
        }
        p.disconnect().await;
        last
    });
    (resumed, task)
}

/// Publishes `k/i` (payload `k-i`) at QoS 1 for each `i`, each once its PUBACK arrived.
fn stream(mut p: RawClient, range: std::ops::RangeInclusive<u32>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in range {
            let (topic, payload) = (format!("k/{i}"), format!("k-{i}"));
            p.publish(&topic, QoS::AtLeastOnce, false, payload.as_bytes())
                .await;
        }
        p.disconnect().await;
    })
}

fn number(payload: &str) -> u32 {
    payload
        .strip_prefix("k-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected payload {payload:?}"))
}
