//! Mosquitto's `$SYS/broker/load/...` topics: exponentially decaying averages, per
//! minute, of how fast the counters grow, over 1, 5 and 15 minutes (like Unix load
//! averages). Each `$SYS` tick folds in the growth since the last one.

use std::time::Instant;

use crate::metrics::MetricsSnapshot;

/// The counters averaged, in the order of [`TOPICS`].
type Counter = fn(&MetricsSnapshot) -> u64;
const SERIES: [Counter; 5] = [
    |m| m.received,
    |m| m.sent,
    |m| m.bytes_received,
    |m| m.bytes_sent,
    |m| m.dropped,
];

/// The windows, in seconds.
const WINDOWS: [f64; 3] = [60.0, 300.0, 900.0];

/// The topics, by series then window (the order of [`SERIES`] and [`WINDOWS`]).
const TOPICS: [[&str; 3]; 5] = [
    [
        "$SYS/broker/load/messages/received/1min",
        "$SYS/broker/load/messages/received/5min",
        "$SYS/broker/load/messages/received/15min",
    ],
    [
        "$SYS/broker/load/messages/sent/1min",
        "$SYS/broker/load/messages/sent/5min",
        "$SYS/broker/load/messages/sent/15min",
    ],
    [
        "$SYS/broker/load/bytes/received/1min",
        "$SYS/broker/load/bytes/received/5min",
        "$SYS/broker/load/bytes/received/15min",
    ],
    [
        "$SYS/broker/load/bytes/sent/1min",
        "$SYS/broker/load/bytes/sent/5min",
        "$SYS/broker/load/bytes/sent/15min",
    ],
    [
        "$SYS/broker/load/publish/dropped/1min",
        "$SYS/broker/load/publish/dropped/5min",
        "$SYS/broker/load/publish/dropped/15min",
    ],
];

/// Every load-average topic.
pub fn topics() -> impl Iterator<Item = &'static str> {
    TOPICS.into_iter().flatten()
}

/// The averages and the counters they were last updated from.
#[derive(Debug, Default)]
pub struct LoadAverages {
    last: Option<(Instant, MetricsSnapshot)>,
    /// Per minute, by series then window.
    averages: [[f64; 3]; 5],
}

impl LoadAverages {
    /// Folds in the counters at `now`; the topics and their values (two decimals, per
    /// minute). The first call only starts the clock (every average is 0).
    pub fn update(
        &mut self,
        now: Instant,
        counters: MetricsSnapshot,
    ) -> Vec<(&'static str, String)> {
        if let Some((then, before)) = self.last {
            let secs = now.saturating_duration_since(then).as_secs_f64();
            if secs > 0.0 {
                self.fold(secs, &before, &counters);
            }
        }
        self.last = Some((now, counters));
        let mut values = Vec::with_capacity(15);
        for (s, topics) in TOPICS.iter().enumerate() {
            for (w, topic) in topics.iter().enumerate() {
                values.push((*topic, format!("{:.2}", self.averages[s][w])));
            }
        }
        values
    }

    fn fold(&mut self, secs: f64, before: &MetricsSnapshot, now: &MetricsSnapshot) {
        for (s, counter) in SERIES.iter().enumerate() {
            let grown = counter(now).saturating_sub(counter(before)) as f64;
            let per_minute = grown * 60.0 / secs;
            for (w, window) in WINDOWS.iter().enumerate() {
                let keep = (-secs / window).exp();
                let avg = &mut self.averages[s][w];
                *avg = *avg * keep + per_minute * (1.0 - keep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_steady_rate_is_approached_faster_by_shorter_windows() {
        let t0 = Instant::now();
        let mut load = LoadAverages::default();
        let at = |received| MetricsSnapshot {
            received,
            ..MetricsSnapshot::default()
        };
        assert!(load.update(t0, at(0)).iter().all(|(_, v)| v == "0.00"));
        // 10 messages a second (600 a minute) for 10 minutes, in 10 s ticks.
        let mut values = Vec::new();
        for tick in 1..=60u64 {
            values = load.update(t0 + Duration::from_secs(10 * tick), at(100 * tick));
        }
        let get = |t: &str| -> f64 {
            let v = values.iter().find(|(k, _)| *k == t).expect(t);
            v.1.parse().expect("a number")
        };
        let one = get("$SYS/broker/load/messages/received/1min");
        let five = get("$SYS/broker/load/messages/received/5min");
        let fifteen = get("$SYS/broker/load/messages/received/15min");
        assert!((one - 600.0).abs() < 1.0, "{one}");
        assert!(
            five < one && fifteen < five && fifteen > 0.0,
            "{one} {five} {fifteen}"
        );
        assert_eq!(get("$SYS/broker/load/messages/sent/1min"), 0.0);
        assert_eq!(values.len(), 15);
    }
}
