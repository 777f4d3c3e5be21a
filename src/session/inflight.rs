//! The in-flight list of a session: messages sent with a packet id and not yet fully
//! acknowledged, in the order they were first sent. Their packet ids are also kept in a
//! compact array beside them, so the checks made for every delivery (is this id in
//! use? which entry has it?) scan 2 bytes per entry instead of the whole entries.

use std::collections::VecDeque;

use super::state::Inflight;
use crate::protocol::PacketId;

#[derive(Debug, Clone, Default)]
pub struct InflightList {
    entries: VecDeque<Inflight>,
    /// `entries[i].packet_id`, for every i.
    ids: VecDeque<PacketId>,
}

impl InflightList {
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    pub fn push_back(&mut self, entry: Inflight) {
        self.ids.push_back(entry.packet_id);
        self.entries.push_back(entry);
    }

    pub fn contains_id(&self, id: PacketId) -> bool {
        self.ids.contains(&id)
    }

    fn position(&self, id: PacketId) -> Option<usize> {
        self.ids.iter().position(|&i| i == id)
    }

    pub fn get(&self, id: PacketId) -> Option<&Inflight> {
        self.position(id).map(|p| &self.entries[p])
    }

    pub fn get_mut(&mut self, id: PacketId) -> Option<&mut Inflight> {
        self.position(id).map(|p| &mut self.entries[p])
    }

    /// Removes and returns the entry with this id if `f` accepts it.
    pub fn remove_if(
        &mut self,
        id: PacketId,
        f: impl FnOnce(&Inflight) -> bool,
    ) -> Option<Inflight> {
        let p = self.position(id)?;
        if !f(&self.entries[p]) {
            return None;
        }
        self.ids.remove(p);
        self.entries.remove(p)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Inflight) -> bool) {
        self.entries.retain(|e| keep(e));
        self.ids = self.entries.iter().map(|e| e.packet_id).collect();
    }

    pub fn iter(&self) -> impl Iterator<Item = &Inflight> {
        self.entries.iter()
    }
}
