//! Broker configuration: the TOML file format and its defaults.
//!
//! Every key is optional; a missing key takes its default, and an unknown key is an
//! error. `config/starling.toml` is the default configuration with every key explained;
//! the field docs here name each key and its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::protocol::QoS;

mod auth;
mod check;
mod cluster;
mod http;
mod limits;
mod listener;
mod log;
mod size;
mod storage;
#[cfg(test)]
mod tests;

pub use auth::AuthConfig;
pub use check::ConfigProblem;
pub use cluster::ClusterConfig;
pub use http::{read_token, HttpConfig, TokenError, MIN_TOKEN_LEN};
pub use limits::{Limits, QueueFull};
pub use listener::{ListenerConfig, ListenerKind};
pub use log::{LogConfig, LogFormat};
pub use size::ByteSize;
pub use storage::{Backend, Durability, StorageConfig};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML of this format (bad syntax, an unknown key, a wrong type).
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser refused, with its line and column.
        source: Box<toml::de::Error>,
    },
    /// A string given to [`Config::from_str`] is not TOML of this format.
    #[error("invalid config: {0}")]
    Toml(Box<toml::de::Error>),
    /// A value parses but makes no sense (see [`Config::validate`]); the message names
    /// the key.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole configuration: one field per TOML table.
///
/// Build it with [`Config::default`] and set fields, read a file with
/// [`Config::from_file`], or parse a string (with [`str::parse`]); both of the latter
/// [validate](Config::validate) it.
///
/// ```
/// use starling::config::{Config, Durability};
///
/// let config: Config = r#"
///     [[listeners]]
///     bind = "127.0.0.1:0"
///
///     [storage]
///     durability = "memory"
///
///     [limits]
///     max_inflight = 32
/// "#
/// .parse()?;
/// assert_eq!(config.storage.durability, Durability::Memory);
/// assert_eq!(config.limits.max_inflight, 32);
/// // Keys left out keep their defaults.
/// assert_eq!(config.limits.receive_maximum, 256);
///
/// // Unknown keys and nonsensical values are refused.
/// assert!("[limits]\nmax_pakcet_size = 5".parse::<Config>().is_err());
/// assert!("[limits]\nmax_inflight = 0".parse::<Config>().is_err());
/// # Ok::<(), starling::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[[listeners]]`: the sockets to accept clients on, one table each. Default: one
    /// TCP listener on `127.0.0.1:1883`. Empty: no network clients, only in-process ones.
    pub listeners: Vec<ListenerConfig>,
    /// `[storage]`: where and how persistent state is kept.
    pub storage: StorageConfig,
    /// `[limits]`: limits per connection and per session.
    pub limits: Limits,
    /// `[server]`: what the server tells clients, and how it runs.
    pub server: ServerConfig,
    /// `[capabilities]`: the optional MQTT features offered.
    pub capabilities: Capabilities,
    /// `[auth]`: who may connect.
    pub auth: AuthConfig,
    /// `[cluster]`: cluster mode over NATS JetStream (off by default).
    pub cluster: ClusterConfig,
    /// `[log]`: how the `starling` binary logs.
    pub log: LogConfig,
    /// `[http]`: the operations HTTP listener (off by default).
    pub http: HttpConfig,
}

impl Config {
    /// Cluster mode with a durable store: session state lives in JetStream, and a
    /// session is loaded (or its stale state deleted) when its client connects.
    pub fn session_state_in_cluster(&self) -> bool {
        self.cluster.enabled && self.storage.durability != Durability::Memory
    }

    /// Whether CONNECTs without a username are accepted: `[auth] allow_anonymous` when
    /// set; otherwise Mosquitto 2's safe default, true while no listener binds an
    /// address beyond loopback ([`Config::exposed_listener`]).
    ///
    /// ```
    /// use starling::config::Config;
    ///
    /// let local: Config = "[[listeners]]\nbind = \"127.0.0.1:1883\"".parse()?;
    /// assert!(local.allow_anonymous());
    /// let exposed: Config = "[[listeners]]\nbind = \"0.0.0.0:1883\"".parse()?;
    /// assert!(!exposed.allow_anonymous());
    /// let open: Config =
    ///     "[auth]\nallow_anonymous = true\n[[listeners]]\nbind = \"0.0.0.0:1883\"".parse()?;
    /// assert!(open.allow_anonymous());
    /// # Ok::<(), starling::config::ConfigError>(())
    /// ```
    pub fn allow_anonymous(&self) -> bool {
        self.auth
            .allow_anonymous
            .unwrap_or_else(|| self.exposed_listener().is_none())
    }

    /// The first listener address that is not loopback (`0.0.0.0` and `::` included),
    /// if any.
    pub fn exposed_listener(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .map(|l| l.bind)
            .find(|addr| !addr.ip().to_canonical().is_loopback())
    }
}

