//! The redis store against a real `redis-server` (skipped when it is not installed,
//! outside CI): the model test of `model.rs`, paging, schema, reconnect, durability
//! check.

use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::super::redis::Risk;
use super::super::{MemoryStore, Op, RedisStore, Store, StoreError};
use super::model::{step, Step};
use super::redis_server::{redis_server_or_skip, RedisServer};
use super::{queued, session};

fn server(test: &str, fsync: &str) -> Option<RedisServer> {
    redis_server_or_skip(test).map(|bin| RedisServer::start(&bin, fsync))
}

// Random op batches and restarts (a new connection) give the same snapshots as
// MemoryStore; each case uses its own prefix on one server.
#[test]
fn redis_matches_memory() {
    let Some(server) = server("redis_matches_memory", "always") else {
        return;
    };
    let url = server.url();
    let case = AtomicU32::new(0);
    let mut runner = TestRunner::new(Config::with_cases(24));
    let steps = prop::collection::vec(step(), 1..25);
    let result = runner.run(&steps, |steps| {
        let prefix = format!("model{}:", case.fetch_add(1, Ordering::Relaxed));
        let mut store = RedisStore::connect_with_prefix(&url, &prefix).unwrap();
        let mut model = MemoryStore::new();
        prop_assert_eq!(store.load().unwrap(), model.load().unwrap());
        for step in steps {
            match step {
                Step::Apply(ops) => {
                    model.apply(ops.clone()).unwrap();
                    store.apply(ops).unwrap();
                }
                Step::Flush => store.flush().unwrap(),
                Step::Restart { .. } => {
                    drop(store);
                    store = RedisStore::connect_with_prefix(&url, &prefix).unwrap();
                }
            }
            prop_assert_eq!(store.load().unwrap(), model.load().unwrap());
            for s in model.load().unwrap().sessions {
                let one = store.load_session(&s.record.client_id).unwrap();
                prop_assert_eq!(one.as_ref(), Some(&s));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn put_queue(id: &str, seqs: std::ops::Range<u64>) -> Vec<Op> {
    seqs.map(|seq| Op::PutQueued {
        client_id: id.into(),
        seq,
        rec: queued("t", seq.to_string().as_bytes()),
    })
    .collect()
}

// A queue larger than a SCAN page (and than redis's compact hash encoding) loads whole
// and in seq order, through `load` and `load_session`.
#[test]
fn large_queue_loads_in_pages() {
    let Some(server) = server("large_queue_loads_in_pages", "always") else {
        return;
    };
    let mut store = RedisStore::connect(&server.url()).unwrap();
    let mut ops = vec![Op::PutSession(session("big", 60, None))];
    ops.extend(put_queue("big", 1..5001));
    store.apply(ops).unwrap();
    store
        .apply(vec![Op::PutSession(session("small", 60, None))])
        .unwrap();
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.next_seq, 5001);
    let big = &snapshot.sessions[0];
    assert_eq!(big.record.client_id, "big");
    let seqs: Vec<u64> = big.queue.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..5001).collect::<Vec<_>>());
    assert_eq!(store.load_session("big").unwrap().as_ref(), Some(big));
    let reader = store
        .session_reader()
        .expect("a reader on its own connection");
    assert_eq!(reader.load_session("big").unwrap().as_ref(), Some(big));
    assert_eq!(store.load_session("nobody").unwrap(), None);
}

// Keys written by a newer binary are refused with a clear error.
#[test]
fn newer_schema_is_refused() {
    let Some(server) = server("newer_schema_is_refused", "always") else {
        return;
    };
    let store = RedisStore::connect_with_prefix(&server.url(), "s:").unwrap();
    drop(store);
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    redis::cmd("SET")
        .arg("s:schema")
        .arg(99)
        .exec(&mut con)
        .unwrap();
    let err = RedisStore::connect_with_prefix(&server.url(), "s:").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("schema version 99"), "{text}");
    assert!(text.contains("supports up to 1"), "{text}");
}

// A broken connection fails the call with a server error; once the server is back, the
// next call connects again, and everything acknowledged before is there (AOF always).
#[test]
fn reconnects_after_the_server_restarts() {
    let Some(mut server) = server("reconnects_after_the_server_restarts", "always") else {
        return;
    };
    let mut store = RedisStore::connect(&server.url()).unwrap();
    let mut ops = vec![Op::PutSession(session("c", 60, None))];
    ops.extend(put_queue("c", 1..11));
    store.apply(ops).unwrap();
    server.kill9();
    let err = store.apply(put_queue("c", 11..12)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Server {
                backend: "redis",
                ..
            }
        ),
        "{err}"
    );
    assert!(store.load().is_err());
    server.restart();
    // The first call after a failed connect may still be inside the backoff.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.apply(put_queue("c", 11..21)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no reconnect within 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.sessions[0].queue.len(), 20);
    assert_eq!(snapshot.next_seq, 21);
}

// The durability check reads appendfsync.
#[test]
fn durability_risk_follows_appendfsync() {
    let Some(always) = server("durability_risk_follows_appendfsync", "always") else {
        return;
    };
    let store = RedisStore::connect(&always.url()).unwrap();
    assert_eq!(store.durability_risk(), &Risk::None);
    let Some(everysec) = server("durability_risk_follows_appendfsync", "everysec") else {
        return;
    };
    let store = RedisStore::connect(&everysec.url()).unwrap();
    assert!(matches!(store.durability_risk(), Risk::Window(w) if w.contains("everysec")));
}

// A server that cannot be reached is a server error that names it without the password.
#[test]
fn unreachable_server_error_hides_the_password() {
    let err = RedisStore::connect("redis://user:secret@127.0.0.1:1/0").unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            StoreError::Server {
                backend: "redis",
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("127.0.0.1:1/0") && !text.contains("secret"),
        "{text}"
    );
}
