//! Session ownership across nodes: a JetStream key-value bucket maps each client id to
//! the node incarnation that holds its session, with an epoch. A CONNECT claims the id
//! with compare-and-set (read, then update at the revision read); the winner tells the
//! previous owner over core NATS, and that node closes its connection (5.0: DISCONNECT
//! 0x8E). A notice only takes effect against local claims with a lower KV revision, so
//! a slow notice never closes a newer connection.
//!
//! With session state in JetStream ([`super::js_store`]), a CONNECT on a node with no
//! live local session for the id waits for a claim and load: claim, then ask the
//! previous owner (request/reply on its control subject) to close its session and
//! answer once the session's final state is acknowledged by JetStream (bounded: a dead
//! node has no responders), then load the session from the store, or delete what is
//! stored for the id on clean start.
//!
//! # One owner per client id
//!
//! The bucket orders the claims of an id: revisions r1 < r2 < … Each claim's node asks
//! the owner at the revision before it (the previous claim's node) to release, and
//! loads only after that answer. A node answers a release request ([`claims`]) only
//! once its own claims of the id have *settled*: their compare-and-set is done and a
//! claim with a waiting connection has either handed its load over or given up. So the
//! answers form a chain: the node of r(k) answers only after the node of r(k-1)
//! answered it, and the node of r(k+1) loads only after everything before was released
//! and stored. The interleavings, for CONNECTs of one id on nodes B and C while A holds
//! it (B's claim r, C's claim r+1, so C asks B):
//!
//! - C's request reaches B before B's compare-and-set returned: it waits (B cannot
//!   answer "kept": its claim turns out older). B's claim ends with r < r+1, B still asks
//!   A to release (A closes and stores its final state), then gives up without loading:
//!   the router forgets B's connection, which is refused (CONNACK 0x88, 3.1.1: 3), and
//!   only then is C answered. C loads what A stored.
//! - It arrives while B asks A, or before B's load was handed over: the same.
//! - It arrives after B handed the load over: B's connection gets its CONNACK, then the
//!   takeover closes it (DISCONNECT 0x8E); C is answered once B's session stored its
//!   final state (the session handles the takeover only after its load), and C loads
//!   that.
//! - B's claim loses the compare-and-set race to C's: B reads again and claims after
//!   C, the roles swap.
//! - A notice older than a local claim (it concerns an earlier claim of this node) is
//!   answered "kept" once the local claims settled; its sender then finds itself
//!   superseded by this node's notice, or gets it later and closes its session as above.
//! - A second CONNECT of the id on the same node while the first loads: a local
//!   takeover. The first connection's load goes on; the router then restores its
//!   subscriptions and replay for the id (the new session inherits them with the state
//!   handed over in memory), and the first connection gets its CONNACK, then 0x8E.
//!
//! Exactly one connection stays, with the state of every previous owner. The price: a
//! notice's answer may wait for the answering node's own release (one more hop per
//! claim in the chain), and a superseded CONNECT is refused rather than resumed.

use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream::kv;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::message::ClientId;
use crate::persistence::{LoadSession, Loaded, Op, Persist, Persistence, SessionRecord};
use crate::router::messages::RemoteTakeover;
use crate::router::Router;

mod claims;

use claims::{Claims, Verdict};

/// The bucket's name.
pub const BUCKET: &str = "STARLING_SESSIONS";
/// Compare-and-set attempts before giving up (each lost race re-reads).
const CAS_ATTEMPTS: u32 = 5;
/// How long a claim may take (a leader election takes seconds).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claiming node waits for the previous owner to release the session.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a releasing node waits for the session's final state to be stored.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(4);

/// The value stored per client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub node: String,
    /// The owning node's incarnation (which start of the node claimed it).
    pub origin: u64,
    /// Claims of this client id so far.
    pub epoch: u64,
    /// The claiming session was persistent (so state may be stored for the id).
    #[serde(default)]
    pub persistent: bool,
}

/// A takeover notice, sent to the previous owner's control subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Notice {
    client_id: String,
    revision: u64,
}

