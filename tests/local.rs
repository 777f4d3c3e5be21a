//! In-process publishing (embedding issue, first part): a `LocalClient` from
//! `BrokerHandle::client` publishes into a broker started inside the test's own actix
//! `System`; network clients (raw MQTT over loopback) receive what it publishes.

mod common;

use std::time::Duration;

use common::RawClient;
use starling::protocol::{Packet, QoS, ReasonCode};
use starling::{Broker, BrokerHandle, Config};

/// The longest wait for any one packet.
const WAIT: Duration = Duration::from_secs(10);

async fn start(data_dir: &std::path::Path, configure: impl FnOnce(&mut Config)) -> BrokerHandle {
    let mut config = Config::default();
    config.listeners[0].bind = "127.0.0.1:0".parse().expect("address");
    config.storage.data_dir = data_dir.to_path_buf();
    configure(&mut config);
    Broker::new(config)
        .workers(1)
        .start()
        .await
        .expect("broker starts")
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
