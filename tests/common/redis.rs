//! A real `redis-server` for the redis store's tests: started on a free loopback port
//! with its data in a temporary directory (AOF on, `appendfsync always` unless told),
//! ready once it answers PING, killed on drop. Self-contained, so the library's unit
//! tests include it too (`#[path]`).
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long redis-server may take to answer PING (it loads its AOF first).
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The `redis-server` binary, if installed (scripts/test.sh installs it).
pub fn find_redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

/// The binary, or `None` (with a SKIPPED line) when it is missing outside CI; under CI
/// a missing binary fails the test.
pub fn redis_server_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_redis_server();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server not found under CI; scripts/test.sh installs it (apt-get install redis-server)"
        );
        eprintln!("SKIPPED {test}: redis-server not installed (apt-get install redis-server)");
    }
    found
}

/// A free loopback port in 12000..20000 (below the brokers' range in `free_port` and
/// Linux's ephemeral range), walked from a place the process id picks.
fn redis_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 12_000;
    const SPAN: u32 = 8_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let port = (LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

/// One running `redis-server`; dropping it kills it.
pub struct RedisServer {
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    args: Vec<String>,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl RedisServer {
    /// A server with `appendonly yes` and `appendfsync <fsync>` (`always`, `everysec`,
    /// `no`) and no RDB snapshots; waits until it answers PING.
    pub fn start(bin: &Path, fsync: &str) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("starling-redis-")
            .tempdir()
            .expect("create redis tempdir");
        let port = redis_port();
        let log = dir.path().join("redis.log");
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.path().display().to_string(),
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
            "--save",
            "",
            "--logfile",
            &log.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        let mut server = RedisServer {
            child: None,
            bin: bin.to_owned(),
            port,
            args,
            dir,
            log,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("stderr.log"))
                    .expect("open redis stderr log"),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Bounded wait until PING gets `+PONG` (not `-LOADING`); fails early if it exits.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "redis-server exited with {status}; log:\n{}",
                        self.log_text()
                    );
                }
            }
            if self.pong() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within {READY_TIMEOUT:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 64];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory (it reloads its AOF).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        format!("{log}{err}")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
