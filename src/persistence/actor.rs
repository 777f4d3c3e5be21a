//! The persistence actor: the only place that calls the store. It runs on an arbiter of
//! its own, so its blocking sled calls never stall a session or the router. Changes
//! arrive as messages and are committed in groups: while one commit flushes, the next
//! messages queue up and go into the following batch.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::{error, info};

use super::convert::message_record;
use super::loading::Loads;
use super::messages::{
    Commit, CompactCheck, FlushNow, FlushTick, LoadDone, LoadSession, Loaded, Persist,
    PersistDeliveries,
};
use super::open::{reopen, store_dir, Reopen};
use super::outage::Outage;
use super::records::QueuedRecord;
use super::ticket::Backlog;
use super::{Op, Store, StoreError, StoredSession};
use crate::config::{Durability, StorageConfig};
use crate::guard::{calls, guarded_handlers, Guarded};
use crate::message::ClientId;
use crate::metrics::StoreMetrics;

/// Ops held for the next batch at most; past it they are applied at once.
const MAX_PENDING_OPS: usize = 65_536;
/// In `sync` mode, ops without a waiter are flushed at least this often.
const LAZY_FLUSH: Duration = Duration::from_millis(500);
/// How often the store's size is checked for compaction.
const COMPACT_CHECK: Duration = Duration::from_secs(30);
/// A store is compacted once it is this large and twice its size after the last
/// compaction (or start).
const COMPACT_MIN_BYTES: u64 = 32 * 1024 * 1024;

/// The persistence actor. It runs under a `Supervisor`: a panic in a handler stops it,
/// and the restart re-opens the store (the source of truth) before anything else.
pub struct Persistence {
    /// `None` after a failed re-open: commits fail (nothing is acknowledged) and the
    /// next commit tries to open it again.
    store: Option<Box<dyn Store>>,
    config: StorageConfig,
    durability: Durability,
    flush_interval: Duration,
    pending: Vec<Op>,
    waiters: Vec<oneshot::Sender<()>>,
    scheduled: bool,
    dirty: bool,
    /// Size on disk after opening or the last compaction.
    baseline: u64,
    /// Re-opens a store that is not sled or memory (cluster mode's JetStream store).
    reopen: Option<Reopen>,
    /// The embedding application gave the store: it is kept across a restart (nothing
    /// here knows how to re-open it) and never compacted here.
    given: bool,
    /// Routed messages sent here and not handled yet.
    backlog: Backlog,
    /// Loads running off this thread, and the ops that wait for them.
    loads: Loads,
    /// Test-only faults armed by `$fault/persistence/<handler>` publishes.
    faults: crate::guard::Faults,
    /// Where commits and restarts are counted, once the broker said ([`ObserveStore`]).
    pub(super) metrics: Option<StoreMetrics>,
    /// Whether the store is failing: failed batches stay pending and are retried.
    outage: Outage,
}

impl Persistence {
    /// A persistence actor over `store`; `backlog` is shared with the router.
    pub fn new(store: Box<dyn Store>, config: &StorageConfig, backlog: Backlog) -> Persistence {
        Persistence {
            store: Some(store),
            config: config.clone(),
            durability: config.durability,
            flush_interval: Duration::from_millis(config.flush_interval_ms.max(1)),
            pending: Vec::new(),
            waiters: Vec::new(),
            scheduled: false,
            dirty: false,
            baseline: 0,
            reopen: None,
            given: false,
            backlog,
            loads: Loads::default(),
            faults: Default::default(),
            metrics: None,
            outage: Outage::default(),
        }
    }

    /// A persistence actor over a store that `reopen` re-creates after a restart.
    pub fn with_reopen(
        store: Box<dyn Store>,
        config: &StorageConfig,
        backlog: Backlog,
        reopen: Reopen,
    ) -> Persistence {
        Persistence {
            reopen: Some(reopen),
            ..Persistence::new(store, config, backlog)
        }
    }

