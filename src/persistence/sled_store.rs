//! [`Store`] on sled 0.34: one tree per keyspace, atomic multi-tree batches.
//!
//! Layout (0x00 separates the client id, which MQTT forbids to contain U+0000):
//! `meta` (`schema` → u32 BE), `sessions` (client id → record),
//! `subs` (client id 0x00 filter → record), `queue` (client id 0x00 seq u64 BE → record; 0xFF → next seq u64 BE),
//! `qos2in` (client id 0x00 packet id u16 BE → empty), `retained` (topic → record).
//! Values are postcard-encoded records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::TransactionError;
use sled::{Batch, Transactional};

use super::records::{MessageRecord, QueuedRecord, SessionRecord, SubscriptionRecord};
use super::sled_open::{self, read_u64};
use super::store::{validate_ops, Op, Snapshot, Store, StoreError, StoredSession};

/// Schema version written by this binary.
pub const CURRENT_SCHEMA: u32 = 1;

pub(super) const TREE_NAMES: [&str; 6] =
    ["meta", "sessions", "subs", "queue", "qos2in", "retained"];
pub(super) const META: usize = 0;
pub(super) const SESSIONS: usize = 1;
pub(super) const SUBS: usize = 2;
pub(super) const QUEUE: usize = 3;
pub(super) const QOS2IN: usize = 4;
pub(super) const RETAINED: usize = 5;
pub(super) const SCHEMA_KEY: &[u8] = b"schema";
/// Key of the queue seq high-water mark (next seq, u64 BE) in the `queue` tree: 0xFF
/// never occurs in UTF-8, so it cannot collide with a client id prefix. Keeping it in
/// the `queue` tree lets queue-only batches skip the (4x slower) multi-tree transaction.
pub(super) const NEXT_SEQ_KEY: &[u8] = &[0xFF];

/// A [`Store`] backed by a sled database in a directory.
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    trees: Vec<sled::Tree>,
    schema: u32,
    next_seq: u64,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("schema", &self.schema)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// Pending writes of one `apply`, per tree: key → `Some(value)` to insert, `None` to remove.
type Plan = [BTreeMap<Vec<u8>, Option<Vec<u8>>>; 6];

/// Sessions being loaded, by client id.
type Sessions = BTreeMap<String, StoredSession>;

