//! What a [`PersistentClient`](super::PersistentClient)'s session delivered and the
//! application has not taken yet, each QoS 1/2 message with the acknowledgement it owes.
//! The acknowledgement goes out only when the application takes the message, so a
//! message not taken stays the session's: the broker sends it again on the next
//! connection, also after a restart. Filled by the connection task, emptied by whoever
//! polls the client.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use super::LocalMessage;
use crate::protocol::{Packet, QoS, ReasonCode};

/// One message received from the session.
pub(super) struct Delivery {
    pub message: LocalMessage,
    /// PUBACK (QoS 1) or PUBREC (QoS 2), sent when the application takes the message.
    pub ack: Option<Packet>,
}

/// The queue between the connection task and the application.
pub(super) struct Deliveries {
    state: Mutex<State>,
    /// QoS 0 messages held at most (QoS 1/2 ones are bounded by the Receive Maximum
    /// the client announced: the session sends no more than that unacknowledged).
    max_qos0: usize,
}

#[derive(Default)]
struct State {
    items: VecDeque<Delivery>,
    qos0: usize,
    dropped: u64,
    /// Set when the connection ended: why, as far as the broker said.
    ended: Option<ReasonCode>,
    /// Every task waiting for a message (a client may be polled from several).
    wakers: Vec<Waker>,
}

impl Deliveries {
    pub fn new(max_qos0: usize) -> Deliveries {
        Deliveries {
            state: Mutex::new(State::default()),
            max_qos0: max_qos0.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves a consistent queue: take it anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a delivery. A QoS 0 message is dropped (and counted) when `max_qos0` of
    /// them wait already: the connection task never waits for the application, so it
    /// keeps reading the acknowledgements of the client's own requests.
    pub fn push(&self, delivery: Delivery) {
        let wakers = {
            let mut s = self.lock();
            if s.ended.is_some() {
                return;
            }
            if delivery.message.qos == QoS::AtMostOnce {
                if s.qos0 >= self.max_qos0 {
                    s.dropped += 1;
                    return;
                }
                s.qos0 += 1;
            }
            s.items.push_back(delivery);
            std::mem::take(&mut s.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// The connection ended (`reason`: the broker's DISCONNECT reason, or an error code
    /// naming what happened). The QoS 1/2 messages not taken are dropped unacknowledged:
    /// the session keeps them and sends them again on the next connection. QoS 0 ones
    /// can still be taken; then the stream ends. The first call's reason stays.
    pub fn end(&self, reason: ReasonCode) {
        let wakers = {
            let mut s = self.lock();
            if s.ended.is_some() {
                return;
            }
            s.ended = Some(reason);
            s.items.retain(|d| d.ack.is_none());
            s.qos0 = s.items.len();
            std::mem::take(&mut s.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Why the connection ended; `None` while it is live.
    pub fn ended(&self) -> Option<ReasonCode> {
        self.lock().ended
    }

    /// Messages waiting to be taken.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// QoS 0 messages dropped because `max_qos0` of them waited.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The next delivery; `Ready(None)` once the connection ended and nothing is left.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let mut s = self.lock();
        if let Some(delivery) = s.items.pop_front() {
            if delivery.ack.is_none() {
                s.qos0 -= 1;
            }
            return Poll::Ready(Some(delivery));
        }
        if s.ended.is_some() {
            return Poll::Ready(None);
        }
        // Once per task: a task that polls again before a push registers nothing new.
        if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            s.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PacketId, Properties, PubResponse};
    use crate::topic::TopicName;
    use futures::task::noop_waker;

    fn delivery(qos: QoS, id: u16) -> Delivery {
        let ack = PacketId::new(id).map(|id| Packet::PubAck(PubResponse::new(id)));
        Delivery {
            message: LocalMessage {
                topic: TopicName::new("t").expect("topic"),
                payload: bytes::Bytes::new(),
                qos,
                retain: false,
                properties: Properties::default(),
            },
            ack: ack.filter(|_| qos != QoS::AtMostOnce),
        }
    }

    fn take(d: &Deliveries) -> Poll<Option<Delivery>> {
        let waker = noop_waker();
        d.poll_take(&mut Context::from_waker(&waker))
    }

    #[test]
    fn qos0_is_bounded_and_the_end_drops_what_owes_an_ack() {
        let d = Deliveries::new(2);
        d.push(delivery(QoS::AtMostOnce, 0));
        d.push(delivery(QoS::AtLeastOnce, 1));
        d.push(delivery(QoS::AtMostOnce, 0));
        d.push(delivery(QoS::AtMostOnce, 0));
        assert_eq!((d.len(), d.dropped()), (3, 1), "the third QoS 0 dropped");
        assert!(matches!(take(&d), Poll::Ready(Some(x)) if x.ack.is_none()));
        d.push(delivery(QoS::AtMostOnce, 0));
        d.push(delivery(QoS::AtLeastOnce, 2));
        assert_eq!(d.len(), 4);
        d.end(ReasonCode::SESSION_TAKEN_OVER);
        assert_eq!(d.len(), 2, "the two QoS 1 messages stay the session's");
        assert!(matches!(take(&d), Poll::Ready(Some(x)) if x.ack.is_none()));
        assert!(matches!(take(&d), Poll::Ready(Some(x)) if x.ack.is_none()));
        assert!(matches!(take(&d), Poll::Ready(None)));
        assert_eq!(d.ended(), Some(ReasonCode::SESSION_TAKEN_OVER));
        d.push(delivery(QoS::AtMostOnce, 0));
        assert_eq!(d.len(), 0, "nothing after the end");
    }

    #[test]
    fn an_empty_queue_is_pending_until_it_ends() {
        let d = Deliveries::new(2);
        assert!(take(&d).is_pending());
        assert!(take(&d).is_pending());
        assert_eq!(d.lock().wakers.len(), 1, "one waker per task");
        d.end(ReasonCode::NORMAL_DISCONNECTION);
        assert!(matches!(take(&d), Poll::Ready(None)));
    }
}
