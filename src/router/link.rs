//! The router's view of a session: whatever takes the deliveries of one client id and
//! can be told to close. The session actor is one ([`SessionLink`] is implemented for its
//! address in the session module); the router names no session type, so its layer sits
//! below the sessions'.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::delivery::{Outgoing, Pressure};
use crate::protocol::ReasonCode;
use crate::topic::TopicFilter;

/// What the router asks of a session. Every call is a send that does not wait.
pub trait SessionLink: Send + Sync + 'static {
    /// One routed message.
    fn deliver(&self, out: Outgoing);
    /// Several routed messages, in routing order (one router turn's).
    fn deliver_batch(&self, batch: Vec<Outgoing>);
    /// Another connection claimed the client id: close and hand the session over.
    fn take_over(&self, takeover: Takeover);
    /// Close the live connection with `reason` (5.0: `why` as the Reason String); a
    /// persistent session stays.
    fn evict(&self, reason: ReasonCode, why: &'static str);
    /// The broker is shutting down.
    fn shut_down(&self);
    /// The admin API asks what the session has to tell of itself (its address,
    /// protocol, queue); a link with nothing to tell drops `reply`.
    fn describe(&self, reply: oneshot::Sender<super::admin::SessionDetails>) {
        drop(reply);
    }
    /// An administrator closes the live connection (5.0: DISCONNECT 0x98); with
    /// `discard` the session ends too (its subscriptions and stored state go).
    fn kick(&self, discard: bool) {
        let _ = discard;
        self.evict(ReasonCode::ADMINISTRATIVE_ACTION, "administrative action");
    }
    /// The authorizer's rules changed: drop whichever of these filters (the session's
    /// subscriptions) the client may no longer subscribe to.
    fn recheck(&self, filters: Vec<TopicFilter>);
    /// The pressure of the session's queue (`queue_full = "backpressure"`), when it
    /// holds publishers back: the router tells the publishers of what it routes here.
    fn pressure(&self) -> Option<&Arc<Pressure>> {
        None
    }
    /// False once the session's actor has stopped.
    fn connected(&self) -> bool;
    /// True when `other` reaches the same session.
    fn same(&self, other: &dyn SessionLink) -> bool;
    /// For [`SessionLink::same`]: the concrete link.
    fn as_any(&self) -> &dyn Any;
}

/// A shared handle on a session's link: cloned without allocating, compared by the
/// session it reaches.
#[derive(Clone)]
pub struct SessionRef(Arc<dyn SessionLink>);

impl SessionRef {
    pub fn new(link: impl SessionLink) -> SessionRef {
        SessionRef(Arc::new(link))
    }
}

impl std::ops::Deref for SessionRef {
    type Target = dyn SessionLink;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl PartialEq for SessionRef {
    fn eq(&self, other: &SessionRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.same(&*other.0)
    }
}

impl fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionRef")
    }
}

/// Another connection claimed a session's client id: the session closes (5.0:
/// DISCONNECT 0x8E) and hands its state over, or discards it when `handover` is `None`
/// (clean start, or a node elsewhere in the cluster took it).
pub struct Takeover {
    pub handover: Option<oneshot::Sender<Handoff>>,
    /// Cluster mode: fires once the store holds the session's final state (everything
    /// the session sent the persistence actor before closing is acknowledged).
    pub flushed: Option<oneshot::Sender<()>>,
}

/// A session's state on its way from the actor that held a client id to the one that
/// claimed it. The router only carries it: what is inside is the sessions' business.
pub struct Handoff(Box<dyn Any + Send>);

impl Handoff {
    pub fn new<T: Any + Send>(state: T) -> Handoff {
        Handoff(Box::new(state))
    }

    /// The state, when it is a `T`.
    pub fn take<T: Any>(self) -> Option<T> {
        self.0.downcast().ok().map(|b| *b)
    }
}
