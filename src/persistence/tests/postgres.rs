//! `PgStore` against a real PostgreSQL server (tests/common/pg.rs): the model test's
//! random steps compared with `MemoryStore`, one client's load, and a database of a
//! newer schema refused. Skipped (with a message) where PostgreSQL is not installed,
//! except under CI.

use proptest::prelude::*;

use super::super::{MemoryStore, PgStore, Store, StoreError, PG_SCHEMA};
use super::model::{step, Step};

#[path = "../../../tests/common/pg.rs"]
mod pg;

/// A server of the test's own (dropped, so stopped, at its end), or `None` where
/// PostgreSQL is not installed.
fn server(test: &str) -> Option<pg::PgServer> {
    pg::pg_bin_or_skip(test).map(|bin| pg::PgServer::start_new(&bin))
}

/// Runs the model test's `steps` against `PgStore` (the database emptied first) and
/// `MemoryStore`; every load, and every session's own load, must agree.
fn run_steps(server: &pg::PgServer, steps: Vec<Step>) -> Result<(), TestCaseError> {
    server.psql(
        "starling",
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
    );
    let url = server.url();
    let mut pg = PgStore::connect(&url).unwrap();
    let mut model = MemoryStore::new();
    prop_assert_eq!(pg.load().unwrap(), model.load().unwrap());
    for step in steps {
        match step {
            Step::Apply(ops) => {
                model.apply(ops.clone()).unwrap();
                pg.apply(ops).unwrap();
            }
            Step::Flush => pg.flush().unwrap(),
            Step::Restart { .. } => {
                drop(pg);
                pg = PgStore::connect(&url).unwrap();
            }
        }
        let snapshot = model.load().unwrap();
        prop_assert_eq!(pg.load().unwrap(), snapshot.clone());
        for s in &snapshot.sessions {
            let one = pg.load_session(&s.record.client_id).unwrap();
            prop_assert_eq!(one.as_ref(), Some(s));
        }
    }
    Ok(())
}

#[test]
fn postgres_matches_memory() {
    let Some(server) = server("postgres_matches_memory") else {
        return;
    };
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy = prop::collection::vec(step(), 1..25);
    if let Err(e) = runner.run(&strategy, |steps| run_steps(&server, steps)) {
        panic!("{e}");
    }
}

#[test]
fn loads_in_pages_and_one_session_at_a_time() {
    use super::super::Op;
    let Some(server) = server("loads_in_pages_and_one_session_at_a_time") else {
        return;
    };
    let mut pg = PgStore::connect(&server.url()).unwrap();
    // More rows than a page (5,000) in every table that is paged.
    let mut ops = Vec::new();
    for i in 0..6_000u64 {
        let id = format!("c{i:05}");
        ops.push(Op::PutSession(super::session(&id, 60, None)));
        ops.push(Op::PutQueued {
            client_id: id.as_str().into(),
            seq: i + 1,
            rec: super::queued("t", b"x"),
        });
    }
    for seq in 10_000..16_000u64 {
        ops.push(Op::PutQueued {
            client_id: "c00001".into(),
            seq,
            rec: super::queued("t", b"y"),
        });
    }
    pg.apply(ops).unwrap();
    let snapshot = pg.load().unwrap();
    assert_eq!(snapshot.sessions.len(), 6_000);
    assert_eq!(snapshot.next_seq, 16_000);
    assert_eq!(snapshot.sessions[1].queue.len(), 6_001);
    let one = pg.load_session("c00001").unwrap().expect("stored");
    assert_eq!(one, snapshot.sessions[1]);
    assert!(pg.load_session("nobody").unwrap().is_none());
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(server) = server("a_newer_schema_is_refused") else {
        return;
    };
    drop(PgStore::connect(&server.url()).unwrap());
    let newer = PG_SCHEMA + 1;
    server.psql(
        "starling",
        &format!("INSERT INTO starling_schema_version (version) VALUES ({newer})"),
    );
    let err = PgStore::connect(&server.url()).expect_err("a newer schema must be refused");
    assert!(
        matches!(err, StoreError::NewerSchema { found, supported, .. } if found == newer && supported == PG_SCHEMA),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("this binary supports up to"), "{text}");
}

#[test]
fn a_bad_password_is_never_shown() {
    let Some(server) = server("a_bad_password_is_never_shown") else {
        return;
    };
    let url = format!(
        "postgres://postgres:s3cret@127.0.0.1:{}/nosuchdb",
        server.port
    );
    let err = PgStore::connect(&url).expect_err("no such database");
    assert!(!format!("{err} {err:?}").contains("s3cret"), "{err}");
}
