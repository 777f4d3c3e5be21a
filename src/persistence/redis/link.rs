//! One connection to the redis server, made again on the next call after it broke.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisError};

use super::super::StoreError;

/// How long connecting may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long each reply may take before the call fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed connect, calls fail at once for this long (doubling up to
/// [`MAX_BACKOFF`]), so a server that is down does not stall every commit for the
/// connect timeout.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Why a call on the connection failed: the server or the connection (which is then
/// dropped), or a record that does not decode (the connection is fine).
pub(super) enum Failure {
    /// A redis error: the connection is made again on the next call.
    Redis(RedisError),
    /// A store error (a corrupt record).
    Store(StoreError),
}

impl From<RedisError> for Failure {
    fn from(e: RedisError) -> Self {
        Failure::Redis(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// A lazily (re)made connection. Any failed command drops it: a reply that did not
/// arrive leaves the stream in an unknown state, and the next call starts afresh.
pub(super) struct Link {
    client: Client,
    /// `host:port/db` without the credentials, for messages.
    target: String,
    conn: Mutex<State>,
}

/// The connection, or when to try to make one again.
#[derive(Default)]
struct State {
    conn: Option<Connection>,
    /// After a failed connect: no new attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Parses `url` (no connection yet).
    pub(super) fn new(url: &str) -> Result<Link, StoreError> {
        let target = redact(url);
        let client = Client::open(url).map_err(|e| StoreError::Server {
            backend: "redis",
            reason: format!("invalid url {target}: {}", e.category()),
        })?;
        Ok(Link {
            client,
            target,
            conn: Mutex::new(State::default()),
        })
    }

    /// The server's address without credentials.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// Runs `f` on the connection, connecting first if there is none. On an error the
    /// connection is dropped.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut state = self.lock();
        if state.conn.is_none() {
            state.conn = Some(self.reconnect(&mut state)?);
        }
        let Some(conn) = state.conn.as_mut() else {
            return Err(self.error("no connection"));
        };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(Failure::Store(e)) => Err(e),
            Err(Failure::Redis(e)) => {
                state.conn = None;
                Err(self.server_error(&e))
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves at worst a half-used connection: drop it.
        self.conn.lock().unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            state.conn = None;
            state
        })
    }

    /// A new connection, unless the last attempt failed too recently.
    fn reconnect(&self, state: &mut State) -> Result<Connection, StoreError> {
        if state.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(self.error("not connected; retrying shortly"));
        }
        match self.connect() {
            Ok(conn) => {
                if state.retry_at.take().is_some() {
                    tracing::info!(redis = %self.target, "redis store: connected again");
                }
                state.backoff = Duration::ZERO;
                Ok(conn)
            }
            Err(e) => {
                state.backoff = (state.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                state.retry_at = Some(Instant::now() + state.backoff);
                Err(e)
            }
        }
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| self.server_error(&e))?;
        conn.set_read_timeout(Some(REPLY_TIMEOUT))
            .and_then(|()| conn.set_write_timeout(Some(REPLY_TIMEOUT)))
            .map_err(|e| self.server_error(&e))?;
        Ok(conn)
    }

    /// A [`StoreError::Server`] naming the server (never its password).
    pub(super) fn error(&self, reason: &str) -> StoreError {
        StoreError::Server {
            backend: "redis",
            reason: format!("{} ({reason})", self.target),
        }
    }

    fn server_error(&self, e: &RedisError) -> StoreError {
        self.error(&e.to_string())
    }
}

/// `url` without its user info and query (`redis://user:secret@host:6379/0` →
/// `host:6379/0`; a unix socket URL may carry `?pass=`).
pub(super) fn redact(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
    match rest.rsplit_once('@') {
        Some((_, host)) => host.to_owned(),
        None => rest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_credentials() {
        assert_eq!(redact("redis://127.0.0.1:6379/0"), "127.0.0.1:6379/0");
        assert_eq!(redact("redis://:p@ss@h:1/2"), "h:1/2");
        assert_eq!(redact("rediss://u:secret@h"), "h");
        assert_eq!(redact("redis+unix:///run/r.sock?pass=x"), "/run/r.sock");
    }

    #[test]
    fn bad_url_is_a_server_error_without_password() {
        let err = Link::new("redis://u:secret@[::1").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
