//! `[http]`: the operations HTTP listener (`/health`, `/ready`, `/metrics`, `/api/v1`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The shortest bearer token accepted from `token_file`, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// The operations HTTP listener (`[http]`); off unless `bind` is set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// `bind` (default none: no HTTP listener): the address serving `/health`, `/ready`
    /// and `/metrics` (e.g. `"127.0.0.1:8080"`).
    pub bind: Option<SocketAddr>,
    /// `token_file` (default none): a file whose first line is the bearer token for
    /// `/api`; without it `/api` is refused. Read at start: a missing file or a token
    /// under 16 bytes stops the broker.
    pub token_file: Option<PathBuf>,
}

impl HttpConfig {
    /// Checks the values that parse but make no sense: a `token_file` without `bind`,
    /// an empty `token_file` path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.token_file {
            Some(path) if path.as_os_str().is_empty() => Err(ConfigError::Invalid(
                "http.token_file must not be empty".into(),
            )),
            Some(_) if self.bind.is_none() => Err(ConfigError::Invalid(
                "http.token_file needs http.bind".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Why `[http] token_file` gave no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read http.token_file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Its first line is shorter than [`MIN_TOKEN_LEN`].
    #[error("http.token_file {path}: the token must be at least {MIN_TOKEN_LEN} bytes")]
    TooShort {
        /// The file.
        path: PathBuf,
    },
}

/// The bearer token in `path`: its first line, without surrounding whitespace.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.len() < MIN_TOKEN_LEN {
        return Err(TokenError::TooShort {
            path: path.to_owned(),
        });
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn off_by_default_and_parsed() {
        assert_eq!(Config::default().http.bind, None);
        let c: Config = "[http]\nbind = \"127.0.0.1:8080\"\ntoken_file = \"t\""
            .parse()
            .expect("valid");
        assert_eq!(c.http.bind, Some("127.0.0.1:8080".parse().expect("addr")));
        assert!("[http]\ntoken_file = \"t\"".parse::<Config>().is_err());
        assert!("[http]\nbind = \"nowhere\"".parse::<Config>().is_err());
    }

    #[test]
    fn tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        assert!(matches!(read_token(&path), Err(TokenError::Read { .. })));
        std::fs::write(&path, "short\n").expect("write");
        assert!(matches!(
            read_token(&path),
            Err(TokenError::TooShort { .. })
        ));
        std::fs::write(&path, "  0123456789abcdef \nrest").expect("write");
        assert_eq!(read_token(&path).expect("token"), "0123456789abcdef");
    }
}
