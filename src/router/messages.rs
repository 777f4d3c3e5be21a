//! Messages the router actor handles.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::link::{Handoff, SessionRef};
use super::state::SubscribeOutcome;
use crate::delivery::{Origin, Outgoing, Pressure, Receipt, SubEntry};
use crate::message::{ClientId, Message};
use crate::persistence::{Durable, Loaded, SessionRecord};
use crate::protocol::PacketId;
use crate::topic::TopicFilter;

/// A session actor with a new connection claims its client id. If another actor holds
/// the id, the router points the id at the new actor at once and tells the old one to
/// hand its state over (or to discard it on clean start). `None` when the router failed
/// while handling it: the connection is refused.
#[derive(Message)]
#[rtype(result = "Option<RegisterReply>")]
pub struct Register {
    pub client_id: ClientId,
    pub clean_start: bool,
    pub addr: SessionRef,
    /// The session's record when it is persistent (session expiry > 0).
    pub persist: Option<SessionRecord>,
}

/// The answer to [`Register`].
#[derive(MessageResponse)]
pub struct RegisterReply {
    /// Where the previous session's state will arrive, when one exists and the new
    /// connection did not ask for a clean start.
    pub prior: Option<Prior>,
}

/// Where a resumed session's previous state comes from.
pub enum Prior {
    /// The live actor that held the client id hands its state over.
    Live(oneshot::Receiver<Handoff>),
    /// The store: the previous actor died, or (cluster mode) another node held it.
    Stored(oneshot::Receiver<Loaded>),
}

/// A session restored from the store at start-up takes its place in the registry.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Adopt {
    pub client_id: ClientId,
    pub addr: SessionRef,
}

/// A session's stored record changed (went offline, new expiry); `None` when the
/// session is no longer persistent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateSession {
    pub client_id: ClientId,
    pub addr: SessionRef,
    pub record: Option<SessionRecord>,
}

/// A session actor's connection closed; shared subscriptions skip it while offline.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WentOffline {
    pub client_id: ClientId,
    pub addr: SessionRef,
}

/// A session ended (clean disconnect or expiry): its subscriptions go.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionEnded {
    pub client_id: ClientId,
    pub addr: SessionRef,
}

/// Forget every subscription of a client whose previous session turned out to have
/// ended (or vanished) while a new connection was resuming it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetClient {
    pub client_id: ClientId,
}

/// Route one published message to every matching session.
#[derive(Message)]
#[rtype(result = "Routed")]
pub struct Route {
    /// The message.
    pub msg: Arc<Message>,
    /// For a QoS 2 publish: its packet id, stored with the deliveries when the
    /// publisher's session is persistent, so a re-sent PUBLISH after a restart is
    /// recognised [MQTT-4.3.3-9].
    pub inbound_qos2: Option<PacketId>,
}

/// The answer to [`Route`].
#[derive(MessageResponse)]
pub struct Routed {
    /// How many sessions it was handed to.
    pub matched: usize,
    /// Resolves once the persistent sessions' copies are on disk (`sync` durability).
    pub durable: Option<Durable>,
    /// `backpressure`: the sessions it reached whose queues are over their limits
    /// (never the publisher's own); the publisher is not read until they drain.
    pub pressured: Vec<Arc<Pressure>>,
    /// The count of router outbox flushes after which this message's deliveries are in
    /// their sessions' mailboxes (`FastRoute::flushed`; `u64::MAX`: the router failed).
    /// The publisher's session routes on its own thread only from then on.
    pub after: u64,
}

/// A member of shared subscriptions lost its connection: the messages it may give up
/// (see `SessionState::shared_handover`) go to another online member of the same
/// group (section 4.8.2). The answer says, per item, whether one took it; the others
/// stay with `from` (all of them when the answer is `None`: the router failed).
#[derive(Message)]
#[rtype(result = "Option<Vec<bool>>")]
pub struct Reshare {
    pub from: ClientId,
    pub items: Vec<Outgoing>,
}

/// Add or replace subscriptions of one client.
#[derive(Message)]
#[rtype(result = "SubscribeReply")]
pub struct Subscribe {
    pub client_id: ClientId,
    pub filters: Vec<(TopicFilter, SubEntry)>,
    /// When set, the subscriptions are added only while this session holds the client
    /// id (an in-process client whose id another connection may have just taken);
    /// otherwise the answer has no outcomes.
    pub from: Option<SessionRef>,
}

/// The answer to [`Subscribe`].
#[derive(MessageResponse)]
pub struct SubscribeReply {
    pub outcomes: Vec<SubscribeOutcome>,
    /// Resolves once a persistent session's subscriptions are on disk.
    pub durable: Option<Durable>,
}

/// Remove subscriptions of one client; the answer says which existed (`None`: the
/// router failed while handling it).
#[derive(Message)]
#[rtype(result = "Option<Vec<bool>>")]
pub struct Unsubscribe {
    pub client_id: ClientId,
    pub filters: Vec<TopicFilter>,
}

