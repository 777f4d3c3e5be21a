//! The vocabulary shared by the session, router, persistence and cluster layers: what
//! one subscription keeps, and one message on its way to one session. It sits below all
//! of them, so that none has to import another to speak of a delivery.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::message::Message;
use crate::protocol::{QoS, SubscriptionOptions};
use crate::topic::TopicFilter;

mod pressure;

pub use pressure::{Pressure, PressureSource};

/// What the router keeps for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubEntry {
    pub options: SubscriptionOptions,
    /// The 5.0 subscription identifier given with the SUBSCRIBE, if any.
    pub id: Option<u32>,
}

/// One message for one session's client: what the router hands a session, and what the
/// session queues and keeps in flight.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub msg: Arc<Message>,
    /// The QoS to deliver at: the lower of the message's and the subscription's.
    pub qos: QoS,
    /// The RETAIN flag to deliver with.
    pub retain: bool,
    /// The 5.0 subscription identifiers of the matching subscriptions.
    pub sub_ids: Vec<u32>,
    /// Its number in the session's stored queue (persistent sessions, QoS 1/2).
    pub seq: Option<u64>,
    /// The shared subscription (`$share/{group}/{filter}`) it came through, when only a
    /// shared subscription matched: another member may take it over (section 4.8.2).
    pub share: Option<TopicFilter>,
    /// Whom to tell once the client acknowledged it (a shared subscription's message the
    /// cluster holds until then); `None` for nearly every delivery.
    pub receipt: Option<Receipt>,
}

impl Outgoing {
    /// The client took it: settles its receipt, if it has one.
    #[inline]
    pub fn settle(&self) {
        if let Some(receipt) = &self.receipt {
            receipt.settle();
        }
    }
}

/// Tells whoever handed a message over that a session's client took it: PUBACK for
/// QoS 1, PUBREC for QoS 2, sent for QoS 0. Copies share one signal; when the last copy
/// is dropped unsettled (the session ended without delivering it, its queue was full),
/// the receiver sees the sender dropped, and the message can go to someone else.
#[derive(Debug, Clone)]
pub struct Receipt(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl Receipt {
    /// A receipt and the receiver that learns whether it was settled.
    pub fn new() -> (Receipt, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Receipt(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// The client took the message (the first settle counts; later ones do nothing).
    pub fn settle(&self) {
        let tx = match self.0.lock() {
            Ok(mut tx) => tx.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(tx) = tx {
            let _ = tx.send(());
        }
    }
}

/// Copies of one receipt are equal (deliveries compare equal with them).
impl PartialEq for Receipt {
    fn eq(&self, other: &Receipt) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Receipt {}

/// A message's number in the cluster: the publishing node's incarnation and its
/// sequence number there. Copies of one message carry the same `Origin`, so duplicates
/// are recognised and a resumed session's replay knows what it already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The publishing node's incarnation (new at every start).
    pub node: u64,
    /// The message's number among that incarnation's messages, from 1.
    pub seq: u64,
}

/// Bounds on a queue of deliveries not yet sent: a session's, or an in-process
/// subscription's (`[limits] max_queued_messages`, `max_queued_bytes`, `queue_full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
    /// Once no QoS 0 message is left to drop, drop the oldest queued message rather
    /// than the new one.
    pub drop_oldest: bool,
    /// Drop nothing: queue beyond the limits ([`Enqueued::Overshoot`]) and let the
    /// queue's [`Pressure`] hold the publishers back.
    pub backpressure: bool,
}

impl QueueLimits {
    /// A queue of `len` messages and `bytes` bytes is over the limits.
    pub fn over(&self, len: usize, bytes: usize) -> bool {
        len > self.max_messages || bytes > self.max_bytes
    }

    /// A queue of `len` messages and `bytes` bytes is down to half the limits (the low
    /// mark where held publishers are read again).
    pub fn drained(&self, len: usize, bytes: usize) -> bool {
        len <= self.max_messages / 2 && bytes <= self.max_bytes / 2
    }
}

/// What happened to a message offered to a full or not full queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The queue was full and this message was dropped.
    Dropped,
    /// The queue was full; an older QoS 0 message was dropped to make room.
    DisplacedQos0,
    /// The queue was full; these older messages were dropped to make room (their
    /// numbers in the session's stored queue, for those stored).
    DisplacedOldest(Vec<u64>),
    /// The queue was full and took the message anyway (`backpressure`): nothing was
    /// dropped, the queue is over its limits.
    Overshoot,
}

impl Enqueued {
    /// Whether the queue was full and something was dropped.
    pub fn was_full(&self) -> bool {
        !matches!(self, Enqueued::Queued | Enqueued::Overshoot)
    }
}

/// A queue of deliveries with its byte count and drop counter, borrowed from whoever
/// keeps them, so that every kind of subscriber drops alike.
pub struct Queue<'a> {
    pub items: &'a mut VecDeque<Outgoing>,
    pub bytes: &'a mut usize,
    pub dropped: &'a mut u64,
}

impl Queue<'_> {
    /// Queues `out`, applying the full-queue policy: QoS 0 messages are dropped first
    /// (the oldest queued one, else the new one); a QoS 1/2 message that still does
    /// not fit is dropped, or with `drop_oldest` the oldest messages are, until it fits.
    /// Every drop is counted.
    pub fn offer(&mut self, out: Outgoing, limits: QueueLimits) -> Enqueued {
        let size = out.msg.size();
        let full =
            |q: &Self| q.items.len() >= limits.max_messages || *q.bytes + size > limits.max_bytes;
        if !full(self) {
            self.push(out);
            return Enqueued::Queued;
        }
        if limits.backpressure {
            self.push(out);
            return Enqueued::Overshoot;
        }
        if out.qos == QoS::AtMostOnce {
            *self.dropped += 1;
            return Enqueued::Dropped;
        }
        if let Some(pos) = self.items.iter().position(|o| o.qos == QoS::AtMostOnce) {
            if let Some(old) = self.items.remove(pos) {
                *self.bytes -= old.msg.size();
            }
            *self.dropped += 1;
            if !full(self) {
                self.push(out);
                return Enqueued::DisplacedQos0;
            }
        }
        if limits.drop_oldest && size <= limits.max_bytes && limits.max_messages > 0 {
            return self.displace_oldest(out, full);
        }
        *self.dropped += 1;
        Enqueued::Dropped
    }

    /// Drops the oldest messages until `out` fits, then queues it (`out` alone fits).
    fn displace_oldest(&mut self, out: Outgoing, full: impl Fn(&Self) -> bool) -> Enqueued {
        let mut stored = Vec::new();
        while full(self) {
            let Some(old) = self.items.pop_front() else {
                break;
            };
            *self.bytes -= old.msg.size();
            *self.dropped += 1;
            stored.extend(old.seq);
        }
        self.push(out);
        Enqueued::DisplacedOldest(stored)
    }

    fn push(&mut self, out: Outgoing) {
        *self.bytes += out.msg.size();
        self.items.push_back(out);
    }
}
