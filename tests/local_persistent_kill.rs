//! Persistent in-process clients across a crash: the broker and its persistent client
//! run in a child process (this test binary run again), which is SIGKILLed after the
//! client took some of its messages; the broker is started again on the same data
//! directory in the test's own process.

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::embedded::{
    next_text, persistent_local, publish_range, start_embedded as start, texts, WAIT,
};
use starling::protocol::QoS;

/// Set for the child process: its data directory.
const CHILD_DIR: &str = "STARLING_PERSISTENT_CHILD_DIR";
/// Messages the child takes before it stops reading.
const TAKEN: usize = 5;

/// The child process of the crash test (this test binary run again, with [`CHILD_DIR`]
/// set): a broker with a persistent client that takes [`TAKEN`] messages, reporting
/// its address and each message on stdout, then waits to be killed.
#[test]
#[ignore = "the child process of a_kill_9_loses_no_message_not_taken"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    actix_rt::System::new().block_on(async move {
        let broker = start(std::path::Path::new(&dir), |_| {}).await;
        let app = persistent_local(&broker, "crash").await;
        assert_eq!(
            app.subscribe("k/#", QoS::AtLeastOnce).await,
            Ok(QoS::AtLeastOnce)
        );
        println!("@ready {}", broker.local_addrs()[0]);
        for _ in 0..TAKEN {
            println!("@took {}", next_text(&app).await);
        }
        // Killed long before this.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

/// The lines the child printed with `@{tag} `, in order, from a reader thread.
fn child_lines(out: std::process::ChildStdout) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            // libtest may print its own "test ... " on the same line.
            if let Some(at) = line.find('@') {
                if tx.send(line[at + 1..].to_owned()).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The child, SIGKILLed and reaped when dropped (also when the test fails early).
struct ChildProcess(Child);

impl ChildProcess {
    /// kill -9 and reap.
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn expect_line(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    tag: &str,
) -> String {
    let line = tokio::time::timeout(WAIT, lines.recv())
        .await
        .unwrap_or_else(|_| panic!("no @{tag} line from the child in time"))
        .unwrap_or_else(|| panic!("the child ended before @{tag}"));
    line.strip_prefix(&format!("{tag} "))
        .unwrap_or_else(|| panic!("expected @{tag}, got @{line}"))
        .to_owned()
}

/// kill -9 of the process running broker and client after the client took 5 of 10
/// messages (the other 5 delivered and not taken): after the restart the session is
/// there and the 5 not taken come, in order. (A taken one may come again when its
/// acknowledgement had not reached the disk: at least once.)
#[actix_rt::test]
async fn a_kill_9_loses_no_message_not_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("the test binary");
    let child = Command::new(exe)
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let mut child = ChildProcess(child);
    let mut lines = child_lines(child.0.stdout.take().expect("piped"));
    let addr: SocketAddr = expect_line(&mut lines, "ready")
        .await
        .parse()
        .expect("address");
    publish_range(addr, "k", QoS::AtLeastOnce, 0..10).await;
    let mut taken = Vec::new();
    for _ in 0..TAKEN {
        taken.push(expect_line(&mut lines, "took").await);
    }
    assert_eq!(taken, texts(0..TAKEN as u32), "taken in order");
    child.kill9();

    let broker = start(dir.path(), |_| {}).await;
    let app = persistent_local(&broker, "crash").await;
    assert!(app.session_present(), "the session survived the crash");
    let mut got = Vec::new();
    while got.len() < 20 {
        match tokio::time::timeout(Duration::from_millis(500), app.next()).await {
            Ok(Some(m)) => got.push(String::from_utf8_lossy(&m.payload).into_owned()),
            _ => break,
        }
    }
    let index = |m: &String| m[1..].parse::<u32>().expect("m{i}");
    let not_taken: Vec<String> = got
        .iter()
        .filter(|m| index(m) >= TAKEN as u32)
        .cloned()
        .collect();
    assert_eq!(
        not_taken,
        texts(TAKEN as u32..10),
        "every one not taken, in order: {got:?}"
    );
    assert!(
        got.windows(2).all(|w| index(&w[0]) < index(&w[1])),
        "in order, each once: {got:?}"
    );
    eprintln!("after the crash: {got:?}");
    app.disconnect().await;
    broker.stop().await;
}
