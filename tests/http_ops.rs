//! The operations HTTP listener (`[http] bind`) of the broker binary: `/health`,
//! `/ready`, and `/metrics` parsed by a Prometheus text-format parser, whose counters
//! move as rumqttc clients send traffic through the broker. Also the same routes
//! mounted in an application's own actix-web `App`.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{http_get, poll_until};
use common::{bin, bounded, free_port, BrokerProcess};
use prometheus_parse::{Scrape, Value};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

/// A broker with its HTTP listener on a free port; the listener's address.
fn start_broker(extra: &str) -> (BrokerProcess, SocketAddr) {
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let toml = format!("[server]\nworkers = 1\n[http]\nbind = \"{http}\"\n{extra}");
    (BrokerProcess::start_with_config(Some(&toml)), http)
}

/// `/metrics`, parsed.
fn scrape(http: SocketAddr) -> Scrape {
    let (status, body) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The sum of `name`'s samples whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => 0.0,
        })
        .sum()
}

/// Whether `name` has a sample typed as a counter.
fn is_counter(scrape: &Scrape, name: &str) -> bool {
    scrape
        .samples
        .iter()
        .any(|s| s.metric == name && matches!(s.value, Value::Counter(_)))
}

/// A rumqttc 3.1.1 client and its event loop.
fn client(addr: SocketAddr, id: &str, clean: bool) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_clean_session(clean);
    options.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 100)
}

#[test]
fn health_and_ready_answer_once_started() {
    let (_broker, http) = start_broker("");
    assert_eq!(http_get(http, "/health"), (200, "ok\n".to_owned()));
    assert_eq!(http_get(http, "/ready"), (200, "ready\n".to_owned()));
    assert_eq!(http_get(http, "/nothing").0, 404);
}

#[tokio::test]
async fn metrics_parse_and_count_traffic() {
    bounded(async {
        let (broker, http) = start_broker("");
        let before = scrape(http);
        assert!(is_counter(&before, "starling_messages_received_total"));
        let received = |s: &Scrape| value(s, "starling_messages_received_total", &[("qos", "1")]);
        let sent = |s: &Scrape| value(s, "starling_messages_sent_total", &[("qos", "1")]);
        let opened = |s: &Scrape| {
            let labels = [("protocol", "3.1.1")];
            value(s, "starling_connections_opened_total", &labels)
        };

        let (sub, mut sub_events) = client(broker.addr(), "ops-sub", false);
        poll_until(&mut sub_events, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_)))
        })
        .await;
        sub.subscribe("ops/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        poll_until(&mut sub_events, |e| {
            matches!(e, Event::Incoming(Packet::SubAck(_)))
        })
        .await;
        let (publisher, mut pub_events) = client(broker.addr(), "ops-pub", true);
        poll_until(&mut pub_events, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_)))
        })
        .await;
        // The publisher's socket is driven by its event loop, in a task of its own.
        let driver = tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
        let during = scrape(http);
        let port = broker.port().to_string();
        let live = [("listener", port.as_str()), ("protocol", "3.1.1")];
        assert_eq!(value(&during, "starling_connections", &live), 2.0);
        assert_eq!(opened(&during) - opened(&before), 2.0);
        assert!(is_counter(&during, "starling_connections_opened_total"));

        const N: usize = 20;
        for i in 0..N {
            let payload = format!("message {i:04}");
            publisher
                .publish("ops/metrics", QoS::AtLeastOnce, false, payload)
                .await
                .expect("publish");
        }
        let mut got = 0;
        poll_until(&mut sub_events, |e| {
            got += usize::from(matches!(e, Event::Incoming(Packet::Publish(_))));
            got == N
        })
        .await;
        let after = scrape(http);
        assert_eq!(received(&after) - received(&before), N as f64);
        assert_eq!(sent(&after) - sent(&before), N as f64);
        let bytes = value(
            &after,
            "starling_received_payload_bytes_total",
            &[("qos", "1")],
        );
        assert_eq!(bytes, (N * "message 0000".len()) as f64);
        assert_eq!(value(&after, "starling_subscriptions", &[]), 1.0);
        assert_eq!(
            value(&after, "starling_sessions", &[("state", "online")]),
            2.0
        );
        // The persistent subscriber's deliveries went through the store.
        let commits = after
            .samples
            .iter()
            .find(|s| s.metric == "starling_store_commit_seconds")
            .expect("commit histogram");
        assert!(
            matches!(&commits.value, Value::Histogram(b) if b.last().is_some_and(|b| b.count > 0.0))
        );

        publisher
            .publish("nobody/listens", QoS::AtMostOnce, false, "x")
            .await
            .expect("publish");
        let labels = [("reason", "no_subscribers")];
        metric_reaches(http, "starling_messages_dropped_total", &labels, 1.0).await;
        driver.abort();
    })
    .await;
}

