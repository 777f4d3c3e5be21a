//! The series whose values the router keeps, refreshed from its counters
//! ([`RouterValues`]) when `/metrics` is scraped.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::{ActorLabels, SessionLabels};

/// The router's counters (its `RouterStats`), as `/metrics` shows them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouterValues {
    /// Sessions registered, connected or not.
    pub sessions: usize,
    /// Subscriptions held.
    pub subscriptions: usize,
    /// Retained messages held.
    pub retained: usize,
    /// Local publishes that matched no subscription, since start.
    pub unrouted: u64,
    /// Restarts of the router, since start.
    pub restarts: u64,
}

/// The router's values as series.
pub struct RouterGauges {
    retained: Gauge,
    subscriptions: Gauge,
    online: Gauge,
    offline: Gauge,
    /// `starling_actor_restarts_total`, all actors.
    pub restarts: Family<ActorLabels, Counter>,
    router_restarts: Counter,
    no_subscribers: Counter,
    /// The router's counters as last seen, so that the series move by the difference.
    seen_unrouted: AtomicU64,
    seen_restarts: AtomicU64,
}

impl RouterGauges {
    /// Registers the series; `no_subscribers` is the dropped-messages handle the
    /// router's count of unmatched publishes feeds.
    pub fn register(registry: &mut Registry, no_subscribers: &Counter) -> RouterGauges {
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let retained = gauge(registry, "retained_messages", "Retained messages held");
        let subscriptions = gauge(
            registry,
            "subscriptions",
            "Subscriptions held (shared ones included)",
        );
        let sessions = Family::<SessionLabels, Gauge>::default();
        registry.register(
            "sessions",
            "Sessions known to the router: online (a live connection) or offline (stored, or in-process clients)",
            sessions.clone(),
        );
        let restarts = Family::<ActorLabels, Counter>::default();
        registry.register(
            "actor_restarts",
            "Restarts of supervised actors after a failure, by actor",
            restarts.clone(),
        );
        let router_restarts = restarts.get_or_create_owned(&ActorLabels { actor: "router" });
        RouterGauges {
            retained,
            subscriptions,
            online: sessions.get_or_create_owned(&SessionLabels { state: "online" }),
            offline: sessions.get_or_create_owned(&SessionLabels { state: "offline" }),
            restarts,
            router_restarts,
            no_subscribers: no_subscribers.clone(),
            seen_unrouted: AtomicU64::new(0),
            seen_restarts: AtomicU64::new(0),
        }
    }

    /// Takes the router's values; `online` is the count of live connections.
    pub fn update(&self, stats: &RouterValues, online: u64) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.retained.set(gauge(stats.retained));
        self.subscriptions.set(gauge(stats.subscriptions));
        let online = gauge(usize::try_from(online).unwrap_or(usize::MAX));
        self.online.set(online);
        self.offline
            .set(gauge(stats.sessions).saturating_sub(online).max(0));
        advance(&self.no_subscribers, &self.seen_unrouted, stats.unrouted);
        advance(&self.router_restarts, &self.seen_restarts, stats.restarts);
    }
}

/// Moves `counter` by how far `now` is past `seen` (two scrapes at once move it once).
fn advance(counter: &Counter, seen: &AtomicU64, now: u64) {
    let before = seen.fetch_max(now, Ordering::Relaxed);
    counter.inc_by(now.saturating_sub(before));
}
