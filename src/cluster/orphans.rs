//! Orphaned sessions: a persistent session owned (in `STARLING_SESSIONS`,
//! [`super::ownership`]) by a node incarnation that is no longer alive
//! ([`super::nodes`]) expires on schedule, swept by whichever live node gets there first.
//!
//! Every `[cluster] sweep_interval_ms` (±25 %) each node reads a batch of ownership
//! entries (in revision order, continuing where the last round stopped, wrapping at the
//! end), then lists the live incarnations, and for each entry of a dead owner:
//! - not persistent: deletes the entry (nothing is stored for it);
//! - persistent, first seen orphaned: marks it, writing `orphaned_at_ms` into the entry
//!   at the revision read. The mark is the orphan's clock, kept in the bucket so that
//!   another sweeper continues it if this node dies too; a claim (the client back on any
//!   node) writes a plain entry, which ends the clock;
//! - persistent and marked: reads the session record; the session is due once its expiry
//!   interval passed since it went offline (the record's offline time, or the mark when
//!   its client was connected when its node died). Expiry `0xFFFFFFFF` never comes due.
//!
//! A due session is expired as a clean-start CONNECT would: the sweeper claims the id at
//! the revision read (so a concurrent claim makes it give up), under an identity of its
//! own whose control subject it answers, purges `starling.s.<client>.>` from
//! `STARLING_STATE`, then deletes the entry at its own revision. First it asks the owner
//! incarnation directly ([`nodes::answers`]): one still connected to NATS (its heartbeat
//! lapsed, e.g. across a JetStream leader election) keeps the session. A client claiming the id
//! meanwhile asks that identity to release it (as any previous owner), and the answer
//! waits until the purge is done: it then finds nothing stored (session present = 0).
//! An entry whose owner is alive again loses its mark. Exactly one sweeper expires a
//! session: every step is a revision-checked write.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use futures::StreamExt;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::js_store::{keys, STREAM as STATE_STREAM};
use super::nodes::{self, unhex, Alive};
use super::ownership::{control_subject, Owner};
use crate::persistence::convert::unix_ms_now;
use crate::persistence::SessionRecord;

/// Ownership entries looked at per round at most.
const BATCH: usize = 256;
/// How long a round's read of the entries may wait for the next one.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a release request waits for an expiry in progress.
const RELEASE_WAIT: Duration = Duration::from_secs(4);
/// How long the owner of a due session gets to show it is alive after all.
const ASK_OWNER: Duration = Duration::from_secs(2);
/// Purge attempts (a stream leader election takes seconds).
const PURGE_ATTEMPTS: u32 = 4;

/// An ownership entry as the sweeper reads and writes it: the [`Owner`] (which is all a
/// claim reads; it ignores the mark) and the orphan mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub owner: Owner,
    /// When a sweeper first saw the owner dead, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned_at_ms: Option<u64>,
}

/// What one look at an entry calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// The owner is alive, or nothing to do.
    Keep,
    /// The owner is alive again: drop the mark.
    Unmark,
    /// A dead owner's clean session: delete the entry.
    Forget,
    /// A dead owner's persistent session, first seen: start its clock.
    Mark,
    /// Marked at this time: check the session's expiry.
    Check(u64),
}

/// The first look at an entry, given whether its owner incarnation is alive.
pub fn look(entry: &Entry, alive: bool) -> Look {
    match (alive, entry.owner.persistent, entry.orphaned_at_ms) {
        (true, _, Some(_)) => Look::Unmark,
        (true, _, None) => Look::Keep,
        (false, false, _) => Look::Forget,
        (false, true, None) => Look::Mark,
        (false, true, Some(at)) => Look::Check(at),
    }
}

/// True when an orphaned session marked at `marked_ms` has expired at `now_ms`: no
/// record (nothing to keep), or its expiry interval passed since it went offline (the
/// record's time, or the mark's while its client was connected). Never for `u32::MAX`.
pub fn due(record: Option<&SessionRecord>, marked_ms: u64, now_ms: u64) -> bool {
    let Some(r) = record else { return true };
    if r.expiry_secs == u32::MAX {
        return false;
    }
    let since = r.disconnected_at_ms.unwrap_or(marked_ms);
    since.saturating_add(u64::from(r.expiry_secs) * 1000) <= now_ms
}