#[tokio::test]
async fn drops_are_counted_by_reason() {
    use starling::protocol::QoS;
    bounded(async {
        let (broker, http) = start_broker("[limits]\nmax_queued_messages = 2\n");
        let mut keeper = common::RawClient::connected_v311(broker.addr(), "keeper", false).await;
        keeper.subscribe(&[("drop/#", QoS::AtLeastOnce)]).await;
        keeper.disconnect().await;
        let mut publisher = common::RawClient::connected_v311(broker.addr(), "p", true).await;
        for _ in 0..5 {
            publisher
                .publish("drop/q1", QoS::AtLeastOnce, false, b"x")
                .await;
        }
        publisher
            .publish("drop/q0", QoS::AtMostOnce, false, b"x")
            .await;
        // The QoS 1 acknowledgement after it: the QoS 0 publish has been routed too.
        publisher
            .publish("drop/q1", QoS::AtLeastOnce, false, b"x")
            .await;
        let dropped = "starling_messages_dropped_total";
        metric_reaches(http, dropped, &[("reason", "queue_full")], 4.0).await;
        metric_reaches(http, dropped, &[("reason", "client_offline")], 1.0).await;
        let s = scrape(http);
        assert_eq!(value(&s, dropped, &[("reason", "queue_full")]), 4.0);
        assert_eq!(value(&s, "starling_sessions", &[("state", "offline")]), 1.0);
        assert_eq!(value(&s, "starling_queued_messages", &[]), 2.0);
        // The keeper comes back and takes its two queued messages.
        let mut keeper = common::RawClient::connected_v311(broker.addr(), "keeper", false).await;
        keeper.recv_publish_acked().await;
        keeper.recv_publish_acked().await;
        metric_reaches(http, "starling_sessions", &[("state", "online")], 2.0).await;
        assert_eq!(value(&scrape(http), "starling_queued_messages", &[]), 0.0);
    })
    .await;
}

#[test]
fn a_bad_token_file_stops_the_broker_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "short\n").expect("write token");
    let config = dir.path().join("starling.toml");
    let http = free_port();
    let toml = format!(
        "[storage]\ndurability = \"memory\"\n[http]\nbind = \"127.0.0.1:{http}\"\ntoken_file = \"{}\"\n",
        token.display()
    );
    std::fs::write(&config, toml).expect("write config");
    let out = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .output()
        .expect("run the broker");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token must be at least 16 bytes"), "{err}");
}

