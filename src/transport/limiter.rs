//! The connection limits: the global `limits.max_connections` and a listener's own
//! `max_connections`, whose limiter counts against the global one too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Counts live connections against a maximum.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    live: Arc<AtomicUsize>,
    /// Woken when the last permit is dropped.
    idle: Arc<Notify>,
    max: usize,
    /// A listener's limiter: the global one, which must also have room.
    parent: Option<Box<ConnectionLimiter>>,
}

/// One counted connection; dropping it frees the slot (and the parent's).
#[derive(Debug)]
pub struct ConnectionPermit {
    live: Arc<AtomicUsize>,
    idle: Arc<Notify>,
    /// Dropped after this one: the global slot of a listener's permit.
    _parent: Option<Box<ConnectionPermit>>,
}

impl ConnectionLimiter {
    /// A limiter of `max` connections.
    pub fn new(max: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            live: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(Notify::new()),
            max,
            parent: None,
        }
    }

    /// A limiter of `max` connections whose permits also take one of this limiter's
    /// (a listener's `max_connections` under the global limit).
    pub fn child(&self, max: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            parent: Some(Box::new(self.clone())),
            ..ConnectionLimiter::new(max)
        }
    }

    /// A permit, or `None` when `max` connections are live (here or in the parent).
    pub fn try_acquire(&self) -> Option<ConnectionPermit> {
        let parent = match &self.parent {
            Some(p) => Some(Box::new(p.try_acquire()?)),
            None => None,
        };
        let mut current = self.live.load(Ordering::Relaxed);
        loop {
            if current >= self.max {
                return None;
            }
            match self.live.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(ConnectionPermit {
                        live: Arc::clone(&self.live),
                        idle: Arc::clone(&self.idle),
                        _parent: parent,
                    })
                }
                Err(now) => current = now,
            }
        }
    }

    /// Connections holding a permit now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Resolves once no connection holds a permit (at once if none does).
    pub async fn all_closed(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a drop in between is not missed.
            idle.as_mut().enable();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_and_released() {
        let l = ConnectionLimiter::new(2);
        let a = l.try_acquire();
        let b = l.try_acquire();
        assert!(a.is_some() && b.is_some());
        assert!(l.try_acquire().is_none());
        drop(a);
        assert_eq!(l.live(), 1);
        assert!(l.try_acquire().is_some());
    }

    #[test]
    fn a_child_counts_against_its_parent() {
        let global = ConnectionLimiter::new(3);
        let listener = global.child(2);
        let a = listener.try_acquire();
        let b = listener.try_acquire();
        assert!(a.is_some() && b.is_some());
        assert!(listener.try_acquire().is_none(), "the listener's limit");
        assert_eq!(global.live(), 2, "a refused child frees its parent's slot");
        let c = global.try_acquire();
        assert!(c.is_some());
        drop(a);
        assert_eq!((global.live(), listener.live()), (2, 1));
        let d = global.try_acquire();
        assert!(d.is_some());
        assert!(listener.try_acquire().is_none(), "the global limit");
        assert_eq!((global.live(), listener.live()), (3, 1));
        drop((b, c, d));
        assert_eq!((global.live(), listener.live()), (0, 0));
    }

    #[tokio::test]
    async fn all_closed_waits_for_the_last_permit() {
        let l = ConnectionLimiter::new(2);
        l.all_closed().await;
        let (a, b) = (l.try_acquire(), l.try_acquire());
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.all_closed().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one connection is still open");
        drop(b);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken by the last drop")
            .expect("waiter");
    }
}