impl SledStore {
    /// Opens the store in `dir`, creating the directory and a fresh store if needed.
    /// Fails if `dir` holds other files, a corrupt database, a database without a schema
    /// version, or one with a newer schema.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        Self::from_opened(dir, sled_open::open(dir, true)?)
    }

    /// Opens an existing store without writing the schema key; fails if `dir` does not
    /// hold a store. For inspection.
    pub fn open_existing(dir: &Path) -> Result<SledStore, StoreError> {
        Self::from_opened(dir, sled_open::open(dir, false)?)
    }

    fn from_opened(dir: &Path, o: sled_open::Opened) -> Result<SledStore, StoreError> {
        Ok(SledStore {
            path: dir.to_owned(),
            db: o.db,
            trees: o.trees,
            schema: o.schema,
            next_seq: o.next_seq,
        })
    }

    /// The schema version of the store.
    pub fn schema_version(&self) -> u32 {
        self.schema
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies everything into a new store at `dest` (missing or empty directory) and
    /// returns it. sled 0.34 never gives back disk space after deletions (it reuses it),
    /// so this is the way to shrink a store: copy, drop both, then swap the directories
    /// (the caller's job). The copy is flushed before it is returned.
    pub fn copy_to(&self, dest: &Path) -> Result<SledStore, StoreError> {
        let mut copy = SledStore::open(dest)?;
        if copy.next_seq != 1 || !copy.trees[SESSIONS].is_empty() {
            return Err(StoreError::NotAStore {
                path: dest.to_owned(),
                reason: "the destination of a copy must be empty".into(),
            });
        }
        for tree in [SESSIONS, SUBS, QUEUE, QOS2IN, RETAINED] {
            let mut batch = Batch::default();
            let mut n = 0;
            for kv in self.trees[tree].iter() {
                let (k, v) = kv?;
                batch.insert(k, v);
                n += 1;
                if n % 10_000 == 0 {
                    copy.trees[tree].apply_batch(std::mem::take(&mut batch))?;
                }
            }
            copy.trees[tree].apply_batch(batch)?;
        }
        copy.next_seq = self.next_seq;
        copy.flush()?;
        Ok(copy)
    }

    /// The session records, by client id, without their children yet.
    fn load_sessions(&self) -> Result<Sessions, StoreError> {
        let mut sessions = BTreeMap::new();
        for kv in self.trees[SESSIONS].iter() {
            let (k, v) = kv?;
            let id = utf8_key("sessions", &k)?;
            let record: SessionRecord = decode("sessions", &k, &v)?;
            if record.client_id != id {
                return Err(StoreError::Corrupt {
                    tree: "sessions",
                    key: k.to_vec(),
                    reason: format!("record is for client {:?}", record.client_id),
                });
            }
            let s = StoredSession {
                record,
                subscriptions: Vec::new(),
                queue: Vec::new(),
                inbound_qos2: Vec::new(),
                replay: None,
            };
            sessions.insert(id.to_owned(), s);
        }
        Ok(sessions)
    }

    /// Adds the subscriptions to their sessions; returns the orphans' count.
    fn load_subscriptions(&self, sessions: &mut Sessions) -> Result<usize, StoreError> {
        let mut orphans = 0usize;
        for kv in self.trees[SUBS].iter() {
            let (k, v) = kv?;
            let (id, _) = split_key("subs", &k)?;
            let sub: SubscriptionRecord = decode("subs", &k, &v)?;
            match sessions.get_mut(id) {
                Some(s) => s.subscriptions.push(sub),
                None => orphans += 1,
            }
        }
        Ok(orphans)
    }

    /// Adds the queued messages to their sessions; returns the orphans' count and the
    /// next queue seq (above every stored one).
    fn load_queues(&self, sessions: &mut Sessions) -> Result<(usize, u64), StoreError> {
        let mut orphans = 0usize;
        let mut next_seq = self.next_seq;
        for kv in self.trees[QUEUE].iter() {
            let (k, v) = kv?;
            if k.as_ref() == NEXT_SEQ_KEY {
                continue;
            }
            let (id, rest) = split_key("queue", &k)?;
            let seq = read_u64(rest).ok_or_else(|| StoreError::Corrupt {
                tree: "queue",
                key: k.to_vec(),
                reason: "seq is not 8 bytes".into(),
            })?;
            next_seq = next_seq.max(seq.saturating_add(1));
            let rec: QueuedRecord = decode("queue", &k, &v)?;
            match sessions.get_mut(id) {
                Some(s) => s.queue.push((seq, rec)),
                None => orphans += 1,
            }
        }
        Ok((orphans, next_seq))
    }

    /// Adds the inbound QoS 2 packet ids to their sessions; returns the orphans' count.
    fn load_inbound_qos2(&self, sessions: &mut Sessions) -> Result<usize, StoreError> {
        let mut orphans = 0usize;
        for k in self.trees[QOS2IN].iter().keys() {
            let k = k?;
            let (id, rest) = split_key("qos2in", &k)?;
            let bytes: [u8; 2] = rest.try_into().map_err(|_| StoreError::Corrupt {
                tree: "qos2in",
                key: k.to_vec(),
                reason: "packet id is not 2 bytes".into(),
            })?;
            match sessions.get_mut(id) {
                Some(s) => s.inbound_qos2.push(u16::from_be_bytes(bytes)),
                None => orphans += 1,
            }
        }
        Ok(orphans)
    }

    fn load_retained(&self) -> Result<Vec<MessageRecord>, StoreError> {
        let mut retained = Vec::new();
        for kv in self.trees[RETAINED].iter() {
            let (k, v) = kv?;
            utf8_key("retained", &k)?;
            let msg: MessageRecord = decode("retained", &k, &v)?;
            retained.push(msg);
        }
        Ok(retained)
    }

    /// Adds the writes of one op to `plan`; `next_seq` rises past each queued seq.
    fn plan_op(&self, plan: &mut Plan, next_seq: &mut u64, op: Op) -> Result<(), StoreError> {
        let (tree, key, value) = match op {
            Op::PutSession(rec) => {
                let v = encode(&rec)?;
                (SESSIONS, rec.client_id.into_bytes(), Some(v))
            }
            Op::DeleteSession { client_id } => {
                let p = prefix(client_id.as_str());
                for tree in [SUBS, QUEUE, QOS2IN] {
                    self.delete_prefix(plan, tree, &p)?;
                }
                (SESSIONS, client_id.as_str().as_bytes().to_vec(), None)
            }
            Op::PutSubscription { client_id, sub } => {
                let k = child_key(client_id.as_str(), sub.filter.as_bytes());
                (SUBS, k, Some(encode(&sub)?))
            }
            Op::DeleteSubscription { client_id, filter } => {
                (SUBS, child_key(client_id.as_str(), filter.as_bytes()), None)
            }
            Op::PutQueued {
                client_id,
                seq,
                rec,
            } => {
                *next_seq = (*next_seq).max(seq.saturating_add(1));
                let k = child_key(client_id.as_str(), &seq.to_be_bytes());
                (QUEUE, k, Some(encode(&rec)?))
            }
            Op::DeleteQueued { client_id, seq } => (
                QUEUE,
                child_key(client_id.as_str(), &seq.to_be_bytes()),
                None,
            ),
            Op::PutInboundQos2 {
                client_id,
                packet_id,
            } => {
                let k = child_key(client_id.as_str(), &packet_id.to_be_bytes());
                (QOS2IN, k, Some(Vec::new()))
            }
            Op::DeleteInboundQos2 {
                client_id,
                packet_id,
            } => (
                QOS2IN,
                child_key(client_id.as_str(), &packet_id.to_be_bytes()),
                None,
            ),
            Op::PutRetained(msg) => {
                let v = encode(&msg)?;
                (RETAINED, msg.topic.into_bytes(), Some(v))
            }
            Op::DeleteRetained { topic } => (RETAINED, topic.into_bytes(), None),
            Op::Delivered { .. }
            | Op::LogPosition { .. }
            | Op::CaughtUp { .. }
            | Op::RefreshPosition { .. } => return Ok(()),
            Op::RaiseNextSeq { next_seq: n } => {
                *next_seq = (*next_seq).max(n);
                return Ok(());
            }
        };
        plan[tree].insert(key, value);
        Ok(())
    }

    /// Writes `plan` atomically: one batch per tree it touches, in a transaction when it
    /// touches more than one.
    fn write_plan(&self, plan: Plan) -> Result<(), StoreError> {
        let mut trees = Vec::new();
        let mut batches = Vec::new();
        for (i, writes) in plan.into_iter().enumerate() {
            if writes.is_empty() {
                continue;
            }
            let mut batch = Batch::default();
            for (k, v) in writes {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
            trees.push(&self.trees[i]);
            batches.push(batch);
        }
        match trees.len() {
            0 => {}
            // A single tree's batch is atomic on its own, without the transaction cost.
            1 => trees[0].apply_batch(batches.swap_remove(0))?,
            _ => trees
                .as_slice()
                .transaction(|views| {
                    for (view, batch) in views.iter().zip(&batches) {
                        view.apply_batch(batch)?;
                    }
                    Ok(())
                })
                .map_err(|e: TransactionError<()>| match e {
                    TransactionError::Storage(e) => StoreError::Sled(e),
                    TransactionError::Abort(()) => {
                        StoreError::Sled(sled::Error::ReportableBug("transaction aborted".into()))
                    }
                })?,
        }
        Ok(())
    }

    /// Adds removals of every key under `prefix` in `tree`, on disk or earlier in the plan.
    fn delete_prefix(&self, plan: &mut Plan, tree: usize, prefix: &[u8]) -> Result<(), StoreError> {
        for key in self.trees[tree].scan_prefix(prefix).keys() {
            plan[tree].insert(key?.to_vec(), None);
        }
        for (_, v) in plan[tree]
            .range_mut(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            *v = None;
        }
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Encode(e.to_string()))
}

fn decode<T: DeserializeOwned>(tree: &'static str, key: &[u8], v: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(v).map_err(|e| StoreError::Corrupt {
        tree,
        key: key.to_vec(),
        reason: e.to_string(),
    })
}

