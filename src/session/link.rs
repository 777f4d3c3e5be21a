//! The session actor's address as the router sees it: a [`SessionLink`], whose calls
//! become this actor's messages, with the pressure of its queue when it has one.

use std::any::Any;
use std::sync::Arc;

use actix::Addr;
use tokio::sync::oneshot;

use super::actor::Session;
use super::admin::{Describe, Kick};
use super::messages::{Deliver, DeliverBatch, Evict, Recheck, Shutdown, Takeover};
use crate::delivery::{Outgoing, Pressure};
use crate::protocol::ReasonCode;
use crate::router::admin::SessionDetails;
use crate::router::link::{self, SessionLink, SessionRef};
use crate::topic::TopicFilter;

/// A session actor's address, and its queue's pressure (`backpressure` only).
pub struct SessionAddr {
    addr: Addr<Session>,
    pressure: Option<Arc<Pressure>>,
}

impl std::ops::Deref for SessionAddr {
    type Target = Addr<Session>;

    fn deref(&self) -> &Addr<Session> {
        &self.addr
    }
}

impl SessionLink for SessionAddr {
    fn deliver(&self, out: Outgoing) {
        self.do_send(Deliver(out));
    }

    fn deliver_batch(&self, batch: Vec<Outgoing>) {
        self.do_send(DeliverBatch(batch));
    }

    fn pressure(&self) -> Option<&Arc<Pressure>> {
        self.pressure.as_ref()
    }

    fn take_over(&self, takeover: link::Takeover) {
        self.do_send(Takeover {
            handover: takeover.handover,
            flushed: takeover.flushed,
        });
    }

    fn evict(&self, reason: ReasonCode, why: &'static str) {
        self.do_send(Evict { reason, why });
    }

    fn shut_down(&self) {
        self.do_send(Shutdown);
    }

    fn describe(&self, reply: oneshot::Sender<SessionDetails>) {
        self.do_send(Describe(reply));
    }

    fn kick(&self, discard: bool) {
        self.do_send(Kick { discard });
    }

    fn recheck(&self, filters: Vec<TopicFilter>) {
        self.do_send(Recheck(filters));
    }

    fn connected(&self) -> bool {
        self.addr.connected()
    }

    fn same(&self, other: &dyn SessionLink) -> bool {
        let other = other.as_any().downcast_ref::<SessionAddr>();
        other.is_some_and(|o| o.addr == self.addr)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The router's handle on the session at `addr`.
pub fn link(addr: Addr<Session>) -> SessionRef {
    SessionRef::new(SessionAddr {
        addr,
        pressure: None,
    })
}

/// The same with the pressure of the session's queue.
pub(super) fn link_pressured(addr: Addr<Session>, pressure: Option<Arc<Pressure>>) -> SessionRef {
    SessionRef::new(SessionAddr { addr, pressure })
}
