//! The router's end of the bridge: [`ClusterHandle`] implements the router's
//! [`ClusterPort`] by queueing work for the bridge's tasks (`super::bridge`).

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::Arc;

use ahash::AHashMap as HashMap;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::bridge::{InterestCmd, Outbound};
use super::envelope::Dedup;
use super::interest::{is_node_local_filter, is_node_local_topic};
use super::isolation;
use super::ownership::{ClaimRequest, OwnershipCmd};
use super::replay::ReplayJob;
use crate::delivery::Origin;
use crate::message::{ClientId, Message};
use crate::persistence::{failed_ticket, Durable, Loaded, ReplayCursor, SessionRecord};
use crate::protocol::ReasonCode;
use crate::router::{ClusterPort, Held, InterestChange};
use crate::session::Isolation;

/// How many recent message numbers are remembered to drop duplicate copies.
const DEDUP_WINDOW: usize = 16_384;

/// The router's end of the bridge.
pub struct ClusterHandle {
    origin: u64,
    seq: u64,
    publish: mpsc::Sender<Outbound>,
    interest: mpsc::UnboundedSender<InterestCmd>,
    ownership: mpsc::UnboundedSender<OwnershipCmd>,
    dropped: u64,
    isolation: Isolation,
    /// `[cluster] message_log`: QoS 1/2 messages go through the log, sessions replay it.
    message_log: bool,
    /// Session state lives in JetStream: sessions are claimed and loaded through it.
    session_state: bool,
    dedup: Dedup,
    /// Sessions catching up on the message log, with their deliveries held meanwhile.
    replaying: HashMap<ClientId, Replaying>,
    /// The number of the next replay asked.
    generation: u64,
    /// With the log feed on: the highest log sequence the router routed from it (the
    /// log's last at start until then). A replay takes from the log only the other
    /// nodes' messages up to it: the feed brings the later ones.
    fed: Option<u64>,
}

/// A session catching up on the message log.
struct Replaying {
    /// Where its replay started: asked again after a restart of the router.
    cursor: ReplayCursor,
    /// The replay running; answers to earlier ones are stale.
    generation: u64,
    /// Its deliveries since, in routing order.
    held: VecDeque<Held>,
    /// Being delivered: new deliveries go straight to the session.
    releasing: bool,
}

/// What [`ClusterHandle::new`] is made of.
pub(super) struct HandleParts {
    pub origin: u64,
    pub publish: mpsc::Sender<Outbound>,
    pub interest: mpsc::UnboundedSender<InterestCmd>,
    pub ownership: mpsc::UnboundedSender<OwnershipCmd>,
    pub isolation: Isolation,
    pub message_log: bool,
    pub session_state: bool,
    /// Where the log feed started, if it runs.
    pub feed_start: Option<u64>,
}

impl ClusterHandle {
    pub(super) fn new(parts: HandleParts) -> ClusterHandle {
        ClusterHandle {
            origin: parts.origin,
            seq: 0,
            publish: parts.publish,
            interest: parts.interest,
            ownership: parts.ownership,
            dropped: 0,
            isolation: parts.isolation,
            message_log: parts.message_log,
            session_state: parts.session_state,
            dedup: Dedup::new(DEDUP_WINDOW),
            replaying: HashMap::new(),
            generation: 0,
            fed: parts.feed_start,
        }
    }

    /// Queues `client`'s replay after a barrier on the interest changes sent so far, so
    /// that it starts once the session's NATS subscriptions are active.
    fn ask_replay(&mut self, client: ClientId, cursor: ReplayCursor) -> Option<u64> {
        if !self.message_log {
            return None;
        }
        self.generation += 1;
        let generation = self.generation;
        let (after, tx) = ticket(true);
        let (covered_tx, covered) = oneshot::channel();
        if let Some(done) = tx {
            let covered = Some(covered_tx);
            let _ = self.interest.send(InterestCmd::Barrier {
                done,
                covered,
                feed: true,
            });
        }
        let job = ReplayJob {
            client,
            generation,
            cursor,
            after,
            origin: self.origin,
            fed: self.fed,
            covered: Some(covered),
        };
        let queued = self.publish.try_send(Outbound::Replay(job)).is_ok();
        if !queued {
            warn!("cluster publish queue full; session not replayed from the message log");
        }
        queued.then_some(generation)
    }