/// The identity a sweeper claims an expiring session under (its own control subject).
pub fn expiry_identity(node_id: &str, origin: u64) -> String {
    format!("{node_id}/expiry/{origin:016x}")
}

/// What the sweeper works with.
pub(super) struct Sweeper {
    pub js: jetstream::Context,
    pub client: async_nats::Client,
    pub sessions: kv::Store,
    pub nodes: kv::Store,
    /// This node's incarnation.
    pub origin: u64,
    /// The identity expiring sessions are claimed under.
    pub me: Owner,
    pub interval: Duration,
    /// Called with each round's live node ids (`$SYS/cluster/nodes`).
    pub on_nodes: Box<dyn FnMut(&Alive) + Send + Sync>,
    /// Session state is in JetStream (else nothing is stored to expire).
    pub session_state: bool,
}

/// Runs for the node's life: answers release requests to the expiry identity, and
/// sweeps every `interval` (±25 %).
pub(super) async fn run(mut s: Sweeper) {
    let (expiring, watching) = watch::channel(HashSet::<String>::new());
    let subject = control_subject(&s.me.node);
    match s.client.subscribe(subject).await {
        Ok(sub) => {
            tokio::spawn(answer_releases(s.client.clone(), sub, watching));
        }
        Err(e) => {
            warn!(error = %e, "cannot subscribe the expiry control subject; no orphan expiry")
        }
    }
    let mut round = Round {
        cursor: 1,
        expiring,
        state: None,
    };
    loop {
        if let Err(e) = round.sweep(&mut s).await {
            debug!(error = e, "orphan sweep round failed");
        }
        let jitter = rand::thread_rng().gen_range(0.75..1.25);
        tokio::time::sleep(s.interval.mul_f64(jitter)).await;
    }
}

/// The sweeper's state between rounds.
struct Round {
    /// The ownership revision the next round starts at.
    cursor: u64,
    /// The client ids being expired now (release requests wait for them).
    expiring: watch::Sender<HashSet<String>>,
    /// The session state stream, once found.
    state: Option<stream::Stream>,
}

impl Round {
    /// One round: a batch of entries, then the live nodes, then each entry's look.
    async fn sweep(&mut self, s: &mut Sweeper) -> Result<(), String> {
        let batch = if s.session_state {
            self.read_batch(&s.sessions).await?
        } else {
            Vec::new()
        };
        // Listed after the batch was read: an owner that claimed an entry of the batch
        // had its heartbeat stored before, so it is listed unless it died since.
        let alive = nodes::alive(&s.nodes).await?;
        if !alive.origins.contains(&s.origin) {
            return Err("this node's own heartbeat is not listed; not sweeping".into());
        }
        (s.on_nodes)(&alive);
        for e in batch {
            self.visit(s, &alive, e).await;
        }
        Ok(())
    }

    /// Up to [`BATCH`] entries (current values) from the cursor on; the cursor moves past
    /// them, back to the start after the last.
    async fn read_batch(&mut self, sessions: &kv::Store) -> Result<Vec<kv::Entry>, String> {
        let info = sessions
            .stream
            .get_info()
            .await
            .map_err(|e| e.to_string())?;
        if info.state.messages == 0 {
            return Ok(Vec::new());
        }
        if self.cursor > info.state.last_sequence {
            self.cursor = info.state.first_sequence.max(1);
        }
        let mut watch = sessions
            .watch_all_from_revision(self.cursor)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while out.len() < BATCH {
            let Ok(Some(Ok(entry))) = tokio::time::timeout(READ_TIMEOUT, watch.next()).await else {
                self.cursor = 1;
                break;
            };
            self.cursor = entry.revision + 1;
            let last = entry.delta == 0;
            out.push(entry);
            if last {
                self.cursor = 1;
                break;
            }
        }
        Ok(out)
    }

