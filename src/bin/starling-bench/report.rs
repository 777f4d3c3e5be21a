//! The one JSON line a run prints. Fields that do not apply stay `None` and are omitted.

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub mqtt: &'static str,
    pub qos: u8,
    pub size: usize,
    pub threads: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inflight: Option<usize>,
    /// Messages published in total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// Deliveries expected in total (messages x matching subscribers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    /// Publishes acknowledged (QoS 1 PUBACK / QoS 2 PUBCOMP); QoS 0: sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
    /// Deliveries received, duplicates included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
    /// Deliveries of the messages actually sent - distinct deliveries received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dup: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_acks: Option<u64>,
    pub secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_before: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// (rss_after - rss_before) / connected; negative if the broker gave memory back.
    pub rss_per_conn: Option<i64>,
    /// `churn`: subscriptions made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<u64>,
    /// `churn`: filters subscribed per second while filling the trie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_per_sec: Option<f64>,
    /// `churn`: filters unsubscribed or re-subscribed per second with the trie full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn_per_sec: Option<f64>,
    /// `churn`: (rss_after - rss_before) / subscriptions, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_sub: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen_cpu_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_cpu_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_rss: Option<u64>,
    /// Tasks that ended with an error (deadline included).
    pub errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Report {
    /// Keeps the first error and counts them all.
    pub fn error(&mut self, e: Option<String>) {
        if let Some(e) = e {
            self.errors += 1;
            self.first_error.get_or_insert(e);
        }
    }
}
