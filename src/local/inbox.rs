//! One in-process subscription's queue: filled by the router's thread through the
//! client's link (never blocking it: a lock held for a push), emptied by the task that
//! polls the [`Subscription`](super::Subscription). Bounded like a network session's
//! queue, with the same full-queue policy (`delivery::Queue`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::delivery::{Enqueued, Outgoing, Queue, QueueLimits};
use crate::protocol::QoS;

pub(super) struct Inbox {
    state: Mutex<State>,
    waker: AtomicWaker,
    limits: QueueLimits,
    /// The subscription's granted QoS: a delivery merged with an overlapping
    /// subscription of higher QoS is capped to it.
    granted: QoS,
}

#[derive(Default)]
struct State {
    items: VecDeque<Outgoing>,
    bytes: usize,
    dropped: u64,
    closed: bool,
}

impl Inbox {
    pub fn new(limits: QueueLimits, granted: QoS) -> Inbox {
        Inbox {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            limits,
            granted,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves a consistent queue: take it anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers one delivery (dropped when full, per the policy, or when closed).
    pub fn push(&self, mut out: Outgoing) -> Enqueued {
        out.qos = out.qos.min(self.granted);
        let enqueued = {
            let mut s = self.lock();
            if s.closed {
                return Enqueued::Dropped;
            }
            let State {
                items,
                bytes,
                dropped,
                ..
            } = &mut *s;
            let mut queue = Queue {
                items,
                bytes,
                dropped,
            };
            queue.offer(out, self.limits)
        };
        self.waker.wake();
        enqueued
    }

    /// Puts `first` ahead of everything queued (retained messages at subscribe time
    /// come before the live ones), without the bounds: the subscriber asked for them.
    pub fn push_front(&self, first: Vec<Outgoing>) {
        {
            let mut s = self.lock();
            for out in first.into_iter().rev() {
                s.bytes += out.msg.size();
                s.items.push_front(out);
            }
        }
        self.waker.wake();
    }

    /// No more deliveries: the stream ends once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.waker.wake();
    }

    /// True once closed (by the subscription, or because the client lost its id).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        if let Some(item) = self.take() {
            return item;
        }
        self.waker.register(cx.waker());
        // Again, after registering: a push in between would otherwise be missed.
        self.take().unwrap_or(Poll::Pending)
    }

    fn take(&self) -> Option<Poll<Option<Outgoing>>> {
        let mut s = self.lock();
        match s.items.pop_front() {
            Some(out) => {
                s.bytes -= out.msg.size();
                Some(Poll::Ready(Some(out)))
            }
            None if s.closed => Some(Poll::Ready(None)),
            None => None,
        }
    }
}
