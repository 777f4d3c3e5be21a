//! Session state in JetStream (cluster mode): a [`Store`] whose sessions, subscriptions,
//! queued/in-flight messages and inbound QoS 2 ids live in the stream `STARLING_STATE`
//! (`replicas` copies, file storage, one message kept per subject), so any node can
//! resume a session that another node held.
//!
//! One subject per key, `starling.s.<client>.<kind>[.<key>]` ([`keys`]): `r` the session
//! record, `b.<hash of filter>` a subscription, `q.<seq>` a queued message, `i.<id>` an
//! inbound QoS 2 id; values are the postcard records the sled store keeps (a queued
//! message's followed by its cluster origin, [`queued`]). A put
//! publishes the record on its subject (the stream keeps the last one); a delete
//! publishes an empty tombstone with a one-second message TTL, which replaces the value
//! and then disappears; deleting a session purges `starling.s.<client>.>`. The cursor
//! (`c`, [`cursor`]) also records the message log position the session's queue covers,
//! from the router's `LogPosition` ops, so that a resume replays the log from there.
//! The other stores ignore those ops.
//!
//! Writes are pipelined: [`Store::apply`] publishes and keeps the acknowledgement
//! futures; [`Store::flush`] waits for all of them, re-sending (bounded, across a leader
//! election) those that failed and were not superseded by a later write of the same key.
//! [`Store::load`] returns no sessions: a node loads a session when its client connects
//! ([`Store::load_session`]), reading from the stream leader, which has applied every
//! write and purge it acknowledged (a replica may lag behind it: `io::read_all`).
//! Retained messages are not stored here (they have their own stream,
//! [`super::retained`]).
//!
//! The trait is synchronous and runs on the persistence actor's thread; the NATS work
//! runs on a small runtime of the store's own, and the caller blocks on the answer.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::config::ClusterConfig;
use crate::persistence::convert::unix_ms_now;
use crate::persistence::{
    Op, SessionReader, SessionRecord, Snapshot, Store, StoreError, StoredSession,
    SubscriptionRecord,
};

mod cursor;
mod io;
pub mod keys;
mod queued;

use io::{ensure_stream, read_all, send, settle, Pending, ATTEMPTS, MAX_PENDING, RETRY_STEP};
use keys::{Key, Kind};

/// The stream's name.
pub const STREAM: &str = "STARLING_STATE";
/// Bound of any one call into the store's runtime.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What every copy of the store shares: the runtime and the NATS connection.
struct Shared {
    /// `Some` until dropped (a runtime must not be dropped inside another one).
    rt: Option<tokio::runtime::Runtime>,
    js: jetstream::Context,
    stream: stream::Stream,
    /// The replay cursors of the sessions this node holds (kept across a restart of
    /// the persistence actor).
    cursors: Mutex<cursor::Cursors>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The JetStream [`Store`]. Cheap to re-open ([`JsStore::reopen`]): copies share one
/// connection.
pub struct JsStore {
    shared: Arc<Shared>,
    /// Behind a mutex so that `load_session(&self)` can wait for outstanding writes.
    pending: Mutex<Vec<Pending>>,
}

impl JsStore {
    /// The subject filter of the `STARLING_STATE` stream matching every key of one
    /// client's stored session (for tools that read the stream directly).
    pub fn client_filter(client_id: &str) -> String {
        keys::client_filter(client_id)
    }

    /// The log position of a stored cursor value (key `starling.s.<client>.c`), if it
    /// has one (for tests and tools that read the stream directly).
    #[doc(hidden)]
    pub fn cursor_position(value: &[u8]) -> Option<u64> {
        cursor::decode(value).ok()?.position
    }

