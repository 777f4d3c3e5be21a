//! The password file: one `username:hash` per line, where hash is in one of the schemes
//! of [`super::stored`]: Starling's `pbkdf2-sha256$<iterations>$<salt, base64>$<hash,
//! base64>` (the hash is 32 bytes of PBKDF2-HMAC-SHA256; [`PasswordHash`]), Argon2id,
//! or Mosquitto's `$7$` and `$6$`. Blank lines and lines starting with `#` are ignored.
//!
//! The PBKDF2-HMAC-SHA256 output is exactly SCRAM-SHA-256's SaltedPassword (RFC 5802
//! `Hi()`), so `pbkdf2-sha256` lines serve plain passwords and SCRAM; users of the
//! other schemes can only log in with a plain password.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use sha2::Sha256;

use super::stored::StoredPassword;

/// The scheme tag of a hash string.
const SCHEME: &str = "pbkdf2-sha256";
/// Iterations used by [`PasswordHash::new`] (RFC 7677 asks for at least 4096).
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// Fewer iterations are refused when parsing (SCRAM clients may refuse them too).
pub const MIN_ITERATIONS: u32 = 1_000;

/// SASLprep (RFC 4013) of a password, as SCRAM (RFC 5802 section 2.2) asks: a client
/// computes SaltedPassword from the prepared string, so the stored hash must be of it
/// too. MQTT passwords are binary: bytes that are not UTF-8, or that SASLprep refuses,
/// are used as they are (on both sides, so plain checks still match).
pub fn prepare(password: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(password).map(stringprep::saslprep) {
        Ok(Ok(Cow::Owned(prepared))) => Cow::Owned(prepared.into_bytes()),
        _ => Cow::Borrowed(password),
    }
}

/// SASLprep of a user name (as stored, looked up and sent in SCRAM's `n=`); a name
/// SASLprep refuses is used as it is.
pub fn prepare_name(name: &str) -> Cow<'_, str> {
    stringprep::saslprep(name).unwrap_or(Cow::Borrowed(name))
}

