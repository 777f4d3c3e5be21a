//! The bench payload and what a subscriber learns from it: loss, duplicates, reordering
//! and latency.
//!
//! Payload layout (big endian): publisher index `u32`, sequence number `u64` (0-based per
//! publisher), send time `u64` (monotonic ns since the run start), then zero padding up to
//! `--size` bytes.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the payload header; `--size` is at least this.
pub const HEADER: usize = 20;

/// A payload of `size` bytes (at least [`HEADER`]).
pub fn payload(publisher: u32, seq: u64, sent_ns: u64, size: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(size.max(HEADER));
    b.put_u32(publisher);
    b.put_u64(seq);
    b.put_u64(sent_ns);
    b.resize(size.max(HEADER), 0);
    b.freeze()
}

/// Parses the header: (publisher, seq, sent_ns).
pub fn parse(p: &[u8]) -> Option<(u32, u64, u64)> {
    if p.len() < HEADER {
        return None;
    }
    let publisher = u32::from_be_bytes(p[0..4].try_into().ok()?);
    let seq = u64::from_be_bytes(p[4..12].try_into().ok()?);
    let sent = u64::from_be_bytes(p[12..20].try_into().ok()?);
    Some((publisher, seq, sent))
}

/// What one subscriber saw, per publisher it expects messages from.
pub struct Tracker {
    /// One bit per (publisher, seq): seen already.
    seen: Vec<Vec<u64>>,
    /// Highest seq seen per publisher.
    highest: Vec<Option<u64>>,
    per_publisher: u64,
    /// Publisher indexes this subscriber expects start here (pairs: its own publisher).
    first_publisher: u32,
    /// Deliveries of a (publisher, seq) not seen before.
    pub unique: u64,
    /// Deliveries of a (publisher, seq) already seen.
    pub dup: u64,
    /// New deliveries whose seq is lower than the highest seen from that publisher.
    pub reorder: u64,
    /// Payloads that are not ours (too short, unknown publisher, seq out of range).
    pub foreign: u64,
    /// Latency samples (ns), when recorded.
    pub latencies: Vec<u64>,
    record_latency: bool,
}

impl Tracker {
    /// Expects `per_publisher` messages from each of `publishers` publishers, numbered
    /// from `first_publisher`.
    pub fn new(
        first_publisher: u32,
        publishers: usize,
        per_publisher: u64,
        record_latency: bool,
    ) -> Tracker {
        let words = per_publisher.div_ceil(64) as usize;
        Tracker {
            seen: vec![vec![0; words]; publishers],
            highest: vec![None; publishers],
            per_publisher,
            first_publisher,
            unique: 0,
            dup: 0,
            reorder: 0,
            foreign: 0,
            latencies: Vec::new(),
            record_latency,
        }
    }

    /// Records one delivery received at `now_ns`; true when it is new.
    pub fn record(&mut self, payload: &[u8], now_ns: u64) -> bool {
        let Some((publisher, seq, sent)) = parse(payload) else {
            self.foreign += 1;
            return false;
        };
        let Some(i) = publisher.checked_sub(self.first_publisher) else {
            self.foreign += 1;
            return false;
        };
        let i = i as usize;
        if i >= self.seen.len() || seq >= self.per_publisher {
            self.foreign += 1;
            return false;
        }
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if self.seen[i][word] & bit != 0 {
            self.dup += 1;
            return false;
        }
        self.seen[i][word] |= bit;
        self.unique += 1;
        match self.highest[i] {
            Some(h) if seq < h => self.reorder += 1,
            _ => self.highest[i] = Some(seq),
        }
        if self.record_latency {
            self.latencies.push(now_ns.saturating_sub(sent));
        }
        true
    }
}

/// p50, p99 and max in µs of latency samples in ns (sorts them).
pub fn percentiles_us(samples: &mut [u64]) -> Option<(f64, f64, f64)> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |p: f64| {
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
    };
    Some((
        at(50.0),
        at(99.0),
        *samples.last().expect("non-empty") as f64 / 1000.0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_dup_reorder_foreign() {
        let mut t = Tracker::new(0, 2, 10, true);
        assert!(t.record(&payload(0, 0, 5, 64), 10));
        assert!(t.record(&payload(0, 2, 5, 64), 10));
        assert!(t.record(&payload(0, 1, 5, 64), 10));
        assert!(!t.record(&payload(0, 2, 5, 64), 10));
        assert!(t.record(&payload(1, 0, 5, 20), 10));
        assert!(!t.record(&payload(2, 0, 5, 64), 10));
        assert!(!t.record(&payload(0, 10, 5, 64), 10));
        assert!(!t.record(b"short", 10));
        assert_eq!((t.unique, t.dup, t.reorder, t.foreign), (4, 1, 1, 3));
        assert_eq!(t.latencies, vec![5; 4]);
    }

    #[test]
    fn percentiles() {
        let mut s: Vec<u64> = (1..=100).map(|v| v * 1000).collect();
        assert_eq!(percentiles_us(&mut s), Some((50.0, 99.0, 100.0)));
        assert_eq!(percentiles_us(&mut []), None);
    }
}
