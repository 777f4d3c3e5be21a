//! Each session's [`ReplayCursor`] as the store keeps it up to date: the highest message
//! number queued per publishing node, since when each subscription exists, and the
//! message log position its queue covers. Written under the key `starling.s.<client>.c`
//! after the batch that changed it. Also the origin of each message in the session's
//! queue, which the queue's value carries again when it is rewritten (a packet id
//! assigned). Pure.
//!
//! **Log position.** The router sends [`Op::LogPosition`](crate::persistence::Op) in
//! order with its deliveries: the store, applying ops in order, then knows that every
//! log entry up to that sequence which matched one of its sessions is queued (the other
//! nodes' entries come through the log feed in log order; the node's own are routed
//! before their log write, so before any later entry the feed brings). A session loaded
//! from the store is *replaying* until its [`Op::CaughtUp`](crate::persistence::Op)
//! (its queue does not hold yet what its replay brings): meanwhile its cursor keeps the
//! position it was loaded with. A cursor written carries the highest position valid for
//! its session.
//!
//! **Encoding.** The value is the postcard [`ReplayCursor`], then, when it has a
//! position, a trailer: [`POSITION_TAG`] and the postcard `u64`. Values written before
//! the trailer existed decode with no position (the replay then starts at the oldest
//! subscription's time), and a reader that knows no trailer decodes new values, since
//! postcard's `from_bytes` ignores trailing bytes.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use crate::delivery::Origin;
use crate::persistence::ReplayCursor;

/// Marks the position trailer of a cursor's value (other values are reserved).
const POSITION_TAG: u8 = 1;

/// The stored value of a cursor.
pub fn encode(cursor: &ReplayCursor) -> Result<Bytes, postcard::Error> {
    let mut out = postcard::to_allocvec(cursor)?;
    if let Some(p) = cursor.position {
        out.push(POSITION_TAG);
        out.extend(postcard::to_allocvec(&p)?);
    }
    Ok(Bytes::from(out))
}

/// A stored cursor read back, with its position if the value has one (an unknown or
/// damaged trailer counts as none: the replay then starts by time, as before).
pub fn decode(payload: &[u8]) -> Result<ReplayCursor, postcard::Error> {
    let (mut cursor, rest) = postcard::take_from_bytes::<ReplayCursor>(payload)?;
    cursor.position = match rest.split_first() {
        Some((&POSITION_TAG, trailer)) => postcard::from_bytes::<u64>(trailer).ok(),
        _ => None,
    };
    Ok(cursor)
}

/// Origins not heard from for this long are dropped from a cursor (a node incarnation
/// that old has no messages left in the log).
pub const ORIGIN_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Default)]
struct Entry {
    origins: BTreeMap<u64, (u64, u64)>,
    subs: BTreeMap<String, u64>,
    /// Queue seq → the origin of the message stored there.
    queued: HashMap<u64, Origin>,
    /// Loaded from the store and not caught up yet: [`Cursors::position`] does not
    /// cover it.
    replaying: bool,
    /// The position it was loaded with (valid whatever happened since: its queue only
    /// gains messages, or loses them to their delivery).
    position: Option<u64>,
    /// The position its cursor was last written with.
    written: Option<u64>,
}

impl Entry {
    /// The highest log position valid for this session, given the store's `applied`.
    fn position(&self, applied: Option<u64>) -> Option<u64> {
        match self.replaying {
            true => self.position,
            false => self.position.max(applied),
        }
    }
}

/// The cursors of the sessions this node loaded or created.
#[derive(Debug, Default)]
pub struct Cursors {
    entries: HashMap<String, Entry>,
    dirty: HashSet<String>,
    /// The last [`Op::LogPosition`](crate::persistence::Op) applied: the log position
    /// the applied ops cover for every session not replaying.
    position: Option<u64>,
}

impl Cursors {
    /// A session read from the store: its stored cursor is the starting point.
    /// `queued`: the origins the loaded queue's values carry, by queue seq.
    pub fn loaded(
        &mut self,
        client: &str,
        cursor: Option<&ReplayCursor>,
        queued: &[(u64, Origin)],
    ) {
        let mut e = Entry {
            replaying: true,
            ..Entry::default()
        };
        if let Some(c) = cursor {
            e.origins = c.origins.iter().map(|&(o, s, at)| (o, (s, at))).collect();
            e.subs = c.subs.iter().cloned().collect();
            e.position = c.position;
        }
        e.queued = queued.iter().copied().collect();
        self.entries.insert(client.to_owned(), e);
    }

