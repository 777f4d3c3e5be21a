//! The session actor's address as the router sees it: a [`SessionLink`], whose calls
//! become this actor's messages.

use std::any::Any;

use actix::Addr;
use tokio::sync::oneshot;

use super::actor::Session;
use super::admin::{Describe, Kick};
use super::messages::{Deliver, DeliverBatch, Evict, Recheck, Shutdown, Takeover};
use crate::delivery::Outgoing;
use crate::protocol::ReasonCode;
use crate::router::admin::SessionDetails;
use crate::router::link::{self, SessionLink, SessionRef};
use crate::topic::TopicFilter;

impl SessionLink for Addr<Session> {
    fn deliver(&self, out: Outgoing) {
        self.do_send(Deliver(out));
    }

    fn deliver_batch(&self, batch: Vec<Outgoing>) {
        self.do_send(DeliverBatch(batch));
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
        Addr::connected(self)
    }

    fn same(&self, other: &dyn SessionLink) -> bool {
        other.as_any().downcast_ref::<Addr<Session>>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The router's handle on the session at `addr`.
pub(super) fn link(addr: Addr<Session>) -> SessionRef {
    SessionRef::new(addr)
}