/// What the server tells clients about itself, and how it runs (`[server]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `response_information` (default none): returned in CONNACK to 5.0 clients that
    /// set Request Response Information.
    pub response_information: Option<String>,
    /// `server_reference` (default none): when set, every CONNECT is refused and 5.0
    /// clients are sent here (3.1.1 clients get return code 3).
    pub server_reference: Option<String>,
    /// `server_moved` (default `false`): with `server_reference`, moved for good (0x9D
    /// Server moved) rather than 0x9C Use another server.
    pub server_moved: bool,
    /// `sys_interval_secs` (default 10): seconds between `$SYS/broker/...` updates; 0
    /// disables them.
    pub sys_interval_secs: u64,
    /// `shared_subscription_strategy` (default `"round_robin"`): how a shared
    /// subscription picks the member that gets each message.
    pub shared_subscription_strategy: ShareStrategy,
    /// `workers` (default 0): threads running session actors; 0: one per core the
    /// process may use.
    pub workers: usize,
    /// `router_thread` (default `"auto"`): where the router actor runs.
    pub router_thread: RouterThread,
}

/// Where the router actor runs (`[server] router_thread`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RouterThread {
    /// `"auto"`: `shared` with one worker (one core: no cross-thread wake-up per
    /// message), `dedicated` with more.
    #[default]
    Auto,
    /// `"dedicated"`: a thread of its own.
    Dedicated,
    /// `"shared"`: the first worker's thread, beside sessions.
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

/// How a shared subscription (`$share/{group}/{filter}`) picks one online member
/// (`[server] shared_subscription_strategy`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShareStrategy {
    /// `"round_robin"`: each online member in turn.
    #[default]
    RoundRobin,
    /// `"random"`: a random online member for each message.
    Random,
    /// `"sticky"`: the same member while it stays online, then the next one.
    Sticky,
}

/// Optional MQTT features the server offers (`[capabilities]`), advertised to 5.0
/// clients in CONNACK. A client using one that is off is refused.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// `maximum_qos` (default 2; 0, 1 or 2): the highest QoS accepted in PUBLISH (above
    /// it: 0x9B QoS not supported) and granted to subscriptions (a higher request is
    /// granted this).
    pub maximum_qos: u8,
    /// `retain_available` (default `true`): clients may publish retained messages (and
    /// wills with retain); else 0x9A Retain not supported.
    pub retain_available: bool,
    /// `wildcard_subscriptions` (default `true`): topic filters may contain `+` or `#`
    /// (else SUBACK 0xA2).
    pub wildcard_subscriptions: bool,
    /// `subscription_identifiers` (default `true`): a 5.0 SUBSCRIBE may carry a
    /// Subscription Identifier (else DISCONNECT 0xA1).
    pub subscription_identifiers: bool,
    /// `shared_subscriptions` (default `true`): `$share/{group}/{filter}` subscriptions
    /// are accepted (else SUBACK 0x9E).
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
            listeners: vec![ListenerConfig::tcp(SocketAddr::from((
                [127, 0, 0, 1],
                1883,
            )))],
            storage: StorageConfig::default(),
            limits: Limits::default(),
            server: ServerConfig::default(),
            capabilities: Capabilities::default(),
            auth: AuthConfig::default(),
            cluster: ClusterConfig::default(),
            log: LogConfig::default(),
            http: HttpConfig::default(),
        }
    }
}

impl Config {
    /// Reads, parses and [validates](Config::validate) a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        text.parse().map_err(|e| match e {
            ConfigError::Toml(source) => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Checks values that parse but make no sense: `max_packet_size` outside 16 to
    /// 268,435,460, a zero `max_inflight`, `receive_maximum` or `connect_timeout_secs`,
    /// cluster mode without `urls` or `node_id`, `replicas` outside 1 to 5,
    /// `node_ttl_ms` below 300 or `sweep_interval_ms` below 100, a
    /// `maximum_qos` above 2.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate()?;
        self.storage.validate()?;
        self.log.validate()?;
        if self.auth.login_failure_window_secs == 0 {
            return Err(ConfigError::Invalid(
                "auth.login_failure_window_secs must be at least 1".into(),
            ));
        }
        for listener in &self.listeners {
            listener.validate()?;
        }
        let c = &self.cluster;
        if c.enabled && (c.urls.is_empty() || c.node_id.is_empty()) {
            return Err(ConfigError::Invalid(
                "cluster.urls and cluster.node_id must be set when cluster.enabled".into(),
            ));
        }
        if c.node_ttl_ms < 300 || c.sweep_interval_ms < 100 {
            return Err(ConfigError::Invalid(
                "cluster.node_ttl_ms must be at least 300 and cluster.sweep_interval_ms at least 100".into(),
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
        self.http.validate()
    }
}

/// Parses and [validates](Config::validate) the text of a configuration file.
impl FromStr for Config {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|source| ConfigError::Toml(Box::new(source)))?;
        config.validate()?;
        Ok(config)
    }
}
