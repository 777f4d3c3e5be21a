//! `[log]` and the connection log lines, against the broker binary: JSON lines that a
//! JSON parser reads, one info line per connect and per disconnect with the client id,
//! address, listener, protocol and reason, and a bad `level` refused at start.

mod common;

use std::time::{Duration, Instant};

use common::mosquitto::{assert_ok, mosquitto_pub};
use common::{bounded, BrokerProcess, RawClient};
use serde_json::Value;
use starling::protocol::{Packet, Properties, QoS};

/// The JSON objects of the log with this message, waiting (bounded) for `n` of them.
async fn events(broker: &BrokerProcess, message: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = broker
            .log_text()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|v| v["fields"]["message"] == message)
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} {message:?} lines:\n{}",
            broker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// format = "json": every line is a JSON object; mosquitto_pub's connect and disconnect
// are one line each, and a 5.0 client the broker disconnects has the server's reason.
#[actix_rt::test]
async fn json_lines_for_each_connect_and_disconnect() {
    let toml = "[server]\nworkers = 1\n\n[log]\nformat = \"json\"\n";
    let broker = BrokerProcess::start_with_config(Some(toml));
    bounded(async {
        let out = mosquitto_pub(
            broker.port(),
            "logs/t",
            "hi",
            &["-i".into(), "log-pub".into()],
        )
        .await;
        assert_ok(&out, "mosquitto_pub");
        let connected = events(&broker, "client connected", 1).await;
        let fields = &connected[0]["fields"];
        assert_eq!(fields["client_id"], "log-pub");
        assert_eq!(fields["protocol"], "V311");
        let addr = fields["addr"].as_str().expect("addr");
        assert!(addr.contains("127.0.0.1"), "{addr}");
        let listener = fields["listener"].as_str().expect("listener");
        assert!(listener.contains(&broker.port().to_string()), "{listener}");
        assert_eq!(connected[0]["level"], "INFO");
        let gone = events(&broker, "client disconnected", 1).await;
        assert_eq!(gone[0]["fields"]["reason"], "client DISCONNECT 0x00");

        // A topic alias of 0 is an error the broker answers with DISCONNECT 0x94.
        let mut c = RawClient::connected_v5(broker.addr(), "log-v5", Properties::default()).await;
        let mut p = common::publish_packet("logs/alias", QoS::AtMostOnce, b"x", None);
        p.properties = Properties::from(starling::protocol::PropertyFields {
            topic_alias: Some(0),
            ..Default::default()
        });
        c.send(Packet::Publish(p)).await;
        c.expect_closed().await;
        let gone = events(&broker, "client disconnected", 2).await;
        let v5 = gone.iter().find(|v| v["fields"]["client_id"] == "log-v5");
        assert_eq!(v5.expect("log-v5 line")["fields"]["reason"], "server 0x94");
    })
    .await;
}

// A `level` that is no tracing filter is a configuration error, said at start.
#[test]
fn a_bad_level_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[log]\nlevel = \"info,=[[\"\n").expect("write config");
    let out = std::process::Command::new(common::bin())
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .output()
        .expect("run starling");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {}", out.status);
    assert!(stderr.contains("log.level"), "stderr: {stderr}");
}
