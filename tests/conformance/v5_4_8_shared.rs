//! MQTT 5.0 section 4.8.2, shared subscriptions: one member per message, the member's
//! granted QoS, and what happens to a message when its member leaves mid-delivery.

use std::collections::BTreeSet;
use std::time::Duration;

use starling::protocol::{Packet, Properties, PropertyFields, PubResponse, QoS, ReasonCode};

use crate::common::{bounded, session_expiry, BrokerProcess, Event, RawClient};

const WORK: &str = "$share/g/work";

/// Payloads of the PUBLISHes `c` receives until `within` passes without one; QoS 1/2
/// ones are acknowledged when `ack` says so.
async fn collect(c: &mut RawClient, ack: bool, within: Duration) -> Vec<(String, QoS, bool)> {
    let mut got = Vec::new();
    for _ in 0..1000 {
        match c.next_event(within).await {
            Event::Packet(Packet::Publish(p)) => {
                if ack {
                    if let Some(id) = p.packet_id() {
                        let reply = PubResponse::new(id);
                        c.send(match p.qos() {
                            QoS::ExactlyOnce => Packet::PubRec(reply),
                            _ => Packet::PubAck(reply),
                        })
                        .await;
                    }
                }
                let text = String::from_utf8(p.payload.to_vec()).expect("utf-8 payload");
                got.push((text, p.qos(), p.dup));
            }
            Event::Packet(Packet::PubRel(r)) => {
                c.send(Packet::PubComp(PubResponse::new(r.packet_id))).await;
            }
            Event::Timeout => break,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    got
}

async fn member(broker: &BrokerProcess, id: &str, qos: QoS, props: Properties) -> RawClient {
    let mut c = RawClient::connected_v5(broker.addr(), id, props).await;
    let ack = c.subscribe(&[(WORK, qos)]).await;
    assert!(
        !ack.reasons[0].is_error(),
        "SUBACK of {id}: {:?}",
        ack.reasons
    );
    c
}

async fn publish_n(broker: &BrokerProcess, qos: QoS, n: usize) -> BTreeSet<String> {
    let mut p = RawClient::connected_v5(broker.addr(), "share-pub", Properties::default()).await;
    let mut sent = BTreeSet::new();
    for i in 0..n {
        let text = format!("m{i}");
        p.publish("work", qos, false, text.as_bytes()).await;
        sent.insert(text);
    }
    sent
}

/// [MQTT-4.8.2-3]: a member gets the message at the QoS it was granted (the lower of
/// the message's and the subscription's), like any subscriber.
#[tokio::test]
async fn shared_delivery_respects_the_members_granted_qos() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut a = member(&broker, "share-q0", QoS::AtMostOnce, Properties::default()).await;
        publish_n(&broker, QoS::ExactlyOnce, 3).await;
        let got = collect(&mut a, true, Duration::from_millis(500)).await;
        assert_eq!(got.len(), 3);
        assert!(
            got.iter().all(|(_, qos, _)| *qos == QoS::AtMostOnce),
            "{got:?}"
        );
    })
    .await;
}

/// Section 4.8.2 (the server MAY re-send to another member as soon as the connection
/// to the first is lost; it SHOULD once the session ends): QoS 1 messages a member
/// received and never acknowledged, and those still queued for it, go to another
/// member when its connection drops. Every message reaches the group.
#[tokio::test]
async fn unacknowledged_qos1_moves_to_another_member_when_a_member_leaves() {
    let broker = BrokerProcess::start();
    bounded(async {
        // A small Receive Maximum keeps some of A's share queued behind its window.
        let window = Properties::from(PropertyFields {
            receive_maximum: Some(2),
            ..PropertyFields::default()
        });
        let mut a = member(&broker, "share-a", QoS::AtLeastOnce, window).await;
        let mut b = member(&broker, "share-b", QoS::AtLeastOnce, Properties::default()).await;
        let sent = publish_n(&broker, QoS::AtLeastOnce, 10).await;
        let quiet = Duration::from_millis(500);
        let to_a = collect(&mut a, false, quiet).await;
        let first_b = collect(&mut b, true, quiet).await;
        assert_eq!(
            to_a.len(),
            2,
            "A's window holds two unacknowledged: {to_a:?}"
        );
        assert_eq!(first_b.len(), 5, "round robin gives B every other message");
        drop(a);
        let handed = collect(&mut b, true, Duration::from_secs(1)).await;
        let mut seen: Vec<String> = first_b.iter().map(|m| m.0.clone()).collect();
        seen.extend(handed.iter().map(|m| m.0.clone()));
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "a message reached B twice: {seen:?}"
        );
        assert_eq!(
            unique, sent,
            "every message reaches the group once A is gone"
        );
    })
    .await;
}

