//! The router actor: single owner of the subscription trie, retained messages and the
//! client id → session registry, and the single writer of session lifecycle to the
//! store. It never waits on a session (sessions wait on it), so there is no cycle to
//! deadlock on; store writes go to the persistence actor as messages.

use ahash::AHashMap as HashMap;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::debug;

use super::link::{SessionRef, Takeover};
use super::messages::*;
use super::outbox::Outbox;
use super::plan::Plan;
use super::port::{ClusterPort, Standalone};
use super::state::{RouterState, SubscribeOutcome};
use crate::config::Durability;
use crate::message::ClientId;
use crate::persistence::convert::subscription_record;
use crate::persistence::{
    ticket, Backlog, Durable, LoadSession, Op, Persist, Persistence, SessionRecord,
};

/// Mailbox size: high enough that a `send` never parks. A parked `send` is retried when
/// its future is next polled, and a later `send` from the same session could go in
/// first (publishes out of order; tests/ordering.rs). The bound comes from the sessions:
/// each has at most 128 publishes awaiting the router before it stops reading its socket.
pub const MAILBOX_CAPACITY: usize = 1 << 30;

/// The router actor.
pub struct Router {
    pub(super) state: RouterState,
    pub(super) sessions: HashMap<ClientId, SessionRef>,
    /// Cluster mode: sessions loading from the store (registered through the cluster,
    /// not restored yet). A second CONNECT of the id here takes such a session over in
    /// memory, and the restore of its subscriptions then serves the new one.
    pub(super) loading: HashMap<ClientId, SessionRef>,
    pub(super) persistence: Addr<Persistence>,
    pub(super) durability: Durability,
    /// What the persistence actor has yet to handle of what the router sent it.
    pub(super) backlog: Backlog,
    pub(super) routed: u64,
    /// Local publishes that matched no subscription.
    pub(super) unrouted: u64,
    /// Restarts after a failure.
    pub(super) restarts: u64,
    /// Cluster mode: the highest message log sequence routed (they come in log order).
    pub(super) log_fed: Option<u64>,
    /// What the store was told of the log position (`super::position`).
    pub(super) position: super::position::Position,
    /// The plan of the message being routed; kept to reuse its allocations.
    pub(super) plan: Plan,
    /// The other nodes, if any ([`Standalone`] on a single node).
    pub(super) cluster: Box<dyn ClusterPort>,
    /// The port's answers to `shares_elsewhere` and `interest_elsewhere`, which do not
    /// change (asked once, not per message).
    pub(super) shares_elsewhere: bool,
    pub(super) interest_elsewhere: bool,
    /// Deliveries held until the end of the turn.
    pub(super) outbox: Outbox,
    /// The cluster message being handled, kept until its handler returns
    /// (`super::redo`).
    pub(super) redo: Option<super::redo::Redo>,
    /// Test-only faults armed by `$fault/router/<handler>` publishes.
    pub(super) faults: crate::guard::Faults,
    /// Recent local publishes per topic (the status page's busiest topics).
    pub(super) topics: super::topics::TopicCounts,
    /// `queue_full = "backpressure"`: a publish's answer names the pressured sessions
    /// it reached.
    pub(super) backpressure: bool,
}

impl Router {
    /// A router over `state` (empty, or restored from the store).
    pub(crate) fn new(
        state: RouterState,
        persistence: Addr<Persistence>,
        durability: Durability,
        backlog: Backlog,
    ) -> Self {
        Router {
            outbox: Outbox::new(std::sync::Arc::clone(state.fast())),
            state,
            sessions: HashMap::new(),
            loading: HashMap::new(),
            persistence,
            durability,
            backlog,
            routed: 0,
            unrouted: 0,
            restarts: 0,
            log_fed: None,
            position: Default::default(),
            plan: Plan::default(),
            cluster: Box::new(Standalone),
            shares_elsewhere: false,
            interest_elsewhere: false,
            redo: None,
            faults: Default::default(),
            topics: Default::default(),
            backpressure: false,
        }
    }

    /// With `on`, each publish's answer names the pressured sessions it reached
    /// (`[limits] queue_full = "backpressure"`).
    pub(crate) fn with_backpressure(mut self, on: bool) -> Self {
        self.backpressure = on;
        if on {
            // The router tells each publisher which pressured sessions it reached.
            self.state.fast().enable(false);
        }
        self
    }

    /// Tells the cluster port the filters that gained their first or lost their last
    /// local subscriber (counted only once a cluster is attached).
    pub(super) fn sync_interest(&mut self) {
        let changes = self.state.take_interest_changes();
        if !changes.is_empty() {
            self.cluster.interest(changes, false);
        }
    }

    pub(super) fn persist(&self, ops: Vec<Op>) {
        if !ops.is_empty() {
            self.persistence.do_send(Persist { ops, done: None });
        }
    }

