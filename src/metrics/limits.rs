//! `starling_limit_hits_total{limit}`: how often each of the `[limits]` (and the
//! listeners' limits) was reached.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// A limit the broker enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_connections` (global or a listener's): a CONNECT refused.
    Connections = 0,
    /// A listener's `max_connection_rate`: a CONNECT refused.
    ConnectionRate,
    /// `max_publish_rate` or `max_publish_bytes_rate`: reading from a client paused.
    PublishRate,
    /// `max_subscriptions_per_client`: a filter refused.
    Subscriptions,
    /// `max_topic_levels`: a publish or a filter refused.
    TopicLevels,
    /// `queue_full = "backpressure"`: reading from a publisher paused until the full
    /// queues it feeds drain.
    QueueFull,
    /// `max_memory` over `memory_high_watermark`: reading from a publisher paused.
    MemoryHigh,
    /// `max_memory` over `memory_refuse_watermark`: a CONNECT refused.
    MemoryRefuse,
}

impl Limit {
    /// Every limit, in index order.
    pub const ALL: [Limit; 8] = [
        Limit::Connections,
        Limit::ConnectionRate,
        Limit::PublishRate,
        Limit::Subscriptions,
        Limit::TopicLevels,
        Limit::QueueFull,
        Limit::MemoryHigh,
        Limit::MemoryRefuse,
    ];

    fn label(self) -> &'static str {
        match self {
            Limit::Connections => "max_connections",
            Limit::ConnectionRate => "max_connection_rate",
            Limit::PublishRate => "max_publish_rate",
            Limit::Subscriptions => "max_subscriptions_per_client",
            Limit::TopicLevels => "max_topic_levels",
            Limit::QueueFull => "queue_full",
            Limit::MemoryHigh => "memory_high_watermark",
            Limit::MemoryRefuse => "memory_refuse_watermark",
        }
    }
}

/// `{limit}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

/// One counter per [`Limit`].
pub struct LimitHits([Counter; Limit::ALL.len()]);

impl LimitHits {
    /// The family, registered, with every limit at zero.
    pub fn register(registry: &mut Registry) -> LimitHits {
        let family = Family::<LimitLabels, Counter>::default();
        registry.register(
            "limit_hits",
            "Times a limit was reached (a CONNECT or filter refused, a read paused)",
            family.clone(),
        );
        LimitHits(Limit::ALL.map(|l| family.get_or_create_owned(&LimitLabels { limit: l.label() })))
    }

    /// One more hit of `limit`.
    pub fn hit(&self, limit: Limit) {
        self.0[limit as usize].inc();
    }
}