/// A connection with no live local session for its id: the claim, the previous
/// owner's release, then the stored session (or `Nothing`) on `handover`; `Failed` if
/// a newer claim superseded it before its load.
pub struct ClaimRequest {
    pub client_id: ClientId,
    /// Clean start 0: load the stored session; else delete what is stored for the id.
    pub resume: bool,
    /// The new session's record, stored after the load (or the delete); `None` when the
    /// new session is not persistent (the stored one is then deleted after loading).
    pub record: Option<SessionRecord>,
    pub handover: oneshot::Sender<Loaded>,
}

/// What the router asks of the ownership task.
pub enum OwnershipCmd {
    /// A session with this id connected here (persistent or not).
    Claim(ClientId, bool),
    /// The same, waiting for the release and the load ([`ClaimRequest`]).
    ClaimAndLoad(Box<ClaimRequest>),
    /// The local session ended.
    Release(ClientId),
}

/// `prefix` + the bytes of `s` in hex: a valid KV key or subject token for any string.
fn hex(prefix: char, s: &str) -> String {
    let mut k = String::with_capacity(1 + s.len() * 2);
    k.push(prefix);
    for b in s.bytes() {
        k.push_str(&format!("{b:02x}"));
    }
    k
}

/// The KV key of a client id: hex, since ids may hold any character.
pub fn key(client: &ClientId) -> String {
    hex('c', client.as_str())
}

/// The control subject of a node: by name, so a restarted node still gets the notices
/// about the sessions it restored.
pub fn control_subject(node: &str) -> String {
    format!("starling.ctl.{}", hex('n', node))
}

/// Creates the bucket unless it exists.
pub(super) async fn ensure_bucket(
    js: &async_nats::jetstream::Context,
    replicas: usize,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = js.get_key_value(BUCKET).await {
        return Ok(store);
    }
    Ok(js
        .create_key_value(kv::Config {
            bucket: BUCKET.to_owned(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        })
        .await?)
}

/// The ownership task's connections to the rest of the node.
pub(super) struct Links {
    pub client: async_nats::Client,
    pub store: kv::Store,
    pub me: Owner,
    pub router: Addr<Router>,
    pub persistence: Addr<Persistence>,
    /// Session state lives in JetStream: a session taken over by another node keeps
    /// its stored state, for that node to load.
    pub keep_stored: bool,
}

/// A finished claim: the revision written and the previous owner (`None`: failed).
type ClaimDone = (
    ClientId,
    Option<(u64, Option<Owner>)>,
    Option<Box<ClaimRequest>>,
);

/// A claim with a waiting connection whose previous owner released the session: the
/// request and whether state may be stored for the id.
type ReleaseDone = (Box<ClaimRequest>, bool);

/// Runs for the node's life: claims, notices in and out, kicks.
pub(super) async fn run(links: Links, mut cmds: mpsc::UnboundedReceiver<OwnershipCmd>) {
    let subject = control_subject(&links.me.node);
    let mut notices = match links.client.subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot subscribe to the control subject; no cross-node takeover");
            return;
        }
    };
    let (done, mut done_rx) = mpsc::unbounded_channel::<ClaimDone>();
    let (released, mut released_rx) = mpsc::unbounded_channel::<ReleaseDone>();
    let mut task = Task {
        links,
        claims: Claims::default(),
        done,
        released,
    };
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(cmd) => task.on_cmd(cmd),
            },
            Some(done) = done_rx.recv() => task.on_claimed(done).await,
            Some((req, existed)) = released_rx.recv() => task.on_released(*req, existed).await,
            Some(m) = notices.next() => task.on_notice(m).await,
        }
    }
}

/// The ownership task's state between events.
struct Task {
    links: Links,
    claims: Claims,
    /// Where the spawned claims report.
    done: mpsc::UnboundedSender<ClaimDone>,
    /// Where the spawned releases report.
    released: mpsc::UnboundedSender<ReleaseDone>,
}

impl Task {
    fn on_cmd(&mut self, cmd: OwnershipCmd) {
        match cmd {
            OwnershipCmd::Claim(id, persistent) => self.start_claim(id, persistent, None),
            OwnershipCmd::ClaimAndLoad(req) => {
                let (id, persistent) = (req.client_id.clone(), req.record.is_some());
                self.start_claim(id, persistent, Some(req));
            }
            OwnershipCmd::Release(id) => self.claims.release(&id),
        }
    }

