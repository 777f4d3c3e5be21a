//! In-memory [`Store`]: BTreeMaps with the same semantics as the sled store; used when
//! persistence is off and as the model in tests.

use std::collections::{BTreeMap, BTreeSet};

use super::records::{MessageRecord, QueuedRecord, SessionRecord, SubscriptionRecord};
use super::store::{validate_ops, Op, Snapshot, Store, StoreError, StoredSession};

/// A [`Store`] that keeps everything in memory (nothing survives the process).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    sessions: BTreeMap<String, SessionRecord>,
    subs: BTreeMap<(String, String), SubscriptionRecord>,
    queue: BTreeMap<(String, u64), QueuedRecord>,
    qos2in: BTreeSet<(String, u16)>,
    retained: BTreeMap<String, MessageRecord>,
    next_seq: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            sessions: BTreeMap::new(),
            subs: BTreeMap::new(),
            queue: BTreeMap::new(),
            qos2in: BTreeSet::new(),
            retained: BTreeMap::new(),
            next_seq: 1,
        }
    }

    fn apply_one(&mut self, op: Op) {
        match op {
            Op::PutSession(rec) => {
                self.sessions.insert(rec.client_id.clone(), rec);
            }
            Op::DeleteSession { client_id } => {
                let client_id = client_id.as_str().to_owned();
                self.sessions.remove(&client_id);
                self.subs.retain(|(id, _), _| *id != client_id);
                self.queue.retain(|(id, _), _| *id != client_id);
                self.qos2in.retain(|(id, _)| *id != client_id);
            }
            Op::PutSubscription { client_id, sub } => {
                let client_id = client_id.as_str().to_owned();
                self.subs.insert((client_id, sub.filter.clone()), sub);
            }
            Op::DeleteSubscription { client_id, filter } => {
                let client_id = client_id.as_str().to_owned();
                self.subs.remove(&(client_id, filter));
            }
            Op::PutQueued {
                client_id,
                seq,
                rec,
            } => {
                let client_id = client_id.as_str().to_owned();
                self.next_seq = self.next_seq.max(seq.saturating_add(1));
                self.queue.insert((client_id, seq), rec);
            }
            Op::DeleteQueued { client_id, seq } => {
                let client_id = client_id.as_str().to_owned();
                self.queue.remove(&(client_id, seq));
            }
            Op::PutInboundQos2 {
                client_id,
                packet_id,
            } => {
                let client_id = client_id.as_str().to_owned();
                self.qos2in.insert((client_id, packet_id));
            }
            Op::DeleteInboundQos2 {
                client_id,
                packet_id,
            } => {
                let client_id = client_id.as_str().to_owned();
                self.qos2in.remove(&(client_id, packet_id));
            }
            Op::PutRetained(msg) => {
                self.retained.insert(msg.topic.clone(), msg);
            }
            Op::DeleteRetained { topic } => {
                self.retained.remove(&topic);
            }
            Op::Delivered { .. }
            | Op::LogPosition { .. }
            | Op::CaughtUp { .. }
            | Op::RefreshPosition { .. } => {}
            Op::RaiseNextSeq { next_seq } => self.next_seq = self.next_seq.max(next_seq),
        }
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut sessions: BTreeMap<&str, StoredSession> = self
            .sessions
            .iter()
            .map(|(id, rec)| {
                let s = StoredSession {
                    record: rec.clone(),
                    subscriptions: Vec::new(),
                    queue: Vec::new(),
                    inbound_qos2: Vec::new(),
                    replay: None,
                };
                (id.as_str(), s)
            })
            .collect();
        for ((id, _), sub) in &self.subs {
            if let Some(s) = sessions.get_mut(id.as_str()) {
                s.subscriptions.push(sub.clone());
            }
        }
        for ((id, seq), rec) in &self.queue {
            if let Some(s) = sessions.get_mut(id.as_str()) {
                s.queue.push((*seq, rec.clone()));
            }
        }
        for (id, pid) in &self.qos2in {
            if let Some(s) = sessions.get_mut(id.as_str()) {
                s.inbound_qos2.push(*pid);
            }
        }
        Ok(Snapshot {
            sessions: sessions.into_values().collect(),
            retained: self.retained.values().cloned().collect(),
            next_seq: self.next_seq,
        })
    }

    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        validate_ops(&ops)?;
        for op in ops {
            self.apply_one(op);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}
