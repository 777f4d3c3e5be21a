//! `[auth]`: who may connect, and what they may do (the ACL file).

use serde::Deserialize;
use std::path::PathBuf;

/// Who may connect (`[auth]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `allow_anonymous` (default: `true` while every listener binds a loopback
    /// address, `false` once one binds another, as in Mosquitto 2; see
    /// [`Config::allow_anonymous`](crate::Config::allow_anonymous)): accept CONNECTs without a username. Off, they get
    /// CONNACK 0x87 Not authorized (3.1.1: return code 5). `None`: not set.
    pub allow_anonymous: Option<bool>,
    /// `password_file` (default none): a file of `username:hash` lines
    /// ([`crate::auth::password`]): `pbkdf2-sha256$...` (also the users of
    /// SCRAM-SHA-256), `$argon2id$...`, or Mosquitto's `$7$...` and `$6$...`. When set, a
    /// CONNECT with a username must carry its password. Without it, usernames are not
    /// checked.
    pub password_file: Option<PathBuf>,
    /// `acl_file` (default none): who may publish, subscribe to and receive which
    /// topics, in Mosquitto's ACL syntax ([`crate::auth::acl`]). When set, whatever no
    /// rule allows is denied. Re-read on SIGHUP.
    pub acl_file: Option<PathBuf>,
    /// `max_login_failures` (default 10; 0: no limit): failed logins from one address
    /// (an IPv4 address, an IPv6 /64) within `login_failure_window_secs`, after which
    /// its CONNECTs are refused at once (CONNACK 0x8A Banned, 3.1.1: code 5) until the
    /// window that began with its first failure ends.
    pub max_login_failures: u32,
    /// `login_failure_window_secs` (default 60, at least 1): the window of
    /// `max_login_failures`, in seconds.
    pub login_failure_window_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            allow_anonymous: None,
            password_file: None,
            acl_file: None,
            max_login_failures: 10,
            login_failure_window_secs: 60,
        }
    }
}
