//! Cluster mode: a session resumed from JetStream catches up on the message log
//! (the cluster's message log). From its restore until the replay's answer, the cluster port
//! holds the session's new deliveries; then the router delivers the replayed messages
//! the session did not get yet, in log order, and after them the held ones, so that
//! nothing published while the session had no live owner is lost and each publisher's
//! order is kept.

use std::sync::Arc;

use std::time::Duration;

use actix::prelude::*;
use ahash::AHashSet as HashSet;
use tracing::{debug, warn};

use super::actor::Router;
use super::messages::ReplayDone;
use super::state::Shares;
use crate::delivery::Origin;
use crate::message::{ClientId, Message};
use crate::persistence::ReplayCursor;

/// Longest hold of a session's deliveries: the bridge's replay is bounded at 30 s, plus
/// the log writes queued before it.
const REPLAY_GUARD: Duration = Duration::from_secs(90);

/// Sent by the router to itself: replay `generation` of a session is overdue, its held
/// deliveries go out without it; `None`: at once (its replay could not be asked again).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ReplayGuard {
    pub(super) client_id: ClientId,
    pub(super) generation: Option<u64>,
}

impl Router {
    /// After the restore's interest changes: asks the cluster for the log since `cursor`;
    /// the cluster holds the session's deliveries until the answer. False when no
    /// replay runs (nothing to replay, or no message log).
    pub(super) fn start_replay(
        &mut self,
        client: &ClientId,
        cursor: ReplayCursor,
        ctx: &mut Context<Router>,
    ) -> bool {
        if cursor.subs.is_empty() {
            return false;
        }
        if let Some(fed) = self.log_fed {
            self.cluster.log_position(fed);
        }
        let Some(generation) = self.cluster.replay(client.clone(), cursor) else {
            return false;
        };
        self.arm_replay_guard(client.clone(), generation, ctx);
        true
    }

    /// After a restart of the router: each held session's replay was asked for again
    /// (its answer may have been lost with the failed handler; the first answer, if it
    /// comes, is stale) and gets its guard again, since the restart dropped the timers;
    /// one that could not be asked again is released without it.
    pub(super) fn restart_replays(&mut self, ctx: &mut Context<Router>) {
        if let Some(fed) = self.log_fed {
            self.cluster.log_position(fed);
        }
        for (client, asked) in self.cluster.restart_replays() {
            match asked {
                Some(generation) => self.arm_replay_guard(client, generation, ctx),
                None => {
                    warn!(client_id = %client, "message log replay not asked again; delivering without it");
                    ctx.notify(ReplayGuard {
                        client_id: client,
                        generation: None,
                    });
                }
            }
        }
    }

    /// The bridge always answers within its own bounds; should it not, the held
    /// deliveries go out without the replay after [`REPLAY_GUARD`] (a late answer is then
    /// dropped). A message, not a timer callback, so that it runs guarded.
    fn arm_replay_guard(&mut self, client: ClientId, generation: u64, ctx: &mut Context<Router>) {
        let guard = ReplayGuard {
            client_id: client,
            generation: Some(generation),
        };
        ctx.notify_later(guard, REPLAY_GUARD);
    }

    pub(super) fn on_replay_guard(&mut self, msg: ReplayGuard, ctx: &mut Context<Self>) {
        let client = msg.client_id;
        if let Some(generation) = msg.generation {
            if !self.cluster.replaying(&client, generation) {
                return;
            }
            warn!(client_id = %client, "no message log replay in time; delivering without it");
        }
        self.finish_replay(client, None, ctx);
    }

    pub(super) fn on_replay_done(&mut self, msg: ReplayDone, ctx: &mut Context<Self>) {
        if !self.cluster.replaying(&msg.client_id, msg.generation) {
            warn!(client_id = %msg.client_id, "late message log replay dropped");
            return;
        }
        self.finish_replay(msg.client_id, msg.messages, ctx);
    }

    /// Delivers the replayed messages the session did not get live, then the held ones
    /// (taken one at a time: should this fail midway, the rest stays held and the
    /// restart asks for the replay again); `None`: the replay failed. After a replay
    /// that read the log, the store hears that the session caught up
    /// (`super::position`).
    fn finish_replay(
        &mut self,
        client: ClientId,
        messages: Option<Vec<(Arc<Message>, Origin)>>,
        ctx: &mut Context<Router>,
    ) {
        let read = messages.is_some();
        let messages = messages.unwrap_or_default();
        self.outbox.flush();
        self.cluster.begin_release(&client);
        let live: HashSet<Origin> = self.cluster.held_origins(&client);
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
        let mut held = 0usize;
        while let Some(h) = self.cluster.next_held(&client) {
            held += 1;
            // Tests: `$fault/router/ReplayDone/held` fails the release once one held
            // delivery went out and the next was taken.
            #[cfg(feature = "fault-injection")]
            if held > 1 && self.faults.take("ReplayDone/held") {
                panic!("injected fault in router ReplayDone/held");
            }
            let _ = self.deliver(&h.msg, [h.delivery], Vec::new(), h.origin);
        }
        self.cluster.end_replay(&client);
        if read {
            self.caught_up(&client);
        }
        debug!(client_id = %client, replayed, held, "replay delivered");
        self.schedule_flush(ctx);
    }
}
