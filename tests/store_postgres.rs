//! `[storage] backend = "postgres"`, black box: the broker binary against a real
//! PostgreSQL server (tests/common/pg.rs). Startup replay of persistent sessions, kill -9
//! of the broker under QoS 1 load, and PostgreSQL itself killed under a publisher: no
//! success is acknowledged for what was not committed, the publisher sees 0x80 (5.0) or
//! a closed connection (3.1.1), the broker stays up and is back once the server is.
//! Skipped with a message where PostgreSQL is not installed, except under CI.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::pg::{pg_bin_or_skip, PgServer};
use common::{
    bounded, check_retained, connect_persistent, missing, publish_packet, publish_pipelined,
    publish_retained, subscribe_offline, BrokerProcess, Collector, Event, RawClient, Stop,
};
use starling::protocol::{Packet, Properties, QoS, ReasonCode};

/// A PostgreSQL server of the test's own, or `None` (skipped).
fn postgres(test: &str) -> Option<PgServer> {
    pg_bin_or_skip(test).map(|bin| PgServer::start_new(&bin))
}

/// A broker (one worker) storing in `pg`.
fn broker_on(pg: &PgServer, durability: &str) -> BrokerProcess {
    let toml = format!(
        "[server]\nworkers = 1\n[storage]\ndurability = \"{durability}\"\nbackend = \"postgres\"\nurl = \"{}\"\n",
        pg.url()
    );
    BrokerProcess::start_with_config(Some(&toml))
}

/// Reconnects `id` (session present asserted) and collects until 2 s of silence.
async fn collect_rest(broker: &BrokerProcess, id: &str, col: &mut Collector) {
    let (mut c, present) = connect_persistent(broker, id).await;
    assert!(present, "{id}: session present must be 1 after the restart");
    let stop = col.run(&mut c, None, Duration::from_secs(2)).await;
    assert_eq!(stop, Stop::Silence, "{id}: connection dropped");
    c.disconnect().await;
}

// Queued QoS 1 and QoS 2 messages of offline persistent sessions and retained
// messages come back after a restart (SIGTERM): every one, QoS 2 exactly once.
#[tokio::test]
async fn startup_replays_sessions_from_postgres() {
    let Some(pg) = postgres("startup_replays_sessions_from_postgres") else {
        return;
    };
    let mut broker = broker_on(&pg, "sync");
    let (q1, q2) = bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        subscribe_offline(&broker, "s2", "d/q2", QoS::ExactlyOnce).await;
        let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
        publish_retained(&mut p, 20).await;
        let q1 = publish_pipelined(&mut p, "d/q1", QoS::AtLeastOnce, 0..300, 50, None).await;
        let q2 = publish_pipelined(&mut p, "d/q2", QoS::ExactlyOnce, 0..300, 50, None).await;
        p.disconnect().await;
        (q1, q2)
    })
    .await;
    assert_eq!((q1.completed.len(), q2.completed.len()), (300, 300));
    let status = broker.terminate();
    assert!(status.success(), "SIGTERM exit {status}");
    broker.restart();
    bounded(async {
        let mut s1 = Collector::new(0);
        collect_rest(&broker, "s1", &mut s1).await;
        assert_eq!(missing(&q1.completed, &s1), Vec::<u32>::new(), "s1 lost");
        let mut s2 = Collector::new(0);
        collect_rest(&broker, "s2", &mut s2).await;
        assert_eq!(missing(&q2.completed, &s2), Vec::<u32>::new(), "s2 lost");
        assert_eq!(s2.duplicates(), vec![], "QoS 2 delivered twice");
        check_retained(&broker, 20).await;
    })
    .await;
}

// kill -9 of the broker while QoS 1 publishes flow: every acknowledged one arrives.
#[tokio::test]
async fn broker_kill9_under_qos1_loses_nothing_acknowledged() {
    let Some(pg) = postgres("broker_kill9_under_qos1_loses_nothing_acknowledged") else {
        return;
    };
    let mut broker = broker_on(&pg, "sync");
    let published = bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
        let kill = Some((400, &mut broker));
        publish_pipelined(&mut p, "d/q1", QoS::AtLeastOnce, 0..2_000, 50, kill).await
    })
    .await;
    assert!(published.completed.len() >= 400, "{published:?}");
    broker.restart();
    bounded(async {
        let mut s1 = Collector::new(0);
        collect_rest(&broker, "s1", &mut s1).await;
        let lost = missing(&published.completed, &s1);
        assert!(
            lost.is_empty(),
            "{} acknowledged lost: {lost:?}",
            lost.len()
        );
        eprintln!(
            "broker kill -9: {} acknowledged, {} delivered",
            published.completed.len(),
            s1.counts.len()
        );
    })
    .await;
}

/// What a 5.0 publisher saw while PostgreSQL went away.
#[derive(Debug, Default)]
struct Outcome {
    /// Indices with a successful PUBACK.
    acked: BTreeSet<u32>,
    /// Indices with an error PUBACK, and its reason.
    refused: Vec<(u32, ReasonCode)>,
    /// The DISCONNECT's reason, if the broker sent one.
    disconnect: Option<ReasonCode>,
}

