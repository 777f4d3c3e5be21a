//! Each session's [`ReplayCursor`] as the store keeps it up to date: the highest message
//! number queued per publishing node, and since when each subscription exists. Written
//! under the key `starling.s.<client>.c` after the batch that changed it. Also the
//! origin of each message in the session's queue, which the queue's value carries again
//! when it is rewritten (a packet id assigned). Pure.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::delivery::Origin;
use crate::persistence::ReplayCursor;

/// Origins not heard from for this long are dropped from a cursor (a node incarnation
/// that old has no messages left in the log).
pub const ORIGIN_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Default)]
struct Entry {
    origins: BTreeMap<u64, (u64, u64)>,
    subs: BTreeMap<String, u64>,
    /// Queue seq → the origin of the message stored there.
    queued: HashMap<u64, Origin>,
}

/// The cursors of the sessions this node loaded or created.
#[derive(Debug, Default)]
pub struct Cursors {
    entries: HashMap<String, Entry>,
    dirty: HashSet<String>,
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
        let mut e = Entry::default();
        if let Some(c) = cursor {
            e.origins = c.origins.iter().map(|&(o, s, at)| (o, (s, at))).collect();
            e.subs = c.subs.iter().cloned().collect();
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
                ..ReplayCursor::default()
            };
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
}
