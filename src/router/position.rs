//! Cluster mode: the message log position the router's store ops cover, so that a
//! session resumed elsewhere replays the log from its cursor's position rather than
//! from its oldest subscription's time (`cluster/js_store/cursor.rs`).
//!
//! The log feed brings the other nodes' log entries in log order (`RouteRemote` with
//! its sequence); the node's own messages are routed before their log write, so before
//! any later entry the feed brings. The router hands the store each delivery as it
//! routes it, so once it has routed entry `P`, every entry up to `P` that matched a
//! session here is in what it sent the store. At the end of a turn that routed feed
//! entries it sends [`Op::LogPosition`] with the highest one, in order behind those
//! deliveries. A session loaded from the store is not covered until its replay's
//! messages are queued too: [`Op::CaughtUp`] follows them (or the restore, when no
//! replay runs). A replay that failed or timed out sends none: the session's cursor
//! keeps the position it was loaded with. Without a log feed nothing is sent.
//!
//! With the feed filtered to the node's interest, a node may route nothing for a long
//! time while the log grows: when the feed's watchdog finds its consumer holds nothing
//! more, it sends [`FeedAt`] with the stream's last sequence read before asking, and
//! the position may move up to it (no entry up to there was for this node). That moves
//! the position only, not `log_fed`, which the replay takes as "what the feed brings".
//!
//! The store writes a session's position with its cursor, which it writes after the
//! batches that deliver to it. So that a session that gets nothing (a rare topic, a
//! busy log) still resumes from a recent position, every [`REFRESH`] the position goes
//! with an [`Op::RefreshPosition`] for each persistent session this router holds and
//! does not hold back for a replay: the store rewrites those cursors whose position
//! moved. Only the router knows which sessions this node still holds (a session taken
//! over by another node must not get this node's cursor again), so it names them.
//! Cost: one op per persistent session per [`REFRESH`], and one cursor write for each
//! whose position moved.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::actor::Router;
use super::messages::FeedAt;
use crate::message::ClientId;
use crate::persistence::{Op, Persist};

/// How often the persistent sessions' cursors get the current position.
const REFRESH: Duration = Duration::from_secs(30);

/// What the store was told.
#[derive(Debug, Default)]
pub(super) struct Position {
    /// The last position sent.
    stored: Option<u64>,
    /// Where the feed found nothing more for this node ([`crate::router::messages::FeedAt`]);
    /// the position only, not the replay's `log_fed` (what the feed brings).
    scanned: Option<u64>,
    /// A [`StorePosition`] is queued.
    pub(super) scheduled: bool,
    /// When the sessions' cursors were last refreshed.
    refreshed: Option<Instant>,
}

/// Sent by the router to itself after routing feed entries: handled after the
/// messages already in its mailbox, so once per busy turn.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct StorePosition;

impl Router {
    /// Feed entry `seq` was routed (they come in log order).
    pub(super) fn fed(&mut self, seq: u64) {
        self.log_fed = Some(self.log_fed.map_or(seq, |f| f.max(seq)));
    }

    /// The position the store ops sent cover: the feed's last entry routed, or where
    /// the feed had nothing more for this node, whichever is later.
    fn covered(&self) -> Option<u64> {
        self.log_fed.max(self.position.scanned)
    }

    pub(super) fn on_feed_at(&mut self, msg: FeedAt, ctx: &mut Context<Self>) {
        self.position.scanned = self.position.scanned.max(Some(msg.seq));
        self.schedule_position(ctx);
    }

    /// Makes sure a [`StorePosition`] follows what was routed (after a restart too:
    /// the restart dropped any queued one).
    pub(super) fn schedule_position(&mut self, ctx: &mut Context<Router>) {
        if self.covered() > self.position.stored && !self.position.scheduled {
            self.position.scheduled = true;
            ctx.notify(StorePosition);
        }
    }

    pub(super) fn on_store_position(&mut self, _: StorePosition, _: &mut Context<Self>) {
        self.position.scheduled = false;
        let covered = self.covered();
        let Some(seq) = covered.filter(|_| covered > self.position.stored) else {
            return;
        };
        self.position.stored = Some(seq);
        let mut ops = vec![Op::LogPosition { seq }];
        let now = Instant::now();
        let due = self.position.refreshed.is_none_or(|at| now >= at + REFRESH);
        if due {
            self.position.refreshed = Some(now);
            let held = self
                .state
                .persistent_clients()
                .filter(|c| !self.cluster.holds(c))
                .map(|c| Op::RefreshPosition {
                    client_id: c.clone(),
                });
            ops.extend(held);
        }
        self.persistence.do_send(Persist { ops, done: None });
    }

    /// The session restored from the store has what its replay brought (or needs
    /// none): the log position covers it from now on.
    pub(super) fn caught_up(&mut self, client: &ClientId) {
        self.persistence.do_send(Persist {
            ops: vec![Op::CaughtUp {
                client_id: client.clone(),
            }],
            done: None,
        });
    }
}
