//! `$SYS` beyond the basics, against the broker binary: bytes in and out, drops, and
//! Mosquitto's 1/5/15-minute load averages, moving as mosquitto_pub's traffic flows.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::mosquitto::{assert_ok, mosquitto_pub};
use common::{bounded, BrokerProcess, RawClient};
use starling::protocol::{Packet, QoS};

/// Reads `$SYS` publishes on `sys` until `done` holds for the latest values (bounded).
async fn until(sys: &mut RawClient, done: impl Fn(&HashMap<String, String>) -> bool) {
    let mut latest = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&latest) {
        assert!(Instant::now() < deadline, "$SYS values now: {latest:?}");
        if let common::Event::Packet(Packet::Publish(p)) =
            sys.next_event(Duration::from_secs(3)).await
        {
            let value = String::from_utf8_lossy(&p.payload).into_owned();
            latest.insert(p.topic.as_str().to_owned(), value);
        }
    }
}

fn number(values: &HashMap<String, String>, topic: &str) -> f64 {
    values
        .get(topic)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// Ten 100-byte messages to a subscriber with a queue of one that is away: $SYS counts
// the 1,000 bytes in, the messages dropped (a persistent queue holds one), and the
// 1-minute load average of messages received rises above zero.
#[actix_rt::test]
async fn bytes_drops_and_load_averages_follow_the_traffic() {
    let toml =
        "[server]\nworkers = 1\nsys_interval_secs = 1\n\n[limits]\nmax_queued_messages = 1\n";
    let broker = BrokerProcess::start_with_config(Some(toml));
    bounded(async {
        let mut away = RawClient::connected_v311(broker.addr(), "away", false).await;
        away.subscribe(&[("sys/t", QoS::AtLeastOnce)]).await;
        away.disconnect().await;
        let mut sys = RawClient::connected_v311(broker.addr(), "sys", true).await;
        sys.subscribe(&[("$SYS/broker/#", QoS::AtMostOnce)]).await;
        let payload = "x".repeat(100);
        for _ in 0..10 {
            let out = mosquitto_pub(broker.port(), "sys/t", &payload, &[]).await;
            assert_ok(&out, "mosquitto_pub");
        }
        until(&mut sys, |v| {
            number(v, "$SYS/broker/bytes/received") >= 1000.0
                && number(v, "$SYS/broker/publish/messages/dropped") >= 9.0
                && number(v, "$SYS/broker/load/messages/received/1min") > 0.0
                && number(v, "$SYS/broker/load/bytes/received/15min") > 0.0
        })
        .await;
    })
    .await;
}
