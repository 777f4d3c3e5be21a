//! A throwaway PostgreSQL server for the `postgres` backend's tests: `initdb` in a
//! temporary directory, `postgres` on a free loopback port (its socket in that
//! directory too), a database `starling`, and the whole server (postmaster and
//! backends, one process group) killed on drop. PostgreSQL refuses to run as root: as
//! root the server runs as the `postgres` user (created by Debian's package; else
//! `nobody`). scripts/test.sh installs `postgresql` when `initdb` is missing.
//!
//! This file is also compiled into the library's unit tests (`#[path]`), so it uses
//! nothing but std.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the server gets to say it accepts connections.
const READY: Duration = Duration::from_secs(30);

/// The directory of `initdb`, `postgres`, `pg_ctl` and `psql`: `STARLING_PG_BIN`, or
/// the newest `/usr/lib/postgresql/*/bin`.
pub fn find_pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STARLING_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The binaries, or `None` (with a message) when PostgreSQL is not installed and this
/// is not CI: under CI (`CI` set) a missing server fails the test.
pub fn pg_bin_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_pg_bin();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL not found under CI; scripts/test.sh installs it (apt-get install postgresql)"
        );
        eprintln!("SKIPPED {test}: PostgreSQL not installed (apt-get install postgresql)");
    }
    found
}

/// A running (or stopped, between [`PgServer::kill`] and [`PgServer::start`]) server.
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    /// The user to run as, when this process is root: (uid, gid).
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    /// The loopback port it listens on (kept across restarts).
    pub port: u16,
}

impl PgServer {
    /// Creates a cluster in a fresh temporary directory, starts it and creates the
    /// database `starling`. Panics (the test fails) when any step fails.
    pub fn start_new(bin: &Path) -> PgServer {
        let dir =
            std::env::temp_dir().join(format!("starling-pg-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let run_as = run_as();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the directory");
        }
        let mut server = PgServer {
            bin: bin.to_owned(),
            dir,
            run_as,
            child: None,
            port: free_loopback_port(),
        };
        server.initdb();
        server.start();
        server.psql("postgres", "CREATE DATABASE starling");
        server
    }

    /// The URL of the database `starling`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/starling", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("LC_ALL", "C").env_remove("PGDATA");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn initdb(&self) {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server on its data directory and port, and waits (bounded) until it
    /// says it accepts connections. After [`PgServer::kill`] this is a restart on the
    /// same data, with crash recovery.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        // `fsync` off: the tests kill processes, never the machine, and the page cache
        // survives a process.
        let mut child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start postgres");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready to accept connections") {
                    let _ = tx.send(());
                }
                if std::env::var_os("STARLING_PG_LOG").is_some() {
                    eprintln!("postgres: {line}");
                }
            }
        });
        self.child = Some(child);
        if rx.recv_timeout(READY).is_err() {
            self.kill();
            panic!("postgres did not accept connections within {READY:?}");
        }
    }

    /// SIGKILL the server and every backend (its process group), and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `sql` in database `db` with psql; panics when it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["stop", "-m", "immediate", "-w", "-t", "5"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// As root: the uid and gid of `postgres` (else `nobody`), from /etc/passwd.
fn run_as() -> Option<(u32, u32)> {
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let entry = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    };
    entry("postgres").or_else(|| entry("nobody"))
}

/// A number unique in this process.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A free loopback port below the ephemeral range (as `free_port` in tests/common), so
/// that no outgoing connection takes it between a kill and a restart.
fn free_loopback_port() -> u16 {
    const LOW: u32 = 33_000 - 12_000;
    const SPAN: u32 = 10_000;
    let start = std::process::id().wrapping_mul(104_729) % SPAN;
    for i in 0..SPAN {
        let port = (LOW + (start + i + unique() as u32 * 13) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port");
}
