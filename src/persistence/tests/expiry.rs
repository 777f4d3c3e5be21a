//! Table tests of `drop_expired`.

use super::super::{drop_expired, Op, Snapshot, StoredSession};
use super::{msg, queued, session};

fn snapshot_of(expiry_secs: u32, disconnected_at_ms: Option<u64>) -> Snapshot {
    Snapshot {
        sessions: vec![StoredSession {
            record: session("c", expiry_secs, disconnected_at_ms),
            subscriptions: vec![],
            queue: vec![],
            inbound_qos2: vec![],
            replay: None,
        }],
        retained: vec![],
        next_seq: 1,
    }
}

#[test]
fn sessions() {
    // (expiry_secs, disconnected_at_ms, now_ms, expired)
    let table: [(u32, Option<u64>, u64, bool); 9] = [
        (60, Some(1_000), 60_999, false),
        (60, Some(1_000), 61_000, true),
        (60, Some(1_000), 1_000_000, true),
        (0, Some(1_000), 1_000, true),
        (u32::MAX, Some(0), u64::MAX, false),
        (u32::MAX - 1, Some(u64::MAX - 5), u64::MAX - 1, false),
        (60, None, 1_000_000, false),
        (0, None, 1_000_000, true),
        (60, Some(5_000), 1_000, false),
    ];
    for (expiry, disc, now, expired) in table {
        let mut snap = snapshot_of(expiry, disc);
        let ops = drop_expired(&mut snap, now);
        let case = format!("expiry {expiry} disconnected {disc:?} now {now}");
        if expired {
            assert!(snap.sessions.is_empty(), "{case}");
            assert_eq!(
                ops,
                vec![Op::DeleteSession {
                    client_id: "c".into()
                }],
                "{case}"
            );
        } else {
            assert_eq!(snap.sessions.len(), 1, "{case}");
            let rec = &snap.sessions[0].record;
            if disc.is_none() {
                assert_eq!(rec.disconnected_at_ms, Some(now), "{case}");
                assert_eq!(ops, vec![Op::PutSession(rec.clone())], "{case}");
            } else {
                assert!(ops.is_empty(), "{case}");
            }
        }
    }
}

#[test]
fn queued_and_retained() {
    let mut snap = snapshot_of(u32::MAX, Some(0));
    let q = |seq: u64, exp: Option<u64>, packet_id: Option<u16>| {
        let mut r = queued("t", b"p");
        r.message.expires_at_ms = exp;
        r.packet_id = packet_id;
        (seq, r)
    };
    snap.sessions[0].queue = vec![
        q(1, None, None),
        q(2, Some(100), None),
        q(3, Some(101), None),
        q(4, Some(99), Some(7)),
        q(5, Some(50), None),
    ];
    let r = |topic: &str, exp: Option<u64>| {
        let mut m = msg(topic, b"r");
        m.expires_at_ms = exp;
        m
    };
    snap.retained = vec![r("a", Some(100)), r("b", None), r("c", Some(1000))];
    let ops = drop_expired(&mut snap, 100);
    let kept: Vec<u64> = snap.sessions[0].queue.iter().map(|(s, _)| *s).collect();
    assert_eq!(kept, vec![1, 3, 4], "in-flight 4 is kept although expired");
    let topics: Vec<&str> = snap.retained.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(topics, vec!["b", "c"]);
    assert_eq!(
        ops,
        vec![
            Op::DeleteQueued {
                client_id: "c".into(),
                seq: 2
            },
            Op::DeleteQueued {
                client_id: "c".into(),
                seq: 5
            },
            Op::DeleteRetained { topic: "a".into() },
        ]
    );
}

#[test]
fn ops_shrink_the_store_like_the_snapshot() {
    use super::super::{MemoryStore, Store};
    let mut store = MemoryStore::new();
    let mut old = queued("t", b"x");
    old.message.expires_at_ms = Some(10);
    store
        .apply(vec![
            Op::PutSession(session("gone", 1, Some(0))),
            Op::PutQueued {
                client_id: "gone".into(),
                seq: 1,
                rec: queued("t", b"x"),
            },
            Op::PutSession(session("kept", 100, Some(0))),
            Op::PutQueued {
                client_id: "kept".into(),
                seq: 2,
                rec: old,
            },
            Op::PutRetained(msg("r", b"x")),
        ])
        .unwrap();
    let mut snap = store.load().unwrap();
    let ops = drop_expired(&mut snap, 5_000);
    store.apply(ops).unwrap();
    assert_eq!(store.load().unwrap(), snap);
    assert_eq!(snap.sessions.len(), 1);
    assert!(snap.sessions[0].queue.is_empty());
}
