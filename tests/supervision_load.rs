//! Supervision under load (core-seams issue): failures injected into every kind of
//! router handler, and into the persistence actor, while two publishers stream QoS 1
//! messages to two persistent subscribers (3.1.1 and 5.0). Every acknowledged message
//! must arrive at both, and delivery must not stall. Built with the test-only
//! `fault-injection` feature: `$fault/router` fails the routing of that message,
//! `$fault/router/<Handler>` arms one failure in the next run of that handler,
//! `$fault/persistence` (retained) fails the persistence actor.
#![cfg(feature = "fault-injection")]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{filter, publish_packet, session_expiry, BrokerProcess, RawClient};
use common::{publish_pipelined, Collector, Stop};
use starling::protocol::{
    Packet, Properties, QoS, ReasonCode, Subscribe, SubscriptionOptions, Unsubscribe,
};

/// Messages each publisher sends per burst, and the pause between bursts (pacing the
/// stream so that it is still flowing while the faults go in; not synchronisation).
const BURST: u32 = 50;
const PAUSE: Duration = Duration::from_millis(20);
/// Upper bound of bursts per publisher (about 12 s of streaming).
const MAX_BURSTS: u32 = 600;
/// Bursts each publisher sends at least (the faults may be injected in about a second).
const MIN_BURSTS: u32 = 12;
/// Index offsets: publisher A, publisher B, QoS 0 messages held in the outbox.
const A: u32 = 0;
const B: u32 = 1_000_000;
const HELD: u32 = 2_000_000;

/// How often the broker's log says `text`.
fn count(broker: &BrokerProcess, text: &str) -> usize {
    broker.log_text().matches(text).count()
}

