//! Helpers of the tests that run outside programs or read the broker's log: paths in
//! the repository, a child process run to completion within a bound, and a bounded
//! wait for log lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{wait_child, BrokerProcess};

/// A path in the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs `cmd` to completion within 30 s; asserts exit 0, showing its output otherwise.
pub fn run_bounded(mut cmd: Command, what: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{what} cannot be run ({e}): run scripts/test.sh"));
    let status = wait_child(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "{what} failed ({status:?}).\nstdout:\n{}\nstderr:\n{}",
        read(&out),
        read(&err)
    );
}

/// A log's text without its ANSI colour sequences (CSI: ESC [ parameters, ended by a
/// letter), so that fields read as `key=value`.
pub fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// `tests/py/roundtrip.py` (QoS 0/1/2 with paho) against `port` at `version`
/// (`311`, `5`) with these environment settings (transport, CA file).
pub fn paho_round_trip(port: u16, version: &str, env: &[(&str, &std::ffi::OsStr)], what: &str) {
    let mut cmd = Command::new("python3");
    cmd.arg(repo_path("tests/py/roundtrip.py"))
        .args(["127.0.0.1", &port.to_string(), version])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied());
    run_bounded(cmd, &format!("paho roundtrip.py {version} {what}"));
}

/// `tests/js/ws_roundtrip.mjs` (MQTT.js under node: QoS 0/1/2 and a retained message)
/// against `url` at `version` (`4`, `5`), with these environment settings.
pub fn mqttjs_round_trip(url: &str, version: &str, env: &[(&str, &std::ffi::OsStr)]) {
    let module = repo_path("tests/js/node_modules/mqtt/package.json");
    assert!(
        module.exists(),
        "MQTT.js is not installed in tests/js: run scripts/test.sh (npm ci in tests/js)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(repo_path("tests/js/ws_roundtrip.mjs"))
        .args([url, version])
        .envs(env.iter().copied())
        .current_dir(repo_path("tests/js"));
    run_bounded(cmd, &format!("MQTT.js ws_roundtrip.mjs {version} on {url}"));
}

impl BrokerProcess {
    /// Waits (up to 10 s) until the broker's log holds `needle` at least `n` times.
    pub async fn logged(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log_text().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "never logged {needle:?} {n} times:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
