//! Counts and order-independent checksums of a store's keyspaces, to tell whether two
//! stores (a migration's source and target) hold the same state.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::store::Snapshot;

/// The keyspaces a [`Checksums`] covers, in its order.
pub const KEYSPACES: [&str; 5] = [
    "sessions",
    "subscriptions",
    "queued",
    "inbound_qos2",
    "retained",
];

/// The count and checksum of one keyspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Entries.
    pub count: u64,
    /// Wrapping sum of each entry's hash (the first 8 bytes of the SHA-256 of its
    /// postcard encoding, keyed by its client id where it has one): independent of the
    /// order a backend lists entries in.
    pub checksum: u64,
}

impl Tally {
    fn add<T: Serialize + ?Sized>(&mut self, entry: &T) {
        self.count += 1;
        self.checksum = self.checksum.wrapping_add(entry_hash(entry));
    }
}

/// Per keyspace tallies of a snapshot (see [`KEYSPACES`]), and its next seq.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksums {
    /// Tallies in [`KEYSPACES`] order.
    pub keyspaces: [Tally; 5],
    /// The snapshot's [`Snapshot::next_seq`].
    pub next_seq: u64,
}

impl Checksums {
    /// Tallies everything in `snapshot`.
    pub fn of(snapshot: &Snapshot) -> Checksums {
        let mut t = [Tally::default(); 5];
        for s in &snapshot.sessions {
            let id = s.record.client_id.as_str();
            t[0].add(&s.record);
            for sub in &s.subscriptions {
                t[1].add(&(id, sub));
            }
            for (seq, rec) in &s.queue {
                t[2].add(&(id, seq, rec));
            }
            for packet_id in &s.inbound_qos2 {
                t[3].add(&(id, packet_id));
            }
        }
        for msg in &snapshot.retained {
            t[4].add(msg);
        }
        Checksums {
            keyspaces: t,
            next_seq: snapshot.next_seq,
        }
    }

    /// Whether `target` holds what `self` (the source) holds: same tallies and a next
    /// seq at least as high.
    pub fn matched_by(&self, target: &Checksums) -> bool {
        self.keyspaces == target.keyspaces && target.next_seq >= self.next_seq
    }

    /// Whether there is nothing in any keyspace.
    pub fn is_empty(&self) -> bool {
        self.keyspaces.iter().all(|t| t.count == 0)
    }
}

fn entry_hash<T: Serialize + ?Sized>(entry: &T) -> u64 {
    // postcard writes into a Vec and fails only on types it cannot encode (none here);
    // an empty encoding would still hash consistently on both sides.
    let bytes = postcard::to_stdvec(entry).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A source and a target side by side, as `starling migrate` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// The source's tallies.
    pub source: Checksums,
    /// The target's tallies.
    pub target: Checksums,
}

impl Comparison {
    /// Whether the target matches the source ([`Checksums::matched_by`]).
    pub fn verified(&self) -> bool {
        self.source.matched_by(&self.target)
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:>10} {:>16} {:>10} {:>16}  match",
            "keyspace", "source", "source checksum", "target", "target checksum"
        )?;
        let rows = self.source.keyspaces.iter().zip(&self.target.keyspaces);
        for (name, (s, t)) in KEYSPACES.iter().zip(rows) {
            let ok = if s == t { "ok" } else { "DIFFERS" };
            writeln!(
                f,
                "{name:<14} {:>10} {:016x} {:>10} {:016x}  {ok}",
                s.count, s.checksum, t.count, t.checksum
            )?;
        }
        let (s, t) = (self.source.next_seq, self.target.next_seq);
        let ok = if t >= s { "ok" } else { "TOO LOW" };
        writeln!(
            f,
            "{:<14} {s:>10} {:>16} {t:>10} {:>16}  {ok}",
            "next_seq", "", ""
        )?;
        let verdict = if self.verified() {
            "verified: the target holds what the source holds"
        } else {
            "NOT verified: the target differs from the source"
        };
        write!(f, "{verdict}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::{MemoryStore, Op, SessionRecord, Store, SubscriptionRecord};

    fn session(id: &str) -> Op {
        Op::PutSession(SessionRecord {
            client_id: id.into(),
            protocol: 4,
            expiry_secs: 60,
            disconnected_at_ms: Some(1),
            will: None,
        })
    }

    fn sub(id: &str, filter: &str, qos: u8) -> Op {
        Op::PutSubscription {
            client_id: id.into(),
            sub: SubscriptionRecord {
                filter: filter.into(),
                qos,
                no_local: false,
                retain_as_published: false,
                retain_handling: 0,
                subscription_id: None,
            },
        }
    }

    fn sums(ops: Vec<Op>) -> Checksums {
        let mut store = MemoryStore::new();
        store.apply(ops).expect("apply");
        Checksums::of(&store.load().expect("load"))
    }

    #[test]
    fn independent_of_order() {
        let a = sums(vec![
            session("a"),
            session("b"),
            sub("a", "x", 1),
            sub("b", "y", 1),
        ]);
        let b = sums(vec![
            sub("b", "y", 1),
            session("b"),
            sub("a", "x", 1),
            session("a"),
        ]);
        assert_eq!(a, b);
        assert_eq!(a.keyspaces[0].count, 2);
        assert_eq!(a.keyspaces[1].count, 2);
        assert!(a.matched_by(&b));
    }

    #[test]
    fn sees_a_changed_field_and_the_owner() {
        let base = sums(vec![session("a"), sub("a", "x", 1)]);
        let qos = sums(vec![session("a"), sub("a", "x", 2)]);
        assert_eq!(base.keyspaces[1].count, qos.keyspaces[1].count);
        assert_ne!(base.keyspaces[1].checksum, qos.keyspaces[1].checksum);
        // The same subscription under another client is another entry.
        let moved = sums(vec![session("b"), sub("b", "x", 1)]);
        assert_ne!(base.keyspaces[1].checksum, moved.keyspaces[1].checksum);
        assert!(!base.matched_by(&qos));
    }

    #[test]
    fn next_seq_may_be_higher_not_lower() {
        let low = sums(vec![session("a")]);
        let high = sums(vec![session("a"), Op::RaiseNextSeq { next_seq: 50 }]);
        assert_eq!(high.next_seq, 50);
        assert!(low.matched_by(&high));
        assert!(!high.matched_by(&low));
        assert!(sums(vec![]).is_empty());
        let shown = Comparison {
            source: high,
            target: low,
        }
        .to_string();
        assert!(
            shown.contains("TOO LOW") && shown.contains("NOT verified"),
            "{shown}"
        );
    }
}