#[actix_web::test]
async fn the_routes_mount_in_an_application_app() {
    use actix_web::{test, App};
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::embedded::start_embedded(dir.path(), |_| {}).await;
    assert_eq!(broker.http_addr(), None);
    let ops = broker.ops();
    let app =
        test::init_service(App::new().configure(|cfg| starling::http::configure(cfg, &ops))).await;
    let ready = test::TestRequest::get().uri("/ready").to_request();
    assert_eq!(test::call_service(&app, ready).await.status(), 200);
    let metrics = test::TestRequest::get().uri("/metrics").to_request();
    let body = test::call_and_read_body(&app, metrics).await;
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("# TYPE starling_messages_sent_total counter"),
        "{text}"
    );
    broker.stop().await;
    assert!(!ops.is_ready());
    let ready = test::TestRequest::get().uri("/ready").to_request();
    assert_eq!(test::call_service(&app, ready).await.status(), 503);
}

/// Polls `/metrics` (up to 10 s) until `name{labels}` reaches `at_least`.
async fn metric_reaches(http: SocketAddr, name: &str, labels: &[(&str, &str)], at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&scrape(http), name, labels) < at_least {
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} stayed below {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A publish, as `$fault/...` needs it, from a client of its own (it is disconnected).
#[cfg(feature = "fault-injection")]
async fn poison(addr: SocketAddr, topic: &str, retain: bool) {
    use starling::protocol::{Packet, PacketId, QoS};
    let mut client = common::RawClient::connected_v311(addr, "poison", true).await;
    let mut publish = common::publish_packet(topic, QoS::AtLeastOnce, b"boom", PacketId::new(1));
    publish.retain = retain;
    client.send(Packet::Publish(publish)).await;
}

#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn actor_restarts_are_counted() {
    bounded(async {
        let (broker, http) = start_broker("");
        let router = [("actor", "router")];
        let persistence = [("actor", "persistence")];
        let name = "starling_actor_restarts_total";
        assert_eq!(value(&scrape(http), name, &router), 0.0);
        poison(broker.addr(), "$fault/router", false).await;
        metric_reaches(http, name, &router, 1.0).await;
        // A retained publish reaches the persistence actor, which fails on it.
        poison(broker.addr(), "$fault/persistence", true).await;
        metric_reaches(http, name, &persistence, 1.0).await;
        let session = [("actor", "session")];
        assert_eq!(value(&scrape(http), name, &session), 0.0);
        poison(broker.addr(), "$fault/session", false).await;
        metric_reaches(http, name, &session, 1.0).await;
        assert_eq!(http_get(http, "/ready").0, 200);
    })
    .await;
}

// Each limit reached shows in starling_limit_hits_total{limit}.
#[actix_rt::test]
async fn limit_hits_are_counted() {
    use common::RawClient;
    use starling::protocol::{Properties, QoS};
    bounded(async {
        let rated = free_port();
        let extra = format!(
            "[limits]\nmax_subscriptions_per_client = 1\nmax_topic_levels = 2\nmax_publish_rate = 5\n\
             [[listeners]]\nbind = \"127.0.0.1:{rated}\"\nmax_connection_rate = 1\n"
        );
        let (broker, http) = start_broker(&extra);
        let mut c = RawClient::connected_v5(broker.addr(), "limits", Properties::default()).await;
        c.subscribe(&[("one", QoS::AtMostOnce), ("two", QoS::AtMostOnce)])
            .await;
        c.subscribe(&[("a/b/c", QoS::AtMostOnce)]).await;
        for _ in 0..8 {
            c.publish("one", QoS::AtLeastOnce, false, b"x").await;
        }
        let rated: SocketAddr = ([127, 0, 0, 1], rated).into();
        for id in ["r1", "r2"] {
            let mut r = RawClient::open(rated).await;
            r.connect_v5(id, true, 60, Properties::default()).await;
        }
        let hits = "starling_limit_hits_total";
        for limit in [
            "max_subscriptions_per_client",
            "max_topic_levels",
            "max_publish_rate",
            "max_connection_rate",
        ] {
            metric_reaches(http, hits, &[("limit", limit)], 1.0).await;
        }
        assert!(is_counter(&scrape(http), hits));
        assert_eq!(value(&scrape(http), hits, &[("limit", "max_connections")]), 0.0);
    })
    .await;
}
