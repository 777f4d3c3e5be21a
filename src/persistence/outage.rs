//! A store that fails (a server backend down, a disk error): the persistence actor
//! keeps the failed batch and tries again with backoff (100 ms doubling to 5 s), and
//! logs one error line per outage and one info line when the store is back.

use std::time::{Duration, Instant};

use tracing::{error, info};

use super::StoreError;

/// First wait after a failure.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest wait between tries.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Whether the store is failing, and when to try it again.
#[derive(Debug, Default)]
pub(super) struct Outage {
    down: Option<Down>,
}

#[derive(Debug)]
struct Down {
    since: Instant,
    delay: Duration,
    next_try: Instant,
    failures: u64,
}

impl Outage {
    /// True when the store may be tried at `now` (it is up, or the backoff elapsed).
    pub fn may_try(&self, now: Instant) -> bool {
        self.down.as_ref().is_none_or(|d| now >= d.next_try)
    }

    /// A try failed at `now`: wait longer before the next one.
    pub fn failed(&mut self, now: Instant, e: &StoreError) {
        match &mut self.down {
            Some(d) => {
                d.delay = (d.delay * 2).min(MAX_DELAY);
                d.next_try = now + d.delay;
                d.failures += 1;
                tracing::debug!(error = %e, retry_in = ?d.delay, "store still failing");
            }
            None => {
                error!(
                    error = %e,
                    "store failed; publishes that need it are refused, and the failed changes are retried until it is back"
                );
                self.down = Some(Down {
                    since: now,
                    delay: FIRST_DELAY,
                    next_try: now + FIRST_DELAY,
                    failures: 1,
                });
            }
        }
    }

    /// A try worked: the outage, if any, is over.
    pub fn succeeded(&mut self, now: Instant) {
        if let Some(d) = self.down.take() {
            let down_ms = now.duration_since(d.since).as_millis() as u64;
            info!(down_ms, failures = d.failures, "store is back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut o = Outage::default();
        let t = Instant::now();
        let e = StoreError::Encode("x".into());
        assert!(o.may_try(t));
        o.failed(t, &e);
        assert!(!o.may_try(t) && o.may_try(t + FIRST_DELAY));
        for _ in 0..10 {
            o.failed(t, &e);
        }
        assert!(!o.may_try(t + MAX_DELAY - Duration::from_millis(1)));
        assert!(o.may_try(t + MAX_DELAY));
        o.succeeded(t);
        assert!(o.may_try(t) && o.down.is_none());
    }
}
