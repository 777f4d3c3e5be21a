//! Authentication: plain username/password checks and enhanced authentication (MQTT
//! 5.0 section 4.12) behind the [`Authenticator`] trait. Pure code; the CONNECT task
//! (`session/auth_flow.rs`) drives it over the wire before the session actor starts.

pub mod acl;
pub mod password;
pub mod scram;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::config::AuthConfig;
use crate::hooks::ClientInfo;
use crate::protocol::ReasonCode;
use password::{PasswordError, PasswordHash};

/// One step of an authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Authenticated; the data goes into CONNACK's Authentication Data.
    Success {
        /// Authentication Data for the CONNACK (or AUTH 0x00), if any.
        server_data: Option<Bytes>,
    },
    /// Another round: send AUTH 0x18 with this data and wait for the client's AUTH.
    Continue {
        /// Authentication Data for the AUTH 0x18.
        server_data: Bytes,
    },
    /// Refused with this CONNACK reason.
    Failure(ReasonCode),
}

/// The per-connection state of one enhanced authentication exchange.
pub trait AuthExchange: Send {
    /// Feeds the client's Authentication Data (from CONNECT, then from each AUTH).
    fn step(&mut self, data: &[u8]) -> AuthStep;
}

/// Decides who may connect.
pub trait Authenticator: Send + Sync {
    /// A CONNECT without an Authentication Method: the username and password.
    fn check_plain(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<(), ReasonCode>;

    /// Whether `check_plain` for this username does slow work (password hashing) and so
    /// belongs off the event loop. The default says yes.
    fn plain_check_is_slow(&self, _username: Option<&str>) -> bool {
        true
    }

    /// Begins enhanced authentication with `method`; `None` when the method is not
    /// offered (CONNACK 0x8C). The returned exchange is fed CONNECT's data first.
    fn exchange(
        &self,
        method: &str,
        client_id: &str,
        username: Option<&str>,
    ) -> Option<Box<dyn AuthExchange>>;

    /// Re-reads whatever the authenticator reads at start (the broker calls it on
    /// SIGHUP); returns how many users it now knows. The default does nothing.
    fn reload(&self) -> Result<usize, AuthSetupError> {
        Ok(0)
    }

    /// A CONNECT without an Authentication Method, knowing who sent it: the client
    /// id, the address it came from and the listener it reached. The default checks
    /// the username and password with [`Authenticator::check_plain`].
    fn check_client(&self, client: &ClientInfo, password: Option<&[u8]>) -> Result<(), ReasonCode> {
        self.check_plain(client.username.as_deref(), password)
    }

    /// Begins enhanced authentication with `method` for `client`. The default calls
    /// [`Authenticator::exchange`] with its client id and username.
    fn exchange_for(&self, method: &str, client: &ClientInfo) -> Option<Box<dyn AuthExchange>> {
        self.exchange(
            method,
            client.client_id.as_str(),
            client.username.as_deref(),
        )
    }

    /// Begins `method` and feeds it CONNECT's Authentication Data (empty when absent).
    fn start(
        &self,
        method: &str,
        client: &ClientInfo,
        data: Option<&[u8]>,
    ) -> (AuthStep, Option<Box<dyn AuthExchange>>) {
        match self.exchange_for(method, client) {
            None => (
                AuthStep::Failure(ReasonCode::BAD_AUTHENTICATION_METHOD),
                None,
            ),
            Some(mut exchange) => {
                let step = exchange.step(data.unwrap_or_default());
                (step, Some(exchange))
            }
        }
    }
}

/// The built-in authenticator: `[auth] allow_anonymous` and the password file, which
/// also backs SCRAM-SHA-256. [`Authenticator::reload`] re-reads the file (SIGHUP).
#[derive(Debug, Default)]
pub struct PasswordAuthenticator {
    allow_anonymous: bool,
    /// `None`: no password file configured. Swapped whole on reload; exchanges in
    /// progress keep the table they started with.
    users: RwLock<Option<Arc<HashMap<String, PasswordHash>>>>,
    path: Option<PathBuf>,
}

/// Why the authenticator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The password file could not be read.
    #[error("cannot read password file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the ACL file is not understood.
    #[error("ACL file {path}: {source}")]
    Acl {
        /// The file.
        path: String,
        /// What is wrong, with the line.
        source: acl::AclError,
    },
    /// A line of the password file is not a valid entry.
    #[error("password file {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with the line.
        source: PasswordError,
    },
}

impl PasswordAuthenticator {
    /// Anonymous clients allowed or not, and the users (name to password hash; `None`:
    /// no password file, so only anonymous clients, if allowed).
    pub fn new(allow_anonymous: bool, users: Option<HashMap<String, PasswordHash>>) -> Self {
        PasswordAuthenticator {
            allow_anonymous,
            users: RwLock::new(users.map(Arc::new)),
            path: None,
        }
    }

    /// Builds it from the configuration, reading the password file if one is set.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        let users = match &config.password_file {
            None => None,
            Some(path) => Some(read_password_file(path)?),
        };
        let mut auth = PasswordAuthenticator::new(config.allow_anonymous, users);
        auth.path = config.password_file.clone();
        Ok(auth)
    }

    fn users(&self) -> Option<Arc<HashMap<String, PasswordHash>>> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads and parses a password file.
