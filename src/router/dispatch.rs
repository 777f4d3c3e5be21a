//! Every message the router handles goes through one guarded dispatch
//! ([`crate::guard::dispatch`]); a failed handler restarts the router, and
//! [`Supervised::restarting`] here puts back what the restart dropped.

use actix::prelude::*;
use tracing::warn;

use super::actor::Router;
use super::messages::*;
use super::outbox::FlushOutbox;
use super::position::StorePosition;
use super::replay::ReplayGuard;
use crate::guard::{calls, guarded_handlers, Guarded};
use crate::persistence::failed_ticket;

guarded_handlers!(Router);

impl Guarded for Router {
    const ACTOR: &'static str = "router";

    fn take_fault(&mut self, name: &'static str) -> bool {
        self.faults.take(name)
    }
}

impl Supervised for Router {
    /// The supervisor keeps this value: the registry and the per-client subscriptions
    /// survive. What the failed handler may have left half done, or what waited for
    /// the context the restart replaced, is put back:
    /// - the trie, an index over the subscriptions, is rebuilt;
    /// - deliveries held in the outbox go out now (their `FlushOutbox` was dropped);
    /// - a message from the cluster whose handler failed is handled again
    ///   (`super::redo`): its publisher was answered on another node; so is the
    ///   `Adopt` of a stored session at start, and `EvictSessions`;
    /// - each session whose deliveries a message-log replay holds asks for its replay
    ///   again (the answer may have been lost) and gets its guard timer again, so a
    ///   replay that never answers still releases them;
    /// - the store gets the message log position routed so far (`super::position`);
    /// - the cluster hears the interest changes made before the failure.
    fn restarting(&mut self, ctx: &mut Self::Context) {
        self.restarts += 1;
        self.state.rebuild_index();
        self.outbox.restart();
        self.redo(ctx);
        self.restart_replays(ctx);
        self.position.scheduled = false;
        self.schedule_position(ctx);
        self.sync_interest();
        warn!(
            sessions = self.sessions.len(),
            "router restarted; index rebuilt"
        );
    }
}

calls!(Router {
    Register => on_register, failed None;
    UpdateSession => on_update_session, failed ();
    WentOffline => on_went_offline, failed ();
    SessionEnded => on_session_ended, failed ();
    ForgetClient => on_forget_client, failed ();
    Route => on_route, failed Routed {
        matched: 0,
        durable: Some(failed_ticket()),
        pressured: Vec::new(),
        after: u64::MAX,
    };
    Subscribe => on_subscribe, failed SubscribeReply {
        outcomes: Vec::new(),
        durable: Some(failed_ticket()),
    };
    Unsubscribe => on_unsubscribe, failed None;
    Reshare => on_reshare, failed None;
    GetStats => on_get_stats, failed RouterStats::default();
    ShutdownSessions => on_shutdown_sessions, failed false;
    RecheckSubscriptions => on_recheck_subscriptions, failed false;
    FlushOutbox => on_flush_outbox, failed ();
    AttachCluster => on_attach_cluster, failed false;
    RestoreSession => on_restore_session, failed None;
    ReplayDone => on_replay_done, failed ();
    ReplayGuard => on_replay_guard, failed ();
    StorePosition => on_store_position, failed ();
    FeedAt => on_feed_at, failed ();
});

#[cfg(feature = "fault-injection")]
impl Router {
    /// A publish to `$fault/router` fails the routing of that very message; one to
    /// `$fault/router/<Handler>` (a message type the router handles, e.g. `Register`)
    /// arms one failure in the next run of that handler and is otherwise not routed.
    pub(super) fn inject_fault(&mut self, name: &str) -> Routed {
        match name.strip_prefix('/') {
            Some(handler) => {
                warn!(handler, "fault armed");
                self.faults.arm(handler);
                Routed {
                    matched: 0,
                    durable: None,
                    pressured: Vec::new(),
                    after: 0,
                }
            }
            None => panic!("injected router fault"),
        }
    }
}
