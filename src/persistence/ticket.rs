//! Durability tickets: what a publisher waits on before it acknowledges, and the
//! backlog that makes `periodic` durability wait too when the store falls behind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::config::Durability;

/// Store messages not yet handled past which `periodic` durability hands out tickets
/// like `sync` (see [`Backlog`]).
const BACKLOG_HIGH: usize = 16_384;

/// Resolves once the ops it was issued with are durable. Dropped unfulfilled when the
/// write failed: the holder must then not acknowledge.
///
/// In cluster mode a ticket may also wait for the cluster (the publish handed to NATS,
/// the retained copy acknowledged by JetStream): [`Durable::join`] waits for both.
pub struct Durable(Vec<oneshot::Receiver<()>>);

impl Durable {
    /// A ticket that resolves when `rx` receives (and fails when its sender is dropped).
    pub fn from_receiver(rx: oneshot::Receiver<()>) -> Durable {
        Durable(vec![rx])
    }

    /// A ticket that resolves once both have.
    pub fn join(mut self, other: Durable) -> Durable {
        self.0.extend(other.0);
        self
    }

    /// `a` and `b` joined, either, or none.
    pub fn join_opt(a: Option<Durable>, b: Option<Durable>) -> Option<Durable> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.join(b)),
            (a, b) => a.or(b),
        }
    }

    /// True once durable; false if the write failed.
    pub async fn wait(self) -> bool {
        for rx in self.0 {
            if rx.await.is_err() {
                return false;
            }
        }
        true
    }
}

/// A waiter for the next commit, when the durability mode asks for one.
pub fn ticket(durability: Durability) -> (Option<Durable>, Option<oneshot::Sender<()>>) {
    match durability {
        Durability::Sync => {
            let (tx, rx) = oneshot::channel();
            (Some(Durable::from_receiver(rx)), Some(tx))
        }
        Durability::Periodic | Durability::Memory => (None, None),
    }
}

/// A ticket that reports failure: for replies of a handler that failed.
pub fn failed_ticket() -> Durable {
    let (_tx, rx) = oneshot::channel();
    Durable::from_receiver(rx)
}

/// The routed messages on their way to the persistence actor, not handled yet. With
/// `periodic` durability nothing else slows publishers down when the store cannot keep
/// up: past `BACKLOG_HIGH` (16,384) the router's tickets wait for the next flush (as in `sync`),
/// so each publisher's acknowledgements, and through its window its publishes, wait for
/// the store. The router counts what it sends; the persistence actor what it handles.
#[derive(Debug, Clone, Default)]
pub struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    /// One more message sent.
    pub fn sent(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// One message handled.
    pub fn handled(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The durability to ticket with: `periodic` waits like `sync` while the backlog is
    /// high.
    pub fn durability(&self, configured: Durability) -> Durability {
        match configured {
            Durability::Periodic if self.0.load(Ordering::Relaxed) > BACKLOG_HIGH => {
                Durability::Sync
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_tickets_wait_while_the_backlog_is_high() {
        let b = Backlog::default();
        assert_eq!(b.durability(Durability::Periodic), Durability::Periodic);
        for _ in 0..=BACKLOG_HIGH {
            b.sent();
        }
        assert_eq!(b.durability(Durability::Periodic), Durability::Sync);
        assert_eq!(b.durability(Durability::Memory), Durability::Memory);
        b.handled();
        assert_eq!(b.durability(Durability::Periodic), Durability::Periodic);
    }
}
