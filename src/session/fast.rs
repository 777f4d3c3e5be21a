//! The session's side of parallel routing (`router::fast`): a publish is matched on
//! this session's own worker thread and its deliveries collected in a batch handed to
//! the subscribers at the end of the read turn, when the router has nothing of this
//! publisher's outstanding. Otherwise it goes to the router as `Route`.
//!
//! Per-publisher order: a publish goes the fast way only when no `Route` of this
//! session awaits its answer and the router's outbox flush that carried the last
//! routed one is done (`Routed::after` against `FastRoute::flushed`): the router's
//! deliveries are then in the subscribers' mailboxes before this session adds its own.
//! The other way round, the batch is handed over before the next `Route` leaves.
//!
//! Acknowledgements keep their slots in [`super::inflow::Inflow`]: a QoS 1 publish
//! routed here is answered once the batch is handed over (no persistent target, so no
//! store write to wait for).

use std::sync::Arc;

use actix::prelude::*;

use super::actor::Session;
use super::inflow::AckSlot;
use crate::message::Message;
use crate::protocol::{PacketId, QoS};
use crate::router::fast::{Batch, FastRouted};

/// Publishes in one batch past which it is handed over at once.
const MAX_BATCH: usize = 64;

/// The fast path's state in one session.
#[derive(Default)]
pub(super) struct Fast {
    /// `Route`s sent and not answered yet.
    at_router: u32,
    /// The router's outbox flushes that must be done before the next fast publish.
    after: u64,
    /// A `FlushFast` is queued to this session.
    scheduled: bool,
    /// The current turn's batch (allocated on the first fast publish).
    batch: Option<Box<Batch>>,
    /// Each batched publish's acknowledgement slot and how many sessions it reached.
    acks: Vec<(Option<AckSlot>, usize)>,
}

impl Fast {
    /// A `Route` leaves for the router.
    pub fn sent_to_router(&mut self) {
        self.at_router += 1;
    }

    /// The router answered a `Route`; its deliveries go out with flush `after`.
    pub fn answered(&mut self, after: u64) {
        self.at_router = self.at_router.saturating_sub(1);
        self.after = self.after.max(after);
    }
}

/// Sent by a session to itself: the end of the read turn hands the batch over.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct FlushFast;

impl Handler<FlushFast> for Session {
    type Result = ();

    fn handle(&mut self, _: FlushFast, ctx: &mut Self::Context) {
        self.fast.scheduled = false;
        if self.flush_fast() {
            let actions = self.life.acks_settled(self.facts());
            self.perform(actions, ctx);
        }
    }
}

impl Session {
    /// Routes `msg` on this thread when it may (see the module doc); false when it
    /// must go to the router (nothing was delivered).
    pub(super) fn route_fast(
        &mut self,
        msg: &Arc<Message>,
        ack: Option<(QoS, PacketId)>,
        ctx: &mut Context<Self>,
    ) -> bool {
        let router = &self.shared.fast;
        if self.fast.at_router > 0 || router.flushed() < self.fast.after {
            return false;
        }
        let batch = self.fast.batch.get_or_insert_with(Default::default);
        let FastRouted::Batched(matched) = router.try_route(msg, batch) else {
            return false;
        };
        let sent = self.inbound.flow.on_route(msg.qos, ack.map(|(_, id)| id));
        self.fast.acks.push((sent.ack, matched));
        if sent.pause || self.fast.acks.len() >= MAX_BATCH {
            self.flush_fast();
        } else if !self.fast.scheduled {
            self.fast.scheduled = true;
            ctx.notify(FlushFast);
        }
        true
    }

    /// Hands the batch over and fills the acknowledgements it held; true when there
    /// was one. The caller tells the lifecycle (`acks_settled`) if it needs to.
    pub(super) fn flush_fast(&mut self) -> bool {
        let Some(batch) = self.fast.batch.as_mut().filter(|b| !b.is_empty()) else {
            return false;
        };
        self.shared.fast.flush(batch);
        let v5 = self.is_v5();
        for (ack, matched) in self.fast.acks.drain(..) {
            let answered = self.inbound.flow.on_routed(Some(matched), ack, v5);
            if answered.resume {
                self.inbound.gate.open();
            }
        }
        self.flush_acks();
        true
    }
}
