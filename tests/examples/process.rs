//! Running the example binaries and mosquitto's command-line clients as child processes:
//! every child is killed when its [`Running`] is dropped, and every wait is bounded.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The longest wait for any one step (a line, a response, an event, an exit).
pub const WAIT: Duration = Duration::from_secs(15);
/// The most lines skipped while looking for one.
const MAX_SKIPPED: usize = 1000;

/// The example binary `name`, next to this test's own directory (target/<profile>/).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/examples-<hash>
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile.join("examples").join(name);
    let how = "`cargo test` without target options builds them, or `cargo build --examples`; \
               `cargo test --test examples` and `--all-targets` do not";
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let built = built.unwrap_or_else(|_| panic!("{} is missing: {how}", path.display()));
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    let edited = std::fs::metadata(&source).and_then(|m| m.modified());
    assert!(
        edited.is_ok_and(|edited| edited <= built),
        "{} is older than {}: {how}",
        path.display(),
        source.display()
    );
    path
}

/// A child process, killed and reaped when dropped; its stdout and stderr as lines.
/// Its stderr is echoed into the test's output too (shown when the test fails).
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    errors: Receiver<String>,
    /// Stderr lines read so far.
    log: Vec<String>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Running {
            child,
            lines: lines_of(stdout, false),
            errors: lines_of(stderr, true),
            log: Vec::new(),
        }
    }

    /// The next stdout line.
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no line from {:?} in {WAIT:?}: {e}", self.child))
    }

    /// The next stdout line of mosquitto_sub that is a message, not one of `-d`'s
    /// (which start with "Client " or "Subscribed ").
    pub fn message(&self) -> String {
        std::iter::repeat_with(|| self.line())
            .take(MAX_SKIPPED)
            .find(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed "))
            .unwrap_or_else(|| panic!("no message from {:?}", self.child))
    }

    /// The first stderr line from here on that contains every one of `words`.
    pub fn logged(&mut self, words: &[&str]) -> String {
        for _ in 0..MAX_SKIPPED {
            let line = self.errors.recv_timeout(WAIT).unwrap_or_else(|e| {
                panic!("{:?} logged no {words:?} in {WAIT:?}: {e}", self.child)
            });
            self.log.push(line.clone());
            if words.iter().all(|w| line.contains(w)) {
                return line;
            }
        }
        panic!("{:?} logged no {words:?}", self.child);
    }

    /// Every stderr line, once the process has exited.
    pub fn whole_log(mut self) -> Vec<String> {
        self.log
            .extend(std::iter::from_fn(|| self.errors.recv_timeout(WAIT).ok()));
        std::mem::take(&mut self.log)
    }

    /// The exit status, once it exits of itself.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{:?} still running after {WAIT:?}", self.child);
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-s", name, &pid]).status();
        assert!(sent.expect("run kill").success(), "kill -s {name} {pid}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `from` line by line on a thread of its own (which inherits the test's output
/// capture, for `echo`).
fn lines_of(from: impl Read + Send + 'static, echo: bool) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("{line}");
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The `key=ADDR` field of the example's address line.
pub fn field(line: &str, key: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no {key}=ADDR in {line:?}"))
}

/// Runs `cmd` to its end (bounded); its stdout when it succeeded.
pub fn run(cmd: Command) -> String {
    let mut running = Running::spawn(cmd);
    let status = running.wait();
    // Until the reader thread has seen the end of stdout.
    let out: Vec<String> = std::iter::from_fn(|| running.lines.recv_timeout(WAIT).ok()).collect();
    let out = out.join("\n");
    assert!(status.success(), "{:?}: {status}\n{out}", running.child);
    out
}

/// `mosquitto_pub -q 1 -t TOPIC -m PAYLOAD` (any bytes but NUL).
pub fn mosquitto_pub(mqtt: SocketAddr, topic: &str, payload: &[u8]) {
    let errors = mosquitto_pub_with(mqtt, &["-q", "1", "-t", topic], payload);
    assert!(errors.is_empty(), "mosquitto_pub to {topic}: {errors}");
}

/// `mosquitto_pub ARGS -m PAYLOAD`, run to its end; what it printed on stderr, where it
/// reports a refused publish (5.0, QoS 1: "Warning: Publish 1 failed: Not authorized.",
/// and still exits 0).
pub fn mosquitto_pub_with(mqtt: SocketAddr, args: &[&str], payload: &[u8]) -> String {
    let port = mqtt.port().to_string();
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &port])
        .args(args)
        .arg("-m")
        .arg(OsStr::from_bytes(payload));
    let mut running = Running::spawn(cmd);
    let status = running.wait();
    assert!(status.success(), "mosquitto_pub {args:?}: {status}");
    running.whole_log().join("\n")
}

/// `mosquitto_sub -q 1 -t TOPIC -C 1 -v`, returned once subscribed.
pub fn mosquitto_sub(mqtt: SocketAddr, topic: &str) -> Running {
    let args = ["-q", "1", "-t", topic, "-C", "1", "-v"];
    let (sub, granted) = mosquitto_sub_with(mqtt, &args);
    assert_eq!(granted, "1", "mosquitto_sub {topic}");
    sub
}

/// `mosquitto_sub -d -W 15 ARGS`, returned once its SUBACK was printed (stdbuf:
/// line-buffered into the pipe), with the codes the SUBACK carried as mosquitto prints
/// them: "1" (granted QoS 1), "0, 135" (5.0: not authorized), "128" (3.1.1: failure).
/// Once every filter is refused, mosquitto_sub exits by itself.
pub fn mosquitto_sub_with(mqtt: SocketAddr, args: &[&str]) -> (Running, String) {
    let port = mqtt.port().to_string();
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", &port])
        .args(["-d", "-W", "15"])
        .args(args);
    let sub = Running::spawn(cmd);
    // A handful of -d lines come first (CONNECT, CONNACK, SUBSCRIBE, SUBACK), then
    // "Subscribed (mid: 1): CODES".
    let granted = (0..10).find_map(|_| {
        let line = sub.line();
        Some(
            line.strip_prefix("Subscribed (mid: ")?
                .split_once("): ")?
                .1
                .to_owned(),
        )
    });
    let granted = granted.unwrap_or_else(|| panic!("mosquitto_sub {args:?} printed no SUBACK"));
    (sub, granted)
}
