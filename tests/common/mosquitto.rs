//! mosquitto_pub and mosquitto_sub (Debian's mosquitto-clients) with any extra
//! arguments (TLS files, credentials), every run bounded in time.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long one tool run may take.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs `mosquitto_pub` to completion: `-h 127.0.0.1 -p PORT -t TOPIC -m MSG -q 1`
/// and `extra` (`-V`, `--cafile`, `--cert`, ...).
pub async fn mosquitto_pub(port: u16, topic: &str, msg: &str, extra: &[String]) -> Output {
    let mut args = vec![
        "-h".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
        "-t".to_owned(),
        topic.to_owned(),
        "-m".to_owned(),
        msg.to_owned(),
        "-q".to_owned(),
        "1".to_owned(),
    ];
    args.extend_from_slice(extra);
    let child = Command::new("mosquitto_pub")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn mosquitto_pub (apt-get install mosquitto-clients): {e}"));
    tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("mosquitto_pub {args:?} did not finish in time"))
        .expect("wait for mosquitto_pub")
}

/// Asserts a `mosquitto_pub` run succeeded.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: mosquitto_pub failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts a `mosquitto_pub` run failed.
pub fn assert_failed(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what}: mosquitto_pub succeeded");
}

/// `mosquitto_sub -d` in the background, returned once its SUBACK was printed.
pub struct Sub {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// The lines printed so far (debug lines included).
    pub seen: Vec<String>,
}

impl Sub {
    /// Subscribes to `topics` at QoS 1 and exits after `count` messages (or 10 s).
    pub async fn start(port: u16, topics: &[&str], count: usize, extra: &[String]) -> Sub {
        let mut args = vec!["-h", "127.0.0.1", "-q", "1", "-d", "-W", "10"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(["-p".to_owned(), port.to_string()]);
        args.extend(["-C".to_owned(), count.to_string()]);
        for t in topics {
            args.extend(["-t".to_owned(), t.to_string()]);
        }
        args.extend_from_slice(extra);
        // stdbuf -oL: stdout into a pipe is block-buffered otherwise.
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg("mosquitto_sub")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn stdbuf mosquitto_sub");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut sub = Sub {
            child,
            lines,
            seen: Vec::new(),
        };
        let subscribed = tokio::time::timeout(TOOL_TIMEOUT, sub.line_with("Subscribed (")).await;
        assert!(
            matches!(subscribed, Ok(Some(_))),
            "mosquitto_sub {args:?} never subscribed: {:?}",
            sub.seen
        );
        sub
    }

    /// Reads until a line holding `needle` (returned), or the end of output.
    async fn line_with(&mut self, needle: &str) -> Option<String> {
        while let Some(line) = self.lines.next_line().await.expect("read mosquitto_sub") {
            self.seen.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    }

    /// Reads the remaining output.
    async fn read_to_end(&mut self) {
        while let Some(line) = self.lines.next_line().await.expect("read mosquitto_sub") {
            self.seen.push(line);
        }
    }

    /// The granted QoS (or failure code) per topic, from `Subscribed (mid: 1): 1, 128`.
    pub fn granted(&self) -> Vec<u8> {
        let line = self
            .seen
            .iter()
            .find(|l| l.starts_with("Subscribed ("))
            .expect("a Subscribed line");
        let codes = line.split("): ").nth(1).expect("codes");
        codes
            .split(", ")
            .map(|c| c.trim().parse().expect("a code"))
            .collect()
    }

    /// Waits for the exit; returns the payload lines (debug lines left out).
    pub async fn finish(self) -> Vec<String> {
        self.finish_counting_connacks().await.0
    }

    /// [`finish`](Self::finish), and how many CONNACKs it received (1 unless it
    /// reconnected).
    pub async fn finish_counting_connacks(mut self) -> (Vec<String>, usize) {
        let read = tokio::time::timeout(TOOL_TIMEOUT, self.read_to_end()).await;
        assert!(read.is_ok(), "mosquitto_sub did not exit in time");
        let status = self.child.wait().await.expect("wait mosquitto_sub");
        assert!(
            status.success(),
            "mosquitto_sub exited with {status}: {:?}",
            self.seen
        );
        let connacks = self
            .seen
            .iter()
            .filter(|l| l.contains("received CONNACK"))
            .count();
        (self.payloads(), connacks)
    }

    /// The payload lines printed so far.
    pub fn payloads(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed ("))
            .cloned()
            .collect()
    }
}

/// `--cafile CA`, and `--cert`/`--key` when given.
pub fn tls_args(ca: &std::path::Path, client: Option<&super::pki::Pair>) -> Vec<String> {
    let mut args = vec!["--cafile".to_owned(), ca.display().to_string()];
    if let Some(pair) = client {
        args.extend([
            "--cert".to_owned(),
            pair.cert.display().to_string(),
            "--key".to_owned(),
            pair.key.display().to_string(),
        ]);
    }
    args
}
