//! A read gate: pauses a session's inbound packet stream while too many of its publishes
//! wait for the router, without stopping the rest of the actor. Unlike `ctx.wait`, the
//! router's answers to earlier publishes keep being handled while reading is paused, so
//! reading resumes with the whole window free and the router gets publishes in batches.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::Stream;

/// Shared between the session (which closes and opens it) and its gated stream.
#[derive(Clone, Default)]
pub struct Gate(Rc<GateState>);

#[derive(Default)]
struct GateState {
    closed: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Gate {
    /// Stops the stream at its next item.
    pub fn close(&self) {
        self.0.closed.set(true);
    }

    /// Lets the stream go on (wakes it if it was waiting).
    pub fn open(&self) {
        if self.0.closed.replace(false) {
            if let Some(w) = self.0.waker.take() {
                w.wake();
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.0.closed.get()
    }
}

/// A stream that yields nothing while its gate is closed.
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
        if self.gate.is_closed() {
            self.gate.0.waker.set(Some(cx.waker().clone()));
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
}
