//! Interoperability with Debian's mosquitto_pub / mosquitto_sub (package
//! mosquitto-clients). Missing binaries fail the tests: run scripts/test.sh to install.

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{bounded, BrokerProcess};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

fn require(tool: &str) {
    let found = std::process::Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = found {
        panic!(
            "`{tool}` cannot be run ({e}). It comes from the Debian package mosquitto-clients; \
             run scripts/test.sh, which installs it (apt-get install mosquitto-clients)."
        );
    }
}

fn base_args(port: u16, version: &str, id: &str) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-V",
        version,
        "-i",
        id,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs a tool to completion within 15 s.
async fn run(tool: &str, args: &[String]) -> Output {
    let child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
    tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{tool} {args:?} did not finish within {TOOL_TIMEOUT:?}"))
        .expect("wait for tool")
}

async fn publish(port: u16, version: &str, topic: &str, qos: u8, msg: &str, retain: bool) {
    let mut args = base_args(port, version, &format!("pub-{qos}-{msg}"));
    args.extend(["-t", topic, "-q", &qos.to_string(), "-m", msg].map(String::from));
    if retain {
        args.push("-r".into());
    }
    let out = run("mosquitto_pub", &args).await;
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mosquitto_sub -d` in the background, returned once its SUBACK was printed.
struct Sub {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

async fn start_sub(port: u16, version: &str, topic: &str, count: usize) -> Sub {
    let mut args = base_args(port, version, &format!("sub-{version}"));
    let count = count.to_string();
    args.extend(["-t", topic, "-q", "2", "-C", &count, "-W", "10", "-d"].map(String::from));
    // stdbuf -oL: mosquitto_sub's stdout is block-buffered into a pipe otherwise, and
    // its SUBACK line would only show when it exits.
    let mut child = Command::new("stdbuf")
        .arg("-oL")
        .arg("mosquitto_sub")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn stdbuf mosquitto_sub (stdbuf is in coreutils)");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let subscribed = tokio::time::timeout(TOOL_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read mosquitto_sub") {
            if line.contains("SUBACK") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        subscribed,
        Ok(true),
        "mosquitto_sub {args:?} never got a SUBACK"
    );
    Sub { child, lines }
}

impl Sub {
    /// Remaining output until exit: (payload lines, QoS of each received PUBLISH).
    async fn finish(mut self) -> (Vec<String>, Vec<u8>) {
        let mut payloads = Vec::new();
        let mut qos = Vec::new();
        let read = tokio::time::timeout(TOOL_TIMEOUT, async {
            while let Some(line) = self.lines.next_line().await.expect("read mosquitto_sub") {
                if let Some(rest) = line.split("received PUBLISH (").nth(1) {
                    // "(d0, q1, r0, m1, 'topic', ... (5 bytes))"
                    let q = rest.split(", ").nth(1).and_then(|q| q.strip_prefix('q'));
                    qos.push(q.and_then(|q| q.parse().ok()).expect("QoS in debug line"));
                } else if !line.starts_with("Client ") && !line.starts_with("Subscribed (") {
                    payloads.push(line);
                }
            }
        })
        .await;
        assert!(
            read.is_ok(),
            "mosquitto_sub did not exit within {TOOL_TIMEOUT:?}"
        );
        let status = self.child.wait().await.expect("wait mosquitto_sub");
        assert!(
            status.success(),
            "mosquitto_sub exited with {status} (timeout -W 10?)"
        );
        (payloads, qos)
    }
}

async fn round_trip(version: &str) {
    require("mosquitto_sub");
    require("mosquitto_pub");
    let broker = BrokerProcess::start();
    bounded(async {
        let topic = format!("interop/{version}");
        let sub = start_sub(broker.port(), version, &topic, 3).await;
        for qos in 0..=2u8 {
            publish(
                broker.port(),
                version,
                &topic,
                qos,
                &format!("msg-q{qos}"),
                false,
            )
            .await;
        }
        let (mut payloads, mut qos) = sub.finish().await;
        payloads.sort();
        qos.sort();
        assert_eq!(payloads, vec!["msg-q0", "msg-q1", "msg-q2"]);
        assert_eq!(
            qos,
            vec![0, 1, 2],
            "delivered QoS = min(published, subscribed)"
        );
    })
    .await;
}

// 3.1.1 QoS 0/1/2 from mosquitto_pub to mosquitto_sub ([MQTT-4.3.1-1]..[MQTT-4.3.3-1]).
#[tokio::test]
async fn mosquitto_round_trip_qos_0_1_2_v311() {
    round_trip("mqttv311").await;
}

// 5.0 QoS 0/1/2 from mosquitto_pub to mosquitto_sub.
#[tokio::test]
async fn mosquitto_round_trip_qos_0_1_2_v5() {
    round_trip("mqttv5").await;
}

// [MQTT-3.3.1-5], [MQTT-3.3.1-6]: a retained message (-r) is seen by a later
// `mosquitto_sub -C 1`, in 3.1.1 and 5.0.
#[tokio::test]
async fn mosquitto_retained_message_seen_by_later_subscriber() {
    require("mosquitto_sub");
    require("mosquitto_pub");
    let broker = BrokerProcess::start();
    bounded(async {
        for version in ["mqttv311", "mqttv5"] {
            let topic = format!("interop/retained/{version}");
            let msg = format!("kept-{version}");
            publish(broker.port(), version, &topic, 1, &msg, true).await;
            let mut args = base_args(broker.port(), version, &format!("late-{version}"));
            args.extend(["-t", &topic, "-C", "1", "-W", "10", "-v"].map(String::from));
            let out = run("mosquitto_sub", &args).await;
            assert!(out.status.success(), "mosquitto_sub {args:?}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim_end(),
                format!("{topic} {msg}")
            );
        }
    })
    .await;
}
