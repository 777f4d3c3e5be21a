//! Cluster mode: a session resumed from JetStream catches up on the message log
//! (`cluster::replay`). From its restore until the replay's answer, the router holds the
//! session's new deliveries; then it delivers the replayed messages the session did not
//! get yet, in log order, and after them the held ones, so that nothing published while
//! the session had no live owner is lost and each publisher's order is kept.

use std::sync::Arc;

use std::time::Duration;

use actix::prelude::*;
use ahash::AHashSet as HashSet;
use tracing::{debug, info, warn};

use super::actor::Router;
use super::messages::{CatchUp, ReplayDone};
use super::state::{Delivery, Shares};
use crate::message::{ClientId, Message};
use crate::persistence::{GetCursors, ReplayCursor};

/// Longest hold of a session's deliveries: the bridge's replay is bounded at 30 s, plus
/// the log writes queued before it.
const REPLAY_GUARD: Duration = Duration::from_secs(90);

/// A delivery held while its session's replay runs.
pub(super) struct Held {
    pub msg: Arc<Message>,
    pub delivery: Delivery,
    pub origin: Option<(u64, u64)>,
}

impl Router {
    /// After the restore's interest changes: asks the bridge for the log since `cursor`
    /// and holds the session's deliveries until the answer.
    pub(super) fn start_replay(
        &mut self,
        client: &ClientId,
        cursor: ReplayCursor,
        ctx: &mut Context<Router>,
    ) {
        if self.cluster.is_none() || cursor.subs.is_empty() {
            return;
        }
        // (A replay already running for it keeps what it holds.)
        self.replaying.entry(client.clone()).or_default();
        self.request_replay(client.clone(), Some(cursor), ctx);
    }

    /// For a session whose deliveries are held: asks the bridge for its replay, or
    /// releases them at once when there is nothing to replay.
    fn request_replay(
        &mut self,
        client: ClientId,
        cursor: Option<ReplayCursor>,
        ctx: &mut Context<Router>,
    ) {
        let queued = match (&mut self.cluster, cursor) {
            (Some(cluster), Some(cursor)) if !cursor.subs.is_empty() => {
                cluster.replay(client.clone(), cursor)
            }
            _ => false,
        };
        if !queued {
            self.finish_replay(client, Vec::new(), ctx);
            return;
        }
        // The bridge always answers within its own bounds; should it not, the held
        // deliveries go out without the replay (a late answer is then dropped).
        ctx.run_later(REPLAY_GUARD, move |act, ctx| {
            if act.replaying.contains_key(&client) {
                warn!(client_id = %client, "no message log replay in time; delivering without it");
                act.finish_replay(client, Vec::new(), ctx);
            }
        });
    }

    /// Holds `delivery` if its session is replaying; gives it back otherwise.
    pub(super) fn hold(
        &mut self,
        msg: &Arc<Message>,
        delivery: Delivery,
        origin: Option<(u64, u64)>,
    ) -> Option<Delivery> {
        if self.replaying.is_empty() {
            return Some(delivery);
        }
        match self.replaying.get_mut(&delivery.client) {
            Some(held) => {
                held.push(Held {
                    msg: Arc::clone(msg),
                    delivery,
                    origin,
                });
                None
            }
            None => Some(delivery),
        }
    }
}

/// The node's NATS connection came back (or a NATS subscription dropped messages): live
/// copies may have been missed, so every local persistent session catches up on the
/// log from its cursor.
impl Handler<CatchUp> for Router {
    type Result = ();

    fn handle(&mut self, _: CatchUp, ctx: &mut Self::Context) {
        if !self.state_in_cluster || self.cluster.is_none() {
            return;
        }
        let clients: Vec<ClientId> = self
            .sessions
            .keys()
            .filter(|c| self.state.is_persistent(c))
            .cloned()
            .collect();
        if clients.is_empty() {
            return;
        }
        info!(
            sessions = clients.len(),
            "persistent sessions catch up on the message log"
        );
        self.outbox.flush();
        for c in &clients {
            self.replaying.entry(c.clone()).or_default();
        }
        // The cursors once every delivery made so far is applied to the store.
        let cursors = self.persistence.send(GetCursors {
            clients: clients.clone(),
        });
        let fut =
            async move { cursors.await.ok() }
                .into_actor(self)
                .map(move |cursors, act, ctx| match cursors {
                    Some(cursors) => {
                        for (client, cursor) in cursors {
                            act.request_replay(client, cursor, ctx);
                        }
                    }
                    None => {
                        for client in clients {
                            act.finish_replay(client, Vec::new(), ctx);
                        }
                    }
                });
        ctx.spawn(fut);
    }
}

impl Handler<ReplayDone> for Router {
    type Result = ();

    fn handle(&mut self, msg: ReplayDone, ctx: &mut Self::Context) {
        if !self.replaying.contains_key(&msg.client_id) {
            warn!(client_id = %msg.client_id, "late message log replay dropped");
            return;
        }
        self.finish_replay(msg.client_id, msg.messages, ctx);
    }
}

impl Router {
    /// Delivers the replayed messages the session did not get live, then the held ones.
    fn finish_replay(
        &mut self,
        client: ClientId,
        messages: Vec<(Arc<Message>, u64, u64)>,
        ctx: &mut Context<Router>,
    ) {
        self.outbox.flush();
        let held = self.replaying.remove(&client).unwrap_or_default();
        let live: HashSet<(u64, u64)> = held.iter().filter_map(|h| h.origin).collect();
        let mut replayed = 0usize;
        for (m, origin, seq) in messages {
            if live.contains(&(origin, seq)) {
                continue;
            }
            let mut deliveries = self.state.route_with(&m, Shares::Skip);
            deliveries.retain(|d| d.client == client);
            if deliveries.is_empty() {
                continue;
            }
            replayed += 1;
            let _ = self.deliver(&m, deliveries, Vec::new(), Some((origin, seq)));
        }
        let held_count = held.len();
        for h in held {
            let _ = self.deliver(&h.msg, vec![h.delivery], Vec::new(), h.origin);
        }
        debug!(client_id = %client, replayed, held = held_count, "replay delivered");
        self.schedule_flush(ctx);
    }
}
