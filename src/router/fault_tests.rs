//! Failures of the router handlers that no client can trigger: those that run at
//! broker start (before the listeners open) or stop. Each test arms the fault through
//! the router's `Faults` before starting it under its `Supervisor`, sends the message
//! as the broker does, and checks that the restarted router still serves.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::actor::Router;
use super::interest::InterestChange;
use super::link::{SessionLink, SessionRef, Takeover};
use super::messages::{Adopt, AttachCluster, GetStats, ReplayDone, Route, RouterStats};
use super::port::{ClusterPort, Held};
use super::replay::ReplayGuard;
use super::state::RouterState;
use super::test_support::{entry, filter, message};
use crate::config::{Durability, StorageConfig};
use crate::delivery::Outgoing;
use crate::message::ClientId;
use crate::persistence::convert::subscription_record;
use crate::persistence::{
    Backlog, Durable, MemoryStore, Persistence, SessionRecord, StoredSession,
};
use crate::protocol::{QoS, ReasonCode};

/// The longest wait for any one answer.
const ANSWER: Duration = Duration::from_secs(5);

/// A persistent 5.0 session "stored", offline, subscribed to `t/#` at QoS 1.
fn stored_session() -> StoredSession {
    StoredSession {
        record: SessionRecord {
            client_id: "stored".into(),
            protocol: 5,
            expiry_secs: 300,
            disconnected_at_ms: None,
            will: None,
        },
        subscriptions: vec![subscription_record(
            &filter("t/#"),
            &entry(QoS::AtLeastOnce),
        )],
        queue: Vec::new(),
        inbound_qos2: Vec::new(),
        replay: None,
    }
}

/// A router restored from a snapshot holding [`stored_session`] (the store itself is an
/// empty memory store), under its supervisor, with a failure armed in each handler of
/// `faults`.
fn router_with(faults: &[&str]) -> Addr<Router> {
    let config = StorageConfig::default();
    let backlog = Backlog::default();
    let store = Box::new(MemoryStore::new());
    let persistence = Persistence::new(store, &config, backlog.clone()).start();
    let snapshot = crate::persistence::Snapshot {
        sessions: vec![stored_session()],
        retained: Vec::new(),
        next_seq: 1,
    };
    let mut router = Router::new(
        RouterState::restore(&snapshot),
        persistence.clone(),
        Durability::Sync,
        backlog,
    );
    for name in faults {
        router.faults.arm(name);
    }
    Supervisor::start(move |_| router)
}

/// A session that counts the deliveries it is handed.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl SessionLink for Counting {
    fn deliver(&self, _: Outgoing) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn deliver_batch(&self, batch: Vec<Outgoing>) {
        self.0.fetch_add(batch.len(), Ordering::SeqCst);
    }
    fn take_over(&self, _: Takeover) {}
    fn evict(&self, _: ReasonCode, _: &'static str) {}
    fn shut_down(&self) {}
    fn recheck(&self, _: Vec<crate::topic::TopicFilter>) {}
    fn connected(&self) -> bool {
        true
    }
    fn same(&self, other: &dyn SessionLink) -> bool {
        let other = other.as_any().downcast_ref::<Counting>();
        other.is_some_and(|o| Arc::ptr_eq(&o.0, &self.0))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Has the router adopt the stored session, as the broker does once it started its
/// actor (here a [`Counting`] link).
async fn adopt(router: &Addr<Router>, session: &Counting) {
    let adopt = Adopt {
        client_id: "stored".into(),
        addr: SessionRef::new(session.clone()),
    };
    let sent = tokio::time::timeout(ANSWER, router.send(adopt)).await;
    sent.expect("Adopt answered").expect("router alive");
}

/// Waits (bounded) until `session` was handed `n` deliveries: the router sends them at
/// the end of its turn.
async fn delivered(session: &Counting, n: usize) {
    let deadline = tokio::time::Instant::now() + ANSWER;
    while session.0.load(Ordering::SeqCst) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivered to the session"
        );
        tokio::task::yield_now().await;
    }
}

async fn stats(router: &Addr<Router>) -> RouterStats {
    let sent = tokio::time::timeout(ANSWER, router.send(GetStats)).await;
    sent.expect("GetStats answered").expect("router alive")
}

/// How many sessions a QoS 1 message on `t/x` reaches.
async fn route(router: &Addr<Router>) -> usize {
    let route = Route {
        msg: message("t/x", QoS::AtLeastOnce, false, "m"),
        inbound_qos2: None,
    };
    let sent = tokio::time::timeout(ANSWER, router.send(route)).await;
    sent.expect("Route answered").expect("router alive").matched
}

/// Adopt fails at start: the restarted router must still have the stored session in
/// its registry, or the messages for it are skipped and its client's next CONNECT
/// finds no session and deletes the stored one.
#[actix_rt::test]
async fn a_failed_adopt_still_puts_the_stored_session_in_the_registry() {
    let router = router_with(&["Adopt"]);
    let session = Counting::default();
    adopt(&router, &session).await;
    assert_eq!(stats(&router).await.sessions, 1, "the session was adopted");
    assert_eq!(
        route(&router).await,
        1,
        "a message reaches the stored session"
    );
    delivered(&session, 1).await;
}

/// Control: without a fault the same steps give the same answers.
#[actix_rt::test]
async fn an_adopted_session_is_reached() {
    let router = router_with(&[]);
    let session = Counting::default();
    adopt(&router, &session).await;
    assert_eq!(stats(&router).await.sessions, 1);
    assert_eq!(route(&router).await, 1);
    delivered(&session, 1).await;
}