    /// A message is (re)written at queue `seq`: `fresh` when it was just numbered
    /// (`Delivered`), else the origin it was stored with, if known.
    pub fn queued(&mut self, client: &str, seq: u64, fresh: Option<Origin>) -> Option<Origin> {
        let e = self.entries.entry(client.to_owned()).or_default();
        match fresh {
            Some(o) => {
                e.queued.insert(seq, o);
                Some(o)
            }
            None => e.queued.get(&seq).copied(),
        }
    }

    pub fn dequeued(&mut self, client: &str, seq: u64) {
        if let Some(e) = self.entries.get_mut(client) {
            e.queued.remove(&seq);
        }
    }

    pub fn delivered(&mut self, client: &str, origin: u64, seq: u64, now_ms: u64) {
        let e = self.entries.entry(client.to_owned()).or_default();
        let slot = e.origins.entry(origin).or_insert((0, now_ms));
        *slot = (slot.0.max(seq), now_ms);
        self.dirty.insert(client.to_owned());
    }

    /// A re-subscription keeps the original time: what it missed since still counts.
    pub fn subscribed(&mut self, client: &str, filter: &str, now_ms: u64) {
        let e = self.entries.entry(client.to_owned()).or_default();
        if !e.subs.contains_key(filter) {
            e.subs.insert(filter.to_owned(), now_ms);
            self.dirty.insert(client.to_owned());
        }
    }

    pub fn unsubscribed(&mut self, client: &str, filter: &str) {
        if let Some(e) = self.entries.get_mut(client) {
            if e.subs.remove(filter).is_some() {
                self.dirty.insert(client.to_owned());
            }
        }
    }

    /// Every log entry up to `seq` routed to this node's sessions is in the ops applied.
    pub fn log_position(&mut self, seq: u64) {
        self.position = self.position.max(Some(seq));
    }

    /// The loaded session's replay is in the ops applied: the log position covers it
    /// from now on (its cursor is written with it).
    pub fn caught_up(&mut self, client: &str) {
        if let Some(e) = self.entries.get_mut(client) {
            if e.replaying {
                e.replaying = false;
                self.dirty.insert(client.to_owned());
            }
        }
    }

    /// A session this node holds: its cursor is written again if its position moved
    /// since (a quiet session's resume stays bounded too).
    pub fn refresh(&mut self, client: &str) {
        if let Some(e) = self.entries.get(client) {
            if !e.replaying && e.position(self.position) > e.written {
                self.dirty.insert(client.to_owned());
            }
        }
    }

    /// The session is gone (its keys are purged).
    pub fn forget(&mut self, client: &str) {
        self.entries.remove(client);
        self.dirty.remove(client);
    }

    /// The cursors changed since the last call, to be written.
    pub fn take_dirty(&mut self, now_ms: u64) -> Vec<(String, ReplayCursor)> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::with_capacity(dirty.len());
        for client in dirty {
            let Some(e) = self.entries.get_mut(&client) else {
                continue;
            };
            e.origins
                .retain(|_, (_, at)| now_ms.saturating_sub(*at) < ORIGIN_TTL_MS);
            let cursor = ReplayCursor {
                origins: e.origins.iter().map(|(&o, &(s, at))| (o, s, at)).collect(),
                subs: e.subs.iter().map(|(f, &t)| (f.clone(), t)).collect(),
                position: e.position(self.position),
                ..ReplayCursor::default()
            };
            e.written = cursor.position;
            out.push((client, cursor));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_keep_the_highest_seq_and_the_first_subscription_time() {
        let mut c = Cursors::default();
        c.subscribed("a", "t/#", 100);
        c.delivered("a", 7, 5, 110);
        c.delivered("a", 7, 3, 120);
        c.subscribed("a", "t/#", 200);
        let out = c.take_dirty(130);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.origins, vec![(7, 5, 120)]);
        assert_eq!(out[0].1.subs, vec![("t/#".to_owned(), 100)]);
        assert!(c.take_dirty(130).is_empty(), "written once per change");
        c.loaded("b", Some(&out[0].1), &[]);
        c.unsubscribed("b", "t/#");
        c.delivered("b", 9, 1, ORIGIN_TTL_MS + 200);
        let out = c.take_dirty(ORIGIN_TTL_MS + 200);
        assert_eq!(
            out[0].1.origins,
            vec![(9, 1, ORIGIN_TTL_MS + 200)],
            "old origin pruned"
        );
        assert!(out[0].1.subs.is_empty());
        c.forget("b");
        assert!(c.take_dirty(0).is_empty());
    }

