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
