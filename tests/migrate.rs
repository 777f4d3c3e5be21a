//! `starling migrate`, black box: a broker on sled holds persistent sessions with queued
//! and in-flight QoS 1 and QoS 2 messages, an inbound QoS 2 id and retained messages; it
//! stops, its store is migrated into another broker's data directory, and that broker
//! resumes the sessions exactly: every message in order with the packet ids it had (the
//! broker derives them from the stored seq, which the migration keeps), and a QoS 2
//! delivery stored at PUBREL gets its PUBREL again. A non-empty target is refused without --force, a
//! running broker's store is refused as a source, and a forced re-run converges.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::pg::{pg_bin_or_skip, PgServer};
use common::redis::{redis_server_or_skip, RedisServer};
use common::{
    bin, bounded, check_retained, connect_persistent, publish_packet, publish_retained,
    BrokerProcess, RawClient,
};
use starling::protocol::{Packet, PubResponse, Publish, QoS};

/// Runs `starling ARGS` to completion (it does not wait on anything).
fn starling(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run starling")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sled(dir: &Path) -> String {
    format!("sled:{}", dir.display())
}

/// `starling migrate --from FROM --to TO [extra]` between sled data directories,
/// asserted to succeed; its stdout.
fn migrate_ok(from: &Path, to: &Path, extra: &[&str]) -> String {
    migrate_specs(&sled(from), &sled(to), extra)
}

/// `starling migrate --from FROM --to TO [extra]` between any stores, asserted to
/// succeed; its stdout.
fn migrate_specs(from: &str, to: &str, extra: &[&str]) -> String {
    let mut args = vec!["migrate", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    let out = starling(&args);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "migrate exit {}; stdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("verified: the target holds"), "{stdout}");
    stdout
}

/// The count column of `keyspace`'s row in the verification table (source side).
fn count(table: &str, keyspace: &str) -> u64 {
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(keyspace))
        .unwrap_or_else(|| panic!("no {keyspace} row in:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells.get(1),
        cells.get(3),
        "source and target counts: {row}"
    );
    assert_eq!(cells.last(), Some(&"ok"), "{row}");
    cells[1].parse().expect("a count")
}

/// A subscriber that takes `n` publishes without acknowledging them and returns their
/// packet ids in order.
async fn receive_unacked(c: &mut RawClient, n: usize) -> Vec<u16> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let p = c.expect_publish().await;
        ids.push(p.packet_id().expect("QoS > 0").get());
    }
    ids
}

/// What the migrated broker must give back to a session.
struct Expect<'a> {
    id: &'a str,
    /// Packet ids of the first publishes, as the first broker had sent them.
    first_ids: &'a [u16],
    /// The payloads, in order.
    payloads: std::ops::Range<usize>,
    /// A QoS 2 delivery left between PUBREL and PUBCOMP: its PUBREL comes again.
    released: Option<u16>,
}

/// Reconnects the session and checks: session present, a pending PUBREL re-sent, every
/// queued message in order, the first ones with the packet ids they had.
async fn resumes(broker: &BrokerProcess, e: Expect<'_>) {
    let (mut c, present) = connect_persistent(broker, e.id).await;
    assert!(present, "{}: session present after the migration", e.id);
    let mut got: Vec<Publish> = Vec::new();
    let mut rel = None;
    while got.len() < e.payloads.len() || (rel.is_none() && e.released.is_some()) {
        match c.expect_packet("PUBLISH or PUBREL").await {
            Packet::Publish(p) => {
                c.ack(&p).await;
                got.push(p);
            }
            Packet::PubRel(r) => {
                c.send(Packet::PubComp(PubResponse::new(r.packet_id))).await;
                rel = Some(r.packet_id.get());
            }
            other => panic!("{}: unexpected {other:?}", e.id),
        }
    }
    assert_eq!(rel, e.released, "{}: PUBREL of the released delivery", e.id);
    let payloads: Vec<String> = got
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    let want: Vec<String> = e.payloads.map(|i| i.to_string()).collect();
    assert_eq!(payloads, want, "{}: every queued message, in order", e.id);
    let ids: Vec<u16> = got
        .iter()
        .filter_map(|p| p.packet_id())
        .map(|p| p.get())
        .collect();
    assert_eq!(
        &ids[..e.first_ids.len()],
        e.first_ids,
        "{}: packet ids",
        e.id
    );
    c.expect_nothing(std::time::Duration::from_millis(300))
        .await;
    c.disconnect().await;
}

