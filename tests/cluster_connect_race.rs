//! Cluster mode, black box: one owner per client id. Two CONNECTs of one persistent
//! client id on two nodes at the same instant leave exactly one connection, and it has
//! the whole session (queued messages, working subscriptions); a persistent session
//! taken over across nodes while another node streams QoS 1 to it loses nothing. Three
//! `nats-server`s and three nodes, as in tests/cluster.rs; skipped, with a message, only
//! where nats-server is not installed and `CI` is unset.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{await_routes, nats_server_or_skip, text, Event, RawClient, StarlingCluster};
use starling::protocol::{Packet, Properties, PropertyFields, Publish, QoS, ReasonCode};
use tokio::sync::Mutex;

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());
const BODY: Duration = Duration::from_secs(240);
const WAIT: Duration = Duration::from_secs(10);
/// No packet for this long: a connection has settled (kept or closed).
const QUIET: Duration = Duration::from_millis(1500);
const ROUNDS: u32 = 10;
/// Messages queued for the offline session before each race.
const QUEUED: u32 = 3;

fn persistent() -> Properties {
    Properties::from(PropertyFields {
        session_expiry_interval: Some(300),
        ..PropertyFields::default()
    })
}

/// What one racing connection saw until it settled.
struct Outcome {
    client: RawClient,
    present: bool,
    /// Still open once quiet.
    open: bool,
    got: Vec<Publish>,
}

/// Connects `id` (clean start 0) on `addr`, then reads without acknowledging until
/// the connection closes or stays quiet.
async fn race_one(addr: std::net::SocketAddr, id: &str) -> Outcome {
    let mut client = RawClient::open(addr).await;
    let ack = client.connect_v5(id, false, 60, persistent()).await;
    let mut out = Outcome {
        present: ack.session_present,
        open: ack.reason == ReasonCode::SUCCESS,
        got: Vec::new(),
        client,
    };
    if !out.open {
        // A claim superseded before its load is refused (nothing of it was written).
        assert_eq!(ack.reason, ReasonCode::SERVER_UNAVAILABLE, "{ack:?}");
        return out;
    }
    loop {
        match out.client.next_event(QUIET).await {
            Event::Packet(Packet::Publish(p)) => out.got.push(p),
            Event::Packet(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER, "{d:?}");
            }
            Event::Packet(_) => {}
            Event::Timeout => return out,
            Event::Closed | Event::Error(_) => {
                out.open = false;
                return out;
            }
        }
    }
}

/// A persistent session with a subscription; each round queues messages for it while
/// it is offline, then two clients with its id CONNECT at once, on nodes 1 and 2 or
/// both on node 1: exactly one stays connected, with session present, every queued message, and a
/// subscription that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_connects_leave_one_owner_with_the_whole_session() {
    let Some(bin) = nats_server_or_skip("simultaneous_connects") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let cluster = StarlingCluster::start(&bin);
    tokio::time::timeout(BODY, async {
        let mut p = RawClient::connected_v5(cluster.addr(0), "r-pub", Properties::default()).await;
        let mut sub = RawClient::open(cluster.addr(0)).await;
        let ack = sub.connect_v5("r-sub", true, 60, persistent()).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        sub.subscribe(&[("race/#", QoS::AtLeastOnce)]).await;
        sub.disconnect().await;
        for round in 1..=ROUNDS {
            race_round(&cluster, &mut p, round).await;
        }
    })
    .await
    .expect("test body exceeded its bound");
}

async fn race_round(cluster: &StarlingCluster, p: &mut RawClient, round: u32) {
    let want: BTreeSet<String> = (1..=QUEUED).map(|i| format!("r{round}-{i}")).collect();
    for w in &want {
        p.publish(
            &format!("race/{round}"),
            QoS::AtLeastOnce,
            false,
            w.as_bytes(),
        )
        .await;
    }
    // Odd rounds on nodes 1 and 2, even ones both on node 1 (the second CONNECT comes
    // while the first is loading the session).
    let other = if round % 2 == 1 { 2 } else { 1 };
    let (a, b) = tokio::join!(
        race_one(cluster.addr(1), "r-sub"),
        race_one(cluster.addr(other), "r-sub")
    );
    let open: Vec<&Outcome> = [&a, &b].into_iter().filter(|o| o.open).collect();
    assert_eq!(
        open.len(),
        1,
        "round {round}: exactly one connection stays (node 1 open: {}, node 2 open: {})",
        a.open,
        b.open
    );
    let mut winner = if a.open { a } else { b };
    assert!(
        winner.present,
        "round {round}: the survivor has the session"
    );
    let got: BTreeSet<String> = winner.got.iter().map(text).collect();
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "round {round}: queued but not delivered to the survivor: {missing:?} (got {got:?})"
    );
    for m in std::mem::take(&mut winner.got) {
        winner.client.ack(&m).await;
    }
    // Its subscription works where it now lives.
    await_routes(
        p,
        "race/probe",
        std::slice::from_mut(&mut winner.client),
        &[0],
    )
    .await;
    let after = format!("r{round}-after");
    p.publish(
        &format!("race/{round}"),
        QoS::AtLeastOnce,
        false,
        after.as_bytes(),
    )
    .await;
    let m = recv_unacked(&mut winner.client, &after).await;
    winner.client.ack(&m).await;
    winner.client.disconnect().await;
}