    /// Connects to NATS and creates the stream unless it exists (bounded, 30 s).
    pub fn open(config: &ClusterConfig) -> Result<JsStore, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("starling-js-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Cluster(format!("cannot start the store runtime: {e}")))?;
        let (urls, name, replicas) = (
            config.urls.clone(),
            format!("starling-{}-store", config.node_id),
            config.replicas,
        );
        let connect = async move {
            let addrs = urls
                .iter()
                .map(|u| u.parse::<async_nats::ServerAddr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let client = async_nats::ConnectOptions::new()
                .name(name)
                .connection_timeout(Duration::from_secs(5))
                .connect(addrs)
                .await
                .map_err(|e| e.to_string())?;
            let js = jetstream::ContextBuilder::new()
                .max_ack_inflight(MAX_PENDING * 2)
                .build(client);
            let stream = ensure_stream(&js, replicas).await;
            Ok::<_, String>((js, stream))
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(30), connect).await;
            let _ = tx.send(r);
        });
        let (js, stream) = match rx.recv() {
            Ok(Ok(Ok(pair))) => pair,
            Ok(Ok(Err(e))) => return Err(StoreError::Cluster(e)),
            _ => {
                return Err(StoreError::Cluster(
                    "timed out opening the session state stream".into(),
                ))
            }
        };
        info!(stream = STREAM, "session state in JetStream");
        Ok(JsStore {
            shared: Arc::new(Shared {
                rt: Some(rt),
                js,
                stream,
                cursors: Mutex::default(),
            }),
            pending: Mutex::new(Vec::new()),
        })
    }

    /// A fresh handle on the same connection (the persistence actor's restart).
    pub fn reopen(&self) -> JsStore {
        JsStore {
            shared: Arc::clone(&self.shared),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Runs `fut` on the store's runtime and blocks until it is done.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let rt = self.shared.rt.as_ref().ok_or_else(gone)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv_timeout(CALL_TIMEOUT).map_err(|_| gone())
    }

    /// Publishes `writes` in order and adds them to the outstanding ones.
    fn publish(&self, writes: Vec<(String, Bytes)>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let js = self.shared.js.clone();
        let sent = self.run(async move {
            let mut sent = Vec::with_capacity(writes.len());
            for (subject, payload) in writes {
                let ack = send(&js, &subject, &payload).await;
                sent.push(Pending {
                    subject,
                    payload,
                    ack,
                });
            }
            sent
        })?;
        self.lock().extend(sent);
        Ok(())
    }

    /// Waits for every outstanding acknowledgement (re-sending failed writes).
    fn settle(&self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut *self.lock());
        if pending.is_empty() {
            return Ok(());
        }
        let js = self.shared.js.clone();
        self.run(settle(js, pending))?
    }

    fn cursors(&self) -> std::sync::MutexGuard<'_, cursor::Cursors> {
        self.shared
            .cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        // A panic while holding it leaves a plain Vec: still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes everything stored under one client (after the writes before it).
    fn purge_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.settle()?;
        let stream = self.shared.stream.clone();
        let filter = keys::client_filter(client_id);
        self.run(async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match stream.purge().filter(filter.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(e) if attempt < ATTEMPTS => {
                        warn!(attempt, error = %e, "session purge failed; retrying");
                        tokio::time::sleep(RETRY_STEP * attempt).await;
                    }
                    Err(e) => return Err(StoreError::Cluster(format!("purge failed: {e}"))),
                }
            }
        })?
    }
}

