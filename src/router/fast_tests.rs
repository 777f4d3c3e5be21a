//! The fast path's rules (`fast.rs`), on a router state with recording links, and the
//! outbox's flush count that orders the two ways (`Routed::after`).

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::fast::{Batch, FastRoute, FastRouted};
use super::link::{SessionLink, SessionRef, Takeover};
use super::outbox::Outbox;
use super::state::RouterState;
use super::test_support::{entry, filter, id, message};
use crate::delivery::Outgoing;
use crate::protocol::{QoS, ReasonCode};

/// A link that records what it is handed: (payload, QoS) per delivery.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<(String, QoS)>>>);

impl Recording {
    fn got(&self) -> Vec<(String, QoS)> {
        self.0.lock().unwrap().clone()
    }
}

impl SessionLink for Recording {
    fn deliver(&self, out: Outgoing) {
        let payload = String::from_utf8_lossy(&out.msg.payload).into_owned();
        self.0.lock().unwrap().push((payload, out.qos));
    }
    fn deliver_batch(&self, batch: Vec<Outgoing>) {
        batch.into_iter().for_each(|out| self.deliver(out));
    }
    fn take_over(&self, _: Takeover) {}
    fn evict(&self, _: ReasonCode, _: &'static str) {}
    fn shut_down(&self) {}
    fn recheck(&self, _: Vec<crate::topic::TopicFilter>) {}
    fn connected(&self) -> bool {
        true
    }
    fn same(&self, other: &dyn SessionLink) -> bool {
        let other = other.as_any().downcast_ref::<Recording>();
        other.is_some_and(|o| Arc::ptr_eq(&o.0, &self.0))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A state where `a` subscribed to `t/#` (QoS 0) and `t/+` (QoS 1), `b` to `t/x`.
fn state() -> (RouterState, Recording, Recording) {
    let mut state = RouterState::new();
    let (a, b) = (Recording::default(), Recording::default());
    let now = Instant::now();
    state.subscribe(&id("a"), &filter("t/#"), entry(QoS::AtMostOnce), now);
    state.subscribe(&id("a"), &filter("t/+"), entry(QoS::AtLeastOnce), now);
    state.subscribe(&id("b"), &filter("t/x"), entry(QoS::AtMostOnce), now);
    let mut index = state.fast().write();
    index.set_link(&id("a"), Some(SessionRef::new(a.clone())));
    index.set_link(&id("b"), Some(SessionRef::new(b.clone())));
    drop(index);
    (state, a, b)
}

fn route(
    fast: &FastRoute,
    batch: &mut Batch,
    topic: &str,
    qos: QoS,
    body: &'static str,
) -> FastRouted {
    fast.try_route(&message(topic, qos, false, body), batch)
}

#[test]
fn one_delivery_per_client_at_the_highest_qos_handed_over_at_the_flush() {
    let (state, a, b) = state();
    let fast = Arc::clone(state.fast());
    let mut batch = Batch::default();
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtLeastOnce, "1"),
        FastRouted::Batched(2)
    );
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "2"),
        FastRouted::Batched(2)
    );
    assert!(a.got().is_empty(), "nothing before the flush");
    fast.flush(&mut batch);
    assert!(batch.is_empty());
    let one = ("1".to_owned(), QoS::AtLeastOnce);
    assert_eq!(a.got(), [one, ("2".to_owned(), QoS::AtMostOnce)]);
    let low = ("1".to_owned(), QoS::AtMostOnce);
    assert_eq!(b.got(), [low, ("2".to_owned(), QoS::AtMostOnce)]);
    assert_eq!(fast.counts(), (2, 0));
    // No subscriber: routed here, counted as unrouted.
    assert_eq!(
        route(&fast, &mut batch, "u", QoS::AtMostOnce, "3"),
        FastRouted::Batched(0)
    );
    fast.flush(&mut batch);
    assert_eq!(fast.counts(), (3, 1));
}

#[test]
fn what_the_router_must_do_goes_to_the_router_with_nothing_delivered() {
    let (mut state, a, _) = state();
    let fast = Arc::clone(state.fast());
    let mut batch = Batch::default();
    let retained = message("t/x", QoS::AtMostOnce, true, "r");
    assert_eq!(fast.try_route(&retained, &mut batch), FastRouted::Router);
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::ExactlyOnce, "q2"),
        FastRouted::Router
    );
    assert_eq!(
        route(&fast, &mut batch, "$SYS/x", QoS::AtMostOnce, "s"),
        FastRouted::Router
    );
    // A persistent subscriber of a QoS 1 delivery needs its stored-queue number.
    state.set_persistent(&id("a"), true, 1);
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtLeastOnce, "p"),
        FastRouted::Router
    );
    // ... not at QoS 0.
    assert_eq!(
        route(&fast, &mut batch, "t/y", QoS::AtMostOnce, "p0"),
        FastRouted::Batched(1)
    );
    state.set_persistent(&id("a"), false, 0);
    // A shared group matching: the router picks its member.
    state.subscribe(
        &id("b"),
        &filter("$share/g/t/z"),
        entry(QoS::AtMostOnce),
        Instant::now(),
    );
    assert_eq!(
        route(&fast, &mut batch, "t/z", QoS::AtMostOnce, "g"),
        FastRouted::Router
    );
    // Off (cluster, backpressure): everything goes to the router.
    fast.enable(false);
    assert_eq!(
        route(&fast, &mut batch, "t/y", QoS::AtMostOnce, "off"),
        FastRouted::Router
    );
    fast.flush(&mut batch);
    assert_eq!(a.got(), [("p0".to_owned(), QoS::AtMostOnce)]);
}

