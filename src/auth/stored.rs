//! The hash schemes a password file line may use, told apart by their prefix:
//!
//! | prefix | scheme | written by | SCRAM |
//! |---|---|---|---|
//! | `pbkdf2-sha256$` | PBKDF2-HMAC-SHA256 of the SASLprep'd password ([`PasswordHash`]) | `starling passwd --scheme pbkdf2-sha256` | yes |
//! | `$argon2id$` | Argon2id, a PHC string (RFC 9106) | `starling passwd` (the default) | no |
//! | `$7$` | PBKDF2-HMAC-SHA512: `$7$<iterations>$<salt b64>$<hash b64>` | `mosquitto_passwd` (2.x default) | no |
//! | `$6$` | SHA-512 of password then salt: `$6$<salt b64>$<hash b64>` | `mosquitto_passwd -H sha512` (1.x default) | no |
//!
//! Mosquitto's schemes hash the password bytes as sent; only `pbkdf2-sha256` lines go
//! through SASLprep, which SCRAM needs. Every comparison is constant-time.

use std::fmt;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as B64};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha512};

use super::password::{ct_eq, PasswordHash};

/// Standard base64 that takes the padding or leaves it (tools differ).
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The largest Argon2 memory cost accepted from a file, in KiB (1 GiB): each check
/// allocates that much.
pub const ARGON2_MAX_MEMORY_KIB: u32 = 1024 * 1024;

/// One user's stored password, in any of the schemes of the module doc. `Display`
/// writes the hash string [`StoredPassword::parse`] reads back.
///
/// ```
/// use starling::auth::stored::StoredPassword;
///
/// // A line written by `mosquitto_passwd -b FILE alice wonder` (PBKDF2-SHA512, 101
/// // iterations, Mosquitto 2's default).
/// let line = "$7$101$VNXoaMSBWSAiCPi6$jvVMgvlY43xtQwaxDcZy2KzJfmbRx8Y7yo7oovLdkOS5D5v7toRUNIJYFSt26F1Kgp49GcL+wF79HoAruKJKQQ==";
/// let stored = StoredPassword::parse(line)?;
/// assert!(stored.verify(b"wonder"));
/// assert!(!stored.verify(b"wander"));
/// assert!(stored.scram().is_none(), "SCRAM needs a pbkdf2-sha256 line");
///
/// let fresh = StoredPassword::argon2id(b"s3cret");
/// assert!(fresh.to_string().starts_with("$argon2id$"));
/// assert!(StoredPassword::parse(&fresh.to_string())?.verify(b"s3cret"));
/// # Ok::<(), &'static str>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum StoredPassword {
    /// `pbkdf2-sha256$...`: plain checks and SCRAM-SHA-256.
    Pbkdf2Sha256(PasswordHash),
    /// `$argon2id$...`: the PHC string, checked when parsed.
    Argon2id(String),
    /// `$7$...` (mosquitto_passwd): PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        /// The iteration count (Mosquitto's default is 101).
        iterations: u32,
        /// The salt (12 bytes from mosquitto_passwd).
        salt: Vec<u8>,
        /// The 64-byte derived key.
        hash: [u8; 64],
    },
    /// `$6$...` (mosquitto_passwd -H sha512): SHA-512(password || salt).
    Sha512 {
        /// The salt (12 bytes from mosquitto_passwd).
        salt: Vec<u8>,
        /// The 64-byte digest.
        hash: [u8; 64],
    },
}

impl fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

impl From<PasswordHash> for StoredPassword {
    fn from(hash: PasswordHash) -> StoredPassword {
        StoredPassword::Pbkdf2Sha256(hash)
    }
}

impl StoredPassword {
    /// Hashes `password` with Argon2id, the crate's default parameters (19 MiB, two
    /// passes, one lane: OWASP's recommendation) and a fresh 16-byte salt.
    pub fn argon2id(password: &[u8]) -> StoredPassword {
        StoredPassword::argon2id_with(password, &Argon2::default())
    }

    fn argon2id_with(password: &[u8], hasher: &Argon2<'_>) -> StoredPassword {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        // Both only fail on out-of-range lengths, which these are not.
        let phc = SaltString::encode_b64(&salt)
            .and_then(|salt| hasher.hash_password(password, &salt).map(|h| h.to_string()))
            .unwrap_or_default();
        StoredPassword::Argon2id(phc)
    }