/// One stored password: PBKDF2-HMAC-SHA256(SASLprep(password), salt, iterations).
/// Its `Display` is the file's hash string, which [`PasswordHash::parse`] reads back.
///
/// ```
/// use starling::auth::password::PasswordHash;
///
/// let hash = PasswordHash::new(b"s3cret", 4096);
/// assert!(hash.verify(b"s3cret"));
/// assert!(!hash.verify(b"guess"));
///
/// let line = hash.to_string();
/// assert!(line.starts_with("pbkdf2-sha256$4096$"));
/// assert_eq!(PasswordHash::parse(&line), Ok(hash));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    /// The PBKDF2 iteration count (at least [`MIN_ITERATIONS`] when parsed).
    pub iterations: u32,
    /// The salt (16 random bytes when made by [`PasswordHash::new`]).
    pub salt: Vec<u8>,
    /// 32 bytes; SCRAM's SaltedPassword.
    pub salted: [u8; 32],
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a password file or hash could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// A line has no `:` between user name and hash.
    #[error("line {line}: expected `username:hash`")]
    NoColon {
        /// The line number, from 1.
        line: usize,
    },
    /// A line's user name is empty.
    #[error("line {line}: empty username")]
    EmptyUser {
        /// The line number, from 1.
        line: usize,
    },
    /// A user name (after SASLprep) appears on an earlier line too.
    #[error("line {line}: duplicate user {user:?}")]
    Duplicate {
        /// The line number of the second entry, from 1.
        line: usize,
        /// The user name as written.
        user: String,
    },
    /// A line's hash is not a valid hash string ([`StoredPassword::parse`]).
    #[error("line {line}: {why}")]
    BadHash {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl PasswordHash {
    /// Hashes `password` with a fresh random 16-byte salt.
    pub fn new(password: &[u8], iterations: u32) -> PasswordHash {
        let mut salt = vec![0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        PasswordHash::with_salt(password, salt, iterations)
    }

    /// Hashes `password` with this salt.
    pub fn with_salt(password: &[u8], salt: Vec<u8>, iterations: u32) -> PasswordHash {
        let password = prepare(password);
        let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(&password, &salt, iterations);
        PasswordHash {
            iterations,
            salt,
            salted,
        }
    }

    /// Parses `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`; refuses fewer than
    /// [`MIN_ITERATIONS`] iterations, an empty salt and a hash that is not 32 bytes.
    pub fn parse(text: &str) -> Result<PasswordHash, &'static str> {
        let mut parts = text.trim().split('$');
        if parts.next() != Some(SCHEME) {
            return Err("hash must start with pbkdf2-sha256$");
        }
        let iterations: u32 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or("bad iteration count")?;
        if iterations < MIN_ITERATIONS {
            return Err("iteration count below 1000");
        }
        let salt = parts
            .next()
            .and_then(|s| B64.decode(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or("bad salt")?;
        let salted: [u8; 32] = parts
            .next()
            .and_then(|s| B64.decode(s).ok())
            .and_then(|h| h.try_into().ok())
            .ok_or("bad hash (must be 32 bytes, base64)")?;
        if parts.next().is_some() {
            return Err("too many `$` fields");
        }
        Ok(PasswordHash {
            iterations,
            salt,
            salted,
        })
    }

    /// True when `password` hashes to this (constant-time comparison).
    pub fn verify(&self, password: &[u8]) -> bool {
        let password = prepare(password);
        let h = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(&password, &self.salt, self.iterations);
        ct_eq(&h, &self.salted)
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}${}${}${}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.salted)
        )
    }
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a password file's text into user name (after SASLprep) → stored password.
///
/// ```
/// use starling::auth::password::{parse_file, set_user, PasswordError, PasswordHash};
///
/// let text = set_user("# users\n", "alice", &PasswordHash::new(b"pw", 1000));
/// // A line from mosquitto_passwd (bob/builder, `-H sha512`).
/// let text = format!("{text}bob:$6$uIH21A7icU6j1mnc$opRo8FQ/K0pnycG3ddIUucopnYy6mHBdvAUOMnrdHxDzlEqAJJqiFNignfLWwF1PHOzYdFw0uJAA/Z3XGwOPWw==\n");
/// let users = parse_file(&text)?;
/// assert!(users["alice"].verify(b"pw"));
/// assert!(users["bob"].verify(b"builder"));
/// assert_eq!(parse_file("alice"), Err(PasswordError::NoColon { line: 1 }));
/// # Ok::<(), PasswordError>(())
/// ```
pub fn parse_file(text: &str) -> Result<HashMap<String, StoredPassword>, PasswordError> {
    let mut users = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let entry = raw.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let (user, hash) = entry
            .split_once(':')
            .ok_or(PasswordError::NoColon { line })?;
        if user.is_empty() {
            return Err(PasswordError::EmptyUser { line });
        }
        let hash =
            StoredPassword::parse(hash).map_err(|why| PasswordError::BadHash { line, why })?;
        if users
            .insert(prepare_name(user).into_owned(), hash)
            .is_some()
        {
            let user = user.to_string();
            return Err(PasswordError::Duplicate { line, user });
        }
    }
    Ok(users)
}