pub fn read_password_file(path: &Path) -> Result<HashMap<String, PasswordHash>, AuthSetupError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| AuthSetupError::Read {
        path: shown.clone(),
        source,
    })?;
    password::parse_file(&text).map_err(|source| AuthSetupError::Parse {
        path: shown,
        source,
    })
}

impl Authenticator for PasswordAuthenticator {
    fn plain_check_is_slow(&self, username: Option<&str>) -> bool {
        username.is_some() && self.users().is_some()
    }

    /// Re-reads the password file. On error the users in force stay.
    fn reload(&self) -> Result<usize, AuthSetupError> {
        let Some(path) = &self.path else {
            return Ok(0);
        };
        let users = read_password_file(path)?;
        let n = users.len();
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(users));
        Ok(n)
    }

    fn check_plain(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<(), ReasonCode> {
        match (username, &self.users()) {
            (None, _) if self.allow_anonymous => Ok(()),
            (None, _) => Err(ReasonCode::NOT_AUTHORIZED),
            // Without a password file, names are not checked (if anonymous is allowed).
            (Some(_), None) if self.allow_anonymous => Ok(()),
            (Some(_), None) => Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            (Some(user), Some(users)) => {
                let given = password.unwrap_or_default();
                // An unknown user costs the same hashing time as a known one, so that
                // response times do not tell which names exist.
                let ok = match users.get(&*password::prepare_name(user)) {
                    Some(hash) => hash.verify(given) && password.is_some(),
                    None => {
                        let _ = dummy_hash().verify(given);
                        false
                    }
                };
                if ok {
                    Ok(())
                } else {
                    Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
                }
            }
        }
    }

    fn exchange(
        &self,
        method: &str,
        _client_id: &str,
        _username: Option<&str>,
    ) -> Option<Box<dyn AuthExchange>> {
        let users = self.users()?;
        (method == scram::METHOD)
            .then(|| Box::new(scram::ScramServer::new(users)) as Box<dyn AuthExchange>)
    }
}

/// A hash to verify against when the user is unknown.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| PasswordHash::new(b"", password::DEFAULT_ITERATIONS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_alice(anonymous: bool) -> PasswordAuthenticator {
        let h = PasswordHash::with_salt(b"wonder", b"salt".to_vec(), 1000);
        PasswordAuthenticator::new(anonymous, Some(HashMap::from([("alice".into(), h)])))
    }

    #[test]
    fn plain_rules() {
        let open = PasswordAuthenticator::new(true, None);
        assert_eq!(open.check_plain(None, None), Ok(()));
        assert_eq!(open.check_plain(Some("x"), Some(b"y")), Ok(()));
        let closed = PasswordAuthenticator::new(false, None);
        assert_eq!(
            closed.check_plain(None, None),
            Err(ReasonCode::NOT_AUTHORIZED)
        );
        let bad = Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        assert_eq!(closed.check_plain(Some("x"), Some(b"y")), bad);
        for anonymous in [true, false] {
            let a = with_alice(anonymous);
            assert_eq!(a.check_plain(Some("alice"), Some(b"wonder")), Ok(()));
            assert_eq!(a.check_plain(Some("alice"), Some(b"land")), bad);
            assert_eq!(a.check_plain(Some("alice"), None), bad);
            assert_eq!(a.check_plain(Some("bob"), Some(b"wonder")), bad);
        }
        assert_eq!(with_alice(true).check_plain(None, None), Ok(()));
        assert_eq!(
            with_alice(false).check_plain(None, None),
            Err(ReasonCode::NOT_AUTHORIZED)
        );
    }

    #[test]
    fn reload_rereads_the_file_and_keeps_the_old_users_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let hash = |pw: &[u8]| PasswordHash::with_salt(pw, b"salt".to_vec(), 1000);
        std::fs::write(&path, password::set_user("", "alice", &hash(b"one"))).unwrap();
        let config = AuthConfig {
            allow_anonymous: false,
            password_file: Some(path.clone()),
            acl_file: None,
        };
        let auth = PasswordAuthenticator::from_config(&config).unwrap();
        assert_eq!(auth.check_plain(Some("alice"), Some(b"one")), Ok(()));
        std::fs::write(&path, password::set_user("", "alice", &hash(b"two"))).unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        let bad = Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        assert_eq!(auth.check_plain(Some("alice"), Some(b"one")), bad);
        assert_eq!(auth.check_plain(Some("alice"), Some(b"two")), Ok(()));
        std::fs::write(&path, "not a password line\n").unwrap();
        assert!(auth.reload().is_err());
        assert_eq!(auth.check_plain(Some("alice"), Some(b"two")), Ok(()));
    }

    #[test]
    fn methods() {
        let (step, ex) = with_alice(false).start("PLAIN", &ClientInfo::new("c".into()), None);
        assert_eq!(
            step,
            AuthStep::Failure(ReasonCode::BAD_AUTHENTICATION_METHOD)
        );
        assert!(ex.is_none());
        // SCRAM needs a password file.
        let open = PasswordAuthenticator::new(true, None);
        assert!(open.exchange(scram::METHOD, "c", None).is_none());
        let (step, ex) = with_alice(false).start(
            scram::METHOD,
            &ClientInfo::new("c".into()),
            Some(b"n,,n=alice,r=x"),
        );
        assert!(matches!(step, AuthStep::Continue { .. }));
        assert!(ex.is_some());
    }
}
