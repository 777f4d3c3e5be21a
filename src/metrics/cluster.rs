//! What cluster mode reports: whether the NATS connection is up, how long message-log
//! writes take to be acknowledged by JetStream, how many replays of the log ran,
//! what they carried and how many log entries they read, and what the node's log
//! feed read. Registered only when the broker runs in cluster mode.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The cluster bridge's handles (cheap to clone; clones share the series).
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    nats_connected: Gauge,
    nats_disconnects: Counter,
    log_write_seconds: Histogram,
    log_write_failures: Counter,
    replays: Counter,
    replay_failures: Counter,
    replayed_messages: Counter,
    replay_read_entries: Counter,
    feed_entries: Counter,
    feed_consumers: Counter,
}

impl ClusterMetrics {
    /// Registers the cluster's series.
    pub fn register(registry: &mut Registry) -> ClusterMetrics {
        let m = ClusterMetrics {
            nats_connected: Gauge::default(),
            nats_disconnects: Counter::default(),
            // 100 µs to about 6.5 s.
            log_write_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 17)),
            log_write_failures: Counter::default(),
            replays: Counter::default(),
            replay_failures: Counter::default(),
            replayed_messages: Counter::default(),
            replay_read_entries: Counter::default(),
            feed_entries: Counter::default(),
            feed_consumers: Counter::default(),
        };
        registry.register(
            "cluster_nats_connected",
            "1 while the node's NATS connection is up, 0 while it is down",
            m.nats_connected.clone(),
        );
        registry.register(
            "cluster_nats_disconnects",
            "Times the node's NATS connection went down",
            m.nats_disconnects.clone(),
        );
        registry.register(
            "cluster_log_write_seconds",
            "Time from sending a QoS 1/2 message to the message log to JetStream's acknowledgement, re-sends included",
            m.log_write_seconds.clone(),
        );
        registry.register(
            "cluster_log_write_failures",
            "Message-log writes never acknowledged (their publishes were not acknowledged either)",
            m.log_write_failures.clone(),
        );
        registry.register(
            "cluster_replays",
            "Replays of the message log for a resumed session",
            m.replays.clone(),
        );
        registry.register(
            "cluster_replay_failures",
            "Replays of the message log that failed or timed out",
            m.replay_failures.clone(),
        );
        registry.register(
            "cluster_replayed_messages",
            "Messages read back from the message log by replays",
            m.replayed_messages.clone(),
        );
        registry.register(
            "cluster_replay_read_entries",
            "Message log entries read by replays to find those messages (from the session's log position, or from its oldest subscription's time without one)",
            m.replay_read_entries.clone(),
        );
        registry.register(
            "cluster_feed_entries",
            "Message-log entries the node's log feed received (its consumer is filtered to the node's interest)",
            m.feed_entries.clone(),
        );
        registry.register(
            "cluster_feed_consumers",
            "Consumers the log feed created (at start, after each interest change and each failure)",
            m.feed_consumers.clone(),
        );
        m
    }

    /// The log feed received one entry.
    pub fn feed_entry(&self) {
        self.feed_entries.inc();
    }

    /// The log feed created a consumer.
    pub fn feed_consumer(&self) {
        self.feed_consumers.inc();
    }

    /// The NATS connection is up (`true`) or down; counts a transition to down.
    pub fn nats_link(&self, up: bool) {
        let was = self.nats_connected.set(i64::from(up));
        if was == 1 && !up {
            self.nats_disconnects.inc();
        }
    }

    /// A message-log write ended: acknowledged after `took`, or never.
    pub fn log_write(&self, acked: bool, took: Duration) {
        if acked {
            self.log_write_seconds.observe(took.as_secs_f64());
        } else {
            self.log_write_failures.inc();
        }
    }

    /// A replay ended: `Some((n, read))`: `n` messages for the session, found among
    /// `read` log entries; `None` when it failed.
    pub fn replay(&self, outcome: Option<(usize, u64)>) {
        self.replays.inc();
        match outcome {
            Some((n, read)) => {
                self.replayed_messages.inc_by(n as u64);
                self.replay_read_entries.inc_by(read);
            }
            None => {
                self.replay_failures.inc();
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_move_with_the_events() {
        let mut registry = Registry::with_prefix("starling");
        let m = ClusterMetrics::register(&mut registry);
        m.nats_link(true);
        m.nats_link(true);
        m.nats_link(false);
        m.nats_link(false);
        m.log_write(true, Duration::from_millis(2));
        m.log_write(false, Duration::ZERO);
        m.replay(Some((5, 40)));
        m.replay(None);
        m.feed_entry();
        m.feed_consumer();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "starling_cluster_nats_connected 0",
            "starling_cluster_nats_disconnects_total 1",
            "starling_cluster_log_write_seconds_count 1",
            "starling_cluster_log_write_failures_total 1",
            "starling_cluster_replays_total 2",
            "starling_cluster_replay_failures_total 1",
            "starling_cluster_replayed_messages_total 5",
            "starling_cluster_replay_read_entries_total 40",
            "starling_cluster_feed_entries_total 1",
            "starling_cluster_feed_consumers_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
