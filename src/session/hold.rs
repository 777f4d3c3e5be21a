//! Holding a publisher back: its socket is not read while a subscriber it feeds is over
//! its queue limit (`[limits] queue_full = "backpressure"`, the router names the
//! pressured subscribers in its answer) or while the broker is over its memory high
//! watermark (`[limits] max_memory`). Each cause is a wait (a future woken by the
//! subscriber or the memory sampler, never a poll); reading resumes when the last one
//! ends. What the client already sent is handled as usual, and its acknowledgements
//! go out: nothing is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use futures::future::join_all;
use tracing::debug;

use super::actor::Session;
use super::gate::Gate;
use crate::delivery::Pressure;
use crate::metrics::Limit;

/// The waits holding a publisher back.
pub(super) struct Holds {
    waits: usize,
    /// A wait for memory is running (one at a time).
    memory: bool,
    /// Closed while any wait runs: the socket is not read.
    pub gate: Gate,
}

impl Holds {
    /// Holds that stop reading with `gate`.
    pub fn with_gate(gate: Gate) -> Holds {
        Holds {
            waits: 0,
            memory: false,
            gate,
        }
    }

    /// One more wait; true when reading must stop now.
    fn hold(&mut self) -> bool {
        self.waits += 1;
        self.waits == 1
    }

    /// One wait ended; true when reading may resume now.
    fn release(&mut self) -> bool {
        self.waits = self.waits.saturating_sub(1);
        self.waits == 0
    }

    /// True while a wait runs (the keep alive does not count this time against the
    /// client, which is not read).
    pub fn is_held(&self) -> bool {
        self.waits > 0
    }
}

impl Session {
    /// The router reached these pressured subscribers: stop reading until they drain.
    pub(super) fn hold_for_pressure(
        &mut self,
        pressured: Vec<Arc<Pressure>>,
        ctx: &mut Context<Self>,
    ) {
        if pressured.is_empty() {
            return;
        }
        debug!(client_id = %self.state.client_id, subscribers = pressured.len(), "subscriber queues full; reading paused");
        self.shared.metrics.limits.hit(Limit::QueueFull);
        let drained = join_all(pressured.into_iter().map(Pressure::released));
        self.hold(async move { drop(drained.await) }, |_| {}, ctx);
    }

    /// Over the memory high watermark with messages queued: stop reading until memory
    /// is under it or the queues are empty.
    pub(super) fn hold_for_memory(&mut self, ctx: &mut Context<Self>) {
        let Some(memory) = &self.shared.memory else {
            return;
        };
        if self.inbound.holds.memory || !memory.holds_publishers() {
            return;
        }
        debug!(client_id = %self.state.client_id, "memory over the high watermark; reading paused");
        self.shared.metrics.limits.hit(Limit::MemoryHigh);
        self.inbound.holds.memory = true;
        let below = Arc::clone(memory).released();
        self.hold(below, |holds| holds.memory = false, ctx);
    }

    /// Holds reading until `wait` ends, then runs `done` on the holds.
    fn hold(
        &mut self,
        wait: impl Future<Output = ()> + 'static,
        done: impl FnOnce(&mut Holds) + 'static,
        ctx: &mut Context<Self>,
    ) {
        if self.inbound.holds.hold() {
            self.inbound.holds.gate.close();
        }
        ctx.spawn(wait.into_actor(self).map(move |(), act, _| {
            done(&mut act.inbound.holds);
            if act.inbound.holds.release() {
                act.inbound.holds.gate.open();
                act.last_seen = Instant::now();
                debug!(client_id = %act.state.client_id, "reading resumed");
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_resumes_when_the_last_wait_ends() {
        let mut h = Holds::with_gate(Gate::default());
        assert!(h.hold(), "the first wait closes");
        assert!(!h.hold());
        assert!(!h.release());
        assert!(h.is_held());
        assert!(h.release(), "the last one opens");
        assert!(!h.is_held());
    }
}