    /// The store ops for the record of a session that registered (`None`: it is not
    /// persistent), with the router's persistent flag updated.
    fn record_ops(&mut self, client: &ClientId, record: Option<SessionRecord>) -> Vec<Op> {
        match record {
            Some(record) => {
                self.state.set_persistent(client, true, 1);
                vec![Op::PutSession(record)]
            }
            None if self.state.is_persistent(client) => {
                self.state.set_persistent(client, false, 0);
                let client_id = client.clone();
                vec![Op::DeleteSession { client_id }]
            }
            None => Vec::new(),
        }
    }

    /// Registers `client`'s session (`None`: removes it), in the fast path's index too;
    /// returns the one it replaces.
    pub(super) fn set_session(
        &mut self,
        client: &ClientId,
        addr: Option<SessionRef>,
    ) -> Option<SessionRef> {
        self.state.fast().write().set_link(client, addr.clone());
        match addr {
            Some(addr) => self.sessions.insert(client.clone(), addr),
            None => self.sessions.remove(client),
        }
    }

    /// Forgets a client's subscriptions and stored session.
    pub(super) fn drop_client(&mut self, client: &ClientId) {
        self.loading.remove(client);
        if self.state.is_persistent(client) {
            self.persist(vec![Op::DeleteSession {
                client_id: client.clone(),
            }]);
        }
        self.state.remove_client(client);
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        debug!("router started");
    }
}

impl Router {
    pub(super) fn on_register(
        &mut self,
        msg: Register,
        _: &mut Context<Self>,
    ) -> Option<RegisterReply> {
        let client = msg.client_id.clone();
        // The fast path leaves this client's messages to the router until all of the
        // registration is written (if this fails, they stay with the router).
        self.state.fast().write().set_unsettled(&client, true);
        let reply = self.register(msg);
        self.state.fast().write().set_unsettled(&client, false);
        reply
    }

    fn register(&mut self, msg: Register) -> Option<RegisterReply> {
        self.outbox.flush();
        let client = msg.client_id;
        let again = msg.addr.clone();
        let previous = self.set_session(&client, Some(msg.addr));
        // The same session registering again (an in-process client whose registration
        // ended) does not take itself over.
        let previous = previous.filter(|p| *p != again);
        if self.cluster.loads_sessions() && !previous.as_ref().is_some_and(|p| p.connected()) {
            return Some(self.register_elsewhere(client, msg.clean_start, msg.persist));
        }
        let persistent = self.state.is_persistent(&client);
        // The new session's record, stored below unless it must wait for a load.
        let mut record = Some(msg.persist);
        let prior = match previous {
            // The previous session actor died: its stored state is the truth. The new
            // record is written once the load has read it, and only if it could.
            Some(dead) if !dead.connected() && !msg.clean_start && persistent => {
                let then = self.record_ops(&client, record.take().flatten());
                let (tx, rx) = oneshot::channel();
                self.persistence.do_send(LoadSession {
                    client_id: client.clone(),
                    reply: tx,
                    then,
                });
                Some(Prior::Stored(rx))
            }
            // No live session to resume: whatever subscriptions remain are stale.
            Some(ref dead) if !dead.connected() => {
                self.drop_client(&client);
                None
            }
            None => {
                self.drop_client(&client);
                None
            }
            Some(old) if msg.clean_start => {
                self.drop_client(&client);
                old.take_over(Takeover {
                    handover: None,
                    flushed: None,
                });
                None
            }
            Some(old) => {
                let (tx, rx) = oneshot::channel();
                old.take_over(Takeover {
                    handover: Some(tx),
                    flushed: None,
                });
                Some(Prior::Live(rx))
            }
        };
        self.state.set_online(&client, true);
        if let Some(record) = record {
            let ops = self.record_ops(&client, record);
            self.persist(ops);
        }
        self.sync_interest();
        self.cluster
            .claim(&client, self.state.is_persistent(&client));
        self.evict_if_isolated(&client);
        Some(RegisterReply { prior })
    }
}

impl Router {
    pub(super) fn on_adopt(&mut self, msg: Adopt, _: &mut Context<Self>) {
        self.outbox.flush();
        // (Never in cluster mode: its stores restore no sessions at start.)
        self.set_session(&msg.client_id, Some(msg.addr));
    }
}

impl Router {
    pub(super) fn on_update_session(&mut self, msg: UpdateSession, _: &mut Context<Self>) {
        self.outbox.flush();
        if self.sessions.get(&msg.client_id) != Some(&msg.addr) {
            return;
        }
        match msg.record {
            Some(record) if self.state.is_persistent(&msg.client_id) => {
                self.persist(vec![Op::PutSession(record)]);
            }
            Some(_) => {}
            None => {
                if self.state.is_persistent(&msg.client_id) {
                    let client_id = msg.client_id.clone();
                    self.persist(vec![Op::DeleteSession { client_id }]);
                }
                self.state.set_persistent(&msg.client_id, false, 0);
            }
        }
    }
}

impl Router {
    pub(super) fn on_went_offline(&mut self, msg: WentOffline, _: &mut Context<Self>) {
        self.outbox.flush();
        if self.sessions.get(&msg.client_id) == Some(&msg.addr) {
            self.state.set_online(&msg.client_id, false);
        }
    }
}