/// A cluster port that records the interest changes it hears.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<InterestChange>>>);

impl ClusterPort for Recording {
    fn interest(&self, changes: Vec<InterestChange>, _barrier: bool) -> Option<Durable> {
        self.0.lock().expect("not poisoned").extend(changes);
        None
    }
}

async fn attach(router: &Addr<Router>, port: impl ClusterPort + 'static) -> bool {
    let attach = AttachCluster {
        port: Box::new(port),
    };
    let sent = tokio::time::timeout(ANSWER, router.send(attach)).await;
    sent.expect("AttachCluster answered").expect("router alive")
}

/// AttachCluster fails at start: the answer says so (the broker then refuses to start
/// rather than run as a node the others never hear of), and it is true: the port
/// heard nothing.
#[actix_rt::test]
async fn a_failed_attach_cluster_answers_false() {
    let router = router_with(&["AttachCluster"]);
    let port = Recording::default();
    assert!(
        !attach(&router, port.clone()).await,
        "the failure is reported"
    );
    assert_eq!(stats(&router).await.subscriptions, 1, "the router serves");
    assert!(port.0.lock().expect("not poisoned").is_empty());
}

/// Control: an attached port hears of the subscriptions restored from the store.
#[actix_rt::test]
async fn an_attached_cluster_hears_the_stored_subscriptions() {
    let router = router_with(&[]);
    let port = Recording::default();
    assert!(attach(&router, port.clone()).await);
    let heard = port.0.lock().expect("not poisoned").clone();
    assert_eq!(heard, vec![InterestChange::Add(filter("t/#"))]);
}

/// A cluster port with one replay running, of the stored session: it holds the
/// session's deliveries until the replay ends; a restart of the router asks again.
#[derive(Clone)]
struct Replaying(Arc<Mutex<Replay>>);

struct Replay {
    generation: u64,
    running: bool,
    releasing: bool,
    held: VecDeque<Held>,
}

impl Replaying {
    fn running() -> Replaying {
        Replaying(Arc::new(Mutex::new(Replay {
            generation: 1,
            running: true,
            releasing: false,
            held: VecDeque::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Replay> {
        self.0.lock().expect("not poisoned")
    }
}

impl ClusterPort for Replaying {
    fn replaying(&self, _: &ClientId, generation: u64) -> bool {
        let r = self.lock();
        r.running && !r.releasing && r.generation == generation
    }
    fn holds_any(&self) -> bool {
        self.lock().running
    }
    fn holds(&self, _: &ClientId) -> bool {
        let r = self.lock();
        r.running && !r.releasing
    }
    fn hold(&mut self, held: Held) {
        self.lock().held.push_back(held);
    }
    fn begin_release(&mut self, _: &ClientId) {
        self.lock().releasing = true;
    }
    fn next_held(&mut self, _: &ClientId) -> Option<Held> {
        self.lock().held.pop_front()
    }
    fn end_replay(&mut self, _: &ClientId) {
        self.lock().running = false;
    }
    fn restart_replays(&mut self) -> Vec<(ClientId, Option<u64>)> {
        let mut r = self.lock();
        if !r.running {
            return Vec::new();
        }
        r.generation += 1;
        r.releasing = false;
        vec![("stored".into(), Some(r.generation))]
    }
}

/// A router with the stored session adopted and one message held for it by a running
/// replay (generation 1).
async fn holding(faults: &[&str]) -> (Addr<Router>, Counting, Replaying) {
    let router = router_with(faults);
    let port = Replaying::running();
    assert!(attach(&router, port.clone()).await);
    let session = Counting::default();
    adopt(&router, &session).await;
    assert_eq!(route(&router).await, 1, "held messages count as matched");
    stats(&router).await;
    assert_eq!(port.lock().held.len(), 1, "the message is held");
    (router, session, port)
}

fn guard(generation: u64) -> ReplayGuard {
    ReplayGuard {
        client_id: "stored".into(),
        generation: Some(generation),
    }
}

/// The replay guard fires (the replay's answer is overdue) and fails: the held message
/// stays held, the restart asks for the replay again, and its answer delivers it.
#[actix_rt::test]
async fn a_failed_replay_guard_leaves_the_held_message_to_the_replay_asked_again() {
    let (router, session, port) = holding(&["ReplayGuard"]).await;
    let sent = tokio::time::timeout(ANSWER, router.send(guard(1))).await;
    sent.expect("ReplayGuard answered").expect("router alive");
    stats(&router).await;
    assert_eq!(session.0.load(Ordering::SeqCst), 0, "nothing released");
    assert_eq!(port.lock().generation, 2, "the replay was asked again");
    let done = ReplayDone {
        client_id: "stored".into(),
        generation: 2,
        messages: Some(Vec::new()),
    };
    let sent = tokio::time::timeout(ANSWER, router.send(done)).await;
    sent.expect("ReplayDone answered").expect("router alive");
    delivered(&session, 1).await;
    assert!(port.lock().held.is_empty());
}

/// Control: the guard releases the held message without the replay.
#[actix_rt::test]
async fn an_overdue_replay_guard_releases_the_held_message() {
    let (router, session, _port) = holding(&[]).await;
    let sent = tokio::time::timeout(ANSWER, router.send(guard(1))).await;
    sent.expect("ReplayGuard answered").expect("router alive");
    delivered(&session, 1).await;
}