/// The password file `text` with `user`'s line replaced by (or appended as) `hash` (a
/// [`PasswordHash`] or a [`StoredPassword`]).
pub fn set_user(text: &str, user: &str, hash: &impl fmt::Display) -> String {
    let user = &*prepare_name(user);
    let entry = format!("{user}:{hash}");
    let mut out = String::with_capacity(text.len() + entry.len() + 1);
    let mut replaced = false;
    for line in text.lines() {
        let is_user = line
            .trim()
            .split_once(':')
            .is_some_and(|(u, _)| prepare_name(u) == user);
        if is_user && !replaced {
            out.push_str(&entry);
            replaced = true;
        } else if !is_user {
            out.push_str(line);
        } else {
            continue;
        }
        out.push('\n');
    }
    if !replaced {
        out.push_str(&entry);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4013 section 3's examples: soft hyphen mapped to nothing, ª and Ⅸ
    /// normalised (NFKC); a prohibited character leaves the bytes as they are.
    #[test]
    fn saslprep_of_passwords_and_names() {
        assert_eq!(&*prepare("I\u{00AD}X".as_bytes()), b"IX");
        assert_eq!(&*prepare("\u{00AA}".as_bytes()), b"a");
        assert_eq!(&*prepare("\u{2168}".as_bytes()), b"IX");
        assert_eq!(&*prepare(b"user"), b"user");
        assert_eq!(&*prepare(b"a\x07b"), b"a\x07b");
        assert_eq!(&*prepare(&[0xFF, 0x00]), &[0xFF, 0x00]);
        let h = PasswordHash::new("I\u{00AD}X".as_bytes(), 1000);
        assert!(h.verify(b"IX"));
        assert_eq!(h, PasswordHash::with_salt(b"IX", h.salt.clone(), 1000));
        assert_eq!(prepare_name("\u{2168}"), "IX");
        let file = set_user("", "\u{2168}", &h);
        assert!(file.starts_with("IX:"));
        let users = parse_file(&file).unwrap();
        assert!(users.contains_key("IX"));
        assert_eq!(set_user(&file, "IX", &h).lines().count(), 1, "same user");
    }

    #[test]
    fn hash_round_trips_and_verifies() {
        let h = PasswordHash::new(b"secret", 4096);
        let text = h.to_string();
        assert!(text.starts_with("pbkdf2-sha256$4096$"));
        let back = PasswordHash::parse(&text).unwrap();
        assert_eq!(back, h);
        assert!(back.verify(b"secret"));
        assert!(!back.verify(b"secreT"));
        assert!(!back.verify(b""));
    }

    #[test]
    fn known_pbkdf2_value() {
        // RFC 7677's SaltedPassword for "pencil" is checked in scram.rs; here the
        // format of a fixed salt.
        let h = PasswordHash::with_salt(b"pencil", b"salt".to_vec(), 4096);
        assert_eq!(PasswordHash::parse(&h.to_string()).unwrap().salt, b"salt");
    }

    #[test]
    fn set_user_replaces_or_appends() {
        let a = PasswordHash::with_salt(b"1", b"s".to_vec(), 1000);
        let b = PasswordHash::with_salt(b"2", b"s".to_vec(), 1000);
        let text = set_user("# c\nalice:x\n", "bob", &a);
        assert_eq!(text, format!("# c\nalice:x\nbob:{a}\n"));
        let text = set_user(&text, "alice", &b);
        assert_eq!(text, format!("# c\nalice:{b}\nbob:{a}\n"));
        assert!(parse_file(&text).unwrap()["alice"].verify(b"2"));
        let argon = StoredPassword::argon2id(b"3");
        let text = set_user(&text, "bob", &argon);
        assert_eq!(parse_file(&text).unwrap()["bob"], argon);
    }

    #[test]
    fn parses_files_and_reports_bad_lines() {
        let a = PasswordHash::with_salt(b"pa", b"s1".to_vec(), 1000);
        let b = PasswordHash::with_salt(b"pb", b"s2".to_vec(), 2000);
        let text = format!("# users\n\nalice:{a}\n  bob:{b}  \n");
        let users = parse_file(&text).unwrap();
        assert_eq!(users.len(), 2);
        assert!(users["alice"].verify(b"pa"));
        assert!(users["bob"].verify(b"pb"));
        assert_eq!(users["alice"].scram(), Some(&a));
        assert_eq!(parse_file("alice"), Err(PasswordError::NoColon { line: 1 }));
        assert_eq!(
            parse_file(&format!("\n:{a}")),
            Err(PasswordError::EmptyUser { line: 2 })
        );
        assert!(matches!(
            parse_file(&format!("x:{a}\nx:{b}")),
            Err(PasswordError::Duplicate { line: 2, .. })
        ));
        for bad in [
            "x:plain",
            "x:pbkdf2-sha256$abc$c2FsdA==$AAAA",
            "x:pbkdf2-sha256$10$c2FsdA==$AAAA",
            "x:pbkdf2-sha256$4096$!!$AAAA",
            "x:pbkdf2-sha256$4096$c2FsdA==$AAAA",
        ] {
            assert!(
                matches!(parse_file(bad), Err(PasswordError::BadHash { .. })),
                "{bad}"
            );
        }
    }
}