    /// Claims `id` for this node in the background; the result comes back on `done`.
    fn start_claim(&mut self, id: ClientId, persistent: bool, req: Option<Box<ClaimRequest>>) {
        self.claims.start(&id, req.is_some());
        let me = Owner {
            persistent,
            ..self.links.me.clone()
        };
        let (store, done) = (self.links.store.clone(), self.done.clone());
        tokio::spawn(async move {
            let result = tokio::time::timeout(CLAIM_TIMEOUT, claim(&store, &id, &me)).await;
            let _ = done.send((id, result.ok().flatten(), req));
        });
    }

    /// A claim finished: tell the previous owner; for a [`ClaimRequest`], have it
    /// release the session first, then load (`on_released`). A notice newer than the
    /// claim that came meanwhile closes the local session once the claims settle.
    async fn on_claimed(&mut self, (id, result, req): ClaimDone) {
        let verdict = self.claims.claimed(&id, result.as_ref().map(|r| r.0));
        self.perform(&id, verdict).await;
        let Some((revision, previous)) = result else {
            warn!(client_id = %id, "session ownership not claimed; other nodes may keep a session for this id");
            // Availability: serve the connection with whatever the store holds.
            if let Some(req) = req {
                self.load(*req, true).await;
            }
            return;
        };
        let notice = Notice {
            client_id: id.as_str().to_owned(),
            revision,
        };
        let me = &self.links.me;
        let elsewhere = previous
            .as_ref()
            .filter(|p| p.node != me.node)
            .map(|p| control_subject(&p.node));
        // Only a persistent session leaves state behind (its expiry may drop to
        // 0, never rise from it [MQTT-3.14.2-2]).
        let existed = previous.as_ref().is_some_and(|p| p.persistent);
        match (elsewhere, req) {
            (Some(subject), Some(req)) => {
                let (client, released) = (self.links.client.clone(), self.released.clone());
                tokio::spawn(async move {
                    release(&client, subject, &notice).await;
                    let _ = released.send((req, existed));
                });
            }
            (Some(subject), None) => {
                if let Ok(bytes) = serde_json::to_vec(&notice) {
                    let _ = self.links.client.publish(subject, bytes.into()).await;
                }
            }
            (None, Some(req)) => self.on_released(*req, existed).await,
            (None, None) => {}
        }
    }

    /// The previous owner released the session (or was not asked): load it, unless a
    /// newer claim elsewhere superseded this one meanwhile. Then the connection gives
    /// up without writing anything: the router forgets it, its CONNECT is refused, and
    /// the newer claim's node is answered.
    async fn on_released(&mut self, req: ClaimRequest, existed: bool) {
        let id = req.client_id.clone();
        if self.claims.superseded(&id) {
            debug!(client_id = %id, "claim superseded before its load; connection refused");
            let verdict = self.claims.settled(&id);
            self.perform(&id, verdict).await;
            let _ = req.handover.send(Loaded::Failed);
            return;
        }
        self.load(req, existed).await;
    }

    /// The load (or the delete), then the verdict on notices that waited for it.
    async fn load(&mut self, req: ClaimRequest, existed: bool) {
        let id = req.client_id.clone();
        finish(&self.links.persistence, req, existed);
        let verdict = self.claims.settled(&id);
        self.perform(&id, verdict).await;
    }

    /// Another node claimed a client id: close the local session unless a newer local
    /// claim keeps it, and answer a request (once the local claims settled).
    async fn on_notice(&mut self, m: async_nats::Message) {
        let Ok(notice) = serde_json::from_slice::<Notice>(&m.payload) else {
            return;
        };
        let id = ClientId::new(notice.client_id);
        let verdict = self.claims.notice(&id, notice.revision, m.reply);
        self.perform(&id, verdict).await;
    }

    async fn perform(&self, id: &ClientId, verdict: Verdict) {
        match verdict {
            Verdict::Wait => {}
            Verdict::Kept(replies) => {
                for reply in replies {
                    let _ = self.links.client.publish(reply, "kept".into()).await;
                }
            }
            Verdict::Lost(replies) => {
                debug!(client_id = %id, "session taken over by another node");
                self.take_over(id.clone(), replies);
            }
        }
    }

