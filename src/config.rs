//! Broker configuration: the TOML file format and its defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::QoS;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration (config/starling.toml documents every key).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub storage: StorageConfig,
    pub limits: Limits,
    pub server: ServerConfig,
    pub capabilities: Capabilities,
    pub auth: AuthConfig,
    pub cluster: ClusterConfig,
}

/// Cluster mode (`[cluster]`): several nodes over NATS with JetStream act as one
/// broker. Off by default (single host, sled only).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Set by the broker, not read from the file: session state lives in JetStream
    /// (see [`Config::session_state_in_cluster`]).
    #[serde(skip)]
    pub session_state: bool,
    pub enabled: bool,
    /// NATS server URLs (`nats://host:port`); the client fails over between them.
    pub urls: Vec<String>,
    /// This node's name, unique in the cluster.
    pub node_id: String,
    /// JetStream replicas of the cluster's streams (1, or 3 to survive one server).
    pub replicas: usize,
    /// How long the node's NATS connection may stay down before the node counts as cut
    /// off from the cluster: it then refuses CONNECTs (0x88 Server unavailable / 3.1.1
    /// code 3) and closes its clients' connections (5.0: DISCONNECT 0x9C Use another
    /// server) until NATS is back (`cluster::isolation`).
    pub isolation_grace_ms: u64,
    /// How long the message log (QoS 1/2 messages, `cluster::replay`) keeps a message:
    /// a persistent session resumed on another node later than this after its node died
    /// misses what is older.
    pub log_retention_secs: u64,
    /// QoS 1/2 messages go through the message log before their live copy, and a
    /// session resumed on another node replays it (`cluster::replay`). Ignored (off)
    /// with `durability = "memory"`, where sessions do not move with their state. Off: cheaper
    /// QoS 1/2 publishes, but what was on its way to a node that died, or published
    /// while no node held a persistent session, is lost for that session.
    pub message_log: bool,
}

impl ClusterConfig {
    pub fn isolation_grace(&self) -> Duration {
        Duration::from_millis(self.isolation_grace_ms)
    }

    pub fn log_retention(&self) -> Duration {
        Duration::from_secs(self.log_retention_secs.max(1))
    }
}

impl Config {
    /// Cluster mode with a durable store: session state lives in JetStream, and a
    /// session is loaded (or its stale state deleted) when its client connects.
    pub fn session_state_in_cluster(&self) -> bool {
        self.cluster.enabled && self.storage.durability != Durability::Memory
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
        }
    }
}

/// Who may connect (`[auth]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accept CONNECTs without a username.
    pub allow_anonymous: bool,
    /// `username:pbkdf2-sha256$...` lines; also the users of SCRAM-SHA-256.
    pub password_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            allow_anonymous: true,
            password_file: None,
        }
    }
}

/// What kind of socket a listener accepts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    Tcp,
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    #[serde(default = "default_kind")]
    pub kind: ListenerKind,
    pub bind: SocketAddr,
}

fn default_kind() -> ListenerKind {
    ListenerKind::Tcp
}

/// Where state is kept.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// With `periodic` durability: how often the store is flushed, in milliseconds.
    pub flush_interval_ms: u64,
}

/// When persistent state reaches the disk.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// A QoS 1/2 publish is acknowledged only once every persistent session that must
    /// receive it has it on disk (group commit).
    Sync,
    /// Changes are written at once and flushed every `flush_interval_ms`; a crash loses
    /// at most that window.
    Periodic,
    /// Nothing is written; state lives in memory and is lost on restart.
    Memory,
}

/// Limits enforced per connection and per session.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub connect_timeout_secs: u64,
    pub max_packet_size: u32,
    pub max_connections: usize,
    pub max_inflight: u16,
    pub receive_maximum: u16,
    pub max_queued_messages: usize,
    pub max_queued_bytes: usize,
    pub max_keepalive_secs: u16,
    pub max_client_id_len: usize,
    pub topic_alias_maximum: u16,
    /// Check that a PUBLISH whose Payload Format Indicator is 1 carries UTF-8 (5.0).
    pub validate_utf8_payloads: bool,
}

/// What the server tells clients about itself.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Returned in CONNACK to 5.0 clients that ask for Response Information.
    pub response_information: Option<String>,
    /// When set, every CONNECT is refused and 5.0 clients are sent here.
    pub server_reference: Option<String>,
    /// With `server_reference`: moved for good (0x9D) rather than "use another" (0x9C).
    pub server_moved: bool,
    /// Seconds between `$SYS` updates; 0 disables them.
    pub sys_interval_secs: u64,
    /// How a shared subscription picks the member that gets each message.
    pub shared_subscription_strategy: ShareStrategy,
    /// Threads running session actors; 0: one per core the process may use.
    pub workers: usize,
    /// Where the router actor runs.
    pub router_thread: RouterThread,
}

/// Where the router actor runs.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RouterThread {
    /// `shared` with one worker (one core: no cross-thread wake-up per message),
    /// `dedicated` with more.
    #[default]
    Auto,
    /// A thread of its own.
    Dedicated,
    /// The first worker's thread, beside sessions.
    Shared,
}

impl RouterThread {
    /// Whether the router shares the first worker's thread when there are `workers`.
    pub fn shares_worker(self, workers: usize) -> bool {
        match self {
            RouterThread::Auto => workers <= 1,
            RouterThread::Dedicated => false,
            RouterThread::Shared => true,
        }
    }
}

