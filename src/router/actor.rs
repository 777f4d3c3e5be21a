//! The router actor: single owner of the subscription trie, retained messages and the
//! client id → session registry. It never waits on a session (sessions wait on it), so
//! there is no cycle to deadlock on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::debug;

use super::messages::*;
use super::state::{RouterState, SubscribeOutcome};
use crate::message::ClientId;
use crate::session::{Deliver, Session, Shutdown, Takeover};

/// Mailbox size: sessions awaiting `send` park once it is full (backpressure).
pub const MAILBOX_CAPACITY: usize = 4096;

/// The router actor.
#[derive(Default)]
pub struct Router {
    state: RouterState,
    sessions: HashMap<ClientId, Addr<Session>>,
    routed: u64,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        debug!("router started");
    }
}

impl Supervised for Router {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("router restarting");
    }
}

impl Handler<Register> for Router {
    type Result = RegisterReply;

    fn handle(&mut self, msg: Register, _: &mut Self::Context) -> RegisterReply {
        let old = self.sessions.insert(msg.client_id.clone(), msg.addr);
        self.state.set_online(&msg.client_id, true);
        let Some(old) = old.filter(Addr::connected) else {
            // No live session to resume: whatever subscriptions remain are stale.
            self.state.remove_client(&msg.client_id);
            self.state.set_online(&msg.client_id, true);
            return RegisterReply { handover: None };
        };
        if msg.clean_start {
            self.state.remove_client(&msg.client_id);
            self.state.set_online(&msg.client_id, true);
            old.do_send(Takeover { handover: None });
            return RegisterReply { handover: None };
        }
        let (tx, rx) = oneshot::channel();
        old.do_send(Takeover { handover: Some(tx) });
        RegisterReply { handover: Some(rx) }
    }
}

impl Handler<WentOffline> for Router {
    type Result = ();

    fn handle(&mut self, msg: WentOffline, _: &mut Self::Context) {
        if self.sessions.get(&msg.client_id) == Some(&msg.addr) {
            self.state.set_online(&msg.client_id, false);
        }
    }
}

impl Handler<SessionEnded> for Router {
    type Result = ();

    fn handle(&mut self, msg: SessionEnded, _: &mut Self::Context) {
        if self.sessions.get(&msg.client_id) == Some(&msg.addr) {
            self.sessions.remove(&msg.client_id);
            self.state.remove_client(&msg.client_id);
        }
    }
}

impl Handler<Route> for Router {
    type Result = Routed;

    fn handle(&mut self, msg: Route, _: &mut Self::Context) -> Routed {
        self.routed += 1;
        tracing::trace!(topic = %msg.msg.topic, retain = msg.msg.retain, "route");
        if msg.msg.retain {
            self.state.retain(&msg.msg);
        }
        let deliveries = self.state.route(&msg.msg);
        let mut matched = 0;
        for d in deliveries {
            if let Some(addr) = self.sessions.get(&d.client) {
                matched += 1;
                addr.do_send(Deliver {
                    msg: Arc::clone(&msg.msg),
                    qos: d.qos,
                    retain: d.retain,
                    sub_ids: d.sub_ids,
                });
            }
        }
        Routed { matched }
    }
}

impl Handler<Subscribe> for Router {
    type Result = Vec<SubscribeOutcome>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Vec<SubscribeOutcome> {
        let now = Instant::now();
        msg.filters
            .iter()
            .map(|(filter, entry)| self.state.subscribe(&msg.client_id, filter, *entry, now))
            .collect()
    }
}

impl Handler<Unsubscribe> for Router {
    type Result = Vec<bool>;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) -> Vec<bool> {
        msg.filters
            .iter()
            .map(|f| self.state.unsubscribe(&msg.client_id, f))
            .collect()
    }
}

impl Handler<GetStats> for Router {
    type Result = RouterStats;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> RouterStats {
        RouterStats {
            sessions: self.sessions.len(),
            subscriptions: self.state.subscription_count(),
            retained: self.state.retained_count(),
            routed: self.routed,
        }
    }
}

impl Handler<ShutdownSessions> for Router {
    type Result = ();

    fn handle(&mut self, _: ShutdownSessions, _: &mut Self::Context) {
        for addr in self.sessions.values() {
            addr.do_send(Shutdown);
        }
    }
}

impl Handler<ForgetClient> for Router {
    type Result = ();

    fn handle(&mut self, msg: ForgetClient, _: &mut Self::Context) {
        self.state.remove_client(&msg.client_id);
        self.state.set_online(&msg.client_id, true);
    }
}
