//! The in-flight list of a session: messages sent with a packet id and not yet fully
//! acknowledged, in the order they were first sent. Each delivery and acknowledgement
//! costs the same with a window of 10 or 65,535 (a linear scan per packet made a 65,535
//! window 5× slower than a 64 one):
//!
//! - Packet ids are usually handed out one after another, so the entries' ids run on
//!   one by one from the front's: an id's place is its distance from the front's id,
//!   found without hashing (the common case; a hash map per delivery and
//!   acknowledgement cost about 200 instructions).
//! - Once an entry breaks that run (an id skipped because it was still in use, a
//!   stored message's id, holes dropped), lookups go through an index from packet id
//!   to entry, until the list is empty again.
//!
//! Entries acknowledged out of order leave a hole that is dropped once it reaches the
//! front (or when holes outnumber entries).

use std::collections::VecDeque;

use ahash::AHashMap as HashMap;

use super::state::Inflight;
use crate::protocol::PacketId;

/// Packet ids there are (1..=65535).
const IDS: usize = 65_535;

#[derive(Debug, Clone, Default)]
pub struct InflightList {
    /// In send order; `None` where an entry was removed before those ahead of it. The
    /// front is never a hole.
    entries: VecDeque<Option<Inflight>>,
    /// Entries that are not holes.
    count: usize,
    /// Number (in send order, from 0) of `entries[0]`.
    base: u64,
    /// The entries' ids do not run on one by one from the front's: `index` is used.
    indexed: bool,
    /// Packet id → number of its entry, kept while `indexed`.
    index: HashMap<PacketId, u64>,
}

/// How many ids after `from` comes `to`, in the cycle 1..=65535 (0 when equal).
#[inline]
fn distance(from: PacketId, to: PacketId) -> usize {
    let (from, to) = (usize::from(from.get()) - 1, usize::from(to.get()) - 1);
    (to + IDS - from) % IDS
}

impl InflightList {
    pub fn count(&self) -> usize {
        self.count
    }

    #[inline]
    pub fn push_back(&mut self, entry: Inflight) {
        if !self.indexed {
            let runs_on = match self.entries.front() {
                None => true,
                Some(Some(front)) => {
                    distance(front.packet_id, entry.packet_id) == self.entries.len()
                }
                Some(None) => false,
            };
            if !runs_on {
                self.build_index();
            }
        }
        if self.indexed {
            let n = self.base + self.entries.len() as u64;
            self.index.insert(entry.packet_id, n);
        }
        self.entries.push_back(Some(entry));
        self.count += 1;
    }

