//! Persistent in-process clients (embedding issue): a `PersistentClient` from
//! `BrokerHandle::persistent_client` is an MQTT 5.0 session over an in-memory pipe, so
//! its subscriptions and queued messages survive a restart of the broker (graceful, or
//! a kill -9 of a child process running broker and client, local_persistent_kill.rs)
//! as a network session's do; a message is acknowledged only when the application
//! takes it.

mod common;

use std::time::{Duration, Instant};

use common::embedded::{
    next, next_text, publish_range, quiet, start_embedded as start, texts, wait_queued, HOUR, WAIT,
};
use common::{session_expiry, RawClient};
use starling::protocol::{Properties, QoS, ReasonCode};
use starling::{BrokerHandle, PersistentClient};

async fn connect(broker: &BrokerHandle, id: &str) -> PersistentClient {
    common::embedded::persistent_local(broker, id).await
}

#[actix_rt::test]
async fn queued_messages_survive_a_graceful_restart_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let addr = broker.local_addrs()[0];
    let app = connect(&broker, "keeper").await;
    assert!(!app.session_present(), "a new session");
    let granted = app.subscribe("q/#", QoS::AtLeastOnce).await;
    assert_eq!(granted, Ok(QoS::AtLeastOnce));
    // Five delivered while the application does not read, five while it is away.
    publish_range(addr, "q", QoS::AtLeastOnce, 0..5).await;
    wait_queued(&app, 5).await;
    app.disconnect().await;
    publish_range(addr, "q", QoS::AtLeastOnce, 5..10).await;
    broker.stop().await;

    let broker = start(dir.path(), |_| {}).await;
    let app = connect(&broker, "keeper").await;
    assert!(app.session_present(), "the stored session is resumed");
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(next_text(&app).await);
    }
    assert_eq!(got, texts(0..10), "every message, in order");
    assert!(quiet(&app).await, "and nothing more");
    app.disconnect().await;
    broker.stop().await;
}

#[actix_rt::test]
async fn a_taken_message_is_not_redelivered_after_a_restart_and_one_not_taken_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let addr = broker.local_addrs()[0];
    let app = connect(&broker, "taker").await;
    assert_eq!(
        app.subscribe("a/1", QoS::AtLeastOnce).await,
        Ok(QoS::AtLeastOnce)
    );
    assert_eq!(
        app.subscribe("a/2", QoS::ExactlyOnce).await,
        Ok(QoS::ExactlyOnce)
    );
    let mut p = RawClient::connected_v311(addr, "net-publisher", true).await;
    p.publish("a/1", QoS::AtLeastOnce, false, b"one").await;
    p.publish("a/2", QoS::ExactlyOnce, false, b"two").await;
    p.publish("a/1", QoS::AtLeastOnce, false, b"three").await;
    p.publish("a/2", QoS::ExactlyOnce, false, b"four").await;
    p.disconnect().await;
    let first = next(&app).await;
    assert_eq!(
        (&first.payload[..], first.qos),
        (&b"one"[..], QoS::AtLeastOnce)
    );
    let second = next(&app).await;
    assert_eq!(
        (&second.payload[..], second.qos),
        (&b"two"[..], QoS::ExactlyOnce)
    );
    wait_queued(&app, 2).await;
    app.disconnect().await;
    broker.stop().await;

    let broker = start(dir.path(), |_| {}).await;
    let app = connect(&broker, "taker").await;
    assert!(app.session_present());
    assert_eq!(next_text(&app).await, "three", "not taken: sent again");
    assert_eq!(next_text(&app).await, "four", "not taken: sent again");
    assert!(quiet(&app).await, "what was taken stays taken");
    app.disconnect().await;
    broker.stop().await;

    let broker = start(dir.path(), |_| {}).await;
    let app = connect(&broker, "taker").await;
    assert!(app.session_present());
    assert!(quiet(&app).await, "all four were taken");
    app.disconnect().await;
    broker.stop().await;
}

/// At most the client's Receive Maximum (64) waits in the client; the session queues
/// the rest and sends them as the application takes messages.
#[actix_rt::test]
async fn the_receive_maximum_bounds_what_waits_in_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let app = connect(&broker, "bounded").await;
    assert_eq!(
        app.subscribe("b/#", QoS::AtLeastOnce).await,
        Ok(QoS::AtLeastOnce)
    );
    publish_range(broker.local_addrs()[0], "b", QoS::AtLeastOnce, 0..100).await;
    wait_queued(&app, 64).await;
    // The session's 36 others stay there until some are acknowledged.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.queued(), 64, "the Receive Maximum holds");
    let mut got = Vec::new();
    for _ in 0..100 {
        got.push(next_text(&app).await);
    }
    assert_eq!(got, texts(0..100));
    app.disconnect().await;
    broker.stop().await;
}

