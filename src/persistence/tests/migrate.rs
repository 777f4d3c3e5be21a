//! `migrate` between stores: everything copied, the target verified, a non-empty target
//! refused without `force`, and an interrupted copy finished by a forced re-run.

use super::{msg, queued, session};
use crate::persistence::{
    migrate, MemoryStore, MigrateError, MigrateOptions, Op, SledStore, Store, SubscriptionRecord,
};

fn sub(filter: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        filter: filter.into(),
        qos: 2,
        no_local: false,
        retain_as_published: true,
        retain_handling: 1,
        subscription_id: Some(7),
    }
}

/// Three sessions with subscriptions, queues (one message in flight) and inbound QoS 2
/// ids, two retained messages, and a next seq above every queued seq.
fn source() -> MemoryStore {
    let mut store = MemoryStore::new();
    let mut ops = Vec::new();
    for (n, id) in ["a", "b", "c"].iter().enumerate() {
        ops.push(Op::PutSession(session(id, 3600, Some(1_000))));
        ops.push(Op::PutSubscription {
            client_id: (*id).into(),
            sub: sub(&format!("t/{id}/#")),
        });
        for seq in 0..5u64 {
            let mut rec = queued(&format!("t/{id}/x"), &seq.to_be_bytes());
            if seq == 0 {
                rec.packet_id = Some(40 + n as u16);
            }
            ops.push(Op::PutQueued {
                client_id: (*id).into(),
                seq: 10 * n as u64 + seq + 1,
                rec,
            });
        }
        ops.push(Op::PutInboundQos2 {
            client_id: (*id).into(),
            packet_id: 9,
        });
    }
    ops.push(Op::PutRetained(msg("r/1", b"one")));
    ops.push(Op::PutRetained(msg("r/2", b"two")));
    ops.push(Op::RaiseNextSeq { next_seq: 500 });
    store.apply(ops).expect("fill source");
    store
}

fn small_batches(force: bool) -> MigrateOptions {
    MigrateOptions {
        force,
        batch_ops: 4,
    }
}

#[test]
fn copies_everything_into_sled_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = source();
    let mut dst = SledStore::open(dir.path()).expect("open target");
    let summary = migrate(&src, &mut dst, small_batches(false)).expect("migrate");
    assert!(summary.comparison.verified(), "{}", summary.comparison);
    assert_eq!(summary.sessions_written, 3);
    assert!(summary.batches > 5, "bounded batches: {summary:?}");
    let (a, b) = (src.load().expect("load"), dst.load().expect("load"));
    assert_eq!(a, b, "same snapshot, next seq included");
    assert_eq!(b.next_seq, 500);
    drop(dst);
    let reopened = SledStore::open(dir.path()).expect("reopen");
    assert_eq!(reopened.load().expect("load").next_seq, 500);
}

#[test]
fn refuses_a_non_empty_target_without_force() {
    let src = source();
    let mut dst = MemoryStore::new();
    dst.apply(vec![Op::PutRetained(msg("other", b"x"))])
        .expect("fill target");
    let err = migrate(&src, &mut dst, small_batches(false)).unwrap_err();
    assert!(
        matches!(
            err,
            MigrateError::TargetNotEmpty {
                sessions: 0,
                retained: 1
            }
        ),
        "{err}"
    );
    assert_eq!(dst.load().expect("load").retained.len(), 1, "left alone");
}

#[test]
fn forced_rerun_converges_after_an_interruption() {
    let src = source();
    let mut dst = MemoryStore::new();
    // An earlier run stopped half-way, the target also holds state of its own.
    let ops: Vec<Op> = vec![
        Op::PutSession(session("zzz", 60, None)),
        Op::PutRetained(msg("r/1", b"stale")),
        Op::PutRetained(msg("r/gone", b"x")),
        Op::PutQueued {
            client_id: "b".into(),
            seq: 999,
            rec: queued("stale", b""),
        },
        Op::PutSession(session("b", 1, None)),
    ];
    dst.apply(ops).expect("fill target");
    let first = migrate(&src, &mut dst, small_batches(true)).expect("migrate");
    assert!(first.comparison.verified(), "{}", first.comparison);
    assert_eq!(first.deleted, 2, "zzz and r/gone: {first:?}");
    let (mut a, b) = (src.load().expect("load"), dst.load().expect("load"));
    assert!(b.next_seq >= a.next_seq);
    a.next_seq = b.next_seq;
    assert_eq!(a, b);
    let again = migrate(&src, &mut dst, small_batches(true)).expect("migrate");
    assert!(again.comparison.verified());
    assert_eq!((again.sessions_written, again.unchanged), (0, 5));
}
