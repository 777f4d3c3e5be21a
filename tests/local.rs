//! In-process publishing (embedding issue, first part): a `LocalClient` from
//! `BrokerHandle::client` publishes into a broker started inside the test's own actix
//! `System`; network clients (raw MQTT over loopback) receive what it publishes.

mod common;

use std::time::Duration;

use common::RawClient;
use starling::protocol::{Packet, QoS, ReasonCode};
use starling::{BrokerHandle, Config};

/// The longest wait for any one packet.
const WAIT: Duration = Duration::from_secs(10);

async fn start(data_dir: &std::path::Path, configure: impl FnOnce(&mut Config)) -> BrokerHandle {
    common::embedded::start_embedded(data_dir, configure).await
}

/// The next PUBLISH `c` receives (acknowledged), as (topic, payload, retain).
async fn next_publish(c: &mut RawClient) -> (String, String, bool) {
    let p = tokio::time::timeout(WAIT, c.expect_publish())
        .await
        .expect("a PUBLISH in time");
    c.ack(&p).await;
    let payload = String::from_utf8_lossy(&p.payload).into_owned();
    (p.topic.as_str().to_owned(), payload, p.retain)
}

#[actix_rt::test]
async fn a_local_publish_reaches_network_subscribers_under_the_same_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut sub = RawClient::connected_v311(addr, "net-sub", true).await;
    sub.subscribe(&[("l/#", QoS::AtLeastOnce)]).await;
    let local = broker.client("app");

    let done = local.publish("l/1", "one", QoS::AtLeastOnce, false).await;
    assert_eq!(done.expect("accepted").matched, 1);
    assert_eq!(
        next_publish(&mut sub).await,
        ("l/1".into(), "one".into(), false)
    );

    let nobody = local.publish("m/1", "x", QoS::AtMostOnce, false).await;
    assert_eq!(nobody.expect("accepted").matched, 0, "no subscriber of m/1");

    let bad = local.publish("l/+", "x", QoS::AtLeastOnce, false).await;
    assert_eq!(
        bad.expect_err("a wildcard").reason,
        ReasonCode::TOPIC_NAME_INVALID
    );
    let empty = local.publish("", "x", QoS::AtMostOnce, false).await;
    assert_eq!(
        empty.expect_err("empty").reason,
        ReasonCode::TOPIC_NAME_INVALID
    );

    // Retained: a later subscriber gets it.
    local
        .publish("l/kept", "kept", QoS::AtLeastOnce, true)
        .await
        .expect("accepted");
    assert_eq!(next_publish(&mut sub).await.1, "kept");
    let mut late = RawClient::connected_v311(addr, "late", true).await;
    late.subscribe(&[("l/kept", QoS::AtLeastOnce)]).await;
    assert_eq!(
        next_publish(&mut late).await,
        ("l/kept".into(), "kept".into(), true)
    );
    sub.disconnect().await;
    late.disconnect().await;
    broker.stop().await;
}

#[actix_rt::test]
async fn a_local_publish_is_refused_what_the_server_does_not_offer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| {
        c.capabilities.maximum_qos = 1;
        c.capabilities.retain_available = false;
    })
    .await;
    let local = broker.client("app");
    let qos2 = local.publish("t", "x", QoS::ExactlyOnce, false).await;
    assert_eq!(
        qos2.expect_err("QoS 2").reason,
        ReasonCode::QOS_NOT_SUPPORTED
    );
    let retained = local.publish("t", "x", QoS::AtMostOnce, true).await;
    assert_eq!(
        retained.expect_err("retain").reason,
        ReasonCode::RETAIN_NOT_SUPPORTED
    );
    assert!(local
        .publish("t", "x", QoS::AtLeastOnce, false)
        .await
        .is_ok());
    broker.stop().await;
}

/// A persistent subscriber is offline: what a local client published at QoS 1 (each
/// publish returned, so it was stored) is delivered after a restart of the broker.
#[actix_rt::test]
async fn a_returned_local_publish_is_kept_for_an_offline_persistent_subscriber() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut sub = RawClient::connected_v311(addr, "keeper", false).await;
    sub.subscribe(&[("q/#", QoS::AtLeastOnce)]).await;
    sub.disconnect().await;
    let local = broker.client("app");
    for i in 0..10 {
        let topic = format!("q/{i}");
        let done = local.publish(&topic, format!("m{i}"), QoS::AtLeastOnce, false);
        assert_eq!(
            done.await.expect("accepted").matched,
            1,
            "the offline session"
        );
    }
    broker.stop().await;

    let broker = start(dir.path(), |_| {}).await;
    let mut sub = RawClient::open(broker.local_addrs()[0]).await;
    let ack = sub.connect_v311("keeper", false, 60).await;
    assert!(ack.session_present);
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(next_publish(&mut sub).await.1);
    }
    let want: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want, "every message, in order");
    if let common::Event::Packet(Packet::Publish(p)) =
        sub.next_event(Duration::from_millis(300)).await
    {
        panic!("one more: {p:?}");
    }
    sub.disconnect().await;
    broker.stop().await;
}