    /// Closes the local session (if any) and answers `replies` once its state is stored.
    fn take_over(&self, client_id: ClientId, replies: Vec<async_nats::Subject>) {
        let (tx, rx) = oneshot::channel();
        let flushed = (!replies.is_empty()).then_some(tx);
        self.links.router.do_send(RemoteTakeover {
            client_id,
            flushed,
            keep_stored: self.links.keep_stored,
        });
        if replies.is_empty() {
            return;
        }
        let client = self.links.client.clone();
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(FLUSH_TIMEOUT, rx).await {
                Ok(Ok(())) => "released",
                _ => "unflushed",
            };
            for reply in replies {
                let _ = client.publish(reply, answer.into()).await;
            }
        });
    }
}

/// Asks the previous owner to close its session and store its final state; returns
/// once it answered, or at once when no node listens there (it is dead), or after
/// [`RELEASE_TIMEOUT`].
async fn release(client: &async_nats::Client, subject: String, notice: &Notice) {
    let Ok(bytes) = serde_json::to_vec(notice) else {
        return;
    };
    let asked = tokio::time::timeout(RELEASE_TIMEOUT, client.request(subject, bytes.into())).await;
    match asked {
        Ok(Ok(answer)) => {
            debug!(client_id = notice.client_id, answer = %String::from_utf8_lossy(&answer.payload), "previous owner answered")
        }
        Ok(Err(e)) => {
            debug!(client_id = notice.client_id, error = %e, "previous owner did not answer; loading what is stored")
        }
        Err(_) => {
            warn!(
                client_id = notice.client_id,
                "previous owner did not release the session in time; loading what is stored"
            )
        }
    }
}

/// After the claim (and release): the load or the delete, then the new record, in the
/// persistence actor's order. `existed`: the id had an owner, so state may be stored.
fn finish(persistence: &Addr<Persistence>, req: ClaimRequest, existed: bool) {
    let mut ops = Vec::new();
    // Resumed now, but it ends with its connection; or a clean start over a stored one.
    if (req.resume && req.record.is_none()) || (!req.resume && existed) {
        let client_id = req.client_id.clone();
        ops.push(Op::DeleteSession { client_id });
    }
    ops.extend(req.record.map(Op::PutSession));
    if req.resume {
        // The ops follow the load: it must not see them, and may run off the actor.
        persistence.do_send(LoadSession {
            client_id: req.client_id,
            reply: req.handover,
            then: ops,
        });
        return;
    }
    if !ops.is_empty() {
        persistence.do_send(Persist { ops, done: None });
    }
    let _ = req.handover.send(Loaded::Nothing);
}

/// Compare-and-set of the client id's owner; the revision written and the previous owner.
async fn claim(store: &kv::Store, id: &ClientId, me: &Owner) -> Option<(u64, Option<Owner>)> {
    let key = key(id);
    for _ in 0..CAS_ATTEMPTS {
        let entry = match store.entry(key.clone()).await {
            Ok(e) => e.filter(|e| e.operation == kv::Operation::Put),
            Err(e) => {
                warn!(error = %e, "session ownership read failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let previous = entry
            .as_ref()
            .and_then(|e| serde_json::from_slice::<Owner>(&e.value).ok());
        let value = Owner {
            epoch: previous.as_ref().map_or(1, |p| p.epoch + 1),
            ..me.clone()
        };
        let Ok(bytes) = serde_json::to_vec(&value) else {
            return None;
        };
        let written = match &entry {
            Some(e) => store
                .update(&key, bytes.into(), e.revision)
                .await
                .map_err(|e| e.to_string()),
            None => store
                .create(&key, bytes.into())
                .await
                .map_err(|e| e.to_string()),
        };
        match written {
            Ok(revision) => return Some((revision, previous)),
            // Lost a race with another claim: read again.
            Err(e) => debug!(client_id = %id, error = e, "ownership claim raced; retrying"),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_kv_keys() {
        let k = key(&ClientId::new("a b/é.*"));
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(key(&ClientId::new("ab")), key(&ClientId::new("a")));
        assert_eq!(control_subject("n1"), "starling.ctl.n6e31");
    }
}
