//! Supervision (durable-state issue): a failure injected into a session, the router or
//! the persistence actor is contained and repaired. The failures are real panics inside
//! handlers, made by the test-only `fault-injection` feature (publishing to
//! `$fault/session`, `$fault/router`, `$fault/persistence`); `scripts/test.sh` builds
//! the tests with it.
#![cfg(feature = "fault-injection")]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{bounded, session_expiry, BrokerProcess, Event, RawClient, Witness};
use starling::protocol::{Packet, Properties, QoS, ReasonCode};

/// Waits (up to 5 s) for the broker's log to show `text`: restarts are logged by the
/// restarted actor's thread, after the event the test saw.
async fn log_shows(broker: &BrokerProcess, text: &str) -> bool {
    for _ in 0..50 {
        if broker.log_text().contains(text) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Receives PUBLISHes (acking them) until none arrives for a second.
async fn drain(c: &mut RawClient) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        match c.next_event(Duration::from_secs(1)).await {
            Event::Packet(Packet::Publish(p)) => {
                c.ack(&p).await;
                got.push(String::from_utf8_lossy(&p.payload).into_owned());
            }
            Event::Packet(_) => {}
            _ => return got,
        }
    }
}

async fn publish_all(
    addr: std::net::SocketAddr,
    id: &str,
    topic: &str,
    range: std::ops::Range<u32>,
) {
    let mut p = RawClient::connected_v311(addr, id, true).await;
    for i in range {
        p.publish(topic, QoS::AtLeastOnce, false, i.to_string().as_bytes())
            .await;
    }
    p.disconnect().await;
}

fn numbers(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

// A session actor fails: only its client is disconnected (5.0: DISCONNECT 0x83); the
// rest of the broker keeps serving; the client reconnects and resumes its persistent
// session (subscription and the messages routed while it was down) from the store.
#[tokio::test]
async fn session_failure_disconnects_only_that_client_and_it_resumes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut witness = Witness::new(addr, "w").await;
        let mut a = RawClient::connected_v5(addr, "victim", session_expiry(300)).await;
        a.subscribe(&[("sup/s", QoS::AtLeastOnce)]).await;
        a.publish("$fault/session", QoS::AtMostOnce, false, b"boom")
            .await;
        let d = a.expect_closed().await;
        assert_eq!(
            d.map(|d| d.reason),
            Some(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR)
        );
        witness.check().await;
        publish_all(addr, "pub", "sup/s", 0..5).await;
        let mut a = RawClient::open(addr).await;
        let ack = a.connect_v5("victim", false, 30, session_expiry(300)).await;
        assert!(
            ack.session_present,
            "the persistent session resumes from the store"
        );
        assert_eq!(drain(&mut a).await, numbers(0..5));
        // And it works live again.
        publish_all(addr, "pub", "sup/s", 5..6).await;
        assert_eq!(drain(&mut a).await, numbers(5..6));
    })
    .await;
}

// The store fails to load a session whose actor died: that CONNECT is refused (CONNACK
// 0x88, no DISCONNECT) and the session stays as stored; the next CONNECT resumes it, with
// the messages queued while it was down.
#[tokio::test]
async fn a_failed_session_load_refuses_the_connect_and_the_next_one_resumes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut a = RawClient::connected_v5(addr, "reload", session_expiry(300)).await;
        a.subscribe(&[("sup/l", QoS::AtLeastOnce)]).await;
        a.publish("$fault/session", QoS::AtMostOnce, false, b"boom")
            .await;
        a.expect_closed().await;
        publish_all(addr, "pub", "sup/l", 0..5).await;
        // Arms a failure of the next load (a retained publish reaches the store).
        let mut arm = RawClient::connected_v311(addr, "arm", true).await;
        let topic = "$fault/persistence/LoadSession";
        arm.publish(topic, QoS::AtMostOnce, true, b"arm").await;
        arm.disconnect().await;
        let mut a = RawClient::open(addr).await;
        let ack = a.connect_v5("reload", false, 30, session_expiry(300)).await;
        assert_eq!(ack.reason, ReasonCode::SERVER_UNAVAILABLE);
        assert!(
            a.expect_closed().await.is_none(),
            "no DISCONNECT after a refusal"
        );
        assert!(log_shows(&broker, "injected fault in persistence LoadSession").await);
        let mut a = RawClient::open(addr).await;
        let ack = a.connect_v5("reload", false, 30, session_expiry(300)).await;
        assert!(ack.session_present, "the stored session resumes");
        assert_eq!(drain(&mut a).await, numbers(0..5));
    })
    .await;
}

