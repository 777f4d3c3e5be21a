//! The `Store` trait, the operations it applies and the snapshot it loads.

use std::path::PathBuf;

use crate::delivery::Origin;
use crate::message::ClientId;

use super::records::{
    MessageRecord, QueuedRecord, ReplayCursor, SessionRecord, SubscriptionRecord,
};

/// Durable storage of sessions, subscriptions, queues, inbound QoS 2 ids and retained
/// messages. Implementations: [`super::SledStore`] (on disk) and [`super::MemoryStore`].
///
/// Entries stored under a client id that has no session record (e.g. a `PutQueued`
/// before any `PutSession`) are kept but not returned by [`Store::load`] until the
/// session record exists; `DeleteSession` removes them.
///
/// ```
/// use starling::persistence::{MemoryStore, Op, SessionRecord, Store};
///
/// let mut store = MemoryStore::new();
/// store.apply(vec![Op::PutSession(SessionRecord {
///     client_id: "sensor-7".into(),
///     protocol: 5,
///     expiry_secs: 3600,
///     disconnected_at_ms: None,
///     will: None,
/// })])?;
/// let snapshot = store.load()?;
/// assert_eq!(snapshot.sessions.len(), 1);
/// assert_eq!(snapshot.sessions[0].record.client_id, "sensor-7");
/// # Ok::<(), starling::persistence::StoreError>(())
/// ```
pub trait Store: Send + 'static {
    /// Everything stored, for replay at start. Sessions sorted by client id; each
    /// session's subscriptions sorted by filter, queue by seq ascending, inbound QoS 2
    /// ids ascending; retained messages sorted by topic.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Applies ops atomically (all or nothing), in order.
    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError>;
    /// Makes everything applied so far durable (fsync).
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Approximate bytes on disk (0 for memory).
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// Writes a compacted copy of the live data into `dest` (a missing directory) and
    /// returns true, or returns false when the backend does not compact.
    fn compact_into(&self, _dest: &std::path::Path) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// A reader that loads sessions on another thread, for a backend whose reads wait
    /// on the network: the persistence actor flushes, then hands the load to it. `None`
    /// (the default): loads run on the persistence actor's thread.
    fn session_reader(&self) -> Option<Box<dyn SessionReader>> {
        None
    }

    /// One session and everything stored under it (used when a session actor died and
    /// its client comes back). The default loads everything; backends may do better.
    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError> {
        let snapshot = self.load()?;
        Ok(snapshot
            .sessions
            .into_iter()
            .find(|s| s.record.client_id == client_id))
    }
}

/// Loads sessions away from the persistence actor (see [`Store::session_reader`]); it
/// sees what the store had flushed when it was made, and later writes as they land.
pub trait SessionReader: Send + 'static {
    /// Like [`Store::load_session`].
    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError>;
}

/// Everything in a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Sessions, sorted by client id.
    pub sessions: Vec<StoredSession>,
    /// Retained messages, sorted by topic.
    pub retained: Vec<MessageRecord>,
    /// 1 + the largest queued seq ever applied (even if deleted since); at least 1.
    pub next_seq: u64,
}

/// One session and everything stored under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The session record.
    pub record: SessionRecord,
    /// Subscriptions, sorted by filter.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// Queued and in-flight messages, sorted by seq ascending.
    pub queue: Vec<(u64, QueuedRecord)>,
    /// Packet ids of inbound QoS 2 messages received but not yet released, ascending.
    pub inbound_qos2: Vec<u16>,
    /// Cluster mode: where the replay of the message log starts for it.
    pub replay: Option<ReplayCursor>,
}

impl StoredSession {
    /// A session with nothing stored under it yet.
    pub fn new(record: SessionRecord) -> StoredSession {
        StoredSession {
            record,
            subscriptions: Vec::new(),
            queue: Vec::new(),
            inbound_qos2: Vec::new(),
            replay: None,
        }
    }
}