    /// Parses a hash string, telling the scheme by its prefix (see the module doc).
    pub fn parse(text: &str) -> Result<StoredPassword, &'static str> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("$7$") {
            parse_pbkdf2_sha512(rest)
        } else if let Some(rest) = text.strip_prefix("$6$") {
            parse_sha512(rest)
        } else if text.starts_with("$argon2id$") {
            parse_argon2id(text)
        } else if text.starts_with("pbkdf2-sha256$") {
            PasswordHash::parse(text).map(StoredPassword::Pbkdf2Sha256)
        } else {
            Err("unknown hash scheme (want pbkdf2-sha256$, $argon2id$, $7$ or $6$)")
        }
    }

    /// True when `password` matches (constant-time comparison).
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            StoredPassword::Pbkdf2Sha256(hash) => hash.verify(password),
            StoredPassword::Argon2id(phc) => argon2::password_hash::PasswordHash::new(phc)
                .is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok()),
            StoredPassword::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let derived = pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, *iterations);
                ct_eq(&derived, hash)
            }
            StoredPassword::Sha512 { salt, hash } => {
                let digest = Sha512::new()
                    .chain_update(password)
                    .chain_update(salt)
                    .finalize();
                ct_eq(&digest[..], hash)
            }
        }
    }

    /// The PBKDF2-SHA256 entry SCRAM-SHA-256 needs; `None` for the other schemes.
    pub fn scram(&self) -> Option<&PasswordHash> {
        match self {
            StoredPassword::Pbkdf2Sha256(hash) => Some(hash),
            _ => None,
        }
    }

    /// The scheme's name, for logs (never the hash).
    pub fn scheme(&self) -> &'static str {
        match self {
            StoredPassword::Pbkdf2Sha256(_) => "pbkdf2-sha256",
            StoredPassword::Argon2id(_) => "argon2id",
            StoredPassword::Pbkdf2Sha512 { .. } => "pbkdf2-sha512",
            StoredPassword::Sha512 { .. } => "sha512",
        }
    }

    /// A hash of a random password, of this scheme and cost: checked in place of an
    /// unknown user's, so that the time taken does not tell which names exist.
    pub fn decoy(&self) -> StoredPassword {
        let mut random = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut random);
        match self {
            StoredPassword::Pbkdf2Sha256(h) => PasswordHash::new(&random, h.iterations).into(),
            StoredPassword::Argon2id(phc) => {
                let params = argon2::password_hash::PasswordHash::new(phc)
                    .ok()
                    .and_then(|h| argon2::Params::try_from(&h).ok())
                    .unwrap_or_default();
                let hasher = Argon2::new(argon2::Algorithm::Argon2id, Default::default(), params);
                StoredPassword::argon2id_with(&random, &hasher)
            }
            StoredPassword::Pbkdf2Sha512 { iterations, .. } => StoredPassword::Pbkdf2Sha512 {
                iterations: *iterations,
                salt: random[..12].to_vec(),
                hash: [0; 64],
            },
            StoredPassword::Sha512 { .. } => StoredPassword::Sha512 {
                salt: random[..12].to_vec(),
                hash: [0; 64],
            },
        }
    }
}

/// `<iterations>$<salt>$<hash>` after `$7$`.
fn parse_pbkdf2_sha512(rest: &str) -> Result<StoredPassword, &'static str> {
    let mut parts = rest.split('$');
    let iterations: u32 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .ok_or("$7$: bad iteration count")?;
    let (salt, hash) = salt_and_hash(parts)?;
    Ok(StoredPassword::Pbkdf2Sha512 {
        iterations,
        salt,
        hash,
    })
}

/// `<salt>$<hash>` after `$6$`.
fn parse_sha512(rest: &str) -> Result<StoredPassword, &'static str> {
    let (salt, hash) = salt_and_hash(rest.split('$'))?;
    Ok(StoredPassword::Sha512 { salt, hash })
}

/// The last two `$` fields of a Mosquitto hash: a non-empty salt and a 64-byte hash.
fn salt_and_hash<'a>(
    mut parts: impl Iterator<Item = &'a str>,
) -> Result<(Vec<u8>, [u8; 64]), &'static str> {
    let salt = parts
        .next()
        .and_then(|s| B64_LENIENT.decode(s).ok())
        .filter(|s| !s.is_empty())
        .ok_or("bad salt")?;
    let hash: [u8; 64] = parts
        .next()
        .and_then(|s| B64_LENIENT.decode(s).ok())
        .and_then(|h| h.try_into().ok())
        .ok_or("bad hash (must be 64 bytes, base64)")?;
    if parts.next().is_some() {
        return Err("too many `$` fields");
    }
    Ok((salt, hash))
}

/// A `$argon2id$v=19$m=..,t=..,p=..$salt$hash` PHC string with parameters Argon2
/// accepts and at most [`ARGON2_MAX_MEMORY_KIB`] of memory.
fn parse_argon2id(text: &str) -> Result<StoredPassword, &'static str> {
    let phc = argon2::password_hash::PasswordHash::new(text).map_err(|_| "bad argon2id string")?;
    let params = argon2::Params::try_from(&phc).map_err(|_| "bad argon2id parameters")?;
    if params.m_cost() > ARGON2_MAX_MEMORY_KIB {
        return Err("argon2id memory cost above 1 GiB");
    }
    if phc.salt.is_none() || phc.hash.is_none() {
        return Err("argon2id string without salt or hash");
    }
    Ok(StoredPassword::Argon2id(text.to_owned()))
}

impl fmt::Display for StoredPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredPassword::Pbkdf2Sha256(hash) => hash.fmt(f),
            StoredPassword::Argon2id(phc) => f.write_str(phc),
            StoredPassword::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                B64.encode(salt),
                B64.encode(hash)
            ),
            StoredPassword::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", B64.encode(salt), B64.encode(hash))
            }
        }
    }
}

#[cfg(test)]
#[path = "stored_tests.rs"]
mod tests;
