//! The broker's counters, one set shared by `$SYS` ([`crate::sys`]) and `/metrics`
//! ([`crate::http`]), kept as `prometheus-client` metrics in a registry of the broker's
//! own.
//!
//! Why `prometheus-client` rather than `metrics` + `metrics-exporter-prometheus`: the
//! `metrics` facade records into one process-wide recorder, which an embedding
//! application may already have installed (or want for itself), and two brokers in one
//! process would share its series. Here each broker owns a [`Registry`], and the handles
//! are typed values held in [`Metrics`]: counting a received message is a relaxed
//! atomic add (count, bytes) on handles fetched when the broker started, never a name
//! lookup or a lock; sends are tallied by each session in plain fields and added once
//! per burst ([`SentTally`]).
//!
//! Values the router already keeps (retained messages, subscriptions, sessions,
//! messages nobody subscribed to, its restarts) are read from it at scrape time
//! ([`RouterValues`]) instead of being counted twice.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::protocol::QoS;

mod cluster;
mod connection;
mod labels;
mod limits;
mod queued;
mod scrape;
mod status;
mod store;
mod tally;
mod text;

pub use self::cluster::ClusterMetrics;
pub use self::connection::ConnectedGuard;
pub use self::labels::DropReason;
use self::labels::{ConnectionLabels, DropLabels, QosLabels};
pub use self::limits::{Limit, LimitHits};
pub use self::queued::QueuedShare;
pub use self::scrape::RouterValues;
pub use self::store::StoreMetrics;
pub use self::tally::SentTally;
pub use self::text::CONTENT_TYPE;

/// One counter per QoS (0, 1, 2).
type ByQos = [Counter; 3];

/// Broker-wide counters, updated by sessions with relaxed atomics (cheap, and neither
/// `$SYS` nor Prometheus needs ordering with anything else).
pub struct Metrics {
    registry: Registry,
    received: ByQos,
    received_bytes: ByQos,
    sent: ByQos,
    sent_bytes: ByQos,
    dropped: [Counter; DropReason::ALL.len()],
    /// Live connections, all listeners (`$SYS/broker/clients/connected`).
    connected: AtomicU64,
    connections: Family<ConnectionLabels, Gauge>,
    connections_opened: Family<ConnectionLabels, Counter>,
    /// Messages in session queues (not yet sent), summed from [`QueuedShare`]s.
    queued: Gauge,
    /// Read from the router at scrape time.
    router: scrape::RouterGauges,
    store: StoreMetrics,
    /// `starling_actor_restarts_total{actor="session"}`: sessions that failed (their
    /// connection closed with 0x83; the client resumes from the store).
    session_failures: Counter,
    /// Times each limit was reached.
    pub limits: LimitHits,
    /// Cluster mode's series ([`Metrics::with_cluster`]).
    cluster: Option<ClusterMetrics>,
}

