//! `$SYS` topics in Mosquitto's style: the broker's counters ([`Metrics`], shared by
//! every session and `/metrics`) and the [`Sys`] actor that publishes them, retained at
//! QoS 0, every `[server] sys_interval_secs`: clients, messages and bytes in and out,
//! drops, subscriptions, retained messages, and the 1/5/15-minute load averages
//! ([`load`]). Only values that changed are published again.
//!
//! In cluster mode each value is also published as `$SYS/cluster/<node_id>/...` (the
//! part after `$SYS/broker/`; [`mirror_topic`]), which the cluster routes and retains
//! on every node, so a client on any node sees every node's values.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use tracing::debug;

use crate::message::Message;
pub use crate::metrics::{Metrics, MetricsSnapshot};
use crate::protocol::{Properties, QoS};
use crate::router::messages::{GetStats, Route, RouterStats};
use crate::router::Router;
use crate::topic::TopicName;

mod load;

use self::load::LoadAverages;

/// The `$SYS` topics and their payloads for one update.
pub fn sys_values(
    stats: &RouterStats,
    metrics: MetricsSnapshot,
    uptime: Duration,
) -> Vec<(&'static str, String)> {
    vec![
        (
            "$SYS/broker/version",
            format!("starling {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", uptime.as_secs()),
        ),
        (
            "$SYS/broker/clients/connected",
            metrics.connected.to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            metrics.received.to_string(),
        ),
        ("$SYS/broker/messages/sent", metrics.sent.to_string()),
        (
            "$SYS/broker/bytes/received",
            metrics.bytes_received.to_string(),
        ),
        ("$SYS/broker/bytes/sent", metrics.bytes_sent.to_string()),
        (
            "$SYS/broker/publish/messages/dropped",
            metrics.dropped.to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            stats.subscriptions.to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            stats.retained.to_string(),
        ),
    ]
}

/// The cluster-wide copy of one of this node's `$SYS/broker/...` topics:
/// `$SYS/cluster/<node_id>/<the rest>`.
pub fn mirror_topic(node_id: &str, topic: &str) -> Option<String> {
    let rest = topic.strip_prefix("$SYS/broker/")?;
    Some(format!("$SYS/cluster/{node_id}/{rest}"))
}

/// Every topic the [`Sys`] actor publishes.
pub fn topics() -> Vec<&'static str> {
    let values = sys_values(
        &RouterStats::default(),
        MetricsSnapshot::default(),
        Duration::ZERO,
    );
    values
        .into_iter()
        .map(|(topic, _)| topic)
        .chain(load::topics())
        .collect()
}

/// A `$SYS` message as the broker publishes it: retained, QoS 0 (`None` for a topic
/// that is not a valid topic name).
pub fn sys_message(topic: &str, payload: Bytes) -> Option<Message> {
    let Ok(topic) = TopicName::new(topic) else {
        debug!(topic, "invalid $SYS topic");
        return None;
    };
    Some(Message {
        topic,
        payload,
        qos: QoS::AtMostOnce,
        retain: true,
        properties: Properties::default(),
        expires_at: None,
        publisher: None,
        encoded: Default::default(),
    })
}

/// What was last published per topic, so unchanged values are not published again.
#[derive(Debug, Default)]
pub struct LastValues(HashMap<&'static str, String>);

impl LastValues {
    /// The values that differ from the last ones published; remembers them.
    pub fn changed(&mut self, values: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
        values
            .into_iter()
            .filter(|(topic, value)| {
                let same = self.0.get(topic) == Some(value);
                if !same {
                    self.0.insert(topic, value.clone());
                }
                !same
            })
            .collect()
    }
}

/// The actor publishing `$SYS` topics through the router.
pub struct Sys {
    router: Addr<Router>,
    metrics: Arc<Metrics>,
    interval: Duration,
    started: Instant,
    last: LastValues,
    load: LoadAverages,
    /// Cluster mode: this node's id, under which each value is published again
    /// ([`mirror_topic`]).
    mirror: Option<String>,
}

impl Sys {
    pub fn new(router: Addr<Router>, metrics: Arc<Metrics>, interval: Duration) -> Sys {
        Sys {
            router,
            metrics,
            interval,
            started: Instant::now(),
            last: LastValues::default(),
            load: LoadAverages::default(),
            mirror: None,
        }
    }

    /// Also publishes every value under `$SYS/cluster/<node_id>/` (cluster mode).
    pub fn with_mirror(mut self, node_id: Option<String>) -> Sys {
        self.mirror = node_id;
        self
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let stats = self.router.send(GetStats).into_actor(self);
        ctx.wait(stats.map(|stats, act, _| {
            let Ok(stats) = stats else {
                return;
            };
            let snapshot = act.metrics.snapshot();
            let mut values = sys_values(&stats, snapshot, act.started.elapsed());
            values.extend(act.load.update(Instant::now(), snapshot));
            for (topic, value) in act.last.changed(values) {
                let mirror = act.mirror.as_deref().and_then(|n| mirror_topic(n, topic));
                if let Some(mirror) = mirror {
                    act.publish(&mirror, value.clone());
                }
                act.publish(topic, value);
            }
        }));
    }

    fn publish(&self, topic: &str, value: String) {
        let Some(msg) = sys_message(topic, Bytes::from(value)) else {
            return;
        };
        self.router.do_send(Route {
            msg: Arc::new(msg),
            inbound_qos2: None,
        });
    }
}

impl Actor for Sys {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.tick(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_changes() {
        let stats = RouterStats {
            subscriptions: 3,
            retained: 4,
            ..RouterStats::default()
        };
        let v = sys_values(&stats, MetricsSnapshot::default(), Duration::from_secs(7));
        let get = |t: &str| v.iter().find(|(k, _)| *k == t).map(|(_, v)| v.as_str());
        assert_eq!(get("$SYS/broker/uptime"), Some("7 seconds"));
        assert_eq!(get("$SYS/broker/subscriptions/count"), Some("3"));
        assert_eq!(get("$SYS/broker/retained messages/count"), Some("4"));
        assert!(get("$SYS/broker/version").unwrap().starts_with("starling "));
        for (topic, _) in &v {
            assert!(TopicName::new(*topic).is_ok(), "{topic}");
        }
        let mut last = LastValues::default();
        assert_eq!(last.changed(v.clone()).len(), v.len());
        assert!(last.changed(v).is_empty());
        assert_eq!(
            mirror_topic("n1", "$SYS/broker/clients/connected").as_deref(),
            Some("$SYS/cluster/n1/clients/connected")
        );
        let all = topics();
        assert!(all.contains(&"$SYS/broker/load/bytes/sent/15min"));
        assert!(all.iter().all(|t| mirror_topic("n", t).is_some()));
        let v = sys_values(&stats, MetricsSnapshot::default(), Duration::from_secs(8));
        assert_eq!(
            last.changed(v),
            vec![("$SYS/broker/uptime", "8 seconds".into())]
        );
    }
}