// The router fails while routing: it restarts with its index rebuilt, and routing
// resumes for every connected client without reconnecting them.
#[tokio::test]
async fn router_failure_restarts_and_routing_resumes_without_reconnect() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v311(addr, "sub", true).await;
        sub.subscribe(&[
            ("sup/r/+", QoS::AtLeastOnce),
            ("$share/g/sup/q", QoS::AtLeastOnce),
        ])
        .await;
        let mut publisher = RawClient::connected_v311(addr, "pub", true).await;
        publisher
            .publish("sup/r/1", QoS::AtLeastOnce, false, b"before")
            .await;
        assert_eq!(drain(&mut sub).await, vec!["before"]);
        // The poison message's own sender is not acknowledged and is disconnected.
        let mut poison = RawClient::connected_v311(addr, "poison", true).await;
        poison
            .send(Packet::Publish(common::publish_packet(
                "$fault/router",
                QoS::AtLeastOnce,
                b"boom",
                starling::protocol::PacketId::new(1),
            )))
            .await;
        poison.expect_closed().await;
        assert!(
            log_shows(&broker, "router restarted").await,
            "router restart logged"
        );
        // Same connections, no reconnect: wildcard and shared subscriptions still route.
        publisher
            .publish("sup/r/2", QoS::AtLeastOnce, false, b"after")
            .await;
        publisher
            .publish("sup/q", QoS::AtLeastOnce, false, b"shared")
            .await;
        assert_eq!(drain(&mut sub).await, vec!["after", "shared"]);
        // New subscriptions work too.
        sub.subscribe(&[("sup/new", QoS::AtMostOnce)]).await;
        publisher
            .publish("sup/new", QoS::AtLeastOnce, false, b"new")
            .await;
        assert_eq!(drain(&mut sub).await, vec!["new"]);
    })
    .await;
}

// The persistence actor fails: it restarts and re-opens the store; nothing that was
// acknowledged before or after is lost, even across a kill -9 of the whole broker.
#[tokio::test]
async fn persistence_failure_restarts_and_loses_nothing_acknowledged() {
    let mut broker = BrokerProcess::start();
    let addr = broker.addr();
    bounded(async {
        let mut s = RawClient::connected_v311(addr, "keeper", false).await;
        s.subscribe(&[("sup/p", QoS::AtLeastOnce)]).await;
        s.disconnect().await;
        publish_all(addr, "pub1", "sup/p", 0..20).await;
        // A retained publish reaches the persistence actor, which fails on it.
        let mut poison = RawClient::connected_v311(addr, "poison", true).await;
        poison
            .send(Packet::Publish({
                let mut p = common::publish_packet(
                    "$fault/persistence",
                    QoS::AtLeastOnce,
                    b"boom",
                    starling::protocol::PacketId::new(1),
                );
                p.retain = true;
                p
            }))
            .await;
        let _ = poison.expect_closed().await;
        publish_all(addr, "pub2", "sup/p", 20..40).await;
    })
    .await;
    assert!(log_shows(&broker, "persistence actor restarted").await);
    broker.kill9();
    broker.restart();
    let addr = broker.addr();
    bounded(async {
        let mut s = RawClient::open(addr).await;
        let ack = s.connect_v311("keeper", false, 30).await;
        assert!(ack.session_present);
        assert_eq!(drain(&mut s).await, numbers(0..40));
    })
    .await;
}