/// With no other member online, a persistent member's unacknowledged QoS 1 messages
/// wait for it: its client gets them again, DUP set on the one it had seen
/// [MQTT-4.4.0-1]; none is lost.
#[tokio::test]
async fn with_no_other_member_the_message_waits_for_its_session() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut a = RawClient::open(broker.addr()).await;
        let ack = a
            .connect_v5("share-keep", true, 60, session_expiry(300))
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        a.subscribe(&[(WORK, QoS::AtLeastOnce)]).await;
        let sent = publish_n(&broker, QoS::AtLeastOnce, 3).await;
        let first = collect(&mut a, false, Duration::from_millis(500)).await;
        assert_eq!(first.len(), 3);
        drop(a);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut a = RawClient::open(broker.addr()).await;
        let ack = a
            .connect_v5("share-keep", false, 60, session_expiry(300))
            .await;
        assert!(ack.session_present);
        let again = collect(&mut a, true, Duration::from_millis(500)).await;
        let payloads: BTreeSet<String> = again.iter().map(|m| m.0.clone()).collect();
        assert_eq!(payloads, sent, "{again:?}");
        assert!(again.iter().all(|m| m.2), "re-sent with DUP: {again:?}");
    })
    .await;
}

/// [MQTT-4.8.2-4] [MQTT-4.8.2-5]: a QoS 2 message already sent to a member is never
/// sent to another member; its delivery completes with that member's session when it
/// reconnects.
#[tokio::test]
async fn qos2_in_flight_stays_with_its_member() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut a = RawClient::open(broker.addr()).await;
        a.connect_v5("share-q2", true, 60, session_expiry(300))
            .await;
        a.subscribe(&[(WORK, QoS::ExactlyOnce)]).await;
        publish_n(&broker, QoS::ExactlyOnce, 1).await;
        let first = collect(&mut a, false, Duration::from_millis(500)).await;
        assert_eq!(first.len(), 1);
        let mut b = member(
            &broker,
            "share-q2-b",
            QoS::ExactlyOnce,
            Properties::default(),
        )
        .await;
        drop(a);
        let to_b = collect(&mut b, true, Duration::from_secs(1)).await;
        assert!(
            to_b.is_empty(),
            "QoS 2 in flight went to another member: {to_b:?}"
        );
        let mut a = RawClient::open(broker.addr()).await;
        let ack = a
            .connect_v5("share-q2", false, 60, session_expiry(300))
            .await;
        assert!(ack.session_present);
        let again = collect(&mut a, true, Duration::from_millis(500)).await;
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!(again[0].0, first[0].0);
        assert!(again[0].2, "re-sent with DUP");
    })
    .await;
}

/// [MQTT-4.8.2-6]: a member answering PUBACK with an error code (>= 0x80) makes the
/// server discard the message, not offer it to another member.
#[tokio::test]
async fn error_puback_discards_the_message() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut a = member(
            &broker,
            "share-err-a",
            QoS::AtLeastOnce,
            Properties::default(),
        )
        .await;
        publish_n(&broker, QoS::AtLeastOnce, 1).await;
        let p = a.expect_publish().await;
        let mut refusal = PubResponse::new(p.packet_id().expect("QoS 1 id"));
        refusal.reason = ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR;
        a.send(Packet::PubAck(refusal)).await;
        let mut b = member(
            &broker,
            "share-err-b",
            QoS::AtLeastOnce,
            Properties::default(),
        )
        .await;
        a.send(Packet::PingReq).await;
        a.expect_packet("PINGRESP").await;
        drop(a);
        let to_b = collect(&mut b, true, Duration::from_secs(1)).await;
        assert!(
            to_b.is_empty(),
            "a refused message went to another member: {to_b:?}"
        );
    })
    .await;
}

/// Section 4.8.2 leaves the choice of member to the server; Starling's
/// `shared_subscription_strategy` picks it: round robin takes turns, sticky keeps one
/// member while it stays online, random spreads messages over both (40 messages all
/// to one member would happen once in 5.5e11 runs). Each message still goes to exactly
/// one member.
#[tokio::test]
async fn share_strategies_pick_members_as_configured() {
    for (strategy, n) in [("round_robin", 10), ("sticky", 10), ("random", 40)] {
        let toml = format!("[server]\nshared_subscription_strategy = \"{strategy}\"\n");
        let broker = BrokerProcess::start_with_config(Some(&toml));
        bounded(async {
            let plain = Properties::default();
            let mut a = member(&broker, "strat-a", QoS::AtLeastOnce, plain.clone()).await;
            let mut b = member(&broker, "strat-b", QoS::AtLeastOnce, plain).await;
            let sent = publish_n(&broker, QoS::AtLeastOnce, n).await;
            let quiet = Duration::from_millis(500);
            let to_a = collect(&mut a, true, quiet).await;
            let to_b = collect(&mut b, true, quiet).await;
            let all: BTreeSet<String> = to_a.iter().chain(&to_b).map(|m| m.0.clone()).collect();
            assert_eq!(all, sent, "{strategy}");
            assert_eq!(to_a.len() + to_b.len(), n, "{strategy}: each message once");
            match strategy {
                "round_robin" => assert_eq!((to_a.len(), to_b.len()), (n / 2, n / 2)),
                "sticky" => assert!(to_a.is_empty() || to_b.is_empty(), "sticky split"),
                _ => assert!(
                    !to_a.is_empty() && !to_b.is_empty(),
                    "random: one member only"
                ),
            }
        })
        .await;
    }
}