    /// A persistence actor over a store the embedding application gave
    /// ([`Broker::store`](crate::Broker::store)): kept as it is across restarts.
    pub fn given(store: Box<dyn Store>, config: &StorageConfig, backlog: Backlog) -> Persistence {
        Persistence {
            given: true,
            ..Persistence::new(store, config, backlog)
        }
    }

    fn reopen(&self) -> Option<Box<dyn Store>> {
        if self.given {
            error!("the store given to the broker is gone; it cannot be re-opened");
            return None;
        }
        match &self.reopen {
            Some(f) => Some((f.0)()),
            None => reopen(&self.config),
        }
    }

    fn enqueue(
        &mut self,
        ops: Vec<Op>,
        done: Option<oneshot::Sender<()>>,
        ctx: &mut Context<Self>,
    ) {
        if self.durability == Durability::Memory {
            if let Some(d) = done {
                let _ = d.send(());
            }
            return;
        }
        let (ops, done) = match self.loads.is_empty() {
            true => (ops, done),
            false => self.loads.split(ops, done),
        };
        self.pending.extend(ops);
        self.waiters.extend(done);
        if self.pending.len() >= MAX_PENDING_OPS {
            // `periodic` applies on its timer: a burst beyond this is applied now (and
            // flushed on the timer as usual), so the ops held here stay bounded.
            self.commit(false);
            return;
        }
        self.schedule_commit(ctx);
    }

    /// `sync`: a commit behind whatever is already queued (those ops join its batch).
    fn schedule_commit(&mut self, ctx: &mut Context<Self>) {
        if self.durability == Durability::Sync && !self.scheduled {
            self.scheduled = true;
            ctx.notify(Commit);
        }
    }

    /// Applies the pending ops as one batch; flushes when asked or when someone waits.
    /// A batch that fails stays pending (to be retried with backoff, `super::outage`)
    /// and its waiters are dropped: their publishes are not acknowledged. While the
    /// store is failing and its backoff has not elapsed, waiters fail at once.
    fn commit(&mut self, flush: bool) -> bool {
        self.scheduled = false;
        let started = std::time::Instant::now();
        if !self.outage.may_try(started) {
            self.waiters.clear();
            return false;
        }
        let waiters = std::mem::take(&mut self.waiters);
        let count = self.pending.len();
        match self.write_pending(flush || !waiters.is_empty()) {
            Err(e) => {
                self.outage.failed(std::time::Instant::now(), &e);
                return false;
            }
            // Only a write that reached the store ends an outage.
            Ok(true) => self.outage.succeeded(std::time::Instant::now()),
            Ok(false) => {}
        }
        if let Some(metrics) = self.metrics.as_ref().filter(|_| count > 0) {
            metrics.commit(count, started.elapsed());
        }
        for w in waiters {
            let _ = w.send(());
        }
        true
    }
}

impl Persistence {
    /// Applies the pending ops (kept pending if that fails) and flushes if `flush`;
    /// true if the store was written to.
    fn write_pending(&mut self, flush: bool) -> Result<bool, StoreError> {
        let ops = std::mem::take(&mut self.pending);
        let mut dirty = self.dirty;
        let Some(store) = self.store_mut() else {
            self.pending = ops;
            return Err(StoreError::Server {
                backend: "store",
                reason: "cannot be opened".into(),
            });
        };
        let ops_empty = ops.is_empty();
        if !ops_empty {
            // A copy is kept until the batch is in: a failed one is retried as it was.
            if let Err(e) = store.apply(ops.clone()) {
                self.pending = ops;
                return Err(e);
            }
            dirty = true;
        }
        let wrote = !ops_empty || (dirty && flush);
        let flushed = match dirty && flush {
            true => store.flush().map(|()| false),
            false => Ok(dirty),
        };
        self.dirty = flushed.as_ref().map_or(true, |d| *d);
        flushed.map(|_| wrote)
    }

