//! The `[cluster]` table: cluster mode over NATS JetStream.

use std::time::Duration;

use serde::Deserialize;

/// Cluster mode (`[cluster]`): several nodes over NATS with JetStream act as one
/// broker. Off by default (single host, sled only).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Set by the broker, not read from the file: session state lives in JetStream (see
    /// [`Config::session_state_in_cluster`](super::Config::session_state_in_cluster)).
    #[serde(skip)]
    pub session_state: bool,
    /// `enabled` (default `false`): run as a node of a cluster. On, persistent session
    /// state lives in JetStream (unless `[storage] durability = "memory"`) and sled is
    /// not used.
    pub enabled: bool,
    /// `urls` (default `["nats://127.0.0.1:4222"]`): NATS server URLs
    /// (`nats://host:port`); the client fails over between them.
    pub urls: Vec<String>,
    /// `node_id` (default empty; required when `enabled`): this node's name, unique in
    /// the cluster.
    pub node_id: String,
    /// `replicas` (default 3, 1 to 5): JetStream replicas of the cluster's streams and
    /// of the session ownership bucket (3 survives the loss of one server).
    pub replicas: usize,
    /// `isolation_grace_ms` (default 2000): how long, in milliseconds, the node's NATS
    /// connection may stay down before the node counts as cut off from the cluster: it
    /// then refuses CONNECTs (0x88 Server unavailable / 3.1.1 code 3) and closes its
    /// clients' connections (5.0: DISCONNECT 0x9C Use another server) until NATS is back.
    pub isolation_grace_ms: u64,
    /// `log_retention_secs` (default 3600): how long, in seconds, the message log keeps
    /// a QoS 1/2 message: a persistent session resumed on another node later than this
    /// after its node died misses what is older.
    pub log_retention_secs: u64,
    /// `message_log` (default `true`): QoS 1/2 messages go through the message log
    /// before their live copy, and a session resumed on another node replays it. Ignored
    /// (off) with `durability = "memory"`, where sessions do not move with their state.
    /// Off: cheaper QoS 1/2 publishes, but what was on its way to a node that died, or
    /// published while no node held a persistent session, is lost for that session.
    pub message_log: bool,
    /// `node_ttl_ms` (default 10000): how long, in milliseconds, a node counts as alive
    /// after its last heartbeat in the bucket `STARLING_NODES` (it beats every third of
    /// this). A node whose entry expired is dead: `$SYS/cluster/nodes` drops it, and the
    /// other nodes expire the persistent sessions it held on schedule.
    pub node_ttl_ms: u64,
    /// `sweep_interval_ms` (default 5000): how often (±25 %), in milliseconds, a node
    /// looks for sessions held by dead nodes (a bounded batch of ownership entries per
    /// round) and refreshes `$SYS/cluster/nodes`.
    pub sweep_interval_ms: u64,
    /// Set by the broker, not read from the file: `$SYS` is on (`[server]
    /// sys_interval_secs` > 0), so the node publishes `$SYS/cluster/nodes`.
    #[serde(skip)]
    pub sys: bool,
}

impl ClusterConfig {
    /// `isolation_grace_ms` as a duration.
    pub fn isolation_grace(&self) -> Duration {
        Duration::from_millis(self.isolation_grace_ms)
    }

    /// `log_retention_secs` as a duration, at least one second.
    pub fn log_retention(&self) -> Duration {
        Duration::from_secs(self.log_retention_secs.max(1))
    }

    /// `node_ttl_ms` as a duration.
    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms)
    }

    /// `sweep_interval_ms` as a duration.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms)
    }
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            session_state: false,
            enabled: false,
            urls: vec!["nats://127.0.0.1:4222".to_owned()],
            node_id: String::new(),
            replicas: 3,
            isolation_grace_ms: 2000,
            log_retention_secs: 3600,
            message_log: true,
            node_ttl_ms: 10_000,
            sweep_interval_ms: 5_000,
            sys: false,
        }
    }
}
