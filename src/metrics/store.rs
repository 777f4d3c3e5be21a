//! What the persistence actor reports: how long its commits take, how many ops each
//! carries, and its restarts.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::labels::ActorLabels;

/// The persistence actor's handles (cheap to clone; clones share the series).
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    commit_seconds: Histogram,
    batch_ops: Histogram,
    restarts: Counter,
}

impl StoreMetrics {
    /// Registers the store's series; `restarts` is the actor-restarts family.
    pub fn register(registry: &mut Registry, restarts: &Family<ActorLabels, Counter>) -> Self {
        // 50 µs to about 3.3 s.
        let commit_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 17));
        registry.register(
            "store_commit_seconds",
            "Time of one store commit (the batch's write and, when due, its flush)",
            commit_seconds.clone(),
        );
        // 1 to 16384 ops.
        let batch_ops = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        registry.register(
            "store_batch_ops",
            "Store operations written per commit",
            batch_ops.clone(),
        );
        StoreMetrics {
            commit_seconds,
            batch_ops,
            restarts: restarts.get_or_create_owned(&ActorLabels {
                actor: "persistence",
            }),
        }
    }

    /// One commit of `ops` operations that took `took`.
    pub fn commit(&self, ops: usize, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.batch_ops.observe(ops as f64);
    }

    /// The persistence actor restarted after a failure.
    pub fn restarted(&self) {
        self.restarts.inc();
    }
}