/// The next message of `sub` within [`WAIT`].
async fn next(sub: &mut starling::Subscription) -> starling::LocalMessage {
    use futures::StreamExt;
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("the subscription goes on")
}

/// True when `sub` yields nothing within a short while (what was dropped stays away).
async fn quiet(sub: &mut starling::Subscription) -> bool {
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_millis(300), sub.next())
        .await
        .is_err()
}

#[actix_rt::test]
async fn a_local_subscription_gets_the_retained_message_first_then_every_publisher() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let addr = broker.local_addrs()[0];
    let mut net = RawClient::connected_v311(addr, "net-pub", true).await;
    net.publish("s/kept", QoS::AtLeastOnce, true, b"kept").await;
    let app = broker.client("app");
    let mut sub = app
        .subscribe("s/#", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    assert_eq!(sub.granted_qos(), QoS::AtLeastOnce);
    let first = next(&mut sub).await;
    assert_eq!(
        (first.topic.as_str(), &first.payload[..], first.retain),
        ("s/kept", &b"kept"[..], true)
    );
    net.publish("s/net", QoS::AtLeastOnce, false, b"from the network")
        .await;
    let got = next(&mut sub).await;
    assert_eq!(
        (got.topic.as_str(), got.qos, got.retain),
        ("s/net", QoS::AtLeastOnce, false)
    );
    let other = broker.client("other-app");
    let done = other.publish("s/local", "from inside", QoS::AtMostOnce, false);
    assert_eq!(done.await.expect("accepted").matched, 1);
    let got = next(&mut sub).await;
    assert_eq!((got.topic.as_str(), got.qos), ("s/local", QoS::AtMostOnce));
    net.disconnect().await;
    drop(sub);
    broker.stop().await;
}

#[actix_rt::test]
async fn a_slow_local_subscriber_is_bounded_like_a_session_and_never_holds_the_router() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| c.limits.max_queued_messages = 5).await;
    let app = broker.client("slow");
    let mut sub = app
        .subscribe("b/#", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let publisher = broker.client("fast");
    for i in 0..20 {
        let topic = format!("b/{i}");
        let done = publisher
            .publish(&topic, "x", QoS::AtLeastOnce, false)
            .await;
        assert_eq!(done.expect("accepted while nobody reads").matched, 1);
    }
    // The router sends a turn's deliveries at the end of the turn, and before it
    // handles a subscribe: once one is answered, all twenty were offered to the queue.
    let barrier = broker.client("barrier");
    let _b = barrier
        .subscribe("barrier", QoS::AtMostOnce)
        .await
        .expect("subscribed");
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(next(&mut sub).await.topic.as_str().to_owned());
    }
    let want: Vec<String> = (0..5).map(|i| format!("b/{i}")).collect();
    assert_eq!(got, want, "the first five, in order");
    assert!(quiet(&mut sub).await, "the other fifteen were dropped");
    assert_eq!(sub.dropped(), 15);
    drop(sub);
    broker.stop().await;
}

#[actix_rt::test]
async fn unsubscribing_or_dropping_a_local_subscription_stops_its_deliveries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let app = broker.client("app");
    let publish = |topic: &'static str| {
        let app = app.clone();
        async move {
            let done = app.publish(topic, "x", QoS::AtLeastOnce, false).await;
            done.expect("accepted").matched
        }
    };
    let sub = app
        .subscribe("u/1", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let again = app.subscribe("u/1", QoS::AtMostOnce).await;
    assert!(again.is_err(), "one subscription per filter");
    assert_eq!(publish("u/1").await, 1);
    sub.unsubscribe().await;
    assert_eq!(publish("u/1").await, 0, "unsubscribed");
    let sub = app
        .subscribe("u/1", QoS::AtLeastOnce)
        .await
        .expect("subscribed again");
    assert_eq!(publish("u/1").await, 1);
    drop(sub);
    assert_eq!(publish("u/1").await, 0, "dropped, so unsubscribed");
    let bad = app.subscribe("u/#/x", QoS::AtMostOnce).await;
    assert_eq!(
        bad.err().map(|e| e.reason),
        Some(ReasonCode::TOPIC_FILTER_INVALID)
    );
    broker.stop().await;
}

#[actix_rt::test]
async fn a_network_client_with_the_same_id_takes_over_the_local_subscriptions() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let app = broker.client("shared-id");
    let mut sub = app
        .subscribe("t/#", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let net = RawClient::connected_v311(broker.local_addrs()[0], "shared-id", true).await;
    let end = tokio::time::timeout(WAIT, sub.next()).await;
    assert!(end.expect("in time").is_none(), "the subscription ended");
    net.disconnect().await;
    // Subscribing again registers the id again.
    let sub = app.subscribe("t/#", QoS::AtLeastOnce).await;
    assert!(
        sub.is_err(),
        "the ended subscription still holds its filter until dropped"
    );
    drop(sub);
    broker.stop().await;
}

