//! Backpressure from a subscriber's queue to its publishers (`[limits] queue_full =
//! "backpressure"`).
//!
//! A connected subscriber whose queue is over its limit still takes each message (the
//! queue overshoots) and turns its [`Pressure`] on. The router, routing a message to
//! it, returns its `Pressure` to the publisher's session, which stops reading its
//! socket until every such `Pressure` is off again: the subscriber turns it off once
//! its queue is down to half the limit ([`QueueLimits::drained`]), or when its
//! connection or session ends. Waking is a notification, not polling.
//!
//! The overshoot is bounded: a publisher stops at the first answer that names the
//! pressured subscriber, so each publisher adds at most its routing window (128
//! publishes awaiting the router) plus what was routed before the subscriber's actor
//! saw its queue full (its mailbox of deliveries, normally a turn or two).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::QueueLimits;

/// One subscriber's pressure, shared by its session (which turns it on and off), the
/// router (which reads it) and the publishers waiting for it to end.
#[derive(Debug, Default)]
pub struct Pressure {
    on: AtomicBool,
    released: Notify,
}

impl Pressure {
    /// A pressure, off.
    pub fn new() -> Arc<Pressure> {
        Arc::new(Pressure::default())
    }

    /// True while the subscriber's queue is over its limit.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Turns it on or off; turning it off wakes every waiting publisher. True when it
    /// changed.
    pub fn set(&self, on: bool) -> bool {
        let changed = self.on.swap(on, Ordering::AcqRel) != on;
        if changed && !on {
            self.released.notify_waiters();
        }
        changed
    }

    /// Resolves once the pressure is off.
    pub async fn released(self: Arc<Self>) {
        loop {
            // Made before the check: a `notify_waiters` after it is not missed.
            let notified = self.released.notified();
            if !self.is_on() {
                return;
            }
            notified.await;
        }
    }
}

/// The subscriber's side: turns its pressure off when dropped (the session ended), so
/// no publisher waits for a queue that is gone.
#[derive(Debug)]
pub struct PressureSource(Arc<Pressure>);

impl PressureSource {
    pub fn new() -> PressureSource {
        PressureSource(Pressure::new())
    }

    /// The handle the router and the publishers hold.
    pub fn handle(&self) -> &Arc<Pressure> {
        &self.0
    }

    /// Follows the queue's fill: on once it is over `limits`, off once it has drained
    /// to half of them; unchanged in between. True when it changed.
    pub fn follow(&self, len: usize, bytes: usize, limits: &QueueLimits) -> bool {
        if self.0.is_on() {
            limits.drained(len, bytes) && self.0.set(false)
        } else {
            limits.over(len, bytes) && self.0.set(true)
        }
    }

    /// Off, whatever the queue holds (the client went away: its queue no longer takes
    /// messages beyond the limit).
    pub fn release(&self) -> bool {
        self.0.set(false)
    }
}

impl Default for PressureSource {
    fn default() -> Self {
        PressureSource::new()
    }
}

impl Drop for PressureSource {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> QueueLimits {
        QueueLimits {
            max_messages: 4,
            max_bytes: 1000,
            drop_oldest: false,
            backpressure: true,
        }
    }

    #[test]
    fn on_over_the_limit_off_at_half() {
        let source = PressureSource::new();
        let l = limits();
        assert!(!source.follow(4, 0, &l), "at the limit: not over");
        assert!(source.follow(5, 0, &l));
        assert!(!source.follow(3, 0, &l), "still above half");
        assert!(source.follow(2, 0, &l));
        assert!(!source.handle().is_on());
        assert!(source.follow(0, 1001, &l), "bytes count too");
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_released_or_dropped() {
        let source = PressureSource::new();
        source.follow(5, 0, &limits());
        let waiter = tokio::spawn(Arc::clone(source.handle()).released());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        source.release();
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(woke.is_ok(), "released");
        source.follow(5, 0, &limits());
        let waiter = tokio::spawn(Arc::clone(source.handle()).released());
        drop(source);
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(woke.is_ok(), "dropped");
    }
}