/// Fills the broker: s1 (QoS 1) with 3 messages sent and not acknowledged and 3 queued;
/// s2 (QoS 2) with one delivery at PUBREL (stored with its packet id), one sent and not
/// acknowledged and 2 queued; an inbound QoS 2 id of `pub2`; 3 retained messages.
/// Returns s1's packet ids, s2's released id and s2's unacknowledged id.
async fn fill(broker: &BrokerProcess) -> (Vec<u16>, u16, u16) {
    let (mut s1, _) = connect_persistent(broker, "s1").await;
    s1.subscribe(&[("m/q1", QoS::AtLeastOnce)]).await;
    let (mut s2, _) = connect_persistent(broker, "s2").await;
    s2.subscribe(&[("m/q2", QoS::ExactlyOnce)]).await;
    let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
    for i in 0..3 {
        p.publish("m/q1", QoS::AtLeastOnce, false, i.to_string().as_bytes())
            .await;
    }
    for i in 0..2 {
        p.publish("m/q2", QoS::ExactlyOnce, false, i.to_string().as_bytes())
            .await;
    }
    let in1 = receive_unacked(&mut s1, 3).await;
    let first = s2.expect_publish().await;
    let first_id = first.packet_id().expect("QoS 2");
    s2.send(Packet::PubRec(PubResponse::new(first_id))).await;
    s2.wait_for("PUBREL", |p| matches!(p, Packet::PubRel(_)))
        .await;
    let unacked = receive_unacked(&mut s2, 1).await[0];
    s1.disconnect().await;
    s2.disconnect().await;
    for i in 3..6 {
        p.publish("m/q1", QoS::AtLeastOnce, false, i.to_string().as_bytes())
            .await;
    }
    for i in 2..4 {
        p.publish("m/q2", QoS::ExactlyOnce, false, i.to_string().as_bytes())
            .await;
    }
    publish_retained(&mut p, 3).await;
    p.disconnect().await;
    // An inbound QoS 2 flow left at PUBREC: its packet id stays with pub2's session.
    let (mut q, _) = connect_persistent(broker, "pub2").await;
    let id = q.next_packet_id();
    let msg = publish_packet("m/other", QoS::ExactlyOnce, b"x", Some(id));
    q.send(Packet::Publish(msg)).await;
    q.wait_for("PUBREC", |p| matches!(p, Packet::PubRec(_)))
        .await;
    q.disconnect().await;
    (in1, first_id.get(), unacked)
}