    /// The store, re-opening it if a restart could not.
    fn store_mut(&mut self) -> Option<&mut Box<dyn Store>> {
        if self.store.is_none() {
            self.store = self.reopen();
        }
        self.store.as_mut()
    }
}

/// The answer to a load.
fn loaded_from(result: Result<Option<StoredSession>, StoreError>, client: &ClientId) -> Loaded {
    match result {
        Ok(Some(stored)) => Loaded::Found(Box::new(stored)),
        Ok(None) => Loaded::Nothing,
        Err(e) => {
            error!(error = %e, client_id = %client, "cannot load session");
            Loaded::Failed
        }
    }
}

impl Persistence {
    /// Compacts the store when it has grown well past its live size (see [`compact`]).
    fn maybe_compact(&mut self) {
        if self.given {
            return;
        }
        let Some(size) = self.store.as_ref().and_then(|s| s.size_on_disk().ok()) else {
            return;
        };
        if self.baseline == 0 {
            self.baseline = size;
        }
        if size < COMPACT_MIN_BYTES.max(self.baseline.saturating_mul(2)) || !self.commit(true) {
            return;
        }
        let Some(store) = self.store.take() else {
            return;
        };
        match super::compact(store, &store_dir(&self.config.data_dir)) {
            Ok(store) => {
                self.baseline = store.size_on_disk().unwrap_or(0);
                self.store = Some(store);
            }
            Err(e) => error!(error = %e, "compaction failed; the store is re-opened on next use"),
        }
    }
}

impl Supervised for Persistence {
    fn restarting(&mut self, ctx: &mut Self::Context) {
        // Waiters of a batch that failed inside `commit` were dropped: their publishes
        // stay unacknowledged. Ops queued since then wait for a `Commit` that the
        // restart dropped with the old context: it is queued again.
        self.scheduled = false;
        if let Some(metrics) = &self.metrics {
            metrics.restarted();
        }
        if !self.given {
            self.store = None;
            self.store = self.reopen();
        }
        if !self.pending.is_empty() || !self.waiters.is_empty() {
            self.scheduled = true;
            ctx.notify(Commit);
        }
        info!(
            reopened = self.store.is_some(),
            "persistence actor restarted"
        );
    }
}

guarded_handlers!(Persistence);

impl Guarded for Persistence {
    const ACTOR: &'static str = "persistence";

    fn take_fault(&mut self, name: &'static str) -> bool {
        self.faults.take(name)
    }
}

calls!(Persistence {
    Persist => on_persist, failed ();
    LoadSession => on_load_session, failed ();
    PersistDeliveries => on_persist_deliveries, failed ();
    Commit => on_commit, failed ();
    FlushTick => on_flush_tick, failed ();
    LoadDone => on_load_done, failed ();
    CompactCheck => on_compact_check, failed ();
    FlushNow => on_flush_now, failed false;
});

impl Actor for Persistence {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = match self.durability {
            Durability::Periodic => self.flush_interval,
            _ => LAZY_FLUSH,
        };
        // Through the mailbox, so that the timers' work runs guarded like a handler.
        ctx.run_interval(every, |_, ctx| ctx.notify(FlushTick));
        ctx.run_interval(COMPACT_CHECK, |_, ctx| ctx.notify(CompactCheck));
    }
}

impl Persistence {
    fn on_persist(&mut self, msg: Persist, ctx: &mut Context<Self>) {
        self.enqueue(msg.ops, msg.done, ctx);
    }
}

