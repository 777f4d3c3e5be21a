//! Loads off the persistence actor's thread (`persistence::loading`): a store whose
//! reader blocks until the test lets it go, under a real actix `System`.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::session;
use crate::config::{Durability, StorageConfig};
use crate::persistence::{
    Backlog, LoadSession, Loaded, MemoryStore, Op, Persist, Persistence, SessionReader, Snapshot,
    Store, StoreError, StoredSession,
};

/// A gate the reader waits at.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }

    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut guard = open.lock().unwrap();
        while !*guard {
            guard = cv.wait(guard).unwrap();
        }
    }
}

/// A memory store shared with its reader, whose loads wait at the gate.
#[derive(Clone)]
struct SlowStore {
    inner: Arc<Mutex<MemoryStore>>,
    gate: Gate,
}

impl SessionReader for SlowStore {
    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.gate.wait();
        self.inner.lock().unwrap().load_session(client_id)
    }
}

impl Store for SlowStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.lock().unwrap().load()
    }
    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.inner.lock().unwrap().apply(ops)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn session_reader(&self) -> Option<Box<dyn SessionReader>> {
        Some(Box::new(self.clone()))
    }
}

struct OpenOnDrop(Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

fn persist(ops: Vec<Op>) -> (Persist, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    (
        Persist {
            ops,
            done: Some(tx),
        },
        rx,
    )
}

/// While X loads, another client's batch commits; X's own ops wait and follow the
/// load's `then`, so the last record stored for X is the one written after the load.
#[actix_rt::test]
async fn a_load_off_the_thread_holds_back_only_its_clients_ops() {
    let store = SlowStore {
        inner: Arc::new(Mutex::new(MemoryStore::new())),
        gate: Gate::default(),
    };
    let config = StorageConfig {
        durability: Durability::Sync,
        ..StorageConfig::default()
    };
    let backlog = Backlog::default();
    let p = Persistence::new(Box::new(store.clone()), &config, backlog).start();
    // Opens the gate however the test ends, so that the reader's thread never hangs.
    let _opens = OpenOnDrop(store.gate.clone());
    let bound = |rx| tokio::time::timeout(Duration::from_secs(5), rx);
    let (first, done) = persist(vec![Op::PutSession(session("x", 10, None))]);
    p.do_send(first);
    bound(done).await.unwrap().unwrap();
    let (reply, loaded) = oneshot::channel();
    let then = vec![Op::PutSession(session("x", 20, None))];
    p.do_send(LoadSession {
        client_id: "x".into(),
        reply,
        then,
    });
    // Arrives during the load: X's ops wait, Y's do not.
    let (later, x_done) = persist(vec![Op::PutSession(session("x", 30, None))]);
    p.do_send(later);
    let (other, y_done) = persist(vec![Op::PutSession(session("y", 5, None))]);
    p.do_send(other);
    bound(y_done)
        .await
        .unwrap()
        .expect("y committed while x loads");
    let mut x_done = x_done;
    assert!(x_done.try_recv().is_err(), "x's batch waits for the load");
    store.gate.open();
    match tokio::time::timeout(Duration::from_secs(5), loaded)
        .await
        .unwrap()
        .unwrap()
    {
        Loaded::Found(s) => assert_eq!(s.record.expiry_secs, 10, "read before what followed"),
        other => panic!("load: {other:?}"),
    }
    bound(x_done)
        .await
        .unwrap()
        .expect("x's batch committed after the load");
    let stored = store
        .inner
        .lock()
        .unwrap()
        .load_session("x")
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.record.expiry_secs, 30,
        "then (20), then the later batch (30)"
    );
}