    fn full(&mut self, ack: bool) -> Option<Durable> {
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            warn!(
                dropped = self.dropped,
                "cluster publish queue full; message not sent to the cluster"
            );
        }
        ack.then(failed_ticket)
    }

    /// Passes interest changes on to the interest task (node-local filters stay here).
    /// With `barrier`, and when a filter is new, the ticket resolves once its NATS
    /// subscription reached the server (the SUBACK waits for it, so that a publish right
    /// after it is routed here) and, with `feed`, once the log feed follows it too.
    fn send_interest(
        &self,
        changes: Vec<InterestChange>,
        barrier: bool,
        feed: bool,
    ) -> Option<Durable> {
        let mut new_filter = false;
        for change in changes {
            let filter = match &change {
                InterestChange::Add(f) | InterestChange::Remove(f) => f,
            };
            if is_node_local_filter(filter) {
                continue;
            }
            new_filter |= matches!(change, InterestChange::Add(_));
            if self.interest.send(InterestCmd::Change(change)).is_err() {
                warn!("cluster bridge is gone; interest change lost");
            }
        }
        if !(barrier && new_filter) {
            return None;
        }
        let (ticket, tx) = ticket(true);
        let done = tx?;
        let _ = self.interest.send(InterestCmd::Barrier {
            done,
            covered: None,
            feed,
        });
        ticket
    }
}

impl ClusterPort for ClusterHandle {
    /// `$share` groups are NATS queue groups: NATS picks the node, that node the member.
    fn shares_elsewhere(&self) -> bool {
        true
    }

    fn interest_elsewhere(&self) -> bool {
        true
    }

    /// Node-local topics (`$SYS`) are never sent to the cluster.
    fn stamp(&mut self, msg: &Message) -> Option<Origin> {
        if is_node_local_topic(msg.topic.as_str()) {
            return None;
        }
        self.seq += 1;
        Some(Origin {
            node: self.origin,
            seq: self.seq,
        })
    }

    fn log_position(&mut self, seq: u64) {
        if let Some(fed) = &mut self.fed {
            *fed = (*fed).max(seq);
        }
    }

    /// Sends the message (and its retained copy, to the stream). With `ack` the ticket
    /// resolves once the message log stored it (QoS 1/2), it was handed to NATS, and the
    /// retained copy was stored.
    fn forward(&mut self, msg: &Arc<Message>, origin: Origin, ack: bool) -> Option<Durable> {
        let (published, done) = ticket(ack);
        let sent = self.publish.try_send(Outbound::Publish {
            msg: Arc::clone(msg),
            seq: origin.seq,
            done,
        });
        if sent.is_err() {
            return self.full(ack);
        }
        if !msg.retain {
            return published;
        }
        let (retained, done) = ticket(ack);
        let sent = self.publish.try_send(Outbound::Retain {
            msg: Arc::clone(msg),
            done,
        });
        if sent.is_err() {
            return self.full(ack);
        }
        Durable::join_opt(published, retained)
    }

    /// The deletion goes to the retained stream, which every node follows.
    fn forget_retained(&self, msg: &Arc<Message>) {
        let sent = self.publish.try_send(Outbound::Retain {
            msg: Arc::clone(msg),
            done: None,
        });
        if sent.is_err() {
            warn!(topic = %msg.topic, "cluster queue full: retained message deleted on this node only");
        }
    }

    /// See [`ClusterHandle::send_interest`]: a SUBACK waits for the log feed too (what
    /// the feed skipped before it follows a new filter is dropped).
    fn interest(&self, changes: Vec<InterestChange>, barrier: bool) -> Option<Durable> {
        self.send_interest(changes, barrier, true)
    }

    fn restore_interest(
        &self,
        changes: Vec<InterestChange>,
        replay_follows: bool,
    ) -> Option<Durable> {
        self.send_interest(changes, true, !(replay_follows && self.message_log))
    }

