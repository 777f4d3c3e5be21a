//! Worker arbiters: one event loop per core; connections are spread over them.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;

/// The arbiters that run session actors, chosen round robin.
#[derive(Clone)]
pub struct Workers {
    arbiters: Arc<Vec<ArbiterHandle>>,
    next: Arc<AtomicUsize>,
}

impl Workers {
    /// Starts `n` arbiters (at least one).
    pub fn start(n: usize) -> Workers {
        let arbiters = (0..n.max(1)).map(|_| Arbiter::new().handle()).collect();
        Workers {
            arbiters: Arc::new(arbiters),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs the future `make` returns on arbiter `i` (modulo their number).
    pub fn spawn_on<F, Fut>(&self, i: usize, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.arbiters[i % self.arbiters.len()].spawn_fn(move || {
            actix_rt::spawn(make());
        });
    }

    /// How many arbiters there are.
    pub fn len(&self) -> usize {
        self.arbiters.len()
    }

    /// The first arbiter.
    pub fn first(&self) -> &ArbiterHandle {
        &self.arbiters[0]
    }

    /// The next arbiter, round robin.
    pub fn next_arbiter(&self) -> &ArbiterHandle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        &self.arbiters[i]
    }

    /// Stops every arbiter.
    pub fn stop(&self) {
        for a in self.arbiters.iter() {
            a.stop();
        }
    }
}
