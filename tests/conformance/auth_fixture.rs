//! A broker with a password file (alice/wonderland) for the conformance tests that
//! need a CONNECT to be refused for its credentials or to prove the credentials were
//! read. The hash is computed here, independently of the broker's auth module.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use sha2::Sha256;
use starling::protocol::{Connect, ProtocolVersion};

use crate::common::{connect_packet, BrokerProcess};

const SALT: &[u8] = b"0123456789abcdef";
const ITERATIONS: u32 = 4096;

/// The broker and the directory holding its password file.
pub struct PasswordBroker {
    pub broker: BrokerProcess,
    _dir: tempfile::TempDir,
}

impl PasswordBroker {
    /// Anonymous clients refused; alice/wonderland is the one user.
    pub fn start() -> PasswordBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("passwd");
        let hash = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(b"wonderland", SALT, ITERATIONS);
        let line = format!(
            "alice:pbkdf2-sha256${ITERATIONS}${}${}\n",
            B64.encode(SALT),
            B64.encode(hash)
        );
        std::fs::write(&path, line).expect("write password file");
        let toml = format!(
            "[auth]\nallow_anonymous = false\npassword_file = {:?}\n",
            path.display().to_string()
        );
        PasswordBroker {
            broker: BrokerProcess::start_with_config(Some(&toml)),
            _dir: dir,
        }
    }
}

/// A 5.0 CONNECT (Clean Start 1) with this user name and password.
pub fn login(id: &str, user: &str, password: &str) -> Connect {
    let mut c = connect_packet(ProtocolVersion::V5, id, true, 60);
    c.username = Some(user.into());
    c.password = Some(Bytes::copy_from_slice(password.as_bytes()));
    c
}
