//! The counters the status page (`GET /status.json`, see `crate::http`) shows, read
//! from the same handles `/metrics` encodes.

use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;

use super::{DropReason, Metrics, RouterValues};

/// The status page's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounters {
    /// Live connections, all listeners.
    pub connections: u64,
    /// PUBLISH packets received from clients, since start.
    pub received: u64,
    /// PUBLISH packets sent to clients, since start.
    pub sent: u64,
    /// Messages dropped since start, per reason in [`DropReason::ALL`] order.
    pub dropped: [u64; DropReason::ALL.len()],
}

impl Metrics {
    /// The status page's counters, after taking the router's values from `stats` as a
    /// scrape does (`None`: the router did not answer; its counts keep their last
    /// values), so that `/metrics` and the page move the same series once.
    pub fn status(&self, stats: Option<&RouterValues>) -> StatusCounters {
        let connections = self.connected.load(Ordering::Relaxed);
        if let Some(stats) = stats {
            self.router.update(stats, connections);
        }
        let sum = |c: &[Counter; 3]| c.iter().map(Counter::get).sum();
        StatusCounters {
            connections,
            received: sum(&self.received),
            sent: sum(&self.sent),
            dropped: DropReason::ALL.map(|r| self.dropped[r as usize].get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::QoS;

    #[test]
    fn counts_and_the_routers_unrouted_once() {
        let metrics = Metrics::new();
        metrics.add_received(QoS::AtLeastOnce, 3);
        metrics.add_dropped(DropReason::QueueFull, 2);
        let stats = RouterValues {
            unrouted: 4,
            ..RouterValues::default()
        };
        let status = metrics.status(Some(&stats));
        let _ = metrics.render(Some(&stats));
        let again = metrics.status(None);
        assert_eq!(status, again);
        assert_eq!((status.received, status.sent), (1, 0));
        assert_eq!(status.dropped[DropReason::QueueFull as usize], 2);
        assert_eq!(status.dropped[DropReason::NoSubscribers as usize], 4);
    }
}
