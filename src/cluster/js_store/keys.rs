//! Subjects of the session state stream: `starling.s.<client>.<kind>[.<key>]`. Pure.
//!
//! The client id is hex-encoded (any string becomes one valid token; ids longer than
//! 1 KiB are hashed instead, to keep subjects short), a filter is hashed (its record
//! holds it), numbers are decimal.

use sha2::{Digest, Sha256};

/// Every subject of the stream starts with this.
pub const PREFIX: &str = "starling.s";
/// Client ids longer than this (bytes) are hashed.
const LONG_ID: usize = 1024;

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// The session record.
    Record,
    /// A subscription, by filter.
    Subscription(&'a str),
    /// A queued message, by seq.
    Queued(u64),
    /// An inbound QoS 2 packet id.
    Qos2(u16),
    /// The session's replay cursor.
    Cursor,
}

/// A kind read back from a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Record,
    Subscription,
    Queued(u64),
    Qos2(u16),
    Cursor,
}

/// One key of one client.
pub struct Key<'a> {
    client: &'a str,
    kind: Kind<'a>,
}

impl<'a> Key<'a> {
    pub fn new(client: &'a str, kind: Kind<'a>) -> Key<'a> {
        Key { client, kind }
    }

    /// The subject the key's value is published on.
    pub fn subject(&self) -> String {
        let client = client_token(self.client);
        match self.kind {
            Kind::Record => format!("{PREFIX}.{client}.r"),
            Kind::Subscription(f) => format!("{PREFIX}.{client}.b.{}", hash(f)),
            Kind::Queued(seq) => format!("{PREFIX}.{client}.q.{seq}"),
            Kind::Qos2(id) => format!("{PREFIX}.{client}.i.{id}"),
            Kind::Cursor => format!("{PREFIX}.{client}.c"),
        }
    }
}

/// The filter matching every key of one client.
pub fn client_filter(client: &str) -> String {
    format!("{PREFIX}.{}.>", client_token(client))
}

/// The kind of a subject of the stream (`None` for anything else).
pub fn kind_of(subject: &str) -> Option<Parsed> {
    let rest = subject.strip_prefix(PREFIX)?.strip_prefix('.')?;
    let mut tokens = rest.split('.').skip(1);
    let parsed = match (tokens.next()?, tokens.next()) {
        ("r", None) => Parsed::Record,
        ("c", None) => Parsed::Cursor,
        ("b", Some(_)) => Parsed::Subscription,
        ("q", Some(seq)) => Parsed::Queued(seq.parse().ok()?),
        ("i", Some(id)) => Parsed::Qos2(id.parse().ok()?),
        _ => return None,
    };
    tokens.next().is_none().then_some(parsed)
}

fn client_token(client: &str) -> String {
    if client.len() > LONG_ID {
        return format!("h{}", hash(client));
    }
    let mut t = String::with_capacity(1 + client.len() * 2);
    t.push('c');
    for b in client.bytes() {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

/// 128 bits of SHA-256, hex.
fn hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_and_stay_valid() {
        let weird = "a b/é.*>";
        for (kind, parsed) in [
            (Kind::Record, Parsed::Record),
            (Kind::Subscription("a/+/#"), Parsed::Subscription),
            (Kind::Queued(42), Parsed::Queued(42)),
            (Kind::Qos2(7), Parsed::Qos2(7)),
        ] {
            let s = Key::new(weird, kind).subject();
            assert!(
                s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'),
                "{s}"
            );
            assert_eq!(kind_of(&s), Some(parsed));
            assert!(s.starts_with(&client_filter(weird)[..client_filter(weird).len() - 1]));
        }
        assert_ne!(client_filter("ab"), client_filter("a"));
        assert_eq!(kind_of("starling.s.c61.q.x"), None);
        assert_eq!(kind_of("starling.s.c61.r.extra"), None);
        let long = "x".repeat(5000);
        assert!(Key::new(&long, Kind::Record).subject().len() < 100);
    }
}