/// How a shared subscription (`$share/{group}/{filter}`) picks one online member.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShareStrategy {
    /// Each online member in turn.
    #[default]
    RoundRobin,
    /// A random online member for each message.
    Random,
    /// The same member while it stays online, then the next one.
    Sticky,
}

/// Optional MQTT features the server offers (advertised to 5.0 clients in CONNACK).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// Highest QoS accepted from clients and granted to subscriptions (0, 1 or 2).
    pub maximum_qos: u8,
    pub retain_available: bool,
    pub wildcard_subscriptions: bool,
    pub subscription_identifiers: bool,
    pub shared_subscriptions: bool,
}

impl Capabilities {
    /// The highest QoS offered.
    pub fn max_qos(&self) -> QoS {
        QoS::from_u8(self.maximum_qos).unwrap_or(QoS::ExactlyOnce)
    }
}

impl Default for Capabilities {
    fn default() -> Capabilities {
        Capabilities {
            maximum_qos: 2,
            retain_available: true,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            response_information: None,
            server_reference: None,
            server_moved: false,
            sys_interval_secs: 10,
            shared_subscription_strategy: ShareStrategy::RoundRobin,
            workers: 0,
            router_thread: RouterThread::Auto,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listeners: vec![ListenerConfig {
                kind: ListenerKind::Tcp,
                bind: SocketAddr::from(([127, 0, 0, 1], 1883)),
            }],
            storage: StorageConfig::default(),
            limits: Limits::default(),
            server: ServerConfig::default(),
            capabilities: Capabilities::default(),
            auth: AuthConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            data_dir: PathBuf::from("./data"),
            durability: Durability::Sync,
            flush_interval_ms: 100,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connect_timeout_secs: 10,
            max_packet_size: 1024 * 1024,
            max_connections: 10_000,
            max_inflight: 64,
            receive_maximum: 256,
            max_queued_messages: 10_000,
            max_queued_bytes: 100 * 1024 * 1024,
            max_keepalive_secs: 0,
            max_client_id_len: 256,
            topic_alias_maximum: 64,
            validate_utf8_payloads: true,
        }
    }
}

impl Limits {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.max_packet_size < 16 || l.max_packet_size > 268_435_460 {
            return Err(ConfigError::Invalid(
                "limits.max_packet_size must be between 16 and 268435460".into(),
            ));
        }
        if l.max_inflight == 0 || l.receive_maximum == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_inflight and limits.receive_maximum must be at least 1".into(),
            ));
        }
        if l.connect_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "limits.connect_timeout_secs must be at least 1".into(),
            ));
        }
        let c = &self.cluster;
        if c.enabled && (c.urls.is_empty() || c.node_id.is_empty()) {
            return Err(ConfigError::Invalid(
                "cluster.urls and cluster.node_id must be set when cluster.enabled".into(),
            ));
        }
        if c.replicas == 0 || c.replicas > 5 {
            return Err(ConfigError::Invalid(
                "cluster.replicas must be between 1 and 5".into(),
            ));
        }
        if self.capabilities.maximum_qos > 2 {
            return Err(ConfigError::Invalid(
                "capabilities.maximum_qos must be 0, 1 or 2".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_equals_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/starling.toml");
        assert_eq!(Config::from_file(&path).unwrap(), Config::default());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(toml::from_str::<Config>("[limits]\nmax_pakcet_size = 5").is_err());
        let c: Config = toml::from_str("[limits]\nmax_inflight = 0").unwrap();
        assert!(c.validate().is_err());
        let c: Config = toml::from_str("[capabilities]\nmaximum_qos = 3").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn server_and_capabilities_sections_parse() {
        let text = "[server]\nserver_reference = \"other:1883\"\nserver_moved = true\n\
                    [capabilities]\nmaximum_qos = 1\nretain_available = false\n";
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.server.server_reference.as_deref(), Some("other:1883"));
        assert!(c.server.server_moved);
        assert_eq!(c.capabilities.max_qos(), QoS::AtLeastOnce);
        assert!(!c.capabilities.retain_available);
        assert!(c.capabilities.wildcard_subscriptions);
    }

    #[test]
    fn auth_section_parses() {
        let c: Config =
            toml::from_str("[auth]\nallow_anonymous = false\npassword_file = \"pw\"\n").unwrap();
        assert!(!c.auth.allow_anonymous);
        assert_eq!(c.auth.password_file.as_deref(), Some(Path::new("pw")));
        assert!(Config::default().auth.allow_anonymous);
    }

    #[test]
    fn cluster_section_parses_and_validates() {
        let text = "[cluster]\nenabled = true\nurls = [\"nats://a:1\", \"nats://b:2\"]\n\
                    node_id = \"n1\"\nreplicas = 1\nisolation_grace_ms = 500\n";
        let c: Config = toml::from_str(text).unwrap();
        assert!(c.cluster.enabled);
        assert_eq!(c.cluster.urls.len(), 2);
        assert_eq!(c.cluster.node_id, "n1");
        assert_eq!(c.cluster.isolation_grace(), Duration::from_millis(500));
        assert!(c.validate().is_ok());
        let c: Config = toml::from_str("[cluster]\nenabled = true\n").unwrap();
        assert!(c.validate().is_err(), "node_id is required");
        assert!(!Config::default().cluster.enabled);
        assert_eq!(Config::default().cluster.isolation_grace_ms, 2000);
    }
}