/// Publishes `indices` at QoS 1 from `c` (10 in flight), calling `kill` once `after`
/// were acknowledged, until the connection ends or every flow is answered.
async fn publish_through(
    c: &mut RawClient,
    indices: std::ops::Range<u32>,
    after: usize,
    mut kill: impl FnMut(),
) -> Outcome {
    let mut out = Outcome::default();
    let mut open = std::collections::HashMap::new();
    let mut next = indices.start;
    let mut killed = false;
    loop {
        while next < indices.end && open.len() < 10 {
            let id = c.next_packet_id();
            let p = publish_packet(
                "d/q1",
                QoS::AtLeastOnce,
                next.to_string().as_bytes(),
                Some(id),
            );
            if c.try_send(Packet::Publish(p)).await.is_err() {
                return out;
            }
            open.insert(id.get(), next);
            next += 1;
        }
        if open.is_empty() {
            return out;
        }
        match c.next_event(Duration::from_secs(10)).await {
            Event::Packet(Packet::PubAck(r)) => {
                let idx = open.remove(&r.packet_id.get()).expect("known packet id");
                match r.reason.is_error() {
                    true => out.refused.push((idx, r.reason)),
                    false => drop(out.acked.insert(idx)),
                }
            }
            Event::Packet(Packet::Disconnect(d)) => {
                out.disconnect = Some(d.reason);
                return out;
            }
            Event::Closed | Event::Error(_) => return out,
            other => panic!("publisher: unexpected {other:?}"),
        }
        if !killed && out.acked.len() >= after {
            kill();
            killed = true;
        }
    }
}

// PostgreSQL SIGKILLed under a QoS 1 5.0 publisher: the publisher gets 0x80, a 3.1.1
// publisher a closed connection, the broker stays up; once the server is back (same
// data, same port) publishes succeed again, and after a kill -9 of the broker every
// acknowledged message reaches the persistent subscriber from the store.
#[tokio::test]
async fn postgres_killed_under_a_publisher() {
    let Some(mut pg) = postgres("postgres_killed_under_a_publisher") else {
        return;
    };
    let mut broker = broker_on(&pg, "sync");
    let first = bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        let mut p = RawClient::connected_v5(broker.addr(), "pub5", Properties::default()).await;
        publish_through(&mut p, 0..5_000, 300, || pg.kill()).await
    })
    .await;
    eprintln!(
        "postgres killed: {} acked, refused {:?}, disconnect {:?}",
        first.acked.len(),
        first.refused.len(),
        first.disconnect
    );
    assert!(first.acked.len() >= 300);
    let saw_0x80 = first.disconnect == Some(ReasonCode::UNSPECIFIED_ERROR)
        || first
            .refused
            .iter()
            .any(|(_, r)| *r == ReasonCode::UNSPECIFIED_ERROR);
    assert!(saw_0x80, "the 5.0 publisher must see 0x80: {first:?}");
    broker.assert_alive();
    bounded(outage_refusals(&broker)).await;
    broker.assert_alive();
    pg.start();
    let later = bounded(publish_when_back(&broker)).await;
    broker.assert_alive();
    let log = broker.log_text();
    assert_eq!(
        log.matches("store failed;").count(),
        1,
        "one error line per outage"
    );
    assert!(
        log.contains("store is back"),
        "an info line when the store is back"
    );
    // Everything acknowledged must be in the store: kill -9 and read it back.
    broker.restart();
    let acked: BTreeSet<u32> = first.acked.union(&later).copied().collect();
    bounded(async {
        let mut s1 = Collector::new(0);
        collect_rest(&broker, "s1", &mut s1).await;
        let lost = missing(&acked, &s1);
        assert!(
            lost.is_empty(),
            "{} acknowledged lost: {lost:?}",
            lost.len()
        );
    })
    .await;
}

/// While the server is down: a 5.0 publisher gets 0x80, a 3.1.1 one a closed
/// connection, and no PUBACK of success.
async fn outage_refusals(broker: &BrokerProcess) {
    let mut p = RawClient::connected_v5(broker.addr(), "pub5-down", Properties::default()).await;
    let out = publish_through(&mut p, 100_000..100_001, usize::MAX, || {}).await;
    assert!(
        out.acked.is_empty(),
        "acknowledged while the store is down: {out:?}"
    );
    assert!(
        out.disconnect == Some(ReasonCode::UNSPECIFIED_ERROR)
            || out.refused == vec![(100_000, ReasonCode::UNSPECIFIED_ERROR)],
        "{out:?}"
    );
    let mut p = RawClient::connected_v311(broker.addr(), "pub3-down", true).await;
    let id = p.next_packet_id();
    let msg = publish_packet("d/q1", QoS::AtLeastOnce, b"200000", Some(id));
    p.send(Packet::Publish(msg)).await;
    match p.next_event(Duration::from_secs(10)).await {
        Event::Closed | Event::Error(_) => {}
        other => panic!("3.1.1 publisher while the store is down: {other:?}"),
    }
}

/// Once the server is back: publishes succeed again (the broker retries with backoff,
/// at most 5 s apart). Returns the indices acknowledged.
async fn publish_when_back(broker: &BrokerProcess) -> BTreeSet<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut acked = BTreeSet::new();
    loop {
        let mut p =
            RawClient::connected_v5(broker.addr(), "pub5-back", Properties::default()).await;
        let out = publish_through(&mut p, 10_000..10_200, usize::MAX, || {}).await;
        acked.extend(out.acked.iter().copied());
        if out.acked.len() == 200 {
            p.disconnect().await;
            return acked;
        }
        assert!(
            Instant::now() < deadline,
            "publishes still fail 20 s after the server came back: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
