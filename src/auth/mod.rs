//! Authentication: plain username/password checks and enhanced authentication (MQTT
//! 5.0 section 4.12) behind the [`Authenticator`] trait. Pure code; the CONNECT task
//! (`session/auth_flow.rs`) drives it over the wire before the session actor starts.

pub mod acl;
pub mod password;
pub mod scram;
pub mod stored;
pub mod throttle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use tracing::info;

use crate::config::Config;
use crate::hooks::ClientInfo;
use crate::protocol::ReasonCode;
use password::{PasswordError, PasswordHash};
use stored::StoredPassword;

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

/// The built-in authenticator: `[auth] allow_anonymous` and the password file, whose
/// `pbkdf2-sha256` users may also use SCRAM-SHA-256. [`Authenticator::reload`] re-reads
/// the file (SIGHUP).
#[derive(Debug, Default)]
pub struct PasswordAuthenticator {
    allow_anonymous: bool,
    /// `None`: no password file configured. Swapped whole on reload; exchanges in
    /// progress keep the table they started with.
    users: RwLock<Option<Arc<Users>>>,
    path: Option<PathBuf>,
}

/// The password file's users, and the hash an unknown user's password is checked
/// against: of the costliest scheme in the file, so that the time taken does not tell
/// which names exist (with one scheme in the file, exactly).
#[derive(Debug)]
struct Users {
    table: Arc<HashMap<String, StoredPassword>>,
    decoy: StoredPassword,
}

impl Users {
    fn new(table: HashMap<String, StoredPassword>) -> Users {
        let decoy = table
            .values()
            .max_by_key(|s| cost_rank(s))
            .map(StoredPassword::decoy)
            .unwrap_or_else(|| PasswordHash::new(b"", password::DEFAULT_ITERATIONS).into());
        Users {
            table: Arc::new(table),
            decoy,
        }
    }
}

