//! Shared fixtures of the black-box tests: the broker as a child process
//! ([`BrokerProcess`]), a raw MQTT client over the crate's own codec ([`RawClient`]),
//! hand-made wire bytes for malformed input, and a [`Witness`] client that proves the
//! broker still serves others. Every wait here is bounded.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream as StdTcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod cluster;
mod durable;
pub mod embedded;
pub mod http;
pub mod mosquitto;
mod nats;
pub mod overload;
pub mod pg;
pub mod pki;
mod raw;
mod tools;
#[allow(unused_imports)]
pub use cluster::*;
#[allow(unused_imports)]
pub use durable::*;
#[allow(unused_imports)]
pub use nats::*;
#[allow(unused_imports)]
pub use raw::*;
#[allow(unused_imports)]
pub use tools::*;
/// Upper bound of one whole test body.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default wait for one expected packet.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs a test body with the 30 s bound.
pub async fn bounded<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test body exceeded its 30 s bound")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_starling")
}

/// SIGKILL a child process, if any, and reap it.
pub fn kill_and_reap(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A free loopback port, below Linux's ephemeral range (32768–60999): a port the kernel
/// handed out for `bind(0)` could be taken by an outgoing connection between its release
/// here and its use by a server (nats-server failed so: "address already in use"). Each
/// test process walks its own sequence, starting at a place its process id picks, and
/// checks each port by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

/// Whether a TCP connect to `addr` succeeds with a peer other than itself (a socket
/// connecting to a port with no listener can be handed that same port and connect to
/// itself).
fn accepts_tcp(addr: SocketAddr) -> bool {
    StdTcpStream::connect_timeout(&addr, Duration::from_millis(200))
        .is_ok_and(|s| s.local_addr().ok() != Some(addr))
}

/// Waits for a child with a deadline; `None` when it is still running then.
pub fn wait_child(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The broker binary running on its own port and temporary data directory.
pub struct BrokerProcess {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    config: Option<PathBuf>,
    log: PathBuf,
    /// The log's length when the running process was launched: its own lines follow.
    log_start: u64,
}

impl BrokerProcess {
    /// A broker with the default configuration except for one worker thread, so the
    /// router shares it (the one-core layout, `router_thread = "auto"`). Brokers
    /// started with a config file of their own use one worker per core and a router
    /// thread of its own, so the suite runs both layouts.
    pub fn start() -> BrokerProcess {
        BrokerProcess::start_with_config(Some("[server]\nworkers = 1\n"))
    }

    /// A broker whose config file holds these `[limits]` entries.
    pub fn start_with_limits(limits: &[(&str, u64)]) -> BrokerProcess {
        let mut toml = String::from("[limits]\n");
        for (key, value) in limits {
            toml.push_str(&format!("{key} = {value}\n"));
        }
        BrokerProcess::start_with_config(Some(&toml))
    }

    /// A cluster node with this config. A node that exits during start-up is started
    /// once more (its first log goes to stderr): joining a NATS cluster that is still
    /// electing its JetStream leaders can fail, and a supervisor would restart it.
    pub fn start_cluster_node(toml: &str) -> BrokerProcess {
        let mut node = BrokerProcess::prepare(Some(toml));
        node.launch();
        if let Err(log) = node.try_wait_ready() {
            eprintln!("cluster node exited during start-up; starting it again. Its log:\n{log}");
            node.launch();
            node.wait_ready();
        }
        node
    }

    /// A broker with this config file text (none when `None`).
    pub fn start_with_config(toml: Option<&str>) -> BrokerProcess {
        let mut broker = BrokerProcess::prepare(toml);
        broker.spawn();
        broker
    }

    /// The directories and config file of a broker not yet started.
    fn prepare(toml: Option<&str>) -> BrokerProcess {
        let dir = tempfile::Builder::new()
            .prefix("starling-bb-")
            .tempdir()
            .expect("create tempdir");
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&data_dir).expect("create data dir");
        let config = toml.map(|text| {
            let path = dir.path().join("starling.toml");
            fs::write(&path, text).expect("write config");
            path
        });
        let log = dir.path().join("broker.log");
        BrokerProcess {
            child: None,
            port: free_port(),
            dir,
            data_dir,
            config,
            log,
            log_start: 0,
        }
    }

    fn spawn(&mut self) {
        self.launch();
        self.wait_ready();
    }

    fn launch(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open broker log");
        let mut cmd = Command::new(bin());
        cmd.arg("--listen")
            .arg(self.addr().to_string())
            .arg("--data-dir")
            .arg(&self.data_dir);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        // try_wait_ready waits for the start-up line, so it must be logged.
        let filter = match std::env::var("RUST_LOG") {
            Ok(filter) => format!("{filter},starling::broker=info"),
            Err(_) => "info".to_string(),
        };
        cmd.env("RUST_LOG", filter);
        self.log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log fd")))
            .stderr(Stdio::from(log));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin()));
        self.child = Some(child);
    }

    /// Bounded wait until this process has logged that it started (its listeners are
    /// bound by then) and its port accepts TCP; fails early when the process exits.
    fn wait_ready(&mut self) {
        if let Err(log) = self.try_wait_ready() {
            panic!("{log}");
        }
    }

    /// Like [`wait_ready`](Self::wait_ready), but a process that exits is an `Err`
    /// with its exit status and log.
    ///
    /// A TCP connect alone is not proof: in CI a test's first client was once refused
    /// right after such a connect had succeeded, while the broker's log showed it still
    /// opening its store. The broker's own "broker started" line, written after its
    /// listeners are bound, is.
    fn try_wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = self.addr();
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("try_wait") {
                self.child = None;
                return Err(format!(
                    "broker exited during start-up with {status}; log:\n{}",
                    self.log_text()
                ));
            }
            if self.logged_start() && accepts_tcp(addr) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                panic!(
                    "broker did not start and accept TCP on {addr} within {READY_TIMEOUT:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the running process has logged "broker started".
    fn logged_start(&self) -> bool {
        let Ok(log) = fs::read(&self.log) else {
            return false;
        };
        let own = log.get(self.log_start as usize..).unwrap_or_default();
        String::from_utf8_lossy(own).contains("broker started")
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("broker process is not running")
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory passed with `--data-dir` (kept across restarts).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker not running").id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    pub fn assert_alive(&mut self) {
        assert!(
            self.is_running(),
            "broker process died; log:\n{}",
            self.log_text()
        );
    }

    /// Resident memory of the broker in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM, then a bounded wait (10 s) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.terminate_within(Duration::from_secs(10))
    }

    pub fn terminate_within(&mut self, within: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(ok.success(), "kill -TERM {pid} failed");
        let mut child = self.child.take().expect("broker not running");
        match wait_child(&mut child, within) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {within:?} after SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// Starts the binary again on the same port, data dir and config (SIGKILL first if
    /// it is still running).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "---- broker log tail ({}) ----\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
        self.kill9();
    }
}

// ---- hand-made wire bytes, for input the codec would refuse to produce ----

/// Variable byte integer (section 1.5.5 / 2.2.3).
pub fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

/// A length-prefixed string or binary field.
pub fn mqtt_str(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// Fixed header byte + remaining length + body.
pub fn raw_packet(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    out.extend(varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// A CONNECT with free protocol level and flags; `v5_props` adds a property block.
pub fn raw_connect(level: u8, flags: u8, client_id: &str, v5_props: Option<&[u8]>) -> Vec<u8> {
    let mut body = mqtt_str(b"MQTT");
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    if let Some(props) = v5_props {
        body.extend(varint(props.len()));
        body.extend_from_slice(props);
    }
    body.extend(mqtt_str(client_id.as_bytes()));
    raw_packet(0x10, &body)
}
