//! The router actor's side of publishing: it asks [`RouterState`](super::RouterState)
//! for the plan of each message (`super::plan`), then carries it out: deliveries into
//! the outbox, held ones to the replay hold, the store's part to the persistence actor,
//! and the message to the cluster port.

use std::sync::Arc;

use ahash::AHashMap as HashMap;

use super::actor::Router;
use super::link::SessionRef;
use super::messages::{Route, Routed};
use super::outbox::{Outbox, Slot};
use super::plan::{Publish, Sink, Target};
use super::port::{ClusterPort, Held};
use super::state::{Delivery, Shares};
use crate::config::Durability;
use crate::delivery::{Origin, Outgoing, Pressure};
use crate::message::{ClientId, Message};
use crate::persistence::{ticket, Durable, Op, PersistDeliveries};
use crate::protocol::QoS;

impl Router {
    pub(super) fn route(&mut self, msg: Route) -> Routed {
        #[cfg(feature = "fault-injection")]
        if let Some(fault) = msg.msg.topic.as_str().strip_prefix("$fault/router") {
            return self.inject_fault(fault);
        }
        self.routed += 1;
        self.topics.record(msg.msg.topic.as_str());
        let shares = match self.shares_elsewhere {
            true => Shares::Skip,
            false => Shares::All,
        };
        // Numbered before planning, so that local stored copies record it too.
        let origin = self.cluster.stamp(&msg.msg);
        let publish = Publish {
            msg: &msg.msg,
            inbound_qos2: msg.inbound_qos2,
            shares,
            store: self.durability != Durability::Memory,
        };
        let mut sink = RouterSink::new(&self.sessions, &*self.cluster, &mut self.outbox);
        if self.backpressure {
            sink.pressured = Some(Pressured::new(msg.msg.publisher.as_ref()));
        }
        self.state.publish(publish, &mut sink, &mut self.plan);
        let pressured = sink.pressured.map(|p| p.found).unwrap_or_default();
        let (mut matched, mut durable) = self.carry_out(&msg.msg, origin);
        if let Some(origin) = origin {
            let ack = msg.msg.qos != QoS::AtMostOnce;
            let forwarded = self.cluster.forward(&msg.msg, origin, ack);
            durable = Durable::join_opt(durable, forwarded);
        }
        if self.interest_elsewhere {
            // Remote subscribers are unknown here: never "no matching subscribers".
            matched = matched.max(1);
        }
        // A retained message with no subscriber yet is kept, not dropped.
        if matched == 0 && !msg.msg.retain {
            self.unrouted += 1;
        }
        Routed {
            matched,
            durable,
            pressured,
            after: self.outbox.after(),
        }
    }

    /// Hands `deliveries` of `msg`, found other than by a local publish, to their
    /// sessions, with `extra` store ops in the same batch; the ticket covers that batch.
    pub(super) fn deliver(
        &mut self,
        msg: &Arc<Message>,
        deliveries: impl IntoIterator<Item = Delivery>,
        extra: Vec<Op>,
        origin: Option<Origin>,
    ) -> (usize, Option<Durable>) {
        let store = self.durability != Durability::Memory;
        let mut sink = RouterSink::new(&self.sessions, &*self.cluster, &mut self.outbox);
        let plan = &mut self.plan;
        plan.ops = extra;
        self.state
            .plan_deliveries(msg, deliveries, store, &mut sink, plan);
        self.carry_out(msg, origin)
    }

    /// Carries out the rest of `plan` (the deliveries went out as it was made): held
    /// deliveries to the port, the store's part to the persistence actor. Returns how
    /// many sessions matched and the store's ticket.
    fn carry_out(
        &mut self,
        msg: &Arc<Message>,
        origin: Option<Origin>,
    ) -> (usize, Option<Durable>) {
        let plan = &mut self.plan;
        for delivery in plan.hold.drain(..) {
            let msg = Arc::clone(msg);
            self.cluster.hold(Held {
                msg,
                delivery,
                origin,
            });
        }
        if !plan.stores() {
            return (plan.matched, None);
        }
        let (durable, done) = ticket(self.backlog.durability(self.durability));
        self.backlog.sent();
        self.persistence.do_send(PersistDeliveries {
            msg: Arc::clone(msg),
            targets: std::mem::take(&mut plan.targets),
            extra: std::mem::take(&mut plan.ops),
            done,
            origin,
        });
        (plan.matched, durable)
    }
}

/// The pressured sessions a local publish reaches (`backpressure`): the publisher is
/// told of them, so that it waits for them to drain.
struct Pressured<'a> {
    /// The publisher, whose own pressure never holds it back (it would stop reading
    /// the acknowledgements that drain its queue).
    publisher: Option<&'a ClientId>,
    found: Vec<Arc<Pressure>>,
}

impl<'a> Pressured<'a> {
    fn new(publisher: Option<&'a ClientId>) -> Self {
        Pressured {
            publisher,
            found: Vec::new(),
        }
    }

    fn check(&mut self, client: &ClientId, pressure: Option<&Arc<Pressure>>) {
        let Some(pressure) = pressure.filter(|p| p.is_on()) else {
            return;
        };
        let known = self.found.iter().any(|p| Arc::ptr_eq(p, pressure));
        if !known && self.publisher != Some(client) {
            self.found.push(Arc::clone(pressure));
        }
    }
}

/// The router's side of a plan: where each client's session is, and the outbox that
/// takes its deliveries.
struct RouterSink<'a, 'p> {
    sessions: &'a HashMap<ClientId, SessionRef>,
    cluster: &'a dyn ClusterPort,
    /// Whether the port holds anyone's deliveries (asked once per message, so the
    /// common case pays nothing for holds).
    holds: bool,
    outbox: &'a mut Outbox,
    /// `backpressure` on a local publish: the pressured sessions it reached.
    pressured: Option<Pressured<'p>>,
}

impl<'a> RouterSink<'a, '_> {
    fn new(
        sessions: &'a HashMap<ClientId, SessionRef>,
        cluster: &'a dyn ClusterPort,
        outbox: &'a mut Outbox,
    ) -> Self {
        let holds = cluster.holds_any();
        RouterSink {
            sessions,
            cluster,
            holds,
            outbox,
            pressured: None,
        }
    }
}

impl Sink for RouterSink<'_, '_> {
    type Slot = Slot;

    /// A client's deliveries go to its session if one is registered, unless the
    /// cluster port holds them while the session replays the message log. A client
    /// already in this turn's outbox costs one lookup.
    #[inline]
    fn target(&mut self, client: &ClientId) -> Target<Slot> {
        if self.holds && self.cluster.holds(client) {
            return match self.sessions.contains_key(client) {
                true => Target::Hold,
                false => Target::Gone,
            };
        }
        let sessions = self.sessions;
        match self.outbox.slot(client, |c| sessions.get(c).cloned()) {
            Some(slot) => Target::Send(slot),
            None => Target::Gone,
        }
    }

    #[inline]
    fn send(&mut self, client: ClientId, slot: Slot, out: Outgoing) {
        if let Some(pressured) = &mut self.pressured {
            pressured.check(&client, self.outbox.pressure(slot));
        }
        if self.outbox.push(slot, out) {
            self.outbox.flush();
        }
    }
}
