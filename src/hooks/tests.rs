//! The hook bundle without a broker: interceptors in order, late and ready mixed,
//! the rules a rewrite must keep, the budget, and the bounded event queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::message::Message;
use crate::protocol::QoS;
use crate::topic::TopicName;

fn message(topic: &str, qos: QoS, retain: bool) -> Message {
    Message {
        topic: TopicName::new(topic.to_owned()).expect("topic"),
        payload: "p".into(),
        qos,
        retain,
        properties: Default::default(),
        expires_at: None,
        publisher: Some("c".into()),
        encoded: Default::default(),
    }
}

/// Appends `suffix` to the topic, later or at once, and tries to raise QoS and retain.
struct Suffix(&'static str, bool);

impl Hook for Suffix {
    fn intercept(&self, _: &ClientInfo, mut p: Publication) -> Answer<Intercept> {
        p.topic = TopicName::new(format!("{}{}", p.topic.as_str(), self.0)).expect("topic");
        p.qos = QoS::ExactlyOnce;
        p.retain = true;
        match self.1 {
            true => Answer::later(async move { Intercept::Publish(p) }),
            false => Answer::ready(Intercept::Publish(p)),
        }
    }
}

fn hooks(list: Vec<Arc<dyn Hook>>, retain: bool) -> Hooks {
    Hooks::new(None, list, Duration::from_millis(100), retain, None)
}

async fn vet(hooks: &Hooks, msg: Message) -> Vetted {
    match hooks.vet_publish(&Arc::new(ClientInfo::new("c".into())), msg) {
        Pending::Ready(v) => v,
        Pending::Later(f) => f.await,
    }
}

#[tokio::test]
async fn interceptors_run_in_order_late_or_not_and_cannot_raise_qos() {
    let list: Vec<Arc<dyn Hook>> = vec![
        Arc::new(Suffix("/a", false)),
        Arc::new(Suffix("/b", true)),
        Arc::new(Suffix("/c", false)),
    ];
    let Vetted::Allowed(m) = vet(&hooks(list, false), message("t", QoS::AtLeastOnce, false)).await
    else {
        panic!("allowed")
    };
    assert_eq!(m.topic.as_str(), "t/a/b/c");
    assert_eq!(m.qos, QoS::AtLeastOnce, "never above the published QoS");
    assert!(!m.retain, "no retain where the server offers none");
    assert_eq!(m.publisher, Some("c".into()));
}

/// Never answers.
struct Silent;

impl Hook for Silent {
    fn intercept(&self, _: &ClientInfo, _: Publication) -> Answer<Intercept> {
        Answer::later(futures::future::pending())
    }
}

#[tokio::test]
async fn an_interceptor_out_of_budget_denies() {
    let list: Vec<Arc<dyn Hook>> = vec![Arc::new(Suffix("/a", false)), Arc::new(Silent)];
    let started = std::time::Instant::now();
    let vetted = vet(&hooks(list, true), message("t", QoS::AtMostOnce, false)).await;
    assert!(matches!(vetted, Vetted::Denied), "{vetted:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
}

/// Counts events, blocking its thread on each until released.
struct Blocking(Arc<AtomicUsize>, Arc<std::sync::Barrier>);

impl Hook for Blocking {
    fn on_event(&self, _: &Event) -> Answer<()> {
        self.1.wait();
        self.0.fetch_add(1, Ordering::SeqCst);
        Answer::ready(())
    }
}

#[actix_rt::test]
async fn a_blocked_event_hook_drops_events_beyond_the_bound_and_holds_up_nobody() {
    let (count, gate) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(std::sync::Barrier::new(2)),
    );
    let hook: Arc<dyn Hook> = Arc::new(Blocking(Arc::clone(&count), Arc::clone(&gate)));
    let (queue, arbiter) = events::EventQueue::start(vec![hook], Duration::from_secs(1));
    let client = Arc::new(ClientInfo::new("c".into()));
    let event = || Event::Disconnected {
        client: Arc::clone(&client),
    };
    // The first is taken and blocks the thread; the queue holds EVENT_QUEUE more.
    let extra = 10;
    for _ in 0..events::EVENT_QUEUE + 1 + extra {
        queue.push(event());
    }
    assert!(
        queue.dropped() >= extra as u64,
        "dropped {}",
        queue.dropped()
    );
    gate.wait(); // release the first; then let the others through
    std::thread::spawn(move || loop {
        gate.wait();
    });
    for _ in 0..500 {
        if count.load(Ordering::SeqCst) as u64 + queue.dropped() > events::EVENT_QUEUE as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let handled = count.load(Ordering::SeqCst) as u64;
    assert_eq!(
        handled + queue.dropped(),
        (events::EVENT_QUEUE + 1 + extra) as u64
    );
    arbiter.stop();
}
