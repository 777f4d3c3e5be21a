//! What the router does for a cluster through its port (`super::port`): attaching one,
//! routing what arrives from other nodes to local sessions only (never back out),
//! closing connections when the node must not serve, and sessions whose state another
//! node may hold. Nothing here names the cluster's implementation.

use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::actor::Router;
use super::link::Takeover;
use super::messages::{
    AttachCluster, EvictSessions, Prior, RegisterReply, RemoteRouted, RemoteTakeover,
    RestoreSession, Restored, RetainRemote, RouteRemote,
};
use super::state::Shares;
use crate::message::ClientId;
use crate::persistence::convert::subscription_from_record;
use crate::persistence::{Persist, SessionRecord};

impl Router {
    pub(super) fn on_attach_cluster(&mut self, msg: AttachCluster, _: &mut Context<Self>) -> bool {
        // Every publish goes through the router: the port numbers, forwards and holds.
        self.state.fast().enable(false);
        self.shares_elsewhere = msg.port.shares_elsewhere();
        self.interest_elsewhere = msg.port.interest_elsewhere();
        self.cluster = msg.port;
        // Every filter restored from the store so far becomes a NATS subscription.
        self.state.enable_interest();
        self.sync_interest();
        info!(
            subscriptions = self.state.subscription_count(),
            "router joined the cluster"
        );
        true
    }
}

impl Router {
    pub(super) fn on_evict_sessions(&mut self, msg: EvictSessions, _: &mut Context<Self>) {
        info!(sessions = self.sessions.len(), reason = %msg.reason, "closing every connection");
        for addr in self.sessions.values() {
            addr.evict(msg.reason, msg.why);
        }
    }
}

impl Router {
    /// A session registered while the node is cut off from the cluster (its CONNECT
    /// passed the connect task's check just before): it is closed like the others, right
    /// after its CONNACK.
    pub(super) fn evict_if_isolated(&self, client: &ClientId) {
        let Some((reason, why)) = self.cluster.eviction() else {
            return;
        };
        if let Some(addr) = self.sessions.get(client) {
            addr.evict(reason, why);
        }
    }
}

impl Router {
    pub(super) fn on_route_remote(
        &mut self,
        msg: RouteRemote,
        ctx: &mut Context<Self>,
    ) -> RemoteRouted {
        let routed = self.route_remote(msg, false);
        self.schedule_flush(ctx);
        self.schedule_position(ctx);
        routed
    }
}

impl Router {
    /// Routes a message from another node to local sessions; `again` after a failure
    /// of its first run (`super::redo`), whose copy was counted already.
    pub(super) fn route_remote(&mut self, msg: RouteRemote, again: bool) -> RemoteRouted {
        let deliveries = match &msg.share {
            // The cluster picked this node: one online local member of that group gets
            // it, with the receipt the cluster waits on before letting it go.
            Some(share) => {
                let mut picked = self.state.route_with(&msg.msg, Shares::Only(share));
                for d in &mut picked {
                    d.receipt.clone_from(&msg.receipt);
                }
                picked
            }
            // Several plain NATS subscriptions may match one message: route it once.
            // (A copy routed already: its entry counts as routed.)
            None if !again && !self.cluster.first_copy(msg.origin) => {
                if let Some(seq) = msg.log {
                    self.fed(seq);
                }
                return RemoteRouted::default();
            }
            None => self.state.route_with(&msg.msg, Shares::Skip),
        };
        self.routed += 1;
        // The publishing node acknowledged the publish already: only a shared
        // subscription's message from the log waits for the stored copy (the answer).
        let (matched, durable) = self.deliver(&msg.msg, deliveries, Vec::new(), Some(msg.origin));
        // Counted as routed once its store ops are sent (`super::position`).
        if let Some(seq) = msg.log {
            self.fed(seq);
        }
        RemoteRouted { matched, durable }
    }
}

impl Router {
    pub(super) fn on_retain_remote(&mut self, msg: RetainRemote, _: &mut Context<Self>) {
        self.state.retain(&msg.msg);
    }
}

impl Router {
    pub(super) fn on_remote_takeover(&mut self, msg: RemoteTakeover, _: &mut Context<Self>) {
        self.outbox.flush();
        self.loading.remove(&msg.client_id);
        let Some(addr) = self.set_session(&msg.client_id, None) else {
            // No session here: answer once what is on its way to the store is stored.
            if let Some(done) = msg.flushed {
                self.persistence.do_send(Persist {
                    ops: Vec::new(),
                    done: Some(done),
                });
            }
            return;
        };
        info!(client_id = %msg.client_id, "session taken over by another node");
        addr.take_over(Takeover {
            handover: None,
            flushed: msg.flushed,
        });
        if msg.keep_stored {
            // Its stored state stays: the other node loads it.
            self.state.remove_client(&msg.client_id);
        } else {
            self.drop_client(&msg.client_id);
        }
        self.sync_interest();
    }
}

impl Router {
    /// Session state lives in the cluster, and no live local session holds the id:
    /// whatever this node knew of it is stale (the store is the truth). The answer
    /// waits for the claim, the previous owner's release and the load (or the deletion
    /// of what is stored, on clean start), which the cluster performs.
    pub(super) fn register_elsewhere(
        &mut self,
        client: ClientId,
        clean_start: bool,
        record: Option<SessionRecord>,
    ) -> RegisterReply {
        self.state.remove_client(&client);
        self.state.set_online(&client, true);
        if let Some(addr) = self.sessions.get(&client) {
            self.loading.insert(client.clone(), addr.clone());
        }
        if record.is_some() {
            self.state.set_persistent(&client, true, 1);
        }
        self.sync_interest();
        let (tx, rx) = oneshot::channel();
        self.cluster
            .claim_and_load(client.clone(), !clean_start, record, tx);
        self.evict_if_isolated(&client);
        RegisterReply {
            prior: Some(Prior::Stored(rx)),
        }
    }
}

impl Router {
    pub(super) fn on_restore_session(
        &mut self,
        msg: RestoreSession,
        ctx: &mut Context<Self>,
    ) -> Option<Restored> {
        // A session taken over by another CONNECT here while it loaded: the new one
        // inherits its state (handed over in memory), so its subscriptions too. One
        // closed meanwhile (`RemoteTakeover`, its end) restores nothing.
        let heir = self.loading.get(&msg.client_id) == Some(&msg.addr);
        if heir {
            self.loading.remove(&msg.client_id);
        }
        let current = self.sessions.get(&msg.client_id) == Some(&msg.addr);
        let inherited = heir && self.sessions.contains_key(&msg.client_id);
        if !(current || inherited) {
            return Some(Restored { durable: None });
        }
        let now = Instant::now();
        for sub in &msg.subscriptions {
            match subscription_from_record(sub) {
                Some((filter, entry)) => {
                    self.state.subscribe(&msg.client_id, &filter, entry, now);
                }
                None => {
                    warn!(client_id = %msg.client_id, filter = %sub.filter, "stored filter is not valid; skipped")
                }
            }
        }
        self.state.raise_next_seq(&msg.client_id, msg.next_seq);
        let changes = self.state.take_interest_changes();
        // `start_replay` asks for a replay exactly when the cursor has subscriptions.
        let replay_follows = msg.replay.as_ref().is_some_and(|c| !c.subs.is_empty());
        let durable = self.cluster.restore_interest(changes, replay_follows);
        let replaying = match msg.replay {
            Some(cursor) => self.start_replay(&msg.client_id, cursor, ctx),
            None => false,
        };
        if !replaying {
            self.caught_up(&msg.client_id);
        }
        Some(Restored { durable })
    }
}
