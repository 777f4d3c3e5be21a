//! `[[listeners]]`: the sockets the broker accepts clients on, each with its own
//! settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// What kind of socket a listener accepts (`kind` of a `[[listeners]]` table).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// `"tcp"`: plain MQTT over TCP.
    Tcp,
    /// `"tls"`: MQTT over TLS 1.2/1.3 (`cert`, `key`; `ca` for client certificates).
    Tls,
    /// `"ws"`: MQTT over WebSocket (subprotocol `mqtt`, on `path`).
    Ws,
    /// `"wss"`: MQTT over WebSocket over TLS.
    Wss,
}

impl ListenerKind {
    /// The name in the configuration (`"tcp"`, `"tls"`, `"ws"`, `"wss"`).
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Tcp => "tcp",
            ListenerKind::Tls => "tls",
            ListenerKind::Ws => "ws",
            ListenerKind::Wss => "wss",
        }
    }
}

/// One listening socket (a `[[listeners]]` table).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `kind` (default `"tcp"`): the kind of socket.
    #[serde(default = "default_kind")]
    pub kind: ListenerKind,
    /// `bind` (required in a table; default listener `127.0.0.1:1883`): the address to
    /// listen on; port 0 picks a free port (the broker handle reports it).
    pub bind: SocketAddr,
    /// `cert` (`tls`, `wss`; required there): the certificate chain, PEM.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// `key` (`tls`, `wss`; required there): the private key, PEM (PKCS#8, PKCS#1 or
    /// SEC1).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// `ca` (`tls`, `wss`; default none): verify client certificates against these CA
    /// certificates (PEM).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `require_client_cert` (default false; needs `ca`): mutual TLS, a client without
    /// a certificate the CA signed fails the handshake.
    #[serde(default)]
    pub require_client_cert: bool,
    /// `identity_as_username` (default false; needs `ca`): the client certificate's
    /// common name becomes the username.
    #[serde(default)]
    pub identity_as_username: bool,
    /// `path` (`ws`, `wss`; default `"/mqtt"`): the HTTP path of the WebSocket.
    #[serde(default = "default_path")]
    pub path: String,
    /// `proxy_protocol` (default false): every connection starts with a PROXY protocol
    /// v1 or v2 header whose source address becomes the client's address.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// `max_connections` (default none): connections on this listener beyond which
    /// CONNECTs are refused as by the global `[limits] max_connections`.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// `max_connection_rate` (default none): new connections a second this listener
    /// takes (a second's worth may come at once); a CONNECT beyond it is refused with
    /// 0x9F Connection rate exceeded (3.1.1: code 3).
    #[serde(default)]
    pub max_connection_rate: Option<u64>,
}

fn default_kind() -> ListenerKind {
    ListenerKind::Tcp
}

fn default_path() -> String {
    "/mqtt".to_owned()
}

impl ListenerConfig {
    /// A plain TCP listener on `bind`, every other setting at its default.
    pub fn tcp(bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            kind: ListenerKind::Tcp,
            bind,
            cert: None,
            key: None,
            ca: None,
            require_client_cert: false,
            identity_as_username: false,
            path: default_path(),
            proxy_protocol: false,
            max_connections: None,
            max_connection_rate: None,
        }
    }

    /// A `tcp` listener with nothing set but its address (what `--listen` replaces).
    pub fn is_plain_tcp(&self) -> bool {
        let plain = ListenerConfig::tcp(self.bind);
        *self == plain
    }

    /// True for the kinds that speak TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.kind, ListenerKind::Tls | ListenerKind::Wss)
    }

    /// Checks that the settings fit the kind.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why: &str| {
            Err(ConfigError::Invalid(format!(
                "listener {}: {why}",
                self.bind
            )))
        };
        if self.is_tls() && (self.cert.is_none() || self.key.is_none()) {
            return bad("tls and wss listeners need cert and key");
        }
        if !self.is_tls() && (self.cert.is_some() || self.key.is_some() || self.ca.is_some()) {
            return bad("cert, key and ca are for tls and wss listeners");
        }
        if (self.require_client_cert || self.identity_as_username) && self.ca.is_none() {
            return bad("require_client_cert and identity_as_username need ca");
        }
        if !self.path.starts_with('/') {
            return bad("path must start with /");
        }
        if self.max_connections == Some(0) || self.max_connection_rate == Some(0) {
            return bad("max_connections and max_connection_rate must be at least 1");
        }
        Ok(())
    }
}