/// Orders stored passwords by how long a check takes (roughly).
fn cost_rank(stored: &StoredPassword) -> (u8, u32) {
    match stored {
        StoredPassword::Argon2id(_) => (3, 0),
        StoredPassword::Pbkdf2Sha512 { iterations, .. } => (2, *iterations),
        StoredPassword::Pbkdf2Sha256(h) => (2, h.iterations),
        StoredPassword::Sha512 { .. } => (1, 0),
    }
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
    /// Anonymous clients allowed or not, and the users (name to stored password;
    /// `None`: no password file, so only anonymous clients, if allowed).
    pub fn new(allow_anonymous: bool, users: Option<HashMap<String, StoredPassword>>) -> Self {
        PasswordAuthenticator {
            allow_anonymous,
            users: RwLock::new(users.map(|u| Arc::new(Users::new(u)))),
            path: None,
        }
    }

    /// Builds it from the configuration, reading `[auth] password_file` if one is set;
    /// anonymous clients as [`Config::allow_anonymous`] decides, which is logged.
    pub fn from_config(config: &Config) -> Result<Self, AuthSetupError> {
        let auth = &config.auth;
        let users = match &auth.password_file {
            None => None,
            Some(path) => Some(read_password_file(path)?),
        };
        let allow_anonymous = config.allow_anonymous();
        log_anonymous_policy(config, allow_anonymous);
        let mut built = PasswordAuthenticator::new(allow_anonymous, users);
        built.path = auth.password_file.clone();
        Ok(built)
    }

    fn users(&self) -> Option<Arc<Users>> {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Says at start whether anonymous clients are accepted, and why.
fn log_anonymous_policy(config: &Config, allowed: bool) {
    match (config.auth.allow_anonymous, config.exposed_listener()) {
        (Some(_), _) => info!(allowed, "anonymous clients: as [auth] allow_anonymous says"),
        (None, Some(addr)) => info!(
            listener = %addr,
            "anonymous clients refused: a listener binds an address beyond loopback and \
             [auth] allow_anonymous is not set (set it to true to accept them)"
        ),
        (None, None) => info!(
            "anonymous clients allowed: every listener is on loopback and \
             [auth] allow_anonymous is not set"
        ),
    }
}

/// Reads and parses a password file.
pub fn read_password_file(path: &Path) -> Result<HashMap<String, StoredPassword>, AuthSetupError> {
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
        let users = Users::new(read_password_file(path)?);
        let n = users.table.len();
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
                let ok = match users.table.get(&*password::prepare_name(user)) {
                    Some(stored) => stored.verify(given) && password.is_some(),
                    None => {
                        let _ = users.decoy.verify(given);
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
        (method == scram::METHOD).then(|| {
            Box::new(scram::ScramServer::new(Arc::clone(&users.table))) as Box<dyn AuthExchange>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_alice(anonymous: bool) -> PasswordAuthenticator {
        let h = PasswordHash::with_salt(b"wonder", b"salt".to_vec(), 1000);
        PasswordAuthenticator::new(anonymous, Some(HashMap::from([("alice".into(), h.into())])))
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
        let mut config = Config::default();
        config.auth.allow_anonymous = Some(false);
        config.auth.password_file = Some(path.clone());
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

    /// One file, every scheme: pbkdf2-sha256, Argon2id and mosquitto_passwd's `$7$`
    /// and `$6$` (alice/wonder and bob/builder from mosquitto_passwd 2.0.11).
    #[test]
    fn every_scheme_logs_in_from_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        let pbkdf2 = PasswordHash::with_salt(b"dora", b"salt".to_vec(), 1000);
        let text = format!(
            "alice:$7$101$VNXoaMSBWSAiCPi6$jvVMgvlY43xtQwaxDcZy2KzJfmbRx8Y7yo7oovLdkOS5D5v7toRUNIJYFSt26F1Kgp49GcL+wF79HoAruKJKQQ==\n\
             bob:$6$uIH21A7icU6j1mnc$opRo8FQ/K0pnycG3ddIUucopnYy6mHBdvAUOMnrdHxDzlEqAJJqiFNignfLWwF1PHOzYdFw0uJAA/Z3XGwOPWw==\n\
             carol:{}\ndora:{pbkdf2}\n",
            StoredPassword::argon2id(b"c4rol")
        );
        std::fs::write(&path, text).unwrap();
        let mut config = Config::default();
        config.auth.password_file = Some(path);
        let auth = PasswordAuthenticator::from_config(&config).unwrap();
        let bad = Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        for (user, pw) in [
            ("alice", "wonder"),
            ("bob", "builder"),
            ("carol", "c4rol"),
            ("dora", "dora"),
        ] {
            assert!(auth.plain_check_is_slow(Some(user)));
            assert_eq!(auth.check_plain(Some(user), Some(pw.as_bytes())), Ok(()));
            assert_eq!(auth.check_plain(Some(user), Some(b"nope")), bad, "{user}");
        }
        assert_eq!(auth.check_plain(Some("eve"), Some(b"wonder")), bad);
        // The decoy is of the costliest scheme there: Argon2id.
        assert_eq!(auth.users().unwrap().decoy.scheme(), "argon2id");
    }

    /// With `allow_anonymous` unset, a listener beyond loopback turns anonymous
    /// clients away; loopback-only listeners let them in.
    #[test]
    fn anonymous_default_from_the_listeners() {
        let mut config = Config::default();
        let auth = PasswordAuthenticator::from_config(&config).unwrap();
        assert_eq!(auth.check_plain(None, None), Ok(()));
        config.listeners[0].bind = "0.0.0.0:1883".parse().unwrap();
        let auth = PasswordAuthenticator::from_config(&config).unwrap();
        assert_eq!(
            auth.check_plain(None, None),
            Err(ReasonCode::NOT_AUTHORIZED)
        );
        config.auth.allow_anonymous = Some(true);
        let auth = PasswordAuthenticator::from_config(&config).unwrap();
        assert_eq!(auth.check_plain(None, None), Ok(()));
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
