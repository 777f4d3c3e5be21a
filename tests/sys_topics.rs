//! `$SYS` beyond the basics, against the broker binary: bytes in and out, drops, and
//! Mosquitto's 1/5/15-minute load averages, moving as mosquitto_pub's traffic flows.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

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

/// `mosquitto_pub -l`: each line of `lines` one QoS 1 message to `sys/t`.
async fn publish_lines(port: u16, lines: &str) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "sys/t",
            "-q",
            "1",
            "-l",
        ])
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mosquitto_pub (apt-get install mosquitto-clients)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(lines.as_bytes())
        .await
        .expect("write lines");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    assert!(status.expect("mosquitto_pub ends").expect("wait").success());
}

fn number(values: &HashMap<String, String>, topic: &str) -> f64 {
    values
        .get(topic)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// Fifty 100-byte messages to a subscriber that is away, with a queue of 40: $SYS counts
// the 5,000 bytes in, the ten messages dropped, and the load averages of messages and
// bytes received rise above zero. (The $SYS subscriber's own queue must hold a tick's
// worth of $SYS publishes, hence not a smaller queue.)
#[actix_rt::test]
async fn bytes_drops_and_load_averages_follow_the_traffic() {
    let toml =
        "[server]\nworkers = 1\nsys_interval_secs = 1\n\n[limits]\nmax_queued_messages = 40\n";
    let broker = BrokerProcess::start_with_config(Some(toml));
    bounded(async {
        let mut away = RawClient::connected_v311(broker.addr(), "away", false).await;
        away.subscribe(&[("sys/t", QoS::AtLeastOnce)]).await;
        away.disconnect().await;
        let mut sys = RawClient::connected_v311(broker.addr(), "sys", true).await;
        sys.subscribe(&[("$SYS/broker/#", QoS::AtMostOnce)]).await;
        let payload = "x".repeat(100);
        let lines: String = (0..50).map(|_| format!("{payload}\n")).collect();
        publish_lines(broker.port(), &lines).await;
        until(&mut sys, |v| {
            number(v, "$SYS/broker/bytes/received") >= 5000.0
                && number(v, "$SYS/broker/messages/received") >= 50.0
                && number(v, "$SYS/broker/publish/messages/dropped") >= 10.0
                && number(v, "$SYS/broker/load/messages/received/1min") > 0.0
                && number(v, "$SYS/broker/load/bytes/received/15min") > 0.0
        })
        .await;
    })
    .await;
}