    /// Acts on one entry as [`look`] and [`due`] say; failures (a lost race) are left
    /// to a later round.
    async fn visit(&mut self, s: &Sweeper, alive: &Alive, e: kv::Entry) {
        if e.operation != kv::Operation::Put {
            return;
        }
        let Ok(entry) = serde_json::from_slice::<Entry>(&e.value) else {
            return;
        };
        let write = |entry: &Entry| serde_json::to_vec(entry).map(Into::into);
        // An expiry of this node's own left unfinished (its purge failed) is retried.
        let alive = alive.origins.contains(&entry.owner.origin) && entry.owner.node != s.me.node;
        match look(&entry, alive) {
            Look::Keep => {}
            Look::Unmark => {
                let plain = Entry {
                    orphaned_at_ms: None,
                    ..entry
                };
                if let Ok(bytes) = write(&plain) {
                    let _ = s.sessions.update(&e.key, bytes, e.revision).await;
                }
            }
            Look::Forget => {
                let _ = s
                    .sessions
                    .delete_expect_revision(&e.key, Some(e.revision))
                    .await;
            }
            Look::Mark => {
                let marked = Entry {
                    orphaned_at_ms: Some(unix_ms_now()),
                    ..entry
                };
                if let Ok(bytes) = write(&marked) {
                    if s.sessions.update(&e.key, bytes, e.revision).await.is_ok() {
                        debug!(
                            key = e.key,
                            node = marked.owner.node,
                            "orphaned session found"
                        );
                    }
                }
            }
            Look::Check(marked_ms) => {
                let Some(client_id) = client_of(&e.key) else {
                    return;
                };
                let Ok(record) = self.record(s, &client_id).await else {
                    return;
                };
                if due(record.as_ref(), marked_ms, unix_ms_now()) {
                    self.expire(s, &client_id, &e, entry).await;
                }
            }
        }
    }

    /// The session record of `client_id` (`None`: none stored).
    async fn record(&mut self, s: &Sweeper, client_id: &str) -> Result<Option<SessionRecord>, ()> {
        if self.state.is_none() {
            self.state = s.js.get_stream(STATE_STREAM).await.ok();
        }
        let stream = self.state.as_ref().ok_or(())?;
        let subject = keys::Key::new(client_id, keys::Kind::Record).subject();
        let got = stream
            .raw_message_builder()
            .last_by_subject(subject)
            .send()
            .await;
        match got {
            Ok(m) if m.payload.is_empty() => Ok(None),
            Ok(m) => Ok(postcard::from_bytes(&m.payload).ok()),
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => {
                debug!(client_id, error = %e, "session record not read");
                Err(())
            }
        }
    }

    /// Claims the id under the expiry identity, purges its state, and deletes the entry;
    /// not if the owner turns out to be connected after all (its heartbeat lapsed).
    async fn expire(&mut self, s: &Sweeper, client_id: &str, e: &kv::Entry, entry: Entry) {
        let mine = entry.owner.node == s.me.node;
        if !mine && nodes::answers(&s.client, entry.owner.origin, ASK_OWNER).await {
            debug!(
                client_id,
                node = entry.owner.node,
                "owner answers; not expiring"
            );
            return;
        }
        self.expiring.send_modify(|set| {
            set.insert(client_id.to_owned());
        });
        let claim = Entry {
            owner: Owner {
                epoch: entry.owner.epoch + 1,
                ..s.me.clone()
            },
            orphaned_at_ms: entry.orphaned_at_ms,
        };
        let claimed = match serde_json::to_vec(&claim) {
            Ok(bytes) => s
                .sessions
                .update(&e.key, bytes.into(), e.revision)
                .await
                .ok(),
            Err(_) => None,
        };
        if let Some(revision) = claimed {
            match self.purge(client_id).await {
                Ok(()) => {
                    let _ = s
                        .sessions
                        .delete_expect_revision(&e.key, Some(revision))
                        .await;
                    info!(
                        client_id,
                        dead_node = entry.owner.node,
                        "orphaned session expired"
                    );
                }
                // The entry stays under this node's identity, marked: once this node is
                // gone, another sweeper finds it due and tries again.
                Err(err) => warn!(client_id, error = err, "orphaned session not purged"),
            }
        }
        self.expiring.send_modify(|set| {
            set.remove(client_id);
        });
    }