impl Persistence {
    /// Loads on this thread when the store reads locally (sled, memory); a store that
    /// reads over the network (JetStream) gets a reader that loads on a blocking
    /// thread (`super::loading`), so one CONNECT does not stall every acknowledgement
    /// waiting for the next commit. `then` is applied only after a load that worked
    /// (a failed one refuses the connection; the stored session stays as it is).
    fn on_load_session(&mut self, msg: LoadSession, ctx: &mut Context<Self>) {
        let reader = self.store.as_ref().and_then(|s| s.session_reader());
        let Some(reader) = reader else {
            // Pending changes first, so the load sees them (it cannot without them).
            if !self.commit(false) && !self.pending.is_empty() {
                let _ = msg.reply.send(Loaded::Failed);
                return;
            }
            let LoadSession {
                client_id,
                reply,
                then,
            } = msg;
            let loaded = match self.store_mut() {
                Some(store) => loaded_from(store.load_session(client_id.as_str()), &client_id),
                None => Loaded::Failed,
            };
            if !matches!(loaded, Loaded::Failed) {
                self.enqueue(then, None, ctx);
            }
            let _ = reply.send(loaded);
            return;
        };
        if self.loads.is_loading(msg.client_id.as_str()) {
            self.loads.park_load(msg);
            return;
        }
        // A reader elsewhere sees only what is flushed.
        if !self.commit(true) {
            let _ = msg.reply.send(Loaded::Failed);
            return;
        }
        self.loads.start(msg.client_id.clone());
        let me = ctx.address();
        tokio::task::spawn_blocking(move || {
            let LoadSession {
                client_id,
                reply,
                then,
            } = msg;
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                reader.load_session(client_id.as_str())
            }));
            let loaded = match read {
                Ok(result) => loaded_from(result, &client_id),
                Err(_) => Loaded::Failed,
            };
            // Queued before the answer, so before anything the resumed session sends.
            let then = (!matches!(loaded, Loaded::Failed)).then_some(then);
            me.do_send(LoadDone { client_id, then });
            let _ = reply.send(loaded);
        });
    }

    /// A load off this thread is done: its `then`, then what waited for it.
    fn on_load_done(&mut self, msg: LoadDone, ctx: &mut Context<Self>) {
        let Some(released) = self.loads.finish(&msg.client_id) else {
            return;
        };
        if let Some(then) = msg.then {
            self.enqueue(then, None, ctx);
        }
        self.enqueue(released.ops, None, ctx);
        if !released.waiters.is_empty() {
            self.waiters.extend(released.waiters);
            self.schedule_commit(ctx);
        }
        for load in released.loads {
            self.on_load_session(load, ctx);
        }
    }
}

impl Persistence {
    fn on_persist_deliveries(&mut self, msg: PersistDeliveries, ctx: &mut Context<Self>) {
        self.backlog.handled();
        // Test builds: `$fault/persistence` (retained, so that it is stored) fails here;
        // `$fault/persistence/<Handler>` arms one failure of that handler.
        #[cfg(feature = "fault-injection")]
        if let Some(name) = msg.msg.topic.as_str().strip_prefix("$fault/persistence") {
            match name.strip_prefix('/') {
                Some(handler) => return self.faults.arm(handler),
                None => panic!("injected persistence fault"),
            }
        }
        let mut ops = msg.extra;
        if !msg.targets.is_empty() && self.durability != Durability::Memory {
            let record = message_record(&msg.msg);
            for t in msg.targets {
                if let Some(origin) = msg.origin {
                    ops.push(Op::Delivered {
                        client_id: t.client.clone(),
                        origin,
                    });
                }
                ops.push(Op::PutQueued {
                    client_id: t.client,
                    seq: t.seq,
                    rec: QueuedRecord {
                        message: record.clone(),
                        qos: t.qos as u8,
                        retain: t.retain,
                        sub_ids: t.sub_ids,
                        packet_id: None,
                        released: false,
                    },
                });
            }
        }
        self.enqueue(ops, msg.done, ctx);
    }
}

impl Persistence {
    fn on_commit(&mut self, _: Commit, _: &mut Context<Self>) {
        self.commit(false);
    }

    fn on_flush_tick(&mut self, _: FlushTick, _: &mut Context<Self>) {
        self.commit(true);
    }

    fn on_compact_check(&mut self, _: CompactCheck, _: &mut Context<Self>) {
        self.maybe_compact();
    }
}

impl Persistence {
    fn on_flush_now(&mut self, _: FlushNow, _: &mut Context<Self>) -> bool {
        self.commit(true)
    }
}
