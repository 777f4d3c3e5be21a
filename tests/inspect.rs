//! `starling inspect`, black box: against a running broker through its admin API
//! (`--url`, `--token-file`), with a wrong token, and on the stopped broker's sled store
//! named by a spec (`sled:DIR`).

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, bounded, connect_persistent, free_port, BrokerProcess, RawClient};
use starling::protocol::QoS;

const TOKEN: &str = "inspect-token-0123456789";

/// A broker with its HTTP listener and admin token, and the token file's directory.
fn broker_with_api() -> (BrokerProcess, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("write token");
    std::fs::write(dir.path().join("wrong"), "not-the-token\n").expect("write token");
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let token = dir.path().join("token").display().to_string();
    let toml =
        format!("[server]\nworkers = 1\n[http]\nbind = \"{http}\"\ntoken_file = {token:?}\n");
    (BrokerProcess::start_with_config(Some(&toml)), http, dir)
}

fn starling(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run starling inspect")
}

/// The lines of one session in a report: its own line and the indented ones below it.
fn session_lines<'r>(report: &'r str, id: &str) -> Option<Vec<&'r str>> {
    let lines: Vec<&str> = report.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("\"{id}\":")))?;
    let own = lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("    "))
        .copied();
    Some(std::iter::once(lines[at]).chain(own).collect())
}

/// Runs inspect until `done` holds for its report (the queue fills as the session
/// actor takes the routed messages); bounded by 5 s.
fn inspect_until(args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = starling(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "inspect {args:?}: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if done(&stdout) {
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "inspect never showed it:\n{stdout}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_queue(report: &str, id: &str, depth: usize) -> bool {
    session_lines(report, id).is_some_and(|lines| {
        lines
            .iter()
            .any(|l| l.trim_start().starts_with(&format!("queue {depth} ")))
    })
}

// A connected client and an offline persistent session with 4 queued messages, seen
// through the admin API of the running broker; then a wrong token; then the store.
#[tokio::test]
async fn inspect_a_running_broker_and_its_stopped_store() {
    let (mut broker, http, dir) = broker_with_api();
    let url = format!("http://{http}");
    let token = dir.path().join("token").display().to_string();
    let online = bounded(async {
        let (mut off, _) = connect_persistent(&broker, "offline-1").await;
        off.subscribe(&[("m/x", QoS::AtLeastOnce)]).await;
        off.disconnect().await;
        let mut on = RawClient::connected_v311(broker.addr(), "online-1", true).await;
        on.subscribe(&[("a/b", QoS::AtMostOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
        for i in 0..4u8 {
            p.publish("m/x", QoS::AtLeastOnce, false, &[i]).await;
        }
        p.publish("r/1", QoS::AtLeastOnce, true, b"kept").await;
        p.disconnect().await;
        on
    })
    .await;
    let args = ["inspect", "--url", &url, "--token-file", &token];
    let report = inspect_until(&args, |r| has_queue(r, "offline-1", 4));
    let on = session_lines(&report, "online-1").expect("online-1 listed");
    assert!(on[0].contains("MQTT 3.1.1, clean, online"), "{report}");
    assert!(
        on.iter().any(|l| l.contains("sub \"a/b\" qos 0")),
        "{report}"
    );
    let off = session_lines(&report, "offline-1").expect("offline-1 listed");
    assert!(off[0].contains("persistent, offline"), "{report}");
    assert!(
        off.iter().any(|l| l.contains("sub \"m/x\" qos 1")),
        "{report}"
    );
    let retained = report
        .lines()
        .find_map(|l| l.strip_prefix("retained messages: "))
        .and_then(|n| n.parse::<usize>().ok())
        .expect("retained count");
    assert!(retained >= 1, "r/1 (and $SYS): {report}");

    let wrong = dir.path().join("wrong").display().to_string();
    let out = starling(&["inspect", "--url", &url, "--token-file", &wrong]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong token must fail");
    assert!(stderr.contains("refused the token"), "{stderr}");

    drop(online);
    assert!(broker.terminate().success());
    let spec = format!("sled:{}", broker.data_dir().display());
    let stored = inspect_until(&["inspect", &spec], |r| has_queue(r, "offline-1", 4));
    assert!(stored.contains("schema version: 1"), "{stored}");
    assert!(
        session_lines(&stored, "online-1").is_none(),
        "clean: {stored}"
    );
}