fn prefix(client_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(client_id.len() + 9);
    k.extend_from_slice(client_id.as_bytes());
    k.push(0);
    k
}

fn child_key(client_id: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = prefix(client_id);
    k.extend_from_slice(rest);
    k
}

/// Splits `client id 0x00 rest`.
fn split_key<'k>(tree: &'static str, key: &'k [u8]) -> Result<(&'k str, &'k [u8]), StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        tree,
        key: key.to_vec(),
        reason: reason.to_owned(),
    };
    let pos = key
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| corrupt("no separator"))?;
    let id = std::str::from_utf8(&key[..pos]).map_err(|_| corrupt("client id is not UTF-8"))?;
    Ok((id, &key[pos + 1..]))
}

fn utf8_key<'k>(tree: &'static str, key: &'k [u8]) -> Result<&'k str, StoreError> {
    std::str::from_utf8(key).map_err(|_| StoreError::Corrupt {
        tree,
        key: key.to_vec(),
        reason: "key is not UTF-8".into(),
    })
}

impl Store for SledStore {
    fn compact_into(&self, dest: &Path) -> Result<bool, StoreError> {
        self.copy_to(dest)?;
        Ok(true)
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut sessions = self.load_sessions()?;
        let mut orphans = self.load_subscriptions(&mut sessions)?;
        let (queued_orphans, next_seq) = self.load_queues(&mut sessions)?;
        orphans += queued_orphans;
        orphans += self.load_inbound_qos2(&mut sessions)?;
        if orphans > 0 {
            tracing::debug!(orphans, "store entries without a session record ignored");
        }
        Ok(Snapshot {
            sessions: sessions.into_values().collect(),
            retained: self.load_retained()?,
            next_seq,
        })
    }

    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        validate_ops(&ops)?;
        let mut plan: Plan = Default::default();
        let mut next_seq = self.next_seq;
        for op in ops {
            self.plan_op(&mut plan, &mut next_seq, op)?;
        }
        if next_seq > self.next_seq {
            plan[QUEUE].insert(NEXT_SEQ_KEY.to_vec(), Some(next_seq.to_be_bytes().to_vec()));
        }
        self.write_plan(plan)?;
        self.next_seq = next_seq;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}
