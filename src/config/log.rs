//! The `[log]` table: how the `starling` binary logs (an embedding application sets up
//! its own `tracing` subscriber and ignores it).

use serde::Deserialize;

use super::ConfigError;

/// `[log]`: the log format and level of the `starling` binary.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `format` (default `"text"`): `"text"` (human-readable lines) or `"json"` (one
    /// JSON object per line, for log collectors).
    pub format: LogFormat,
    /// `level` (default `"info"`): a `tracing` filter such as `"warn"` or
    /// `"info,starling::session=debug"`. `RUST_LOG`, when set, wins.
    pub level: String,
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl LogConfig {
    /// Checks that `level` is a filter `tracing` understands.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match tracing_subscriber::EnvFilter::try_new(&self.level) {
            Ok(_) => Ok(()),
            Err(e) => Err(ConfigError::Invalid(format!(
                "log.level {:?}: {e}",
                self.level
            ))),
        }
    }
}
