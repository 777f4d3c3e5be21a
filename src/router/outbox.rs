//! Deliveries held until the end of the router's turn, then sent as one message per
//! session: a session that gets 32 messages in one turn handles one `DeliverBatch` (one
//! mailbox envelope, one wake-up, one pump) instead of 32 `Deliver`s.
//!
//! Order: a session's deliveries keep their routing order within a batch, and the
//! outbox is flushed before the router sends a session anything else (takeover,
//! shutdown) or handles a message that changes who gets what, so nothing overtakes.
//! Each flush that hands deliveries over is counted in the fast path's index
//! (`FastRoute::flushed`): a publisher's session routes on its own thread only once
//! the flush carrying its earlier messages is done (`Routed::after`).

use ahash::AHashMap as HashMap;

use actix::prelude::*;

use super::actor::Router;
use super::fast::FastRoute;
use super::link::SessionRef;
use crate::delivery::Outgoing;
use crate::message::ClientId;

/// Held deliveries past which the outbox is flushed at once.
const MAX_HELD: usize = 8192;

#[derive(Default)]
pub(super) struct Outbox {
    index: HashMap<ClientId, usize>,
    batches: Vec<(SessionRef, Vec<Outgoing>)>,
    held: usize,
    /// The last slot handed out, with where its client's id lives (`ClientId::addr`):
    /// consecutive deliveries to one session (a fan-in) skip the lookup. The index
    /// keeps that id alive until the flush that forgets both, so no other id can have
    /// the same address meanwhile.
    last: Option<(usize, Slot)>,
    /// A `FlushOutbox` is already queued to this router.
    scheduled: bool,
    /// Flushes that handed deliveries over, told to `fast` after each.
    flushes: u64,
    fast: std::sync::Arc<FastRoute>,
}

/// A session's place in the outbox for the current turn (valid until the next flush).
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot(usize);

impl Outbox {
    /// An outbox that counts its flushes in `fast`.
    pub fn new(fast: std::sync::Arc<FastRoute>) -> Outbox {
        Outbox {
            fast,
            ..Outbox::default()
        }
    }

    /// The count of flushes once what the outbox holds now is handed over.
    pub fn after(&self) -> u64 {
        self.flushes + u64::from(self.held > 0)
    }

    /// `client`'s place in this turn's outbox, made on its first delivery of the turn
    /// with the session `addr` finds (cloning an `Addr` allocates, so once per session
    /// and turn); `None` when it has no session. Every change of who is registered
    /// flushes the outbox first, so a slot's address stays right for the turn.
    #[inline]
    pub fn slot(
        &mut self,
        client: &ClientId,
        addr: impl FnOnce(&ClientId) -> Option<SessionRef>,
    ) -> Option<Slot> {
        if let Some((last, slot)) = self.last {
            if last == client.addr() {
                return Some(slot);
            }
        }
        let (key, slot) = match self.index.get_key_value(client) {
            Some((key, &i)) => (key.addr(), Slot(i)),
            None => {
                let addr = addr(client)?;
                let i = self.batches.len();
                self.index.insert(client.clone(), i);
                self.batches.push((addr, Vec::new()));
                (client.addr(), Slot(i))
            }
        };
        // The index's own key: alive until the flush that forgets `last` too.
        self.last = Some((key, slot));
        Some(slot)
    }

    /// The pressure of the session at `slot`, if its queue has one.
    #[inline]
    pub fn pressure(&self, slot: Slot) -> Option<&std::sync::Arc<crate::delivery::Pressure>> {
        self.batches[slot.0].0.pressure()
    }

    /// Holds one delivery in `slot`, taken from [`Outbox::slot`] since the last flush;
    /// true when the outbox should be flushed now (it is full).
    #[inline]
    pub fn push(&mut self, slot: Slot, d: Outgoing) -> bool {
        self.batches[slot.0].1.push(d);
        self.held += 1;
        self.held >= MAX_HELD
    }

    /// Sends everything held, one message per session.
    pub fn flush(&mut self) {
        if self.batches.is_empty() {
            return;
        }
        for (addr, mut batch) in self.batches.drain(..) {
            match batch.len() {
                0 => {}
                1 => {
                    if let Some(d) = batch.pop() {
                        addr.deliver(d);
                    }
                }
                _ => addr.deliver_batch(batch),
            }
        }
        self.index.clear();
        self.last = None;
        if self.held > 0 {
            self.flushes += 1;
            self.fast.flush_done(self.flushes);
        }
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
