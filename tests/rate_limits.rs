//! Rate limits against the broker binary: a client over `[limits] max_publish_rate` or
//! `max_publish_bytes_rate` is slowed down (the broker stops reading) and loses nothing;
//! a listener over `max_connection_rate` refuses CONNECTs with 0x9F (3.1.1: code 3).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{bounded, free_port, BrokerProcess, RawClient};
use starling::protocol::{Properties, QoS, ReasonCode};
use tokio::io::AsyncWriteExt;

/// Receives `n` QoS 1 messages on `sub` (acknowledged), bounded; returns the payloads.
async fn receive(sub: &mut RawClient, n: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        let p = sub.recv_publish_acked().await;
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    got
}

// 60 QoS 1 messages from `mosquitto_pub -l` at max_publish_rate = 20: the first second's
// worth at once, the rest at the rate, so at least 2 s; every one arrives, in order.
#[actix_rt::test]
async fn a_client_over_its_publish_rate_is_slowed_not_refused() {
    let broker = BrokerProcess::start_with_limits(&[("max_publish_rate", 20)]);
    bounded(async {
        let mut sub = RawClient::connected_v311(broker.addr(), "rate-sub", true).await;
        sub.subscribe(&[("rate/t", QoS::AtLeastOnce)]).await;
        let lines: String = (0..60).map(|i| format!("m{i}\n")).collect();
        let started = Instant::now();
        let mut publisher = tokio::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
            .args(["-t", "rate/t", "-q", "1", "-l", "-i", "rate-pub"])
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mosquitto_pub (apt-get install mosquitto-clients)");
        let mut stdin = publisher.stdin.take().expect("stdin");
        stdin
            .write_all(lines.as_bytes())
            .await
            .expect("write lines");
        drop(stdin);
        let got = receive(&mut sub, 60).await;
        let elapsed = started.elapsed();
        let want: Vec<String> = (0..60).map(|i| format!("m{i}")).collect();
        assert_eq!(got, want);
        assert!(
            elapsed >= Duration::from_millis(1800),
            "60 messages at 20/s (20 at once) took only {elapsed:?}"
        );
        let status = tokio::time::timeout(Duration::from_secs(15), publisher.wait()).await;
        assert!(status.expect("mosquitto_pub ends").expect("wait").success());
    })
    .await;
}

// max_publish_bytes_rate = 20,000: 40 messages of 1,000 bytes take at least a second
// beyond the first second's worth; every one arrives.
#[actix_rt::test]
async fn a_client_over_its_bandwidth_is_slowed_not_refused() {
    let broker = BrokerProcess::start_with_limits(&[("max_publish_bytes_rate", 20_000)]);
    bounded(async {
        let mut sub = RawClient::connected_v311(broker.addr(), "bw-sub", true).await;
        sub.subscribe(&[("bw/t", QoS::AtLeastOnce)]).await;
        let mut publisher = RawClient::connected_v311(broker.addr(), "bw-pub", true).await;
        let started = Instant::now();
        for i in 0..40 {
            let payload = format!("{i:0>1000}");
            publisher
                .publish("bw/t", QoS::AtLeastOnce, false, payload.as_bytes())
                .await;
        }
        let got = receive(&mut sub, 40).await;
        let elapsed = started.elapsed();
        assert_eq!(got.len(), 40);
        assert!(got[39].ends_with("39"), "in order");
        assert!(
            elapsed >= Duration::from_millis(900),
            "40 kB at 20 kB/s (20 kB at once) took only {elapsed:?}"
        );
    })
    .await;
}

/// A fresh connection's CONNACK reason on `port` (5.0, or 3.1.1 when `v311`).
async fn connack(port: u16, id: &str, v311: bool) -> (ReasonCode, RawClient) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = RawClient::open(addr).await;
    let ack = match v311 {
        true => c.connect_v311(id, true, 60).await,
        false => c.connect_v5(id, true, 60, Properties::default()).await,
    };
    (ack.reason, c)
}

// max_connection_rate = 3 on a listener: three CONNECTs at once are served, the next
// ones refused with 0x9F (3.1.1: code 3, server unavailable) while the first stay
// connected; once tokens come back, a CONNECT is served again. The `--listen` listener
// has no rate and serves throughout.
#[actix_rt::test]
async fn a_listener_over_its_connect_rate_refuses_with_0x9f() {
    let port = free_port();
    let toml = format!(
        "[server]\nworkers = 1\n\n[[listeners]]\nbind = \"127.0.0.1:{port}\"\nmax_connection_rate = 3\n"
    );
    let broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        let mut kept = Vec::new();
        for i in 0..3 {
            let (reason, c) = connack(port, &format!("cr-{i}"), false).await;
            assert_eq!(reason, ReasonCode::SUCCESS, "connection {i}");
            kept.push(c);
        }
        let (reason, _) = connack(port, "cr-over-v5", false).await;
        assert_eq!(reason, ReasonCode::CONNECTION_RATE_EXCEEDED);
        let (reason, _) = connack(port, "cr-over-v311", true).await;
        assert_eq!(reason, ReasonCode::SERVER_UNAVAILABLE, "3.1.1 code 3");
        RawClient::connected_v311(broker.addr(), "cr-other-listener", true).await;
        // A token comes back every 333 ms; try until one is served (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (reason, _) = connack(port, "cr-later", false).await;
            if reason == ReasonCode::SUCCESS {
                break;
            }
            assert_eq!(reason, ReasonCode::CONNECTION_RATE_EXCEEDED);
            assert!(Instant::now() < deadline, "never served again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for mut c in kept {
            c.publish("cr/alive", QoS::AtLeastOnce, false, b"still connected")
                .await;
        }
    })
    .await;
}