#[test]
fn subscription_changes_count_at_once_and_the_flush_finds_the_current_session() {
    let (mut state, a, b) = state();
    let fast = Arc::clone(state.fast());
    let mut batch = Batch::default();
    state.unsubscribe(&id("b"), &filter("t/x"));
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "1"),
        FastRouted::Batched(1)
    );
    // `a` is taken over between the match and the flush: its new session gets it.
    let new_a = Recording::default();
    let link = Some(SessionRef::new(new_a.clone()));
    state.fast().write().set_link(&id("a"), link);
    state.subscribe(
        &id("b"),
        &filter("t/x"),
        entry(QoS::AtMostOnce),
        Instant::now(),
    );
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "2"),
        FastRouted::Batched(2)
    );
    fast.flush(&mut batch);
    assert!(a.got().is_empty());
    let (one, two) = (
        ("1".to_owned(), QoS::AtMostOnce),
        ("2".to_owned(), QoS::AtMostOnce),
    );
    assert_eq!(new_a.got(), [one, two.clone()]);
    assert_eq!(b.got(), [two]);
    // A client whose session ended gets nothing and is not counted.
    state.fast().write().set_link(&id("b"), None);
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "3"),
        FastRouted::Batched(1)
    );
    state.remove_client(&id("a"));
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "4"),
        FastRouted::Batched(0)
    );
}

#[test]
fn the_flush_count_tells_when_a_routed_message_was_handed_over() {
    let fast = Arc::new(FastRoute::default());
    let mut outbox = Outbox::new(Arc::clone(&fast));
    let link = SessionRef::new(Recording::default());
    assert_eq!((outbox.after(), fast.flushed()), (0, 0));
    let slot = outbox.slot(&id("a"), |_| Some(link.clone())).unwrap();
    outbox.push(
        slot,
        Outgoing {
            msg: message("t/x", QoS::AtMostOnce, false, "m"),
            qos: QoS::AtMostOnce,
            retain: false,
            sub_ids: Vec::new(),
            seq: None,
            share: None,
            receipt: None,
        },
    );
    // Held: the publisher's next fast publish waits for flush 1.
    assert_eq!((outbox.after(), fast.flushed()), (1, 0));
    outbox.flush();
    assert_eq!((outbox.after(), fast.flushed()), (1, 1));
    // A flush with nothing held counts nothing.
    outbox.flush();
    assert_eq!(fast.flushed(), 1);
}

#[test]
fn a_clean_start_between_the_match_and_the_flush_discards_the_batch_for_it() {
    let (mut state, a, b) = state();
    let fast = Arc::clone(state.fast());
    let mut batch = Batch::default();
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "1"),
        FastRouted::Batched(2)
    );
    // `a` reconnects with a clean start: its old subscriptions go, a new session comes.
    state.remove_client(&id("a"));
    let new_a = Recording::default();
    state
        .fast()
        .write()
        .set_link(&id("a"), Some(SessionRef::new(new_a.clone())));
    fast.flush(&mut batch);
    assert!(
        a.got().is_empty() && new_a.got().is_empty(),
        "not for the new session"
    );
    assert_eq!(b.got(), [("1".to_owned(), QoS::AtMostOnce)]);
}

#[test]
fn while_the_router_registers_a_client_its_messages_go_to_the_router() {
    let (state, _, _) = state();
    let fast = Arc::clone(state.fast());
    let mut batch = Batch::default();
    state.fast().write().set_unsettled(&id("b"), true);
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "1"),
        FastRouted::Router
    );
    // Not `b`'s topic: still here.
    assert_eq!(
        route(&fast, &mut batch, "t/y", QoS::AtMostOnce, "2"),
        FastRouted::Batched(1)
    );
    state.fast().write().set_unsettled(&id("b"), false);
    assert_eq!(
        route(&fast, &mut batch, "t/x", QoS::AtMostOnce, "3"),
        FastRouted::Batched(2)
    );
}