fn gone() -> StoreError {
    StoreError::Cluster("the session state store is not answering".into())
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Bytes, StoreError> {
    postcard::to_allocvec(value)
        .map(Bytes::from)
        .map_err(|e| StoreError::Encode(e.to_string()))
}

/// The reader shares the store's connection and stream, not its unacknowledged writes:
/// the persistence actor flushes before it hands a load over.
impl SessionReader for JsStore {
    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError> {
        Store::load_session(self, client_id)
    }
}

impl Store for JsStore {
    fn session_reader(&self) -> Option<Box<dyn SessionReader>> {
        Some(Box::new(self.reopen()))
    }

    /// No sessions: each is loaded when its client connects ([`Store::load_session`]).
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            next_seq: 1,
            ..Snapshot::default()
        })
    }

    /// Publishes the ops in order; not atomic across keys (each write is idempotent, and
    /// a failure leaves the batch's publishes unacknowledged).
    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        let now_ms = unix_ms_now();
        let mut writes = Vec::new();
        let mut cursors = self.cursors();
        // The origin of the next `PutQueued` (see [`queued`]).
        let mut numbered = None;
        for op in &ops {
            let (subject, value) = match op {
                Op::PutSession(r) => (Key::new(&r.client_id, Kind::Record).subject(), encode(r)?),
                Op::PutSubscription { client_id, sub } => {
                    cursors.subscribed(client_id.as_str(), &sub.filter, now_ms);
                    let kind = Kind::Subscription(&sub.filter);
                    (Key::new(client_id.as_str(), kind).subject(), encode(sub)?)
                }
                Op::DeleteSubscription { client_id, filter } => {
                    cursors.unsubscribed(client_id.as_str(), filter);
                    (
                        Key::new(client_id.as_str(), Kind::Subscription(filter)).subject(),
                        Bytes::new(),
                    )
                }
                Op::PutQueued {
                    client_id,
                    seq,
                    rec,
                } => {
                    // The actor sends `Delivered` just before the message it numbers.
                    let fresh = numbered.take().filter(|(c, _)| c == client_id);
                    let origin = cursors.queued(client_id.as_str(), *seq, fresh.map(|f| f.1));
                    let value = queued::encode(rec, origin)
                        .map_err(|e| StoreError::Encode(e.to_string()))?;
                    (
                        Key::new(client_id.as_str(), Kind::Queued(*seq)).subject(),
                        value,
                    )
                }
                Op::DeleteQueued { client_id, seq } => {
                    cursors.dequeued(client_id.as_str(), *seq);
                    (
                        Key::new(client_id.as_str(), Kind::Queued(*seq)).subject(),
                        Bytes::new(),
                    )
                }
                Op::PutInboundQos2 {
                    client_id,
                    packet_id,
                } => (
                    Key::new(client_id.as_str(), Kind::Qos2(*packet_id)).subject(),
                    encode(packet_id)?,
                ),
                Op::DeleteInboundQos2 {
                    client_id,
                    packet_id,
                } => (
                    Key::new(client_id.as_str(), Kind::Qos2(*packet_id)).subject(),
                    Bytes::new(),
                ),
                Op::Delivered { client_id, origin } => {
                    cursors.delivered(client_id.as_str(), origin.node, origin.seq, now_ms);
                    numbered = Some((client_id.clone(), *origin));
                    continue;
                }
                Op::DeleteSession { client_id } => {
                    cursors.forget(client_id.as_str());
                    self.publish(std::mem::take(&mut writes))?;
                    self.purge_client(client_id.as_str())?;
                    continue;
                }
                Op::LogPosition { seq } => {
                    cursors.log_position(*seq);
                    continue;
                }
                Op::CaughtUp { client_id } => {
                    cursors.caught_up(client_id.as_str());
                    continue;
                }
                Op::RefreshPosition { client_id } => {
                    cursors.refresh(client_id.as_str());
                    continue;
                }
                // The retained stream holds these.
                Op::PutRetained(_) | Op::DeleteRetained { .. } => continue,
                // Queue seqs are per node incarnation here; `load` reports none.
                Op::RaiseNextSeq { .. } => continue,
            };
            writes.push((subject, value));
            if writes.len() + self.lock().len() >= MAX_PENDING {
                self.publish(std::mem::take(&mut writes))?;
                self.settle()?;
            }
        }
        // After the batch's messages: a cursor never covers a message not yet written.
        for (client, cursor) in cursors.take_dirty(now_ms) {
            let value = cursor::encode(&cursor).map_err(|e| StoreError::Encode(e.to_string()))?;
            writes.push((Key::new(&client, Kind::Cursor).subject(), value));
        }
        self.publish(writes)
    }

    /// Every write applied so far is acknowledged by JetStream (with R3: by a quorum).
    fn flush(&mut self) -> Result<(), StoreError> {
        self.settle()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Reads the last value of every key under the client (after the outstanding
    /// writes). A session whose expiry passed, or entries with no session record, are
    /// purged and reported as absent.
    fn load_session(&self, client_id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.settle()?;
        let stream = self.shared.stream.clone();
        let filter = keys::client_filter(client_id);
        let entries = self.run(read_all(stream, filter))??;
        let mut record = None;
        let mut session = StoredSession {
            record: SessionRecord {
                client_id: client_id.to_owned(),
                protocol: 4,
                expiry_secs: 0,
                disconnected_at_ms: None,
                will: None,
            },
            subscriptions: Vec::new(),
            queue: Vec::new(),
            inbound_qos2: Vec::new(),
            replay: None,
        };
        let found = entries.len();
        let mut origins = Vec::new();
        for (subject, payload) in entries {
            match keys::kind_of(&subject) {
                Some(keys::Parsed::Record) => {
                    record = Some(decode::<SessionRecord>(&subject, &payload)?)
                }
                Some(keys::Parsed::Subscription) => {
                    session
                        .subscriptions
                        .push(decode::<SubscriptionRecord>(&subject, &payload)?)
                }
                Some(keys::Parsed::Queued(seq)) => {
                    let (rec, origin) =
                        queued::decode(&payload).map_err(|e| corrupt(&subject, e))?;
                    origins.extend(origin.map(|o| (seq, o)));
                    session.queue.push((seq, rec));
                }
                Some(keys::Parsed::Qos2(id)) => session.inbound_qos2.push(id),
                Some(keys::Parsed::Cursor) => {
                    let cursor = cursor::decode(&payload).map_err(|e| corrupt(&subject, e))?;
                    session.replay = Some(cursor);
                }
                None => warn!(subject, "unknown key in the session state stream; skipped"),
            }
        }
        let live = record.filter(|r| !expired(r, unix_ms_now()));
        let Some(record) = live else {
            if found > 0 {
                self.purge_client(client_id)?;
            }
            return Ok(None);
        };
        session.record = record;
        self.cursors()
            .loaded(client_id, session.replay.as_ref(), &origins);
        if let Some(cursor) = session.replay.as_mut() {
            // Exactly once: what the queue holds is not replayed, even above the cursor
            // (a node that died between a batch's queue writes and its cursor write).
            cursor.stored = origins.iter().map(|(_, o)| (o.node, o.seq)).collect();
        }
        session
            .subscriptions
            .sort_by(|a, b| a.filter.cmp(&b.filter));
        session.queue.sort_by_key(|(seq, _)| *seq);
        session.inbound_qos2.sort_unstable();
        Ok(Some(session))
    }
}

/// True when the session's expiry has passed since its client went away.
fn expired(r: &SessionRecord, now_ms: u64) -> bool {
    match (r.disconnected_at_ms, r.expiry_secs) {
        (_, u32::MAX) | (None, _) => false,
        (Some(at), secs) => at.saturating_add(u64::from(secs) * 1000) <= now_ms,
    }
}

fn decode<T: DeserializeOwned>(subject: &str, payload: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(payload).map_err(|e| corrupt(subject, e))
}

fn corrupt(subject: &str, e: postcard::Error) -> StoreError {
    StoreError::Corrupt {
        tree: STREAM,
        key: subject.as_bytes().to_vec(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_counts_from_going_offline() {
        let mut r = SessionRecord {
            client_id: "c".into(),
            protocol: 5,
            expiry_secs: 10,
            disconnected_at_ms: None,
            will: None,
        };
        assert!(!expired(&r, u64::MAX), "connected: never");
        r.disconnected_at_ms = Some(1_000);
        assert!(!expired(&r, 10_999));
        assert!(expired(&r, 11_000));
        r.expiry_secs = u32::MAX;
        assert!(!expired(&r, u64::MAX));
    }
}
