//! The router's port to a cluster of nodes. The cluster module implements [`ClusterPort`]
//! over NATS; a single node runs with [`Standalone`], whose every answer is "nothing to
//! do", so the router's own code has no cluster fields or branches. Through the port the
//! router sends locally published messages to the other nodes (a ticket covers their
//! safe hand-over), reports which filters gained their first or lost their last local
//! subscriber, claims and releases client ids, lets the cluster load a session that
//! another node may hold, and asks for a resumed session's replay of the message log.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::interest::InterestChange;
use super::state::Delivery;
use crate::delivery::Origin;
use crate::message::{ClientId, Message};
use crate::persistence::{Durable, Loaded, ReplayCursor, SessionRecord};
use crate::protocol::ReasonCode;

/// What the router needs of a cluster. Every method has the single-node answer as its
/// default.
pub trait ClusterPort: Send {
    /// True when shared subscriptions pick their member across the cluster: a local
    /// publish then skips the `$share` groups, which the cluster routes.
    fn shares_elsewhere(&self) -> bool {
        false
    }

    /// True when the router cannot know every subscriber (they may be on other nodes):
    /// a publish is then never answered "no matching subscribers".
    fn interest_elsewhere(&self) -> bool {
        false
    }

    /// Numbers a locally published message for the cluster; `None` when it stays on
    /// this node.
    fn stamp(&mut self, _msg: &Message) -> Option<Origin> {
        None
    }

    /// Sends a locally published message, numbered by [`ClusterPort::stamp`], to the
    /// other nodes. With `ack` (QoS 1/2) the ticket resolves once the cluster holds it.
    fn forward(&mut self, _msg: &Arc<Message>, _origin: Origin, _ack: bool) -> Option<Durable> {
        None
    }

    /// The highest message log sequence the router has routed from the log feed (every
    /// lower one was routed before; the higher ones come later). Told before each
    /// [`ClusterPort::replay`] and [`ClusterPort::restart_replays`].
    fn log_position(&mut self, _seq: u64) {}

    /// Filters that gained their first or lost their last local subscriber. With
    /// `barrier`, the ticket resolves once new filters are subscribed cluster-wide.
    fn interest(&self, _changes: Vec<InterestChange>, _barrier: bool) -> Option<Durable> {
        None
    }

    /// [`ClusterPort::interest`] with a barrier, for a session restored from the store.
    /// `replay_follows`: a replay of the message log follows (queued behind a barrier
    /// of its own), which brings what the log holds for the new filters, so the ticket
    /// (the CONNACK) need not wait for the log feed to follow them too.
    fn restore_interest(
        &self,
        changes: Vec<InterestChange>,
        replay_follows: bool,
    ) -> Option<Durable> {
        let _ = replay_follows;
        self.interest(changes, true)
    }

    /// An administrator deleted the retained message of `msg.topic` here (`msg` is the
    /// deletion: an empty retained message): delete it on every node too, without
    /// routing it to anyone.
    fn forget_retained(&self, _msg: &Arc<Message>) {}

    /// A session of this client id connected here.
    fn claim(&self, _client: &ClientId, _persistent: bool) {}

    /// The local session of this client id ended.
    fn release(&self, _client: &ClientId) {}

    /// True when session state lives in the cluster: a client id with no live local
    /// session is claimed and loaded through [`ClusterPort::claim_and_load`].
    fn loads_sessions(&self) -> bool {
        false
    }

    /// Claims `client` cluster-wide, has its previous owner release it, then loads
    /// (`resume`) or deletes its stored session and stores `record`; the outcome
    /// arrives on `loaded` (dropped: the connection is refused).
    fn claim_and_load(
        &self,
        _client: ClientId,
        _resume: bool,
        _record: Option<SessionRecord>,
        loaded: oneshot::Sender<Loaded>,
    ) {
        let _ = loaded.send(Loaded::Nothing);
    }

    /// Asks for the message-log replay of a resumed session from `cursor` (the answer
    /// comes as `ReplayDone` with the returned generation) and holds the session's
    /// deliveries until it ends ([`ClusterPort::end_replay`]). `None` when there is none
    /// to wait for.
    fn replay(&mut self, _client: ClientId, _cursor: ReplayCursor) -> Option<u64> {
        None
    }

    /// True while replay `generation` of `client` is the one running (an answer or a
    /// guard of an earlier one is stale).
    fn replaying(&self, _client: &ClientId, _generation: u64) -> bool {
        false
    }

    /// True while some session's deliveries are held (checked once per message).
    fn holds_any(&self) -> bool {
        false
    }

    /// True while `client`'s deliveries are held.
    fn holds(&self, _client: &ClientId) -> bool {
        false
    }

    /// Keeps one delivery of a session whose replay runs.
    fn hold(&mut self, _held: Held) {}

    /// The replay of `client` is being delivered: from now on its new deliveries are
    /// no longer held (what is held still is, until taken).
    fn begin_release(&mut self, _client: &ClientId) {}

    /// The message numbers of what is held for `client` (a replay skips those).
    fn held_origins(&self, _client: &ClientId) -> ahash::AHashSet<Origin> {
        ahash::AHashSet::new()
    }

    /// The next delivery held for `client`, in routing order. The router takes them
    /// one at a time, so that a failure while it delivers leaves the rest held.
    fn next_held(&mut self, _client: &ClientId) -> Option<Held> {
        None
    }

    /// Ends `client`'s replay once its held deliveries are taken.
    fn end_replay(&mut self, _client: &ClientId) {}

    /// After a restart of the router, whose failed handler may have lost a replay's
    /// answer: asks every running replay again. Returns each held session with the
    /// generation of its new replay (`None`: not asked again, to be released without).
    fn restart_replays(&mut self) -> Vec<(ClientId, Option<u64>)> {
        Vec::new()
    }

    /// The DISCONNECT (reason, Reason String) for every connection while this node
    /// must not serve clients (cut off from the cluster).
    fn eviction(&self) -> Option<(ReasonCode, &'static str)> {
        None
    }

    /// True the first time a copy of a remote message arrives (several matching
    /// cluster subscriptions may each bring one).
    fn first_copy(&mut self, _origin: Origin) -> bool {
        true
    }
}

/// A delivery held while its session's replay runs.
#[derive(Debug)]
pub struct Held {
    pub msg: Arc<Message>,
    pub delivery: Delivery,
    pub origin: Option<Origin>,
}

/// A node on its own.
#[derive(Debug, Default)]
pub struct Standalone;

impl ClusterPort for Standalone {}