/// More concurrent QoS 1/2 publishes than the broker's Receive Maximum: the client holds
/// the rest until acknowledgements make room (the broker would disconnect it, 0x93).
#[actix_rt::test]
async fn publishes_beyond_the_brokers_receive_maximum_wait_their_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| c.limits.receive_maximum = 4).await;
    let app = connect(&broker, "eager").await;
    assert_eq!(
        app.subscribe("e/#", QoS::AtLeastOnce).await,
        Ok(QoS::AtLeastOnce)
    );
    let publishes = (0..50).map(|i| {
        let qos = [QoS::AtLeastOnce, QoS::ExactlyOnce][i % 2];
        app.publish("e/1", format!("m{i}"), qos, false)
    });
    let done = futures::future::join_all(publishes).await;
    assert!(done.iter().all(Result::is_ok), "{done:?}");
    let mut got = Vec::new();
    for _ in 0..50 {
        got.push(next_text(&app).await);
    }
    assert_eq!(got, texts(0..50), "in the order they were published");
    app.disconnect().await;
    broker.stop().await;
}

#[actix_rt::test]
async fn a_refused_request_gives_the_reason_code_and_the_connection_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| {
        c.capabilities.maximum_qos = 1;
        c.capabilities.retain_available = false;
        c.capabilities.wildcard_subscriptions = false;
        c.limits.max_packet_size = 1024;
    })
    .await;
    let app = connect(&broker, "refused").await;
    let reason = |r: Result<(), starling::Refused>| r.expect_err("refused").reason;
    let qos2 = app.publish("t", "x", QoS::ExactlyOnce, false).await;
    assert_eq!(reason(qos2), ReasonCode::QOS_NOT_SUPPORTED);
    let retained = app.publish("t", "x", QoS::AtMostOnce, true).await;
    assert_eq!(reason(retained), ReasonCode::RETAIN_NOT_SUPPORTED);
    let wildcard = app.publish("t/+", "x", QoS::AtLeastOnce, false).await;
    assert_eq!(reason(wildcard), ReasonCode::TOPIC_NAME_INVALID);
    let large = app
        .publish("t", vec![0u8; 2000], QoS::AtLeastOnce, false)
        .await;
    assert_eq!(reason(large), ReasonCode::PACKET_TOO_LARGE);
    // Refused by the broker itself, in its PUBACK: marked UTF-8, and it is not.
    let mut utf8 = Properties::default();
    utf8.payload_format_indicator = Some(1);
    let bad = app
        .publish_with("t", vec![0xFFu8], QoS::AtLeastOnce, false, utf8)
        .await;
    assert_eq!(reason(bad), ReasonCode::PAYLOAD_FORMAT_INVALID);
    let wild = app.subscribe("w/#", QoS::AtLeastOnce).await;
    assert_eq!(
        wild.expect_err("no wildcards").reason,
        ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED
    );
    let invalid = app.subscribe("w/#/x", QoS::AtLeastOnce).await;
    assert_eq!(
        invalid.expect_err("invalid").reason,
        ReasonCode::TOPIC_FILTER_INVALID
    );
    // Still connected: a subscription is granted (capped at QoS 1) and served.
    assert_eq!(
        app.subscribe("w/1", QoS::ExactlyOnce).await,
        Ok(QoS::AtLeastOnce)
    );
    let done = app.publish("w/1", "fine", QoS::AtLeastOnce, false).await;
    assert_eq!(done, Ok(()));
    assert_eq!(next_text(&app).await, "fine");
    assert_eq!(app.unsubscribe("w/1").await, Ok(()));
    app.disconnect().await;
    broker.stop().await;
}