/// What a taken-over local client drops afterwards is its own: the network client now
/// holding the id keeps its subscription to the same filter.
#[actix_rt::test]
async fn dropping_a_taken_over_subscription_leaves_the_new_holders_alone() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let app = broker.client("same-id");
    let mut sub = app
        .subscribe("h/#", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let addr = broker.local_addrs()[0];
    let mut net = RawClient::connected_v311(addr, "same-id", true).await;
    let end = tokio::time::timeout(WAIT, sub.next()).await;
    assert!(end.expect("in time").is_none(), "taken over");
    net.subscribe(&[("h/#", QoS::AtLeastOnce)]).await;
    drop(sub);
    let other = broker.client("publisher");
    let done = other
        .publish("h/1", "still yours", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(done.expect("accepted").matched, 1);
    assert_eq!(next_publish(&mut net).await.1, "still yours");
    net.disconnect().await;
    broker.stop().await;
}

/// Overlapping subscriptions of one local client: each gets the message once, at its
/// own granted QoS (the router merges them into one delivery at the highest).
#[actix_rt::test]
async fn overlapping_local_subscriptions_each_get_their_own_qos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let app = broker.client("overlap");
    let mut low = app
        .subscribe("o/#", QoS::AtMostOnce)
        .await
        .expect("subscribed");
    let mut high = app
        .subscribe("o/1", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let other = broker.client("publisher");
    let done = other.publish("o/1", "x", QoS::AtLeastOnce, false).await;
    assert_eq!(
        done.expect("accepted").matched,
        1,
        "one delivery per client"
    );
    assert_eq!(next(&mut low).await.qos, QoS::AtMostOnce);
    assert_eq!(next(&mut high).await.qos, QoS::AtLeastOnce);
    assert!(quiet(&mut low).await && quiet(&mut high).await, "once each");
    broker.stop().await;
}

/// A broker with no listener at all: an event bus between the application's own tasks.
#[actix_rt::test]
async fn a_broker_without_listeners_serves_local_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| c.listeners.clear()).await;
    assert!(broker.local_addrs().is_empty());
    let bus = broker.client("consumer");
    let mut events = bus
        .subscribe("events/#", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let producer = broker.client("producer");
    let done = producer
        .publish("events/1", "e1", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(done.expect("accepted").matched, 1);
    assert_eq!(&next(&mut events).await.payload[..], b"e1");
    drop(events);
    broker.stop().await;
}

/// Subscriptions the server does not offer are refused with the SUBACK's codes.
#[actix_rt::test]
async fn a_local_subscribe_is_refused_what_the_server_does_not_offer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| {
        c.capabilities.wildcard_subscriptions = false;
        c.capabilities.shared_subscriptions = false;
    })
    .await;
    let app = broker.client("app");
    let wild = app.subscribe("w/#", QoS::AtMostOnce).await;
    assert_eq!(
        wild.err().map(|e| e.reason),
        Some(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED)
    );
    let shared = app.subscribe("$share/g/w", QoS::AtMostOnce).await;
    assert_eq!(
        shared.err().map(|e| e.reason),
        Some(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)
    );
    let plain = app
        .subscribe("w/1", QoS::ExactlyOnce)
        .await
        .expect("subscribed");
    assert_eq!(plain.granted_qos(), QoS::ExactlyOnce);
    drop(plain);
    broker.stop().await;
}

#[actix_rt::test]
async fn two_brokers_run_side_by_side_in_one_process() {
    use futures::StreamExt;
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = start(dir_a.path(), |_| {}).await;
    let b = start(dir_b.path(), |_| {}).await;
    assert_ne!(a.local_addrs(), b.local_addrs());
    let mut on_a = a
        .client("x")
        .subscribe("t", QoS::AtLeastOnce)
        .await
        .expect("a");
    let mut on_b = b
        .client("x")
        .subscribe("t", QoS::AtLeastOnce)
        .await
        .expect("b");
    let sent = b
        .client("p")
        .publish("t", "for b", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(sent.expect("b publishes").matched, 1, "only b's subscriber");
    let got = tokio::time::timeout(WAIT, on_b.next())
        .await
        .expect("in time");
    assert_eq!(&got.expect("a message").payload[..], b"for b");
    let mut net = RawClient::connected_v311(a.local_addrs()[0], "n", true).await;
    net.publish("t", QoS::AtLeastOnce, false, b"for a").await;
    let got = tokio::time::timeout(WAIT, on_a.next())
        .await
        .expect("in time");
    assert_eq!(
        &got.expect("a message").payload[..],
        b"for a",
        "b's message never came"
    );
    a.stop().await;
    b.stop().await;
}
