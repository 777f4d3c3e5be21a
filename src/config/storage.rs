//! `[storage]`: which store keeps persistent state, and when it is made durable.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// Where state is kept (`[storage]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `data_dir` (default `"./data"`): the directory of persistent state, created if
    /// missing. Unused with `durability = "memory"`.
    pub data_dir: PathBuf,
    /// `durability` (default `"sync"`): when persistent state reaches the disk.
    pub durability: Durability,
    /// `flush_interval_ms` (default 100): with `periodic` durability, how often the
    /// store is flushed, in milliseconds.
    pub flush_interval_ms: u64,
    /// `backend` (default `"sled"`): which store keeps the state.
    pub backend: Backend,
    /// `url` (default none): where the `postgres` or `redis` backend's server is, e.g.
    /// `postgres://starling@127.0.0.1:5432/starling` or `redis://127.0.0.1:6379/0`.
    pub url: Option<String>,
}

/// When persistent state reaches the disk (`[storage] durability`). QoS 0 messages and
/// clean sessions never touch the disk.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `"sync"`: a QoS 1/2 publish is acknowledged only once every persistent session
    /// that must receive it has it on disk (group commit).
    Sync,
    /// `"periodic"`: changes are written at once and flushed every
    /// `flush_interval_ms`; a crash loses at most that window.
    Periodic,
    /// `"memory"`: nothing is written; state lives in memory and is lost on restart.
    Memory,
}

/// Which store keeps persistent state (`[storage] backend`). In cluster mode session
/// state lives in JetStream whatever this says.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `"sled"`: an embedded database in `data_dir` (single host).
    #[default]
    Sled,
    /// `"postgres"`: a PostgreSQL server at `url`.
    Postgres,
    /// `"redis"`: a Redis server at `url`; how much survives a Redis crash depends on
    /// its `appendfsync`.
    Redis,
    /// `"memory"`: nothing outlives the process (as `durability = "memory"`).
    Memory,
}

impl Backend {
    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
            Backend::Redis => "redis",
            Backend::Memory => "memory",
        }
    }
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            data_dir: PathBuf::from("./data"),
            durability: Durability::Sync,
            flush_interval_ms: 100,
            backend: Backend::Sled,
            url: None,
        }
    }
}

impl StorageConfig {
    /// Checks that a server backend has a `url` of its scheme.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let schemes: &[&str] = match self.backend {
            Backend::Postgres => &["postgres://", "postgresql://"],
            Backend::Redis => &["redis://"],
            Backend::Sled | Backend::Memory => return Ok(()),
        };
        let name = self.backend.name();
        if self
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("rediss://"))
        {
            return Err(ConfigError::Invalid(
                "storage.url: TLS to Redis (rediss://) is not built in; use redis:// (e.g. \
                 over a local TLS tunnel)"
                    .into(),
            ));
        }
        match &self.url {
            None => Err(ConfigError::Invalid(format!(
                "storage.url must be set when storage.backend = \"{name}\""
            ))),
            Some(url) if !schemes.iter().any(|s| url.starts_with(s)) => {
                Err(ConfigError::Invalid(format!(
                    "storage.url is not a {name} URL: it must start with {}",
                    schemes.join(" or ")
                )))
            }
            Some(_) => Ok(()),
        }
    }
}
