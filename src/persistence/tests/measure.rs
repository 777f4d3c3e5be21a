//! Ignored measurements: batch write rate and disk space after deletions.
//! Run with `cargo test --release --lib measure -- --ignored --nocapture --test-threads=1`.

use std::time::Instant;

use super::super::{Op, SledStore, Store};
use super::session;
use super::sled::put_queued;

/// Throughput of 1,000-op PutQueued batches (64-byte payloads), each followed by flush.
/// Run with `cargo test --release --lib measure -- --ignored --nocapture --test-threads=1`.
#[test]
#[ignore = "measurement"]
fn batch_write_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(dir.path()).unwrap();
    let rounds = 20u64;
    let start = Instant::now();
    let mut in_apply = 0.0;
    for r in 0..rounds {
        let ops = (0..1000)
            .map(|i| put_queued("client-1", r * 1000 + i, &[0xAB; 64]))
            .collect();
        let t = Instant::now();
        s.apply(ops).unwrap();
        in_apply += t.elapsed().as_secs_f64();
        s.flush().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let mixed = Instant::now();
    for r in rounds..2 * rounds {
        // A session update in the batch forces the multi-tree transaction.
        let mut ops = vec![Op::PutSession(session("client-1", 60, None))];
        ops.extend((0..1000).map(|i| put_queued("client-1", r * 1000 + i, &[0xAB; 64])));
        s.apply(ops).unwrap();
        s.flush().unwrap();
    }
    let mixed = mixed.elapsed().as_secs_f64();
    eprintln!(
        "batch_write_rate (multi-tree transaction): {:.0} ops/s, {:.2} ms/batch",
        (rounds * 1000) as f64 / mixed,
        mixed * 1000.0 / rounds as f64
    );
    eprintln!(
        "batch_write_rate: apply {in_apply:.3}s, flush {:.3}s",
        secs - in_apply
    );
    eprintln!(
        "batch_write_rate: {} batches of 1000 in {:.3}s: {:.0} ops/s, {:.2} ms/batch",
        rounds,
        secs,
        (rounds * 1000) as f64 / secs,
        secs * 1000.0 / rounds as f64
    );
}

/// Space before and after deleting 100,000 queued records.
/// Run with `cargo test --release --lib measure -- --ignored --nocapture --test-threads=1`.
#[test]
#[ignore = "measurement, slow"]
fn space_is_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(dir.path()).unwrap();
    let report = |label: &str, s: &SledStore| {
        eprintln!("{label}: size_on_disk {} bytes", s.size_on_disk().unwrap());
    };
    report("empty", &s);
    let mut seq = 0;
    for batch in 0..100 {
        let id = format!("session-{batch:03}");
        let mut ops = vec![Op::PutSession(session(&id, 3600, None))];
        for _ in 0..1000 {
            ops.push(put_queued(&id, seq, &[0x5A; 64]));
            seq += 1;
        }
        s.apply(ops).unwrap();
    }
    s.flush().unwrap();
    report("after 100k puts + flush", &s);
    let start = Instant::now();
    for batch in 0..100 {
        s.apply(vec![Op::DeleteSession {
            client_id: format!("session-{batch:03}").into(),
        }])
        .unwrap();
    }
    s.flush().unwrap();
    eprintln!("delete 100 sessions: {:?}", start.elapsed());
    report("after delete + flush", &s);
    for i in 0..5 {
        s.apply(vec![put_queued("x", i, b"y")]).unwrap();
        s.flush().unwrap();
    }
    report("after 5 more small flushes", &s);
    drop(s);
    let s = SledStore::open(dir.path()).unwrap();
    report("after reopen", &s);
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = s.copy_to(copy_dir.path()).unwrap();
    report("copy_to a new directory", &copy);
    assert_eq!(copy.load().unwrap(), s.load().unwrap());
    assert!(s.load().unwrap().sessions.is_empty());
}

/// Size under repeated fill/empty cycles: does sled's lazy reclamation keep it bounded?
#[test]
#[ignore = "measurement, slow"]
fn space_under_churn() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(dir.path()).unwrap();
    let mut seq = 0;
    for cycle in 0..6 {
        for b in 0..100 {
            let id = format!("session-{b:03}");
            let mut ops = vec![Op::PutSession(session(&id, 3600, None))];
            for _ in 0..1000 {
                ops.push(put_queued(&id, seq, &[0x5A; 64]));
                seq += 1;
            }
            s.apply(ops).unwrap();
        }
        s.flush().unwrap();
        let full = s.size_on_disk().unwrap();
        for b in 0..100 {
            s.apply(vec![Op::DeleteSession {
                client_id: format!("session-{b:03}").into(),
            }])
            .unwrap();
        }
        s.flush().unwrap();
        eprintln!(
            "cycle {cycle}: full {full} bytes, emptied {} bytes",
            s.size_on_disk().unwrap()
        );
    }
}
