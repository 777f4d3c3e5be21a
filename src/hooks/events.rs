//! The event queue: hooks' [`Hook::on_event`] runs on a thread of its own, fed through
//! a bounded queue, so a slow event handler holds up neither sessions nor the router.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::{Arbiter, ArbiterHandle};
use tokio::sync::mpsc;
use tracing::warn;

use super::answer::Inner;
use super::{Event, Hook};

/// Events waiting for the hooks beyond which new ones are dropped.
pub(crate) const EVENT_QUEUE: usize = 4096;

/// The sending side, shared by every session.
pub(crate) struct EventQueue {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl EventQueue {
    /// Starts the event thread calling `hooks` in order for each event, each late answer
    /// abandoned after `budget`. Stop the returned arbiter to end it.
    pub fn start(hooks: Vec<Arc<dyn Hook>>, budget: Duration) -> (EventQueue, ArbiterHandle) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let arbiter = Arbiter::new().handle();
        arbiter.spawn(dispatch(rx, hooks, budget));
        let queue = EventQueue {
            tx,
            dropped: Arc::default(),
        };
        (queue, arbiter)
    }

    /// Queues `event`, or drops and counts it when the queue is full.
    pub fn push(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                warn!(
                    dropped,
                    "hook events dropped: the event handlers fall behind"
                );
            }
        }
    }

    /// Events dropped so far.
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn dispatch(mut rx: mpsc::Receiver<Event>, hooks: Vec<Arc<dyn Hook>>, budget: Duration) {
    while let Some(event) = rx.recv().await {
        for hook in &hooks {
            let Inner::Later(f) = hook.on_event(&event).0 else {
                continue;
            };
            if tokio::time::timeout(budget, f).await.is_err() {
                warn!(?event, "an event hook ran out of budget; abandoned");
            }
        }
    }
}