/// Counters for `$SYS` and tests.
#[derive(Message)]
#[rtype(result = "RouterStats")]
pub struct GetStats;

/// Router counters.
#[derive(Debug, Clone, Copy, Default, MessageResponse)]
pub struct RouterStats {
    /// Sessions registered (connected or not), in-process clients included.
    pub sessions: usize,
    /// Subscriptions held.
    pub subscriptions: usize,
    /// Retained messages held.
    pub retained: usize,
    /// Messages routed since start.
    pub routed: u64,
    /// Of those, local publishes that matched no subscription (anywhere in the
    /// cluster, as far as this node knows).
    pub unrouted: u64,
    /// Restarts of the router after a failure.
    pub restarts: u64,
}

/// Close every session's connection (broker shutdown). False when the router failed
/// doing it (the broker asks again).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ShutdownSessions;

/// The authorizer's rules changed (SIGHUP re-read the ACL file): every session is
/// told its filters and drops those it may no longer hold. False when the router
/// failed doing it (the broker asks again).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RecheckSubscriptions;

/// Close every live connection with `reason` (5.0: DISCONNECT) as a server-side close:
/// wills are published and persistent sessions stay (the node is cut off from the
/// cluster, see the cluster's isolation).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct EvictSessions {
    pub reason: crate::protocol::ReasonCode,
    pub why: &'static str,
}

/// A cluster is up: the router works through this port from now on (it replaces
/// [`Standalone`](super::port::Standalone)). The answer is false when the router failed
/// while attaching it: the node would run alone, so the broker does not start.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct AttachCluster {
    pub port: Box<dyn super::port::ClusterPort>,
}

/// Cluster mode: the log feed, filtered to this node's interest, received every log
/// entry up to `seq` that its filter takes, and sent each to the router before this
/// message: the log position the router's store ops cover may move up to `seq`,
/// though no entry there was for this node (`super::position`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct FeedAt {
    /// The stream's last sequence when the feed found it had everything its filter takes.
    pub seq: u64,
}

/// Cluster mode: a message another node published (or, for a shared subscription, one
/// this node's NATS queue subscription or the group's log consumer was picked for).
/// Routed to local sessions only.
#[derive(Message, Clone)]
#[rtype(result = "RemoteRouted")]
pub struct RouteRemote {
    pub msg: Arc<Message>,
    /// The message's cluster number, to drop the copies that several matching
    /// subscriptions bring.
    pub origin: Origin,
    /// The `$share/{group}/{filter}` whose queue subscription received it; `None` for a
    /// plain subscription.
    pub share: Option<TopicFilter>,
    /// Settled once the member's client took it (a shared subscription's message from
    /// the log, which the cluster holds until then).
    pub receipt: Option<Receipt>,
    /// Its stream sequence in the cluster's message log when this node's log feed
    /// brought it (in log order); `None` otherwise.
    pub log: Option<u64>,
}

/// The answer to [`RouteRemote`].
#[derive(MessageResponse, Default)]
pub struct RemoteRouted {
    /// How many sessions it was handed to (none: no online member took a shared one).
    pub matched: usize,
    /// Resolves once the persistent sessions' copies are stored (`sync` durability).
    pub durable: Option<Durable>,
}

/// Cluster mode: a retained message (or a deletion) from the cluster's stream.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct RetainRemote {
    pub msg: Arc<Message>,
}

/// Cluster mode: another node claimed this client id after the local session did; the
/// local session closes (5.0: DISCONNECT 0x8E) and is forgotten here (its stored state
/// stays, for the other node to load).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoteTakeover {
    pub client_id: ClientId,
    /// Fires once the session's final state is in the store (the release answer).
    pub flushed: Option<oneshot::Sender<()>>,
    /// Session state lives in the cluster: the stored session stays, for the other
    /// node to load (otherwise it is deleted with the local session).
    pub keep_stored: bool,
}

/// Cluster mode: a session loaded from the store resumes here; its subscriptions join
/// the router (and NATS), and its stored queue numbers continue after `next_seq - 1`.
/// `None` when the router failed while handling it: the connection is refused.
#[derive(Message)]
#[rtype(result = "Option<Restored>")]
pub struct RestoreSession {
    pub client_id: ClientId,
    pub addr: SessionRef,
    pub subscriptions: Vec<crate::persistence::SubscriptionRecord>,
    pub next_seq: u64,
    /// Where its replay of the cluster's message log starts.
    pub replay: Option<crate::persistence::ReplayCursor>,
}

/// The messages of the log a resumed session had not received (in log order, with
/// their origin and number); `None` when the replay failed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplayDone {
    pub client_id: ClientId,
    /// Which replay of the session this answers (see `ClusterPort::replay`): an answer
    /// to an earlier one is dropped.
    pub generation: u64,
    pub messages: Option<Vec<(Arc<Message>, Origin)>>,
}

/// The answer to [`RestoreSession`].
#[derive(MessageResponse)]
pub struct Restored {
    /// Resolves once the NATS subscriptions of new filters reached the server.
    pub durable: Option<Durable>,
}
