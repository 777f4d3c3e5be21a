//! A token bucket: `rate` tokens a second, at most one second's worth saved up. The
//! listeners' connect rate takes one token per connection; a session's publish rate
//! and bandwidth take one per message and one per byte.

use std::time::{Duration, Instant};

/// Tokens earned at a steady rate, spent by what is limited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens a second (at least 1).
    rate: f64,
    /// Tokens now; negative after a [`take`](TokenBucket::take) beyond them (a debt).
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` tokens a second (0 is taken as 1).
    pub fn new(rate: u64, now: Instant) -> TokenBucket {
        let rate = rate.max(1) as f64;
        TokenBucket {
            rate,
            tokens: rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.rate);
        self.last = now;
    }

    /// Takes `cost` tokens when there are that many; false (nothing taken) otherwise.
    pub fn try_take(&mut self, cost: u64, now: Instant) -> bool {
        self.refill(now);
        let cost = cost as f64;
        if self.tokens < cost {
            return false;
        }
        self.tokens -= cost;
        true
    }

    /// Takes `cost` tokens, going into debt if need be; returns how long until the
    /// debt is paid back (zero when there was no debt).
    pub fn take(&mut self, cost: u64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= cost as f64;
        match self.tokens < 0.0 {
            true => Duration::from_secs_f64(-self.tokens / self.rate),
            false => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_tokens_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        assert!((0..10).all(|_| b.try_take(1, t0)));
        assert!(!b.try_take(1, t0));
        let later = t0 + Duration::from_millis(250);
        assert!(b.try_take(2, later));
        assert!(!b.try_take(1, later));
        // Never more than one second's worth saved.
        let much_later = t0 + Duration::from_secs(60);
        assert!(b.try_take(10, much_later));
        assert!(!b.try_take(1, much_later));
    }

    #[test]
    fn a_debt_says_how_long_to_wait() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, t0);
        assert_eq!(b.take(100, t0), Duration::ZERO);
        let wait = b.take(50, t0);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        // Paid back after the wait.
        assert_eq!(b.take(0, t0 + wait), Duration::ZERO);
    }
}
