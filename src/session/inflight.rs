//! The in-flight list of a session: messages sent with a packet id and not yet fully
//! acknowledged, in the order they were first sent. Lookups by packet id go through an
//! index, so each delivery and acknowledgement costs the same with a window of 10 or
//! 65,535 (a linear scan per packet made a 65,535 window 5× slower than a 64 one).
//! Entries acknowledged out of order leave a hole that is dropped once it reaches the
//! front (or when holes outnumber entries).

use std::collections::VecDeque;

use ahash::AHashMap as HashMap;

use super::state::Inflight;
use crate::protocol::PacketId;

#[derive(Debug, Clone, Default)]
pub struct InflightList {
    /// In send order; `None` where an entry was removed before those ahead of it.
    entries: VecDeque<Option<Inflight>>,
    /// Number (in send order, from 0) of `entries[0]`.
    base: u64,
    /// Packet id → number of its entry.
    index: HashMap<PacketId, u64>,
}

impl InflightList {
    pub fn count(&self) -> usize {
        self.index.len()
    }

    pub fn push_back(&mut self, entry: Inflight) {
        let n = self.base + self.entries.len() as u64;
        self.index.insert(entry.packet_id, n);
        self.entries.push_back(Some(entry));
    }

    pub fn contains_id(&self, id: PacketId) -> bool {
        self.index.contains_key(&id)
    }

    fn slot(&self, id: PacketId) -> Option<usize> {
        self.index.get(&id).map(|&n| (n - self.base) as usize)
    }

    pub fn get(&self, id: PacketId) -> Option<&Inflight> {
        self.slot(id).and_then(|i| self.entries[i].as_ref())
    }

    pub fn get_mut(&mut self, id: PacketId) -> Option<&mut Inflight> {
        self.slot(id).and_then(|i| self.entries[i].as_mut())
    }

    /// Removes and returns the entry with this id if `f` accepts it.
    pub fn remove_if(
        &mut self,
        id: PacketId,
        f: impl FnOnce(&Inflight) -> bool,
    ) -> Option<Inflight> {
        let i = self.slot(id)?;
        if !self.entries[i].as_ref().is_some_and(f) {
            return None;
        }
        self.index.remove(&id);
        let entry = self.entries[i].take();
        while let Some(None) = self.entries.front() {
            self.entries.pop_front();
            self.base += 1;
        }
        if self.entries.len() > 2 * self.index.len() + 64 {
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
        self.base = 0;
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
}
