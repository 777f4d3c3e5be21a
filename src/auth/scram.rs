//! SCRAM-SHA-256 (RFC 5802, RFC 7677): the key derivations and the server side of the
//! exchange, as a plain state machine. No channel binding (`n,,` only).

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tracing::debug;

use super::password::{ct_eq, PasswordHash};
use super::stored::StoredPassword;
use super::{AuthExchange, AuthStep};
use crate::protocol::ReasonCode;

/// The MQTT Authentication Method name.
pub const METHOD: &str = "SCRAM-SHA-256";

/// HMAC-SHA-256(key, data).
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SHA-256(data).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// ClientKey = HMAC(SaltedPassword, "Client Key").
pub fn client_key(salted: &[u8]) -> [u8; 32] {
    hmac(salted, b"Client Key")
}

/// ServerKey = HMAC(SaltedPassword, "Server Key").
pub fn server_key(salted: &[u8]) -> [u8; 32] {
    hmac(salted, b"Server Key")
}

/// ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage).
pub fn client_proof(salted: &[u8], auth_message: &[u8]) -> [u8; 32] {
    let key = client_key(salted);
    let signature = hmac(&sha256(&key), auth_message);
    xor(&key, &signature)
}

/// ServerSignature = HMAC(ServerKey, AuthMessage).
pub fn server_signature(salted: &[u8], auth_message: &[u8]) -> [u8; 32] {
    hmac(&server_key(salted), auth_message)
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// Decodes a SCRAM saslname (`=2C` is `,`, `=3D` is `=`); `None` if malformed.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The value of attribute `key` (`k=value`) in a comma-separated SCRAM message.
fn attribute(message: &str, key: char) -> Option<&str> {
    message.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

/// A printable nonce: 18 random bytes, base64 (no commas).
pub(crate) fn fresh_nonce() -> String {
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// A stand-in entry for an unknown user: the same salt for the same name every time
/// (keyed by a per-process secret), the usual iteration count, a random key.
fn unknown_user(name: &str) -> PasswordHash {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let secret = SECRET.get_or_init(|| {
        let mut s = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        s
    });
    let mut salted = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut salted);
    PasswordHash {
        iterations: super::password::DEFAULT_ITERATIONS,
        salt: hmac(secret, name.as_bytes())[..16].to_vec(),
        salted,
    }
}

enum Stage {
    /// Waiting for client-first.
    Start,
    /// Server-first sent; waiting for client-final.
    SentFirst {
        hash: PasswordHash,
        /// client-first-bare "," server-first
        partial_message: String,
        nonce: String,
    },
    Done,
}

/// The server side of one SCRAM-SHA-256 exchange, driven through
/// [`AuthExchange::step`] with each AUTH's authentication data.
pub struct ScramServer {
    users: Arc<HashMap<String, StoredPassword>>,
    stage: Stage,
    /// The server's part of the nonce (fixed in tests).
    server_nonce: String,
}

impl ScramServer {
    /// An exchange checking against `users` (user name after SASLprep → hash, as
    /// [`parse_file`](super::password::parse_file) reads them), with a fresh random
    /// server nonce. Only `pbkdf2-sha256` entries can pass; a user stored in another
    /// scheme fails as an unknown user would.
    pub fn new(users: Arc<HashMap<String, StoredPassword>>) -> ScramServer {
        ScramServer::with_nonce(users, fresh_nonce())
    }

    /// An exchange whose server nonce is `nonce` (tests fix it).
    pub(crate) fn with_nonce(
        users: Arc<HashMap<String, StoredPassword>>,
        nonce: String,
    ) -> ScramServer {
        ScramServer {
            users,
            stage: Stage::Start,
            server_nonce: nonce,
        }
    }

    fn client_first(&mut self, data: &[u8]) -> Result<Bytes, ReasonCode> {
        let text = std::str::from_utf8(data).map_err(|_| ReasonCode::MALFORMED_PACKET)?;
        // gs2-header: "n,," (no channel binding), or "y,," (client could but thinks we
        // cannot). "p=" asks for channel binding, which is not offered.
        let bare = text
            .strip_prefix("n,,")
            .or_else(|| text.strip_prefix("y,,"))
            .ok_or(ReasonCode::NOT_AUTHORIZED)?;
        let name = attribute(bare, 'n').and_then(decode_saslname);
        let client_nonce = attribute(bare, 'r').filter(|r| !r.is_empty());
        let (Some(name), Some(client_nonce)) = (name, client_nonce) else {
            return Err(ReasonCode::MALFORMED_PACKET);
        };
        if bare.starts_with("m=") {
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        let stored = self.users.get(&*super::password::prepare_name(&name));
        let hash = match stored.and_then(StoredPassword::scram) {
            Some(hash) => hash.clone(),
            None if stored.is_some() => {
                debug!(user = %name, "SCRAM: the user's password is not stored as pbkdf2-sha256");
                unknown_user(&name)
            }
            None => {
                // Carry on with a made-up entry, so that an unknown user looks like a
                // wrong password (RFC 5802 section 9): the proof will not match.
                debug!(user = %name, "SCRAM: unknown user");
                unknown_user(&name)
            }
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&hash.salt),
            hash.iterations
        );
        self.stage = Stage::SentFirst {
            hash,
            partial_message: format!("{bare},{server_first}"),
            nonce,
        };
        Ok(Bytes::from(server_first))
    }

    fn client_final(
        hash: &PasswordHash,
        partial: &str,
        nonce: &str,
        data: &[u8],
    ) -> Result<Bytes, ReasonCode> {
        let text = std::str::from_utf8(data).map_err(|_| ReasonCode::MALFORMED_PACKET)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ReasonCode::MALFORMED_PACKET)?;
        // Channel binding data must echo the gs2 header "n,," or "y,,".
        let binding = attribute(without_proof, 'c').ok_or(ReasonCode::MALFORMED_PACKET)?;
        if binding != "biws" && binding != "eSws" {
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        if attribute(without_proof, 'r') != Some(nonce) {
            return Err(ReasonCode::NOT_AUTHORIZED);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ReasonCode::MALFORMED_PACKET)?;
        let proof: [u8; 32] = proof
            .try_into()
            .map_err(|_| ReasonCode::BAD_USER_NAME_OR_PASSWORD)?;
        let auth_message = format!("{partial},{without_proof}");
        let stored_key = sha256(&client_key(&hash.salted));
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let claimed_key = xor(&proof, &signature);
        if !ct_eq(&sha256(&claimed_key), &stored_key) {
            return Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        }
        let verifier = server_signature(&hash.salted, auth_message.as_bytes());
        Ok(Bytes::from(format!("v={}", B64.encode(verifier))))
    }
}

impl AuthExchange for ScramServer {
    fn step(&mut self, data: &[u8]) -> AuthStep {
        let stage = std::mem::replace(&mut self.stage, Stage::Done);
        let result = match &stage {
            Stage::Start => self
                .client_first(data)
                .map(|d| AuthStep::Continue { server_data: d }),
            Stage::SentFirst {
                hash,
                partial_message,
                nonce,
            } => {
                Self::client_final(hash, partial_message, nonce, data).map(|d| AuthStep::Success {
                    server_data: Some(d),
                })
            }
            Stage::Done => Err(ReasonCode::PROTOCOL_ERROR),
        };
        result.unwrap_or_else(AuthStep::Failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3.
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn users(password: &[u8]) -> Arc<HashMap<String, StoredPassword>> {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let hash = PasswordHash::with_salt(password, salt, 4096);
        Arc::new(HashMap::from([("user".to_string(), hash.into())]))
    }

    fn server(password: &[u8]) -> ScramServer {
        ScramServer::with_nonce(users(password), SERVER_NONCE.into())
    }

    #[test]
    fn rfc7677_vector() {
        let mut s = server(b"pencil");
        assert_eq!(
            s.step(CLIENT_FIRST.as_bytes()),
            AuthStep::Continue {
                server_data: Bytes::from(SERVER_FIRST)
            }
        );
        assert_eq!(
            s.step(CLIENT_FINAL.as_bytes()),
            AuthStep::Success {
                server_data: Some(Bytes::from(SERVER_FINAL))
            }
        );
        assert_eq!(
            s.step(b"more"),
            AuthStep::Failure(ReasonCode::PROTOCOL_ERROR)
        );
    }

    #[test]
    fn rfc7677_client_proof() {
        let salted = users(b"pencil")["user"].scram().unwrap().salted;
        let message = format!(
            "n=user,r=rOprNGfwEbeRWgbNEkqO,{SERVER_FIRST},c=biws,\
             r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        );
        let proof = client_proof(&salted, message.as_bytes());
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
    }

    #[test]
    fn wrong_password_and_bad_messages_fail() {
        let mut s = server(b"pencils");
        assert!(matches!(
            s.step(CLIENT_FIRST.as_bytes()),
            AuthStep::Continue { .. }
        ));
        assert_eq!(
            s.step(CLIENT_FINAL.as_bytes()),
            AuthStep::Failure(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
        let fail = |first: &[u8]| server(b"pencil").step(first);
        // An unknown user gets a (stable) made-up salt, then fails like a bad password.
        let mut s = server(b"pencil");
        let first = s.step(b"n,,n=nobody,r=abc");
        assert_eq!(first, server(b"pencil").step(b"n,,n=nobody,r=abc"));
        let AuthStep::Continue { server_data } = first else {
            panic!("{first:?}")
        };
        let nonce = attribute(std::str::from_utf8(&server_data).unwrap(), 'r').unwrap();
        let client_final = format!("c=biws,r={nonce},p={}", B64.encode([7u8; 32]));
        assert_eq!(
            s.step(client_final.as_bytes()),
            AuthStep::Failure(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
        assert_eq!(
            fail(b"p=tls-unique,,n=user,r=abc"),
            AuthStep::Failure(ReasonCode::NOT_AUTHORIZED)
        );
        assert_eq!(
            fail(b"n,,n=user"),
            AuthStep::Failure(ReasonCode::MALFORMED_PACKET)
        );
        assert_eq!(
            fail(&[0xff, 0xfe]),
            AuthStep::Failure(ReasonCode::MALFORMED_PACKET)
        );
        // A client-final with another nonce.
        let mut s = server(b"pencil");
        s.step(CLIENT_FIRST.as_bytes());
        assert_eq!(
            s.step(b"c=biws,r=other,p=AAAA"),
            AuthStep::Failure(ReasonCode::NOT_AUTHORIZED)
        );
    }

    /// A user whose line is not pbkdf2-sha256 (here Argon2id) cannot pass SCRAM: the
    /// exchange runs on as for an unknown user and fails at the proof.
    #[test]
    fn users_of_other_schemes_fail_like_unknown_ones() {
        let users = Arc::new(HashMap::from([(
            "user".to_string(),
            StoredPassword::argon2id(b"pencil"),
        )]));
        let mut s = ScramServer::with_nonce(users, SERVER_NONCE.into());
        assert!(matches!(
            s.step(CLIENT_FIRST.as_bytes()),
            AuthStep::Continue { .. }
        ));
        assert_eq!(
            s.step(CLIENT_FINAL.as_bytes()),
            AuthStep::Failure(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
    }

    #[test]
    fn saslnames_decode() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("a=2"), None);
        assert_eq!(decode_saslname("a=41"), None);
    }
}