// The whole path: fill, refuse while running, migrate, resume on the target, refuse a
// non-empty target, converge with --force.
#[tokio::test]
async fn sled_to_sled_migration_resumes_sessions() {
    let mut a = BrokerProcess::start();
    let (in1, released, unacked) = bounded(fill(&a)).await;
    // The running broker holds its store.
    let mut b = BrokerProcess::start();
    let refused = starling(&[
        "migrate",
        "--from",
        &sled(a.data_dir()),
        "--to",
        &sled(b.data_dir()),
    ]);
    let (_, stderr) = text(&refused);
    assert!(
        !refused.status.success(),
        "migrating a store in use must fail"
    );
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(a.terminate().success());
    assert!(b.terminate().success());

    let table = migrate_ok(a.data_dir(), b.data_dir(), &[]);
    assert_eq!(count(&table, "sessions"), 3, "s1, s2, pub2");
    assert_eq!(count(&table, "subscriptions"), 2);
    assert_eq!(count(&table, "queued"), 10);
    assert_eq!(count(&table, "inbound_qos2"), 1);
    // With the broker's own $SYS messages.
    assert!(count(&table, "retained") >= 3);
    assert!(table
        .lines()
        .any(|l| l.starts_with("next_seq") && l.ends_with("ok")));

    b.restart();
    bounded(async {
        let s1 = Expect {
            id: "s1",
            first_ids: &in1,
            payloads: 0..6,
            released: None,
        };
        resumes(&b, s1).await;
        let s2 = Expect {
            id: "s2",
            first_ids: &[unacked],
            payloads: 1..4,
            released: Some(released),
        };
        resumes(&b, s2).await;
        check_retained(&b, 3).await;
    })
    .await;
    assert!(b.terminate().success());

    // B now holds (drained) sessions of its own.
    let (from, to) = (sled(a.data_dir()), sled(b.data_dir()));
    let refused = starling(&["migrate", "--from", &from, "--to", &to]);
    let (_, stderr) = text(&refused);
    assert!(
        !refused.status.success(),
        "a non-empty target needs --force"
    );
    assert!(
        stderr.contains("not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    let forced = migrate_ok(a.data_dir(), b.data_dir(), &["--force"]);
    assert_eq!(count(&forced, "queued"), 10, "{forced}");
    let again = migrate_ok(a.data_dir(), b.data_dir(), &["--force"]);
    assert!(again.contains("0 sessions written"), "{again}");
    let check = migrate_ok(a.data_dir(), b.data_dir(), &["--verify-only"]);
    assert_eq!(count(&check, "sessions"), 3);
}

/// The counts every migration of `fill`'s store must show.
fn assert_filled(table: &str) {
    assert_eq!(count(table, "sessions"), 3, "{table}");
    assert_eq!(count(table, "subscriptions"), 2, "{table}");
    assert_eq!(count(table, "queued"), 10, "{table}");
    assert_eq!(count(table, "inbound_qos2"), 1, "{table}");
    assert!(count(table, "retained") >= 3, "{table}");
}

/// s1 and s2 resume on `broker` exactly as they were on the first broker.
async fn both_resume(broker: &BrokerProcess, in1: &[u16], released: u16, unacked: u16) {
    let s1 = Expect {
        id: "s1",
        first_ids: in1,
        payloads: 0..6,
        released: None,
    };
    resumes(broker, s1).await;
    let s2 = Expect {
        id: "s2",
        first_ids: &[unacked],
        payloads: 1..4,
        released: Some(released),
    };
    resumes(broker, s2).await;
    check_retained(broker, 3).await;
}

// sled -> PostgreSQL -> Redis, and PostgreSQL -> sled: the sessions resume on a broker
// running on Redis, and on one running on the sled copy of the PostgreSQL store.
#[tokio::test]
async fn sessions_move_between_sled_postgres_and_redis() {
    let test = "sessions_move_between_sled_postgres_and_redis";
    let (Some(pg_bin), Some(redis_bin)) = (pg_bin_or_skip(test), redis_server_or_skip(test)) else {
        return;
    };
    let pg = PgServer::start_new(&pg_bin);
    let redis = RedisServer::start(&redis_bin, "always");
    let mut a = BrokerProcess::start();
    let (in1, released, unacked) = bounded(fill(&a)).await;
    assert!(a.terminate().success());

    assert_filled(&migrate_specs(&sled(a.data_dir()), &pg.url(), &[]));
    assert_filled(&migrate_specs(&pg.url(), &redis.url(), &[]));
    let mut c = BrokerProcess::start();
    assert!(c.terminate().success());
    assert_filled(&migrate_specs(&pg.url(), &sled(c.data_dir()), &[]));
    for store in [pg.url(), redis.url()] {
        let out = starling(&["inspect", &store]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "inspect {store}: {stderr}");
        for id in ["s1", "s2", "pub2"] {
            assert!(stdout.contains(id), "inspect {store} lists {id}:\n{stdout}");
        }
    }

    let on_redis = format!(
        "[server]\nworkers = 1\n[storage]\nbackend = \"redis\"\nurl = \"{}\"\n",
        redis.url()
    );
    let r = BrokerProcess::start_with_config(Some(&on_redis));
    bounded(both_resume(&r, &in1, released, unacked)).await;
    drop(r);
    c.restart();
    bounded(both_resume(&c, &in1, released, unacked)).await;
}
