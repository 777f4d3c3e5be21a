//! Counting one live connection for as long as it lasts.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;

use super::labels::ConnectionLabels;
use super::Metrics;
use crate::protocol::ProtocolVersion;

/// Counts one live connection in [`Metrics`] while it exists.
#[derive(Debug)]
pub struct ConnectedGuard {
    metrics: Arc<Metrics>,
    live: Gauge,
}

impl Metrics {
    /// A connection became live on `listener` (`None`: in-process); the guard counts it
    /// until dropped. Once per connection: this looks its series up by label.
    pub fn connection(
        self: &Arc<Self>,
        listener: Option<SocketAddr>,
        protocol: ProtocolVersion,
    ) -> ConnectedGuard {
        let labels = ConnectionLabels::new(listener, protocol);
        self.connections_opened.get_or_create(&labels).inc();
        let live = self.connections.get_or_create_owned(&labels);
        live.inc();
        self.connected.fetch_add(1, Ordering::Relaxed);
        ConnectedGuard {
            metrics: Arc::clone(self),
            live,
        }
    }
}

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.live.dec();
        self.metrics.connected.fetch_sub(1, Ordering::Relaxed);
    }
}
