//! Cluster mode: a session resumed from JetStream catches up on the message log
//! (`cluster::replay`). From its restore until the replay's answer, the router holds the
//! session's new deliveries; then it delivers the replayed messages the session did not
//! get yet, in log order, and after them the held ones, so that nothing published while
//! the session had no live owner is lost and each publisher's order is kept.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use std::time::Duration;

use actix::prelude::*;
use ahash::AHashSet as HashSet;
use tracing::{debug, warn};

use super::actor::Router;
use super::messages::ReplayDone;
use super::state::{Delivery, Shares};
use crate::delivery::Origin;
use crate::message::{ClientId, Message};
use crate::persistence::ReplayCursor;

/// Longest hold of a session's deliveries: the bridge's replay is bounded at 30 s, plus
/// the log writes queued before it.
const REPLAY_GUARD: Duration = Duration::from_secs(90);

/// A session catching up on the message log.
pub(super) struct Replaying {
    /// Where its replay started: asked again if the router restarts meanwhile (the
    /// answer may have been lost with the failed handler).
    pub cursor: ReplayCursor,
    /// Its deliveries since, in routing order.
    pub held: Vec<Held>,
}

/// A delivery held while its session's replay runs.
pub(super) struct Held {
    pub msg: Arc<Message>,
    pub delivery: Delivery,
    pub origin: Option<Origin>,
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
        if cursor.subs.is_empty() || !self.cluster.replay(client.clone(), cursor.clone()) {
            return;
        }
        // (A replay already running for it keeps what it holds.)
        match self.replaying.entry(client.clone()) {
            Entry::Occupied(mut e) => e.get_mut().cursor = cursor,
            Entry::Vacant(e) => {
                let held = Vec::new();
                e.insert(Replaying { cursor, held });
            }
        }
        self.arm_replay_guard(client.clone(), ctx);
    }

    /// After a restart of the router: each held session's replay is asked for again
    /// (its answer may have been lost with the failed handler; a second answer is
    /// dropped as late) and its guard re-armed, since the restart dropped the timers.
    pub(super) fn restart_replays(&mut self, ctx: &mut Context<Router>) {
        let held: Vec<_> = self
            .replaying
            .iter()
            .map(|(c, r)| (c.clone(), r.cursor.clone()))
            .collect();
        for (client, cursor) in held {
            if self.cluster.replay(client.clone(), cursor) {
                self.arm_replay_guard(client, ctx);
            } else {
                warn!(client_id = %client, "message log replay not asked again; delivering without it");
                self.finish_replay(client, Vec::new(), ctx);
            }
        }
    }

    /// The bridge always answers within its own bounds; should it not, the held
    /// deliveries go out without the replay after [`REPLAY_GUARD`] (a late answer is then
    /// dropped). Also re-armed for every held session when the router restarts (the
    /// restart drops the actor's timers).
    pub(super) fn arm_replay_guard(&mut self, client: ClientId, ctx: &mut Context<Router>) {
        ctx.run_later(REPLAY_GUARD, move |act, ctx| {
            if act.replaying.contains_key(&client) {
                warn!(client_id = %client, "no message log replay in time; delivering without it");
                act.finish_replay(client, Vec::new(), ctx);
            }
        });
    }
}

impl Router {
    pub(super) fn on_replay_done(&mut self, msg: ReplayDone, ctx: &mut Context<Self>) {
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
        messages: Vec<(Arc<Message>, Origin)>,
        ctx: &mut Context<Router>,
    ) {
        self.outbox.flush();
        let held = self
            .replaying
            .remove(&client)
            .map(|r| r.held)
            .unwrap_or_default();
        let live: HashSet<Origin> = held.iter().filter_map(|h| h.origin).collect();
        let mut replayed = 0usize;
        for (m, origin) in messages {
            if live.contains(&origin) {
                continue;
            }
            let mut deliveries = self.state.route_with(&m, Shares::Skip);
            deliveries.retain(|d| d.client == client);
            if deliveries.is_empty() {
                continue;
            }
            replayed += 1;
            let _ = self.deliver(&m, deliveries, Vec::new(), Some(origin));
        }
        let held_count = held.len();
        for h in held {
            let _ = self.deliver(&h.msg, vec![h.delivery], Vec::new(), h.origin);
        }
        debug!(client_id = %client, replayed, held = held_count, "replay delivered");
        self.schedule_flush(ctx);
    }
}