    /// The node that held the id closes its connection.
    fn claim(&self, client: &ClientId, persistent: bool) {
        let _ = self
            .ownership
            .send(OwnershipCmd::Claim(client.clone(), persistent));
    }

    fn release(&self, client: &ClientId) {
        let _ = self.ownership.send(OwnershipCmd::Release(client.clone()));
    }

    fn loads_sessions(&self) -> bool {
        self.session_state
    }

    /// See [`ClaimRequest`]. If the bridge is gone, `loaded` is dropped (the connection
    /// is refused).
    fn claim_and_load(
        &self,
        client: ClientId,
        resume: bool,
        record: Option<SessionRecord>,
        loaded: oneshot::Sender<Loaded>,
    ) {
        let req = ClaimRequest {
            client_id: client,
            resume,
            record,
            handover: loaded,
        };
        let _ = self
            .ownership
            .send(OwnershipCmd::ClaimAndLoad(Box::new(req)));
    }

    /// A replay already running for the session keeps what it holds.
    fn replay(&mut self, client: ClientId, cursor: ReplayCursor) -> Option<u64> {
        let generation = self.ask_replay(client.clone(), cursor.clone())?;
        match self.replaying.entry(client) {
            Entry::Occupied(mut e) => {
                let r = e.get_mut();
                (r.cursor, r.generation, r.releasing) = (cursor, generation, false);
            }
            Entry::Vacant(e) => {
                let held = VecDeque::new();
                e.insert(Replaying {
                    cursor,
                    generation,
                    held,
                    releasing: false,
                });
            }
        }
        Some(generation)
    }

    fn replaying(&self, client: &ClientId, generation: u64) -> bool {
        self.replaying
            .get(client)
            .is_some_and(|r| r.generation == generation && !r.releasing)
    }

    fn holds_any(&self) -> bool {
        !self.replaying.is_empty()
    }

    fn holds(&self, client: &ClientId) -> bool {
        self.replaying.get(client).is_some_and(|r| !r.releasing)
    }

    fn begin_release(&mut self, client: &ClientId) {
        if let Some(r) = self.replaying.get_mut(client) {
            r.releasing = true;
        }
    }

    fn hold(&mut self, held: Held) {
        if let Some(r) = self.replaying.get_mut(&held.delivery.client) {
            r.held.push_back(held);
        }
    }

    fn held_origins(&self, client: &ClientId) -> ahash::AHashSet<Origin> {
        let held = self.replaying.get(client).map(|r| &r.held);
        held.into_iter()
            .flatten()
            .filter_map(|h| h.origin)
            .collect()
    }

    fn next_held(&mut self, client: &ClientId) -> Option<Held> {
        self.replaying.get_mut(client)?.held.pop_front()
    }

    fn end_replay(&mut self, client: &ClientId) {
        self.replaying.remove(client);
    }

    fn restart_replays(&mut self) -> Vec<(ClientId, Option<u64>)> {
        let running: Vec<_> = self
            .replaying
            .iter()
            .map(|(c, r)| (c.clone(), r.cursor.clone()))
            .collect();
        let mut asked = Vec::with_capacity(running.len());
        for (client, cursor) in running {
            let generation = self.ask_replay(client.clone(), cursor);
            if let (Some(g), Some(r)) = (generation, self.replaying.get_mut(&client)) {
                (r.generation, r.releasing) = (g, false);
            }
            asked.push((client, generation));
        }
        asked
    }

    /// While the node is cut off from NATS (`super::isolation`).
    fn eviction(&self) -> Option<(ReasonCode, &'static str)> {
        self.isolation
            .is_isolated()
            .then_some((isolation::DISCONNECT_REASON, isolation::DISCONNECT_WHY))
    }

    fn first_copy(&mut self, origin: Origin) -> bool {
        self.dedup.first(origin)
    }
}

fn ticket(ack: bool) -> (Option<Durable>, Option<oneshot::Sender<()>>) {
    if !ack {
        return (None, None);
    }
    let (tx, rx) = oneshot::channel();
    (Some(Durable::from_receiver(rx)), Some(tx))
}