/// A network client connecting with the id takes the session over from the persistent
/// client (session present, its subscription with it), and the other way round.
#[actix_rt::test]
async fn a_network_client_and_a_persistent_client_take_each_other_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let addr = broker.local_addrs()[0];
    let app = connect(&broker, "both").await;
    assert_eq!(
        app.subscribe("t/#", QoS::AtLeastOnce).await,
        Ok(QoS::AtLeastOnce)
    );

    let mut net = RawClient::open(addr).await;
    let ack = net
        .connect_v5("both", false, 60, session_expiry(3600))
        .await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(ack.session_present, "the persistent client's session");
    let end = tokio::time::timeout(WAIT, app.next()).await;
    assert!(end.expect("in time").is_none(), "the stream ended");
    let late = app.publish("t/x", "x", QoS::AtLeastOnce, false).await;
    assert_eq!(
        late.expect_err("taken over").reason,
        ReasonCode::SESSION_TAKEN_OVER
    );
    publish_range(addr, "t", QoS::AtLeastOnce, 0..1).await;
    let p = tokio::time::timeout(WAIT, net.recv_publish_acked())
        .await
        .expect("in time");
    assert_eq!(
        &p.payload[..],
        b"m0",
        "the subscription moved with the session"
    );
    net.disconnect().await;

    publish_range(addr, "t", QoS::AtLeastOnce, 1..2).await;
    let app = connect(&broker, "both").await;
    assert!(app.session_present());
    assert_eq!(
        next_text(&app).await,
        "m1",
        "queued while the id was offline"
    );

    let mut net = RawClient::open(addr).await;
    let ack = net
        .connect_v5("both", false, 60, session_expiry(3600))
        .await;
    assert!(ack.session_present);
    let end = tokio::time::timeout(WAIT, app.next()).await;
    assert!(end.expect("in time").is_none(), "taken over again");
    net.disconnect().await;
    broker.stop().await;
}

/// A persistent client counts against `max_connections`; dropping it closes its
/// connection (the slot frees) while its session stays.
#[actix_rt::test]
async fn a_dropped_client_frees_its_connection_and_keeps_its_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| c.limits.max_connections = 1).await;
    let app = connect(&broker, "counted").await;
    assert_eq!(
        app.subscribe("d/#", QoS::AtLeastOnce).await,
        Ok(QoS::AtLeastOnce)
    );
    let second = broker.persistent_client("other", HOUR).await;
    assert_eq!(
        second.expect_err("one connection at most").reason,
        ReasonCode::SERVER_BUSY
    );
    drop(app);
    // The slot frees once the session has seen the pipe close.
    let deadline = Instant::now() + WAIT;
    let app = loop {
        match broker.persistent_client("counted", HOUR).await {
            Ok(app) => break app,
            Err(e) => assert_eq!(e.reason, ReasonCode::SERVER_BUSY),
        }
        assert!(
            Instant::now() < deadline,
            "the dropped client's slot never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(app.session_present(), "the session stayed");
    drop(app);
    broker.stop().await;
}

/// Stopping the broker closes a connected persistent client's connection as a network
/// client's (DISCONNECT 0x8B): the stream ends and the stop does not wait for it.
#[actix_rt::test]
async fn stopping_the_broker_ends_a_connected_persistent_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |_| {}).await;
    let mut app = connect(&broker, "online").await;
    assert_eq!(
        app.subscribe("s/#", QoS::AtLeastOnce).await,
        Ok(QoS::AtLeastOnce)
    );
    let stopping = Instant::now();
    broker.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "the stop waited {:?} for the in-process connection",
        stopping.elapsed()
    );
    // The client as a `futures::Stream`.
    let end = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut app)).await;
    assert!(end.expect("in time").is_none(), "the stream ended");
    let late = app.publish("s/1", "x", QoS::AtLeastOnce, false).await;
    assert!(late.is_err(), "the connection is closed");
}

/// The embedding application's own client is not authenticated.
#[actix_rt::test]
async fn a_persistent_client_connects_where_anonymous_network_clients_may_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| c.auth.allow_anonymous = Some(false)).await;
    let mut net = RawClient::open(broker.local_addrs()[0]).await;
    let refused = net.connect_v311("anonymous", true, 60).await;
    assert_ne!(refused.reason, ReasonCode::SUCCESS);
    let app = connect(&broker, "trusted").await;
    assert_eq!(app.publish("t", "x", QoS::AtLeastOnce, false).await, Ok(()));
    app.disconnect().await;
    broker.stop().await;
}

/// A keep alive the broker imposes (`max_keepalive_secs`) is kept with PINGREQs.
#[actix_rt::test]
async fn a_keep_alive_imposed_by_the_broker_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), |c| c.limits.max_keepalive_secs = 1).await;
    let app = connect(&broker, "pinging").await;
    assert_eq!(
        app.subscribe("k", QoS::AtLeastOnce).await,
        Ok(QoS::AtLeastOnce)
    );
    // Twice the 1.5 s after which a silent connection is closed.
    assert!(
        tokio::time::timeout(Duration::from_secs(3), app.next())
            .await
            .is_err(),
        "still connected, nothing delivered"
    );
    assert_eq!(
        app.publish("k", "alive", QoS::AtLeastOnce, false).await,
        Ok(())
    );
    assert_eq!(next_text(&app).await, "alive");
    app.disconnect().await;
    broker.stop().await;
}