    #[test]
    fn a_rewritten_queued_message_keeps_its_origin() {
        let mut c = Cursors::default();
        let (o1, o2) = (Origin { node: 7, seq: 1 }, Origin { node: 8, seq: 4 });
        c.loaded("a", None, &[(3, o1)]);
        assert_eq!(
            c.queued("a", 3, None),
            Some(o1),
            "loaded, then given a packet id"
        );
        assert_eq!(c.queued("a", 4, Some(o2)), Some(o2));
        assert_eq!(c.queued("a", 4, None), Some(o2));
        c.dequeued("a", 4);
        assert_eq!(c.queued("a", 4, None), None);
        assert_eq!(
            c.queued("b", 1, None),
            None,
            "a message with no cluster number"
        );
    }
    fn cursor(position: Option<u64>) -> ReplayCursor {
        ReplayCursor {
            origins: vec![(7, 5, 120)],
            subs: vec![("t/#".to_owned(), 100)],
            position,
            ..ReplayCursor::default()
        }
    }

    #[test]
    fn a_cursor_value_keeps_its_position_and_stays_readable_both_ways() {
        let with = cursor(Some(4_000_000_123));
        let value = encode(&with).expect("encode");
        assert_eq!(decode(&value).expect("decode"), with);
        // A reader that knows no trailer: the record as before.
        let old_reader: ReplayCursor = postcard::from_bytes(&value).expect("old reader");
        assert_eq!(old_reader, cursor(None));
        // A value written before the trailer: no position.
        let old_value = postcard::to_allocvec(&cursor(None)).expect("old writer");
        assert_eq!(decode(&old_value).expect("decode"), cursor(None));
        assert_eq!(encode(&cursor(None)).expect("encode").to_vec(), old_value);
        // An unknown or damaged trailer: the record, without a position.
        let mut unknown = old_value.clone();
        unknown.extend([9, 1]);
        assert_eq!(decode(&unknown).expect("decode"), cursor(None));
        let mut damaged = old_value;
        damaged.extend([POSITION_TAG, 0xff]);
        assert_eq!(decode(&damaged).expect("decode"), cursor(None));
    }

    #[test]
    fn the_log_position_covers_sessions_once_caught_up() {
        let mut c = Cursors::default();
        c.subscribed("new", "a/#", 100);
        c.loaded("old", Some(&cursor(Some(40))), &[]);
        c.delivered("old", 7, 6, 130);
        let positions = |out: Vec<(String, ReplayCursor)>| {
            let mut p: Vec<_> = out.into_iter().map(|(k, v)| (k, v.position)).collect();
            p.sort();
            p
        };
        assert_eq!(
            positions(c.take_dirty(130)),
            [("new".to_owned(), None), ("old".to_owned(), Some(40))],
            "no position applied yet; the loaded one kept"
        );
        c.log_position(90);
        c.subscribed("new", "b/#", 140);
        c.delivered("old", 7, 7, 140);
        assert_eq!(
            positions(c.take_dirty(140)),
            [("new".to_owned(), Some(90)), ("old".to_owned(), Some(40))],
            "a replaying session keeps the position it was loaded with"
        );
        c.log_position(80);
        c.caught_up("old");
        c.caught_up("unknown");
        assert_eq!(
            positions(c.take_dirty(150)),
            [("old".to_owned(), Some(90))],
            "caught up: written at once, with the highest position applied"
        );
        c.caught_up("old");
        assert!(c.take_dirty(150).is_empty(), "caught up once");
        c.refresh("old");
        assert!(
            c.take_dirty(150).is_empty(),
            "written at the latest position"
        );
        c.log_position(95);
        c.refresh("old");
        c.refresh("unknown");
        assert_eq!(
            positions(c.take_dirty(150)),
            [("old".to_owned(), Some(95))],
            "refreshed: the position moved"
        );
        c.loaded("old", None, &[]);
        c.log_position(99);
        c.refresh("old");
        assert!(c.take_dirty(150).is_empty(), "replaying: not refreshed");
        c.delivered("old", 7, 8, 160);
        assert_eq!(
            positions(c.take_dirty(160)),
            [("old".to_owned(), None)],
            "loaded again without a position: none until caught up"
        );
    }
}