/// Waits (up to 10 s) until the log says `text` more than `before` times.
async fn logged_again(broker: &BrokerProcess, text: &str, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(broker, text) <= before {
        assert!(Instant::now() < deadline, "no new {text:?} in the log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes bursts of QoS 1 messages until `stop` is set; returns what was acknowledged.
async fn stream(
    broker: std::net::SocketAddr,
    id: &str,
    base: u32,
    stop: Arc<AtomicBool>,
) -> BTreeSet<u32> {
    let mut c = RawClient::connected_v311(broker, id, true).await;
    let mut acked = BTreeSet::new();
    for burst in 0..MAX_BURSTS {
        let from = base + burst * BURST;
        let done = publish_pipelined(
            &mut c,
            "load/s",
            QoS::AtLeastOnce,
            from..from + BURST,
            8,
            None,
        )
        .await;
        assert!(!done.closed, "publisher {id} was disconnected");
        acked.extend(done.completed);
        // At least MIN_BURSTS, however quickly the faults were injected.
        if burst + 1 >= MIN_BURSTS && stop.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    acked
}

/// Arms a failure of `handler` from a client of its own.
async fn arm(addr: std::net::SocketAddr, handler: &str) -> RawClient {
    let mut c = RawClient::connected_v311(addr, &format!("arm-{handler}"), true).await;
    let topic = format!("$fault/router/{handler}");
    c.publish(&topic, QoS::AtLeastOnce, false, b"arm").await;
    c
}

/// Injects each fault in turn and waits for the restart it causes.
async fn inject_faults(broker: &BrokerProcess) {
    let addr = broker.addr();
    let restarted = "router restarted";
    // 1. The routing of a message fails.
    let n = count(broker, restarted);
    let mut poison = RawClient::connected_v311(addr, "poison", true).await;
    poison
        .publish("$fault/router", QoS::AtMostOnce, false, b"x")
        .await;
    poison.expect_closed().await;
    logged_again(broker, restarted, n).await;
    // 2. The router fails while deliveries are held in its outbox: a message routed in
    // the same turn, just before the failure, must still go out.
    for k in 0..3 {
        let n = count(broker, restarted);
        let mut c = RawClient::connected_v311(addr, &format!("held-{k}"), true).await;
        let held = (HELD + k).to_string();
        c.send_together(vec![
            Packet::Publish(publish_packet(
                "load/held",
                QoS::AtMostOnce,
                held.as_bytes(),
                None,
            )),
            Packet::Publish(publish_packet("$fault/router", QoS::AtMostOnce, b"x", None)),
        ])
        .await;
        c.expect_closed().await;
        logged_again(broker, restarted, n).await;
    }
    // 3. Each kind of handler fails once, triggered by what a client does.
    for handler in [
        "FlushOutbox",
        "GetStats",
        "Subscribe",
        "Unsubscribe",
        "SessionEnded",
        "Register",
    ] {
        let n = count(broker, restarted);
        let mut c = arm(addr, handler).await;
        match handler {
            "Subscribe" => {
                let filters = vec![(
                    filter("x/y"),
                    SubscriptionOptions::with_qos(QoS::AtLeastOnce),
                )];
                let packet_id = c.next_packet_id();
                let properties = Properties::default();
                c.send(Packet::Subscribe(Subscribe {
                    packet_id,
                    properties,
                    filters,
                }))
                .await;
                c.expect_closed().await;
            }
            "Unsubscribe" => {
                let filters = vec![filter("x/y")];
                let packet_id = c.next_packet_id();
                let properties = Properties::default();
                c.send(Packet::Unsubscribe(Unsubscribe {
                    packet_id,
                    properties,
                    filters,
                }))
                .await;
                c.expect_closed().await;
            }
            "SessionEnded" => c.disconnect().await,
            "Register" => {
                let mut other = RawClient::open(addr).await;
                let connect = common::connect_packet(
                    starling::protocol::ProtocolVersion::V311,
                    "refused",
                    true,
                    30,
                );
                other.send(Packet::Connect(Box::new(connect))).await;
                // Refused with CONNACK 0x88 (3.1.1: 3): the client may retry.
                let ack = other.expect_connect_refused().await.expect("a CONNACK");
                assert_eq!(ack.reason, ReasonCode::SERVER_UNAVAILABLE);
                c.disconnect().await;
            }
            // Run by the publishers' stream, and by the `$SYS` timer.
            _ => {}
        }
        logged_again(broker, restarted, n).await;
    }
    // 4. The persistent sessions offline: their record update and going offline fail.
    for handler in ["UpdateSession", "WentOffline"] {
        let n = count(broker, restarted);
        let mut c = RawClient::open(addr).await;
        c.connect_v311(&format!("gone-{handler}"), false, 30).await;
        let topic = format!("$fault/router/{handler}");
        c.publish(&topic, QoS::AtLeastOnce, false, b"arm").await;
        c.disconnect().await;
        logged_again(broker, restarted, n).await;
    }
    // 5. The persistence actor fails while the streams' stored copies are pending.
    let n = count(broker, "persistence actor restarted");
    let mut c = RawClient::connected_v311(addr, "poison-store", true).await;
    c.publish("$fault/persistence", QoS::AtMostOnce, true, b"x")
        .await;
    c.disconnect().await;
    logged_again(broker, "persistence actor restarted", n).await;
}

#[tokio::test]
async fn every_router_handler_fails_under_qos1_load_and_nothing_acknowledged_is_lost() {
    let broker = BrokerProcess::start_with_config(Some("[server]\nsys_interval_secs = 1\n"));
    let addr = broker.addr();
    let body = async {
        let mut s311 = RawClient::open(addr).await;
        s311.connect_v311("sub-311", false, 60).await;
        s311.subscribe(&[("load/#", QoS::AtLeastOnce)]).await;
        let mut s5 = RawClient::connected_v5(addr, "sub-5", session_expiry(300)).await;
        s5.subscribe(&[("load/#", QoS::AtLeastOnce)]).await;
        let stop = Arc::new(AtomicBool::new(false));
        let pa = tokio::spawn(stream(addr, "pub-a", A, Arc::clone(&stop)));
        let pb = tokio::spawn(stream(addr, "pub-b", B, Arc::clone(&stop)));
        let collect = |mut c: RawClient| {
            tokio::spawn(async move {
                let mut col = Collector::new(0);
                // Until the publishers are done and nothing more arrives for 5 s.
                let stop = col.run(&mut c, None, Duration::from_secs(5)).await;
                (col, stop)
            })
        };
        let c311 = collect(s311);
        let c5 = collect(s5);
        inject_faults(&broker).await;
        stop.store(true, Ordering::SeqCst);
        let mut acked = pa.await.expect("publisher a");
        acked.extend(pb.await.expect("publisher b"));
        for (name, task) in [("3.1.1", c311), ("5.0", c5)] {
            let (col, why) = task.await.expect("subscriber");
            assert_eq!(why, Stop::Silence, "{name} subscriber stopped: {why:?}");
            let got: BTreeSet<u32> = col.counts.keys().copied().collect();
            let missing: Vec<u32> = acked.difference(&got).copied().collect();
            assert!(
                missing.is_empty(),
                "{name} subscriber: {} of {} acknowledged messages missing, first {:?}",
                missing.len(),
                acked.len(),
                &missing[..missing.len().min(10)]
            );
            let held: Vec<u32> = (HELD..HELD + 3).filter(|i| !got.contains(i)).collect();
            assert!(
                held.is_empty(),
                "{name} subscriber: held deliveries {held:?} never arrived"
            );
        }
        assert!(
            acked.len() > 1000,
            "the streams ran: {} acknowledged",
            acked.len()
        );
    };
    tokio::time::timeout(Duration::from_secs(120), body)
        .await
        .expect("test finished within 120 s");
}
