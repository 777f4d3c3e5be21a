//! A read gate: pauses a session's inbound packet stream while too many of its publishes
//! wait for the router, without stopping the rest of the actor. Unlike `ctx.wait`, the
//! router's answers to earlier publishes keep being handled while reading is paused, so
//! reading resumes with the whole window free and the router gets publishes in batches.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::Stream;

/// Shared between the session (which closes and opens it) and its gated stream. Up to
/// eight gates of one connection share one allocation ([`Gate::sibling`]): the stream
/// is held while any of them is closed.
#[derive(Clone)]
pub struct Gate {
    set: Rc<GateState>,
    bit: u8,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            set: Rc::default(),
            bit: 1,
        }
    }
}

#[derive(Default)]
struct GateState {
    /// One bit per gate of the set: closed.
    closed: Cell<u8>,
    waker: Cell<Option<Waker>>,
}

impl Gate {
    /// Another gate of the same set (`n`: 1..=7), opened and closed on its own.
    pub fn sibling(&self, n: u8) -> Gate {
        Gate {
            set: Rc::clone(&self.set),
            bit: 1 << n,
        }
    }

    /// Stops the stream at its next item.
    pub fn close(&self) {
        self.set.closed.set(self.set.closed.get() | self.bit);
    }

    /// Lets the stream go on (wakes it if it was waiting; it checks the other gates).
    pub fn open(&self) {
        let closed = self.set.closed.get();
        if closed & self.bit != 0 {
            self.set.closed.set(closed & !self.bit);
            if let Some(w) = self.set.waker.take() {
                w.wake();
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.set.closed.get() & self.bit != 0
    }
}

/// A stream that yields nothing while any gate of its gate's set is closed.
pub struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl<S> Gated<S> {
    pub fn new(inner: S, gate: Gate) -> Gated<S> {
        Gated { inner, gate }
    }
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.gate.set.closed.get() != 0 {
            self.gate.set.waker.set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker;
    use futures::{stream, StreamExt};

    #[test]
    fn a_closed_gate_holds_items_until_opened() {
        let gate = Gate::default();
        let mut s = Gated::new(stream::iter([1, 2]), gate.clone());
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
        gate.close();
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Pending);
        gate.open();
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn a_set_holds_items_while_any_of_its_gates_is_closed() {
        let gate = Gate::default();
        let other = gate.sibling(1);
        let mut s = Gated::new(stream::iter([1, 2]), gate.clone());
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        gate.close();
        other.close();
        assert!(gate.is_closed() && other.is_closed());
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Pending);
        gate.open();
        assert!(!gate.is_closed() && other.is_closed());
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Pending);
        other.open();
        assert_eq!(s.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
    }
}
