//! A client's publish rate and bandwidth (`[limits] max_publish_rate`,
//! `max_publish_bytes_rate`): each PUBLISH is charged to token buckets, and a client
//! in debt is not read until the debt is paid, so it slows down instead of being
//! refused.

use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::transport::TokenBucket;

/// The buckets a client's publishes are charged to.
pub(super) struct PublishRate {
    messages: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

impl PublishRate {
    /// The limits' buckets; `None` when neither is set.
    pub fn new(limits: &Limits, now: Instant) -> Option<PublishRate> {
        let bucket = |rate: u64| (rate > 0).then(|| TokenBucket::new(rate, now));
        let rate = PublishRate {
            messages: bucket(limits.max_publish_rate),
            bytes: bucket(limits.max_publish_bytes_rate),
        };
        (rate.messages.is_some() || rate.bytes.is_some()).then_some(rate)
    }

    /// Charges one PUBLISH of `bytes`; how long reading should pause (zero: not at all).
    pub fn charge(&mut self, bytes: usize, now: Instant) -> Duration {
        let messages = self.messages.as_mut().map(|b| b.take(1, now));
        let bytes = self.bytes.as_mut().map(|b| b.take(bytes as u64, now));
        messages.into_iter().chain(bytes).max().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slower_bucket_decides_the_pause() {
        let now = Instant::now();
        let limits = Limits {
            max_publish_rate: 10,
            max_publish_bytes_rate: 1000,
            ..Limits::default()
        };
        let mut rate = PublishRate::new(&limits, now).expect("limited");
        assert_eq!(rate.charge(500, now), Duration::ZERO);
        // 1,500 bytes: half a second of bytes owed; one message is still in hand.
        let pause = rate.charge(1000, now);
        assert!((pause.as_secs_f64() - 0.5).abs() < 1e-9, "{pause:?}");
        assert!(PublishRate::new(&Limits::default(), now).is_none());
    }
}
