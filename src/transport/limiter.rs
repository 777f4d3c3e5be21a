//! The connection limit (`limits.max_connections`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts live connections against a maximum.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    live: Arc<AtomicUsize>,
    max: usize,
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    live: Arc<AtomicUsize>,
}

impl ConnectionLimiter {
    pub fn new(max: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            live: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A permit, or `None` when `max` connections are live.
    pub fn try_acquire(&self) -> Option<ConnectionPermit> {
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
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
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
}