/// A copy of the `$SYS` counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// PUBLISH packets received from clients.
    pub received: u64,
    /// PUBLISH packets sent to clients.
    pub sent: u64,
    /// Live connections.
    pub connected: u64,
    /// Payload bytes of the PUBLISH packets received.
    pub bytes_received: u64,
    /// Payload bytes of the PUBLISH packets sent.
    pub bytes_sent: u64,
    /// Messages dropped on their way to a client (full queue, expired, too large, not
    /// authorized, QoS 0 for an absent client; not those nobody subscribed to).
    pub dropped: u64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every series registered, at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("starling");
        let received = by_qos(
            &mut registry,
            "messages_received",
            "PUBLISH packets received from clients",
        );
        let received_bytes = by_qos(
            &mut registry,
            "received_payload_bytes",
            "Payload bytes of the PUBLISH packets received from clients",
        );
        let sent = by_qos(
            &mut registry,
            "messages_sent",
            "PUBLISH packets sent to clients",
        );
        let sent_bytes = by_qos(
            &mut registry,
            "sent_payload_bytes",
            "Payload bytes of the PUBLISH packets sent to clients",
        );
        let dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "messages_dropped",
            "Messages dropped, by reason",
            dropped.clone(),
        );
        let dropped =
            DropReason::ALL.map(|reason| dropped.get_or_create_owned(&DropLabels::new(reason)));
        let connections = Family::<ConnectionLabels, Gauge>::default();
        registry.register(
            "connections",
            "Live client connections, by listener port and protocol version",
            connections.clone(),
        );
        let connections_opened = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "connections_opened",
            "Client connections accepted (CONNACK sent) since start, by listener port and protocol version",
            connections_opened.clone(),
        );
        let queued = Gauge::default();
        registry.register(
            "queued_messages",
            "Messages waiting in session queues (offline, or beyond the inflight window)",
            queued.clone(),
        );
        let router = scrape::RouterGauges::register(
            &mut registry,
            &dropped[DropReason::NoSubscribers as usize],
        );
        let store = StoreMetrics::register(&mut registry, &router.restarts);
        let session_failures = router
            .restarts
            .get_or_create_owned(&labels::ActorLabels { actor: "session" });
        let limits = LimitHits::register(&mut registry);
        Metrics {
            registry,
            received,
            received_bytes,
            sent,
            sent_bytes,
            dropped,
            connected: AtomicU64::new(0),
            connections,
            connections_opened,
            queued,
            router,
            store,
            session_failures,
            limits,
            cluster: None,
        }
    }

    /// [`Metrics::new`] with cluster mode's series too.
    pub fn with_cluster() -> Metrics {
        let mut metrics = Metrics::new();
        metrics.cluster = Some(ClusterMetrics::register(&mut metrics.registry));
        metrics
    }

    /// Cluster mode's series, when the broker runs clustered.
    pub fn cluster(&self) -> Option<&ClusterMetrics> {
        self.cluster.as_ref()
    }

    /// One PUBLISH received from a client.
    #[inline]
    pub fn add_received(&self, qos: QoS, payload: usize) {
        self.received[qos as usize].inc();
        self.received_bytes[qos as usize].inc_by(payload as u64);
    }

    /// `n` messages dropped for `reason`.
    #[inline]
    pub fn add_dropped(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.dropped[reason as usize].inc_by(n);
        }
    }

    /// A session actor failed (a panic caught in its handler).
    pub fn session_failed(&self) {
        self.session_failures.inc();
    }

    /// What the persistence actor reports (commit latency, batch sizes, restarts).
    pub fn store(&self) -> &StoreMetrics {
        &self.store
    }

    /// The `$SYS` counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let sum = |c: &ByQos| c.iter().map(Counter::get).sum();
        MetricsSnapshot {
            received: sum(&self.received),
            sent: sum(&self.sent),
            connected: self.connected.load(Ordering::Relaxed),
            bytes_received: sum(&self.received_bytes),
            bytes_sent: sum(&self.sent_bytes),
            dropped: DropReason::ALL
                .iter()
                .filter(|r| **r != DropReason::NoSubscribers)
                .map(|r| self.dropped[*r as usize].get())
                .sum(),
        }
    }

    /// The registry in the Prometheus text format ([`CONTENT_TYPE`]), after taking the
    /// router's values from `stats` (`None`: the router did not answer; its series keep
    /// their last values).
    pub fn render(&self, stats: Option<&RouterValues>) -> String {
        if let Some(stats) = stats {
            let online = self.connected.load(Ordering::Relaxed);
            self.router.update(stats, online);
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "metrics not encodable");
        }
        text::prometheus_text(&text)
    }
}

/// A counter family labelled `qos`, registered as `name`, and its three handles.
fn by_qos(registry: &mut Registry, name: &str, help: &str) -> ByQos {
    let family = Family::<QosLabels, Counter>::default();
    registry.register(name, help, family.clone());
    [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .map(|qos| family.get_or_create_owned(&QosLabels::new(qos)))
}

#[cfg(test)]
mod tests;
