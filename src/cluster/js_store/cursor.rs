//! Each session's [`ReplayCursor`] as the store keeps it up to date: the highest message
//! number queued per publishing node, and since when each subscription exists. Written
//! under the key `starling.s.<client>.c` after the batch that changed it. Pure.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::persistence::ReplayCursor;

/// Origins not heard from for this long are dropped from a cursor (a node incarnation
/// that old has no messages left in the log).
pub const ORIGIN_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Default)]
struct Entry {
    origins: BTreeMap<u64, (u64, u64)>,
    subs: BTreeMap<String, u64>,
}

/// The cursors of the sessions this node loaded or created.
#[derive(Debug, Default)]
pub struct Cursors {
    entries: HashMap<String, Entry>,
    dirty: HashSet<String>,
}

impl Cursors {
    /// A session read from the store: its stored cursor is the starting point.
    pub fn loaded(&mut self, client: &str, cursor: Option<&ReplayCursor>) {
        let mut e = Entry::default();
        if let Some(c) = cursor {
            e.origins = c.origins.iter().map(|&(o, s, at)| (o, (s, at))).collect();
            e.subs = c.subs.iter().cloned().collect();
        }
        self.entries.insert(client.to_owned(), e);
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
        c.loaded("b", Some(&out[0].1));
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
}
