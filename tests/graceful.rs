//! Process-level behaviour: signals, command line, configuration errors.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, bounded, free_port, wait_child, BrokerProcess, RawClient};
use starling::protocol::{QoS, ReasonCode};

/// Runs the binary with `args` to completion (bounded), returning (status, stdout, stderr).
fn run_bin(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("out"))
        .stderr(std::fs::File::create(&err).expect("err"))
        .spawn()
        .expect("spawn starling");
    let status = wait_child(&mut child, Duration::from_secs(10)).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("starling {args:?} still running after 10 s")
    });
    let read = |p| std::fs::read_to_string(p).unwrap_or_default();
    (status, read(&out), read(&err))
}

/// `starling --config PATH --listen 127.0.0.1:FREE --data-dir DIR/data`, bounded.
fn run_with_config(
    path: &std::path::Path,
    dir: &std::path::Path,
) -> (std::process::ExitStatus, String, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let data = dir.join("data");
    run_bin(&[
        "--config",
        path.to_str().unwrap(),
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
    ])
}

// SIGTERM shuts the broker down gracefully: exit code 0 within 10 s, also with
// connected clients.
#[tokio::test]
async fn sigterm_exits_zero_within_10s() {
    let mut broker = BrokerProcess::start();
    let mut c = bounded(RawClient::connected_v311(broker.addr(), "busy", false)).await;
    bounded(c.subscribe(&[("busy/t", QoS::AtLeastOnce)])).await;
    let mut v5 = bounded(RawClient::connected_v5(
        broker.addr(),
        "busy5",
        Default::default(),
    ))
    .await;
    let status = broker.terminate_within(Duration::from_secs(10));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // A 5.0 client may be told 0x8B (Server shutting down); either way it is closed.
    if let Some(d) = bounded(v5.expect_closed()).await {
        assert_eq!(d.reason, ReasonCode::SERVER_SHUTTING_DOWN);
    }
    bounded(c.expect_closed()).await;
}

// After a graceful stop the broker starts again on the same data dir and port.
#[tokio::test]
async fn restarts_on_same_data_dir_and_port() {
    let mut broker = BrokerProcess::start();
    assert!(broker.terminate().success());
    broker.restart();
    let mut c = bounded(RawClient::connected_v311(broker.addr(), "again", true)).await;
    bounded(c.publish("again/t", QoS::AtLeastOnce, false, b"x")).await;
    broker.assert_alive();
}

// --help prints usage naming the three flags and exits 0.
#[test]
fn help_mentions_config_listen_and_data_dir() {
    let (status, out, err) = run_bin(&["--help"]);
    assert!(
        status.success(),
        "--help exit status {status}; stderr: {err}"
    );
    for flag in ["--config", "--listen", "--data-dir"] {
        assert!(out.contains(flag), "--help output lacks {flag}:\n{out}");
    }
}

// A config file that does not parse -> non-zero exit naming the file on stderr.
#[test]
fn invalid_config_file_fails_with_path_in_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[limits\nmax_connections = \"many\"\n").expect("write");
    let (status, _, err) = run_with_config(&path, dir.path());
    assert!(!status.success(), "an invalid config was accepted");
    assert!(
        err.contains(path.to_str().unwrap()),
        "stderr lacks the path:\n{err}"
    );
}

// A config value of the wrong type is rejected like a syntax error.
#[test]
fn wrongly_typed_config_value_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("typed.toml");
    std::fs::write(&path, "[limits]\nmax_connections = \"many\"\n").expect("write");
    let (status, _, err) = run_with_config(&path, dir.path());
    assert!(!status.success(), "max_connections = \"many\" was accepted");
    assert!(
        err.contains(path.to_str().unwrap()),
        "stderr lacks the path:\n{err}"
    );
}

// A config file that cannot be read -> non-zero exit naming the file on stderr.
#[test]
fn unreadable_config_file_fails_with_path_in_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("does-not-exist.toml");
    let (status, _, err) = run_with_config(&path, dir.path());
    assert!(!status.success(), "a missing config file was accepted");
    assert!(
        err.contains(path.to_str().unwrap()),
        "stderr lacks the path:\n{err}"
    );
}