impl Router {
    pub(super) fn on_session_ended(&mut self, msg: SessionEnded, _: &mut Context<Self>) {
        self.outbox.flush();
        if self.sessions.get(&msg.client_id) == Some(&msg.addr) {
            self.set_session(&msg.client_id, None);
            self.drop_client(&msg.client_id);
            self.sync_interest();
            self.cluster.release(&msg.client_id);
        }
    }
}

impl Router {
    pub(super) fn on_forget_client(&mut self, msg: ForgetClient, _: &mut Context<Self>) {
        self.outbox.flush();
        // The stored session record (just written at Register) stays; its stale
        // subscriptions go.
        self.loading.remove(&msg.client_id);
        let subs = self.state.subscriptions_of(&msg.client_id);
        let id = &msg.client_id;
        if self.state.is_persistent(&msg.client_id) {
            let ops = subs
                .iter()
                .map(|(f, _)| Op::DeleteSubscription {
                    client_id: id.clone(),
                    filter: f.as_str().to_owned(),
                })
                .collect();
            self.persist(ops);
        }
        for (f, _) in subs {
            self.state.unsubscribe(&msg.client_id, &f);
        }
        self.sync_interest();
    }
}

impl Router {
    pub(super) fn on_route(&mut self, msg: Route, ctx: &mut Context<Self>) -> Routed {
        let routed = self.route(msg);
        self.schedule_flush(ctx);
        routed
    }
}

impl Router {
    pub(super) fn on_subscribe(&mut self, msg: Subscribe, _: &mut Context<Self>) -> SubscribeReply {
        self.outbox.flush();
        if let Some(from) = &msg.from {
            if self.sessions.get(&msg.client_id) != Some(from) {
                return SubscribeReply {
                    outcomes: Vec::new(),
                    durable: None,
                };
            }
        }
        let mut reply = self.subscribe(msg);
        let changes = self.state.take_interest_changes();
        if !changes.is_empty() {
            let subscribed = self.cluster.interest(changes, true);
            reply.durable = Durable::join_opt(reply.durable.take(), subscribed);
        }
        reply
    }
}

impl Router {
    fn subscribe(&mut self, msg: Subscribe) -> SubscribeReply {
        let now = Instant::now();
        let outcomes: Vec<SubscribeOutcome> = msg
            .filters
            .iter()
            .map(|(filter, entry)| self.state.subscribe(&msg.client_id, filter, *entry, now))
            .collect();
        if !self.state.is_persistent(&msg.client_id) {
            return SubscribeReply {
                outcomes,
                durable: None,
            };
        }
        let id = &msg.client_id;
        let ops = msg
            .filters
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| !outcome.over_quota)
            .map(|((f, e), _)| Op::PutSubscription {
                client_id: id.clone(),
                sub: subscription_record(f, e),
            })
            .collect();
        let (durable, done) = ticket(self.durability);
        self.persistence.do_send(Persist { ops, done });
        SubscribeReply { outcomes, durable }
    }
}

impl Router {
    pub(super) fn on_unsubscribe(
        &mut self,
        msg: Unsubscribe,
        _: &mut Context<Self>,
    ) -> Option<Vec<bool>> {
        self.outbox.flush();
        if self.state.is_persistent(&msg.client_id) {
            let id = &msg.client_id;
            let ops = msg
                .filters
                .iter()
                .map(|f| Op::DeleteSubscription {
                    client_id: id.clone(),
                    filter: f.as_str().to_owned(),
                })
                .collect();
            self.persist(ops);
        }
        let existed = msg
            .filters
            .iter()
            .map(|f| self.state.unsubscribe(&msg.client_id, f))
            .collect();
        self.sync_interest();
        Some(existed)
    }
}

impl Router {
    pub(super) fn on_get_stats(&mut self, _: GetStats, _: &mut Context<Self>) -> RouterStats {
        let (routed, unrouted) = self.state.fast().counts();
        RouterStats {
            sessions: self.sessions.len(),
            subscriptions: self.state.subscription_count(),
            retained: self.state.retained_count(),
            routed: self.routed + routed,
            unrouted: self.unrouted + unrouted,
            restarts: self.restarts,
        }
    }
}

impl Router {
    pub(super) fn on_recheck_subscriptions(
        &mut self,
        _: RecheckSubscriptions,
        _: &mut Context<Self>,
    ) -> bool {
        for (client, link) in &self.sessions {
            let filters: Vec<_> = self
                .state
                .subscriptions_of(client)
                .into_iter()
                .map(|(filter, _)| filter)
                .collect();
            if !filters.is_empty() {
                link.recheck(filters);
            }
        }
        true
    }
}

impl Router {
    pub(super) fn on_shutdown_sessions(
        &mut self,
        _: ShutdownSessions,
        _: &mut Context<Self>,
    ) -> bool {
        self.outbox.flush();
        for addr in self.sessions.values() {
            addr.shut_down();
        }
        true
    }
}
