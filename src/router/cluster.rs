//! The router's side of cluster mode: attaching the bridge, and routing what arrives
//! from other nodes to local sessions only (never back to the cluster).

use actix::prelude::*;
use tracing::info;

use super::actor::Router;
use super::messages::{AttachCluster, EvictSessions, RemoteTakeover, RetainRemote, RouteRemote};
use super::state::Shares;
use crate::cluster::interest::is_node_local_topic;
use crate::cluster::isolation;
use crate::message::ClientId;
use crate::session::{Evict, Takeover};

impl Handler<AttachCluster> for Router {
    type Result = ();

    fn handle(&mut self, msg: AttachCluster, _: &mut Self::Context) {
        self.cluster = Some(msg.handle);
        // Every filter restored from the store so far becomes a NATS subscription.
        self.state.enable_interest();
        self.sync_interest();
        info!(
            subscriptions = self.state.subscription_count(),
            "router joined the cluster"
        );
    }
}

impl Handler<EvictSessions> for Router {
    type Result = ();

    fn handle(&mut self, msg: EvictSessions, _: &mut Self::Context) {
        info!(sessions = self.sessions.len(), reason = %msg.reason, "closing every connection");
        let evict = Evict {
            reason: msg.reason,
            why: msg.why,
        };
        for addr in self.sessions.values() {
            addr.do_send(evict);
        }
    }
}

impl Router {
    /// A session registered while the node is cut off from the cluster (its CONNECT
    /// passed the connect task's check just before): it is closed like the others, right
    /// after its CONNACK.
    pub(super) fn evict_if_isolated(&self, client: &ClientId) {
        if !self.cluster.as_ref().is_some_and(|c| c.isolated()) {
            return;
        }
        if let Some(addr) = self.sessions.get(client) {
            addr.do_send(Evict {
                reason: isolation::DISCONNECT_REASON,
                why: isolation::DISCONNECT_WHY,
            });
        }
    }
}

impl Handler<RouteRemote> for Router {
    type Result = ();

    fn handle(&mut self, msg: RouteRemote, ctx: &mut Self::Context) {
        self.guarded(ctx, |act| act.route_remote(msg));
        self.schedule_flush(ctx);
    }
}

impl Router {
    fn route_remote(&mut self, msg: RouteRemote) {
        let deliveries = match &msg.share {
            // The queue group picked this node: one local member of that group gets it.
            Some(share) => self.state.route_with(&msg.msg, Shares::Only(share)),
            // Several plain NATS subscriptions may match one message: route it once.
            None if !self.dedup.first(msg.origin, msg.seq) => return,
            None => self.state.route_with(&msg.msg, Shares::Skip),
        };
        self.routed += 1;
        // The publishing node acknowledged the publish already; the stored copies for
        // persistent sessions here are written without anyone waiting on them.
        let _ = self.deliver(&msg.msg, deliveries, Vec::new());
    }
}

impl Handler<RetainRemote> for Router {
    type Result = ();

    fn handle(&mut self, msg: RetainRemote, _: &mut Self::Context) {
        if !is_node_local_topic(msg.msg.topic.as_str()) {
            self.state.retain(&msg.msg);
        }
    }
}

impl Handler<RemoteTakeover> for Router {
    type Result = ();

    fn handle(&mut self, msg: RemoteTakeover, _: &mut Self::Context) {
        self.outbox.flush();
        let Some(addr) = self.sessions.remove(&msg.client_id) else {
            return;
        };
        info!(client_id = %msg.client_id, "session taken over by another node");
        addr.do_send(Takeover { handover: None });
        self.drop_client(&msg.client_id);
        self.sync_interest();
    }
}