/// A change to apply with [`Store::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Inserts or replaces a session record.
    PutSession(SessionRecord),
    /// Removes the session and everything under it (subscriptions, queue, inbound qos2 ids).
    DeleteSession {
        /// Client id.
        client_id: ClientId,
    },
    /// Inserts or replaces the subscription with the same filter.
    PutSubscription {
        /// Client id.
        client_id: ClientId,
        /// The subscription.
        sub: SubscriptionRecord,
    },
    /// Removes a subscription (no-op if absent).
    DeleteSubscription {
        /// Client id.
        client_id: ClientId,
        /// Its filter.
        filter: String,
    },
    /// Inserts or overwrites a queued message (e.g. when it gets a packet id).
    PutQueued {
        /// Client id.
        client_id: ClientId,
        /// Global sequence number (orders the session's queue).
        seq: u64,
        /// The queued message.
        rec: QueuedRecord,
    },
    /// Removes a queued message (no-op if absent).
    DeleteQueued {
        /// Client id.
        client_id: ClientId,
        /// Its seq.
        seq: u64,
    },
    /// Records an inbound QoS 2 packet id (PUBREC sent, PUBREL awaited).
    PutInboundQos2 {
        /// Client id.
        client_id: ClientId,
        /// Packet id.
        packet_id: u16,
    },
    /// Forgets an inbound QoS 2 packet id.
    DeleteInboundQos2 {
        /// Client id.
        client_id: ClientId,
        /// Packet id.
        packet_id: u16,
    },
    /// Inserts or replaces the retained message of `topic`.
    PutRetained(MessageRecord),
    /// Removes the retained message of a topic.
    DeleteRetained {
        /// Topic name.
        topic: String,
    },
    /// Cluster mode: message `seq` of node incarnation `origin` was queued for the
    /// session (its [`ReplayCursor`]). Stores without a message log ignore it.
    Delivered {
        /// Client id.
        client_id: ClientId,
        /// The message's cluster number.
        origin: Origin,
    },
    /// Cluster mode: every message log entry up to stream sequence `seq` that the
    /// router routed to this node's sessions is in the ops before this one, so a
    /// session's [`ReplayCursor`] written after it may start its replay above `seq`
    /// (sessions still catching up on a replay excepted: [`Op::CaughtUp`]). Stores
    /// without a message log ignore it.
    LogPosition {
        /// The highest message log sequence the router had routed.
        seq: u64,
    },
    /// Cluster mode: the session loaded from the store has caught up (the messages of
    /// its replay of the message log are in the ops before this one): from now on
    /// [`Op::LogPosition`] covers it. Stores without a message log ignore it.
    CaughtUp {
        /// Client id.
        client_id: ClientId,
    },
    /// Cluster mode: the session's cursor is written again if the log position valid
    /// for it moved since it was last written, so that a session without deliveries
    /// still resumes from a recent position. Stores without a message log ignore it.
    RefreshPosition {
        /// Client id.
        client_id: ClientId,
    },
    /// Raises the store's next queue seq ([`Snapshot::next_seq`]) to at least `next_seq`
    /// (never lowers it). `starling migrate` ends with it so that a migrated store never
    /// hands out a seq the source had used. Every backend must implement it.
    RaiseNextSeq {
        /// The lowest next seq the store may report from now on.
        next_seq: u64,
    },
}

impl Op {
    /// The client id the op is about, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Op::PutSession(r) => Some(&r.client_id),
            Op::DeleteSession { client_id }
            | Op::PutSubscription { client_id, .. }
            | Op::DeleteSubscription { client_id, .. }
            | Op::PutQueued { client_id, .. }
            | Op::DeleteQueued { client_id, .. }
            | Op::PutInboundQos2 { client_id, .. }
            | Op::DeleteInboundQos2 { client_id, .. }
            | Op::Delivered { client_id, .. }
            | Op::CaughtUp { client_id }
            | Op::RefreshPosition { client_id } => Some(client_id.as_str()),
            Op::PutRetained(_)
            | Op::DeleteRetained { .. }
            | Op::RaiseNextSeq { .. }
            | Op::LogPosition { .. } => None,
        }
    }
}

/// Why a store operation failed.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// sled could not open the directory (corrupt, locked by another process, ...).
    #[error("cannot open store at {path}: {source}")]
    Open {
        /// The store directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// The directory does not hold a Starling store.
    #[error("{path} is not a starling store: {reason}")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store was initialized but its database lost its content.
    #[error("store at {path} is damaged: {reason}")]
    Damaged {
        /// The store directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory cannot be read.
    #[error("cannot read store directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Written by a newer binary.
    #[error("store at {path} has schema version {found}; this binary supports up to {supported}")]
    NewerSchema {
        /// The store directory.
        path: PathBuf,
        /// Version found in the store.
        found: u32,
        /// Highest version this binary reads.
        supported: u32,
    },
    /// A record could not be decoded.
    #[error("corrupt record in {tree} at key {key:?}: {reason}")]
    Corrupt {
        /// Tree name.
        tree: &'static str,
        /// Raw key.
        key: Vec<u8>,
        /// What is wrong.
        reason: String,
    },
    /// A client id contains U+0000, which the key layout uses as a separator.
    #[error("invalid client id {0:?}: contains U+0000")]
    InvalidClientId(String),
    /// A record could not be encoded.
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// Cluster mode: JetStream did not take or give back the session state.
    #[error("cluster store: {0}")]
    Cluster(String),
    /// A store server (PostgreSQL, Redis) failed, refused or could not be reached.
    #[error("{backend} store: {reason}")]
    Server {
        /// The backend's name (`"postgres"`, `"redis"`).
        backend: &'static str,
        /// What went wrong (never the URL's password).
        reason: String,
    },
    /// Any other sled error.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
}

/// Checks that every client id in `ops` can be used in a key (no U+0000).
pub(crate) fn validate_ops(ops: &[Op]) -> Result<(), StoreError> {
    for op in ops {
        if let Some(id) = op.client_id() {
            if id.contains('\0') {
                return Err(StoreError::InvalidClientId(id.to_owned()));
            }
        }
    }
    Ok(())
}
