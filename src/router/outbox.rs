//! Deliveries held until the end of the router's turn, then sent as one message per
//! session: a session that gets 32 messages in one turn handles one `DeliverBatch` (one
//! mailbox envelope, one wake-up, one pump) instead of 32 `Deliver`s.
//!
//! Order: a session's deliveries keep their routing order within a batch, and the
//! outbox is flushed before the router sends a session anything else (takeover,
//! shutdown) or handles a message that changes who gets what, so nothing overtakes.

use ahash::AHashMap as HashMap;

use actix::prelude::*;

use super::actor::Router;
use crate::delivery::Outgoing;
use crate::message::ClientId;
use crate::session::{Deliver, DeliverBatch, Session};

/// Held deliveries past which the outbox is flushed at once.
const MAX_HELD: usize = 8192;

#[derive(Default)]
pub(super) struct Outbox {
    index: HashMap<ClientId, usize>,
    batches: Vec<(Addr<Session>, Vec<Outgoing>)>,
    held: usize,
    /// A `FlushOutbox` is already queued to this router.
    scheduled: bool,
}

impl Outbox {
    /// Holds one delivery for `client`, whose session `addr` finds (asked only for the
    /// first delivery of the turn: cloning an `Addr` allocates); true when the outbox
    /// should be flushed now (it is full).
    #[inline]
    pub fn push(
        &mut self,
        client: ClientId,
        d: Outgoing,
        addr: impl FnOnce(&ClientId) -> Option<Addr<Session>>,
    ) -> bool {
        match self.index.get(&client) {
            Some(&i) => self.batches[i].1.push(d),
            None => {
                let Some(addr) = addr(&client) else {
                    return false;
                };
                self.index.insert(client, self.batches.len());
                self.batches.push((addr, vec![d]));
            }
        }
        self.held += 1;
        self.held >= MAX_HELD
    }

    /// Sends everything held, one message per session.
    pub fn flush(&mut self) {
        if self.held == 0 {
            return;
        }
        for (addr, mut batch) in self.batches.drain(..) {
            if batch.len() == 1 {
                if let Some(d) = batch.pop() {
                    addr.do_send(Deliver(d));
                }
            } else {
                addr.do_send(DeliverBatch(batch));
            }
        }
        self.index.clear();
        self.held = 0;
    }

    /// After a restart of the router, whose context dropped any queued `FlushOutbox`:
    /// what the outbox holds was routed before the failure and goes out now.
    pub fn restart(&mut self) {
        self.scheduled = false;
        self.flush();
    }

    /// True once per turn with deliveries held: the caller queues a `FlushOutbox`.
    fn needs_schedule(&mut self) -> bool {
        if self.held > 0 && !self.scheduled {
            self.scheduled = true;
            return true;
        }
        false
    }
}

/// Sent by the router to itself: handled after every message already in its mailbox.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct FlushOutbox;

impl Router {
    pub(super) fn on_flush_outbox(&mut self, _: FlushOutbox, _: &mut Context<Self>) {
        self.outbox.scheduled = false;
        self.outbox.flush();
    }
}

impl Router {
    /// After routing: make sure what the outbox holds goes out at the end of this turn.
    pub(super) fn schedule_flush(&mut self, ctx: &mut Context<Router>) {
        if self.outbox.needs_schedule() {
            ctx.notify(FlushOutbox);
        }
    }
}