    /// Removes everything stored under the client (as the JetStream store's purge).
    async fn purge(&self, client_id: &str) -> Result<(), String> {
        let stream = self.state.as_ref().ok_or("no session state stream")?;
        let filter = keys::client_filter(client_id);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match stream.purge().filter(filter.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < PURGE_ATTEMPTS => {
                    debug!(attempt, error = %e, "orphan purge failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500) * attempt).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// The client id of an ownership key (`c` + hex).
fn client_of(key: &str) -> Option<String> {
    String::from_utf8(unhex(key.strip_prefix('c')?)?).ok()
}

/// A release request names its client id.
#[derive(Deserialize)]
struct Request {
    client_id: String,
}

/// Answers release requests for ids claimed under the expiry identity, each once that
/// id's expiry is done (bounded: [`RELEASE_WAIT`]).
async fn answer_releases(
    client: async_nats::Client,
    mut sub: async_nats::Subscriber,
    expiring: watch::Receiver<HashSet<String>>,
) {
    while let Some(m) = sub.next().await {
        let (Some(reply), Ok(req)) = (m.reply, serde_json::from_slice::<Request>(&m.payload))
        else {
            continue;
        };
        let (client, mut expiring) = (client.clone(), expiring.clone());
        tokio::spawn(async move {
            let done = expiring.wait_for(|set| !set.contains(&req.client_id));
            let _ = tokio::time::timeout(RELEASE_WAIT, done).await;
            let _ = client.publish(reply, "released".into()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(persistent: bool, orphaned_at_ms: Option<u64>) -> Entry {
        Entry {
            owner: Owner {
                node: "n1".into(),
                origin: 7,
                epoch: 3,
                persistent,
            },
            orphaned_at_ms,
        }
    }

    fn record(expiry_secs: u32, disconnected_at_ms: Option<u64>) -> SessionRecord {
        SessionRecord {
            client_id: "c".into(),
            protocol: 5,
            expiry_secs,
            disconnected_at_ms,
            will: None,
        }
    }

    #[test]
    fn looks() {
        assert_eq!(look(&entry(true, None), true), Look::Keep);
        assert_eq!(look(&entry(true, Some(5)), true), Look::Unmark);
        assert_eq!(look(&entry(false, None), false), Look::Forget);
        assert_eq!(look(&entry(true, None), false), Look::Mark);
        assert_eq!(look(&entry(true, Some(5)), false), Look::Check(5));
    }

    #[test]
    fn due_counts_from_offline_or_mark_and_never_for_max() {
        assert!(due(None, 0, 0), "nothing stored");
        let connected = record(4, None);
        assert!(!due(Some(&connected), 10_000, 13_999));
        assert!(due(Some(&connected), 10_000, 14_000));
        let offline = record(4, Some(1_000));
        assert!(due(Some(&offline), 10_000, 5_000), "offline time counts");
        assert!(!due(Some(&record(u32::MAX, Some(0))), 0, u64::MAX));
        assert!(!due(Some(&record(u32::MAX, None)), 0, u64::MAX));
    }

    #[test]
    fn entries_stay_readable_as_owners() {
        let marked = entry(true, Some(42));
        let json = serde_json::to_vec(&marked).unwrap();
        let owner: Owner = serde_json::from_slice(&json).unwrap();
        assert_eq!(owner, marked.owner);
        let plain: Entry = serde_json::from_slice(&serde_json::to_vec(&owner).unwrap()).unwrap();
        assert_eq!(plain, entry(true, None));
        assert_eq!(client_of("c6162"), Some("ab".into()));
    }
}