/// The payloads of the next `n` PUBLISHes `c` receives (each within 5 s), acknowledged
/// when `ack` says so.
async fn received(c: &mut RawClient, n: usize, ack: bool) -> BTreeSet<String> {
    let mut got = BTreeSet::new();
    for _ in 0..n {
        let p = c.expect_publish().await;
        if ack {
            c.ack(&p).await;
        }
        got.insert(String::from_utf8_lossy(&p.payload).into_owned());
    }
    got
}

/// Arms one failure of the router's handler `handler` (acknowledged once armed).
async fn arm_router(broker: &BrokerProcess, handler: &str) {
    let mut c = RawClient::connected_v311(broker.addr(), &format!("arm-{handler}"), true).await;
    let topic = format!("$fault/router/{handler}");
    c.publish(&topic, QoS::AtLeastOnce, false, b"arm").await;
    c.disconnect().await;
}

// A member of a 5.0 shared subscription leaves with QoS 1 messages it never
// acknowledged, and the router fails while handing them to the other member
// (`Reshare`). The leaving session is not persistent, so what stays with it is lost:
// every message must still reach the other member.
#[tokio::test]
async fn a_failed_reshare_still_hands_the_messages_to_another_member() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let work = [("$share/g/work", QoS::AtLeastOnce)];
        // A is the only member while the messages are published: it gets them all.
        let mut a = RawClient::connected_v5(addr, "share-a", Properties::default()).await;
        a.subscribe(&work).await;
        publish_all(addr, "share-pub", "work", 0..5).await;
        let to_a = received(&mut a, 5, false).await;
        let mut b = RawClient::connected_v5(addr, "share-b", Properties::default()).await;
        b.subscribe(&work).await;
        arm_router(&broker, "Reshare").await;
        drop(a);
        let to_b = received(&mut b, 5, true).await;
        assert_eq!(to_b, to_a, "B got what A left unacknowledged");
        assert!(
            log_shows(&broker, "router restarted").await,
            "the router failed in Reshare"
        );
    })
    .await;
}

// The router fails while the stopping broker asks it to close every connection
// (`ShutdownSessions`): a connected 5.0 client still gets DISCONNECT 0x8B at once (not
// a bare close after the shutdown linger), and a persistent session's queued messages
// are there after the restart.
#[tokio::test]
async fn a_failed_shutdown_sessions_still_closes_the_connections() {
    let mut broker = BrokerProcess::start();
    let addr = broker.addr();
    let mut live = bounded(async {
        let mut away = RawClient::open(addr).await;
        away.connect_v5("keep", true, 60, session_expiry(300)).await;
        away.subscribe(&[("keep/#", QoS::AtLeastOnce)]).await;
        away.disconnect().await;
        publish_all(addr, "keep-pub", "keep/x", 0..3).await;
        let live = RawClient::connected_v5(addr, "live", Properties::default()).await;
        arm_router(&broker, "ShutdownSessions").await;
        live
    })
    .await;
    let stopping = tokio::task::spawn_blocking(move || {
        let status = broker.terminate();
        (broker, status)
    });
    let disconnect = live.expect_closed_within(Duration::from_secs(3)).await;
    let reason = disconnect.map(|d| d.reason);
    assert_eq!(reason, Some(ReasonCode::SERVER_SHUTTING_DOWN));
    let (mut broker, status) = stopping.await.expect("the broker stopped");
    assert!(status.success(), "exit status {status}");
    assert!(
        broker
            .log_text()
            .contains("injected fault in router ShutdownSessions"),
        "the router failed in ShutdownSessions"
    );
    broker.restart();
    bounded(async {
        let mut back = RawClient::open(broker.addr()).await;
        let ack = back
            .connect_v5("keep", false, 60, session_expiry(300))
            .await;
        assert!(ack.session_present);
        let got = received(&mut back, 3, true).await;
        let sent: BTreeSet<String> = numbers(0..3).into_iter().collect();
        assert_eq!(got, sent, "the queued messages survived the restart");
    })
    .await;
}