    /// Switches to lookups through the index.
    fn build_index(&mut self) {
        self.indexed = true;
        self.index.clear();
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(e) = e {
                self.index.insert(e.packet_id, self.base + i as u64);
            }
        }
    }

    pub fn contains_id(&self, id: PacketId) -> bool {
        self.get(id).is_some()
    }

    /// Where the entry with this id is, if anywhere (it may be a hole).
    #[inline(always)]
    fn slot(&self, id: PacketId) -> Option<usize> {
        if self.indexed {
            return self.index.get(&id).map(|&n| (n - self.base) as usize);
        }
        let front = self.entries.front()?.as_ref()?;
        let i = distance(front.packet_id, id);
        (i < self.entries.len()).then_some(i)
    }

    #[inline]
    pub fn get(&self, id: PacketId) -> Option<&Inflight> {
        let i = self.slot(id)?;
        self.entries[i].as_ref().filter(|e| e.packet_id == id)
    }

    pub fn get_mut(&mut self, id: PacketId) -> Option<&mut Inflight> {
        let i = self.slot(id)?;
        self.entries[i].as_mut().filter(|e| e.packet_id == id)
    }

    /// Removes and returns the entry with this id if `f` accepts it.
    #[inline]
    pub fn remove_if(
        &mut self,
        id: PacketId,
        f: impl FnOnce(&Inflight) -> bool,
    ) -> Option<Inflight> {
        let i = self.slot(id)?;
        let found = self.entries[i].as_ref().filter(|e| e.packet_id == id);
        if !found.is_some_and(f) {
            return None;
        }
        if self.indexed {
            self.index.remove(&id);
        }
        let entry = self.entries[i].take();
        self.count -= 1;
        while let Some(None) = self.entries.front() {
            self.entries.pop_front();
            self.base += 1;
        }
        if self.count == 0 && self.indexed {
            // Empty again: the next ids may run on one by one.
            self.indexed = false;
            self.index.clear();
        }
        if self.entries.len() > 2 * self.count + 64 {
            // An old entry stays while later ones come and go: drop the holes.
            self.retain(|_| true);
        }
        entry
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Inflight) -> bool) {
        let kept: Vec<Inflight> = std::mem::take(&mut self.entries)
            .into_iter()
            .flatten()
            .filter(|e| keep(e))
            .collect();
        self.index.clear();
        self.indexed = false;
        self.base = 0;
        self.count = 0;
        for e in kept {
            self.push_back(e);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Inflight> {
        self.entries.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::delivery::Outgoing;
    use crate::message::Message;
    use crate::protocol::{Properties, QoS};
    use crate::session::state::Stage;
    use crate::topic::TopicName;

    fn inflight(id: u16) -> Inflight {
        let msg = Arc::new(Message {
            topic: TopicName::new("t").unwrap(),
            payload: bytes::Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
            expires_at: None,
            publisher: None,
            encoded: Default::default(),
        });
        Inflight {
            packet_id: PacketId::new(id).unwrap(),
            out: Outgoing {
                msg,
                qos: QoS::AtLeastOnce,
                retain: false,
                sub_ids: vec![],
                seq: None,
                share: None,
                receipt: None,
            },
            stage: Stage::Published,
        }
    }

    fn ids(l: &InflightList) -> Vec<u16> {
        l.iter().map(|e| e.packet_id.get()).collect()
    }

    #[test]
    fn out_of_order_removal_keeps_send_order_and_lookups() {
        let mut l = InflightList::default();
        for id in 1..=5 {
            l.push_back(inflight(id));
        }
        assert!(l.remove_if(PacketId::new(3).unwrap(), |_| true).is_some());
        assert!(l.remove_if(PacketId::new(3).unwrap(), |_| true).is_none());
        assert!(l.remove_if(PacketId::new(1).unwrap(), |_| false).is_none());
        assert!(l.remove_if(PacketId::new(1).unwrap(), |_| true).is_some());
        assert_eq!(ids(&l), vec![2, 4, 5]);
        assert_eq!(l.count(), 3);
        assert!(l.contains_id(PacketId::new(4).unwrap()));
        assert!(!l.contains_id(PacketId::new(3).unwrap()));
        l.push_back(inflight(3));
        assert_eq!(ids(&l), vec![2, 4, 5, 3]);
        assert_eq!(
            l.get(PacketId::new(5).unwrap()).map(|e| e.packet_id.get()),
            Some(5)
        );
        l.retain(|e| e.packet_id.get() != 4);
        assert_eq!(ids(&l), vec![2, 5, 3]);
        assert!(l.get_mut(PacketId::new(3).unwrap()).is_some());
        assert!(!l.contains_id(PacketId::new(4).unwrap()));
    }

    #[test]
    fn holes_behind_a_stuck_entry_stay_bounded() {
        let mut l = InflightList::default();
        l.push_back(inflight(1));
        for n in 0..10_000u32 {
            let id = (n % 60_000) as u16 + 2;
            l.push_back(inflight(id));
            assert!(l.remove_if(PacketId::new(id).unwrap(), |_| true).is_some());
        }
        assert_eq!(ids(&l), vec![1]);
        assert!(l.entries.len() <= 2 + 64, "{} slots", l.entries.len());
    }

    fn pid(id: u16) -> PacketId {
        PacketId::new(id).unwrap()
    }

    #[test]
    fn ids_running_on_past_65535_are_found_without_the_index() {
        let mut l = InflightList::default();
        for id in [65_534, 65_535, 1, 2] {
            l.push_back(inflight(id));
        }
        assert!(!l.indexed);
        assert_eq!(l.get(pid(1)).map(|e| e.packet_id.get()), Some(1));
        assert!(!l.contains_id(pid(3)), "past the last entry");
        assert!(!l.contains_id(pid(65_533)), "before the front");
        assert!(l.remove_if(pid(65_535), |_| true).is_some(), "a hole now");
        assert!(!l.contains_id(pid(65_535)));
        assert!(l.remove_if(pid(65_535), |_| true).is_none());
        assert!(l.remove_if(pid(65_534), |_| true).is_some());
        assert_eq!(ids(&l), vec![1, 2]);
        assert_eq!(l.get(pid(2)).map(|e| e.packet_id.get()), Some(2));
        assert!(!l.indexed);
    }

    #[test]
    fn an_id_out_of_the_run_switches_to_the_index_until_empty() {
        let mut l = InflightList::default();
        for id in [5, 6, 9, 7] {
            l.push_back(inflight(id));
        }
        assert!(l.indexed);
        for id in [5, 6, 9, 7] {
            assert_eq!(l.get(pid(id)).map(|e| e.packet_id.get()), Some(id));
        }
        assert!(!l.contains_id(pid(8)));
        for id in [9, 5, 7, 6] {
            assert!(l.remove_if(pid(id), |_| true).is_some(), "{id}");
        }
        assert_eq!(l.count(), 0);
        assert!(!l.indexed, "empty: back to the run");
        l.push_back(inflight(40));
        l.push_back(inflight(41));
        assert!(!l.indexed);
        assert!(l.contains_id(pid(41)));
    }

    #[test]
    fn a_full_cycle_of_ids_is_never_looked_up_by_distance() {
        let mut l = InflightList::default();
        let mut id = pid(1);
        for _ in 0..IDS {
            l.push_back(inflight(id.get()));
            id = id.next();
        }
        assert!(!l.indexed);
        assert!(l.remove_if(pid(3), |_| true).is_some());
        // Id 3 again, 65,535 entries after the first: the run would find the hole.
        l.push_back(inflight(3));
        assert!(l.indexed);
        assert_eq!(l.count(), IDS);
        assert!(l.contains_id(pid(3)));
        assert!(l.remove_if(pid(3), |_| true).is_some());
        assert!(!l.contains_id(pid(3)));
    }
}