/// The PUBLISH with this payload (probes acknowledged and skipped).
async fn recv_unacked(c: &mut RawClient, payload: &str) -> Publish {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_event(left).await {
            Event::Packet(Packet::Publish(m)) if text(&m) == payload => return m,
            Event::Packet(Packet::Publish(m)) => c.ack(&m).await,
            Event::Packet(_) => {}
            other => panic!("waiting for {payload}: {other:?}"),
        }
    }
}

/// A persistent QoS 1 session on node 0 taken over on node 1 while node 2 streams to
/// it, ten times: every acknowledged message reaches the session (on the old
/// connection, acknowledged there, or on the new one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_while_streaming_loses_nothing() {
    let Some(bin) = nats_server_or_skip("takeover_while_streaming") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let cluster = StarlingCluster::start(&bin);
    tokio::time::timeout(BODY, async {
        for round in 1..=ROUNDS {
            takeover_round(&cluster, round).await;
        }
    })
    .await
    .expect("test body exceeded its bound");
}

/// Messages per takeover round; the takeover comes after [`BEFORE`] of them arrived.
const STREAM: u32 = 200;
const BEFORE: usize = 30;

async fn takeover_round(cluster: &StarlingCluster, round: u32) {
    let id = format!("s-sub-{round}");
    let topic = format!("stream/{round}");
    let mut old = RawClient::open(cluster.addr(0)).await;
    let ack = old.connect_v5(&id, true, 60, persistent()).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    old.subscribe(&[(topic.as_str(), QoS::AtLeastOnce)]).await;
    let mut p = RawClient::connected_v5(
        cluster.addr(2),
        &format!("s-pub-{round}"),
        Properties::default(),
    )
    .await;
    await_routes(&mut p, &topic, std::slice::from_mut(&mut old), &[0]).await;
    let publisher = tokio::spawn(async move {
        for i in 1..=STREAM {
            p.publish(&topic, QoS::AtLeastOnce, false, format!("s-{i}").as_bytes())
                .await;
        }
        p.disconnect().await;
    });
    let mut got = BTreeSet::new();
    while got.len() < BEFORE {
        match old.next_event(WAIT).await {
            Event::Packet(Packet::Publish(m)) => {
                old.ack(&m).await;
                got.insert(text(&m));
            }
            Event::Packet(_) => {}
            other => panic!("round {round}: before the takeover: {other:?}"),
        }
    }
    let mut new = RawClient::open(cluster.addr(1)).await;
    let ack = new.connect_v5(&id, false, 60, persistent()).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "round {round}");
    assert!(ack.session_present, "round {round}: the session moved");
    // The old connection acknowledges what it still gets until its 0x8E and close.
    loop {
        match old.next_event(WAIT).await {
            Event::Packet(Packet::Publish(m)) => {
                old.ack(&m).await;
                got.insert(text(&m));
            }
            Event::Packet(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER, "round {round}");
            }
            Event::Closed | Event::Error(_) => break,
            other => panic!("round {round}: old connection: {other:?}"),
        }
    }
    tokio::time::timeout(WAIT * 6, publisher)
        .await
        .expect("publisher bounded")
        .expect("every publish acknowledged");
    let want: BTreeSet<String> = (1..=STREAM).map(|i| format!("s-{i}")).collect();
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while !want.is_subset(&got) && tokio::time::Instant::now() < deadline {
        match new.next_event(QUIET * 2).await {
            Event::Packet(Packet::Publish(m)) => {
                new.ack(&m).await;
                got.insert(text(&m));
            }
            Event::Packet(_) => {}
            Event::Timeout => break,
            other => panic!("round {round}: new connection: {other:?}"),
        }
    }
    let missing: Vec<&String> = want.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "round {round}: acknowledged but never delivered: {missing:?}"
    );
    new.disconnect().await;
}
