//! Who may connect, with real clients: a password file written by `mosquitto_passwd`
//! (`$7$` PBKDF2-SHA512 and `$6$` SHA-512) and `starling passwd` (Argon2id, and
//! pbkdf2-sha256), used by mosquitto_pub with `-u`/`-P` over 3.1.1 and 5.0; Mosquitto
//! 2's anonymous default once a listener binds beyond loopback, said at start; failed
//! logins rate-limited per source address, each logged with it. mosquitto_passwd comes
//! with Debian's `mosquitto` package, mosquitto_pub with `mosquitto-clients`
//! (scripts/test.sh installs both).

mod common;

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bin, bounded, connect_packet, free_port, without_colours, BrokerProcess, RawClient};
use starling::protocol::{ProtocolVersion, ReasonCode};
use tokio::process::Command;

const TOOL_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs a tool to completion within 15 s (a missing tool fails the test).
async fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}); scripts/test.sh installs it"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
    }
    tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{tool} {args:?} did not finish within {TOOL_TIMEOUT:?}"))
        .expect("wait for tool")
}

/// mosquitto_pub at QoS 1 (so success means CONNACK 0 and PUBACK), as `user` if given,
/// from `source` if given (`-A`).
async fn publish(port: u16, version: &str, login: Option<(&str, &str)>, source: &str) -> Output {
    let port = port.to_string();
    let mut args = vec!["-h", "127.0.0.1", "-p", &port, "-V", version, "-A", source];
    args.extend(["-t", "auth/t", "-m", "hello", "-q", "1"]);
    if let Some((user, password)) = login {
        args.extend(["-u", user, "-P", password]);
    }
    run("mosquitto_pub", &args, None).await
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// mosquitto_pub failed for its credentials (3.1.1 code 4 or 5, 5.0 0x86 or 0x87), not
/// for anything else.
fn refused_credentials(out: &Output) -> bool {
    let text = stderr(out).to_lowercase();
    !out.status.success()
        && (text.contains("not authori") || text.contains("bad user name or password"))
}

fn password_config(path: &Path, extra: &str) -> String {
    format!(
        "[auth]\nallow_anonymous = false\npassword_file = {:?}\n{extra}",
        path.display().to_string()
    )
}

/// Users from both tools in one file: alice `$7$` and bob `$6$` from mosquitto_passwd,
/// carol Argon2id and dora pbkdf2-sha256 from `starling passwd`. Each logs in with
/// mosquitto_pub over 3.1.1 and 5.0; a wrong password is refused and logged with the
/// client's address.
#[tokio::test]
async fn mosquitto_passwd_and_starling_passwd_users_log_in_with_mosquitto_pub() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let f = file.to_str().unwrap();
    for args in [
        &["-c", "-b", f, "alice", "wonder"][..],
        &["-H", "sha512", "-b", f, "bob", "builder"],
    ] {
        let out = run("mosquitto_passwd", args, None).await;
        assert!(
            out.status.success(),
            "mosquitto_passwd {args:?}: {}",
            stderr(&out)
        );
    }
    for (args, password) in [
        (&["passwd", "--file", f, "carol"][..], "c4rol\n"),
        (
            &["passwd", "--scheme", "pbkdf2-sha256", "--file", f, "dora"],
            "d0ra\n",
        ),
    ] {
        let out = run(bin(), args, Some(password)).await;
        assert!(out.status.success(), "starling {args:?}: {}", stderr(&out));
    }
    let text = std::fs::read_to_string(&file).unwrap();
    for prefix in [
        "alice:$7$101$",
        "bob:$6$",
        "carol:$argon2id$",
        "dora:pbkdf2-sha256$",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(prefix)),
            "{prefix} in\n{text}"
        );
    }
    let mut broker = BrokerProcess::start_with_config(Some(&password_config(&file, "")));
    let users = [
        ("alice", "wonder"),
        ("bob", "builder"),
        ("carol", "c4rol"),
        ("dora", "d0ra"),
    ];
    bounded(async {
        for version in ["mqttv311", "mqttv5"] {
            for (user, password) in users {
                let out =
                    publish(broker.port(), version, Some((user, password)), "127.0.0.1").await;
                assert!(out.status.success(), "{version} {user}: {}", stderr(&out));
                let out = publish(broker.port(), version, Some((user, "guess")), "127.0.0.1").await;
                assert!(
                    refused_credentials(&out),
                    "{version} {user}: {}",
                    stderr(&out)
                );
            }
        }
        broker.assert_alive();
    })
    .await;
    let log = without_colours(&broker.log_text());
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(failures.len(), 8, "one line per failure:\n{log}");
    assert!(
        failures.iter().all(|l| l.contains("peer=127.0.0.1:")
            && l.contains("username=")
            && l.contains("reason=")),
        "{failures:#?}"
    );
}

/// The binary with `args` (no `--config` unless given), killed on drop.
struct Spawned {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// Starts `starling --listen BIND [--config]` and waits until 127.0.0.1:port accepts.
    fn start(bind: SocketAddr, config: Option<&str>) -> Spawned {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("broker.log");
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("--listen").arg(bind.to_string());
        cmd.arg("--data-dir").arg(dir.path().join("data"));
        if let Some(text) = config {
            let path = dir.path().join("starling.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("spawn the broker");
        let mut spawned = Spawned {
            child,
            port: bind.port(),
            log,
            _dir: dir,
        };
        let local = SocketAddr::from(([127, 0, 0, 1], bind.port()));
        let deadline = Instant::now() + Duration::from_secs(15);
        while StdTcpStream::connect_timeout(&local, Duration::from_millis(200)).is_err() {
            let exited = spawned.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "broker not accepting on {local}; log:\n{}",
                spawned.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        spawned
    }

    fn log_text(&self) -> String {
        without_colours(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mosquitto 2's default: with `allow_anonymous` unset, a listener on 0.0.0.0 turns
/// anonymous clients away (3.1.1 and 5.0) and the broker says why at start; set to true,
/// they are let in; on loopback they are let in by default.
#[tokio::test]
async fn anonymous_clients_refused_by_default_beyond_loopback() {
    let exposed = Spawned::start(SocketAddr::from(([0, 0, 0, 0], free_port())), None);
    bounded(async {
        for version in ["mqttv311", "mqttv5"] {
            let out = publish(exposed.port, version, None, "127.0.0.1").await;
            assert!(refused_credentials(&out), "{version}: {}", stderr(&out));
        }
    })
    .await;
    let log = exposed.log_text();
    assert!(
        log.contains("anonymous clients refused") && log.contains("listener=0.0.0.0:"),
        "{log}"
    );

    let open = Spawned::start(
        SocketAddr::from(([0, 0, 0, 0], free_port())),
        Some("[auth]\nallow_anonymous = true\n"),
    );
    let out = publish(open.port, "mqttv5", None, "127.0.0.1").await;
    assert!(
        out.status.success(),
        "allow_anonymous = true: {}",
        stderr(&out)
    );
    assert!(open.log_text().contains("as [auth] allow_anonymous says"));

    let local = BrokerProcess::start();
    let out = publish(local.port(), "mqttv5", None, "127.0.0.1").await;
    assert!(out.status.success(), "loopback: {}", stderr(&out));
    assert!(without_colours(&local.log_text()).contains("anonymous clients allowed"));
}

/// A CONNECT as bob with `password`; the CONNACK's reason.
async fn login(addr: SocketAddr, version: ProtocolVersion, password: &str) -> ReasonCode {
    let mut c = RawClient::open(addr).await;
    let mut connect = connect_packet(version, "throttled", true, 60);
    connect.username = Some("bob".into());
    connect.password = Some(Bytes::copy_from_slice(password.as_bytes()));
    c.connect(connect).await.reason
}

/// `max_login_failures = 3` in a 3 s window: three wrong passwords from 127.0.0.1, then
/// even the right one is refused at once (5.0: 0x8A Banned; 3.1.1: code 5), while
/// 127.0.0.2 still logs in; once the window ends, 127.0.0.1 logs in again. Each failure
/// and the ban are logged with the address.
#[tokio::test]
async fn failed_logins_are_rate_limited_per_source_address() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let mut f = std::fs::File::create(&file).unwrap();
    // bob/builder from `mosquitto_passwd -H sha512`.
    writeln!(f, "bob:$6$uIH21A7icU6j1mnc$opRo8FQ/K0pnycG3ddIUucopnYy6mHBdvAUOMnrdHxDzlEqAJJqiFNignfLWwF1PHOzYdFw0uJAA/Z3XGwOPWw==").unwrap();
    let extra = "max_login_failures = 3\nlogin_failure_window_secs = 3\n";
    let mut broker = BrokerProcess::start_with_config(Some(&password_config(&file, extra)));
    let addr = broker.addr();
    bounded(async {
        let v5 = ProtocolVersion::V5;
        for _ in 0..3 {
            assert_eq!(
                login(addr, v5, "guess").await,
                ReasonCode::BAD_USER_NAME_OR_PASSWORD
            );
        }
        let started = Instant::now();
        assert_eq!(login(addr, v5, "builder").await, ReasonCode::BANNED);
        let v311 = ProtocolVersion::V311;
        assert_eq!(
            login(addr, v311, "builder").await,
            ReasonCode::NOT_AUTHORIZED
        );
        // Another address is not concerned.
        let out = publish(
            broker.port(),
            "mqttv5",
            Some(("bob", "builder")),
            "127.0.0.2",
        )
        .await;
        assert!(out.status.success(), "from 127.0.0.2: {}", stderr(&out));
        // The window ends 3 s after the first failure: bounded retries until then.
        let mut reason = ReasonCode::BANNED;
        for _ in 0..40 {
            reason = login(addr, v5, "builder").await;
            if reason != ReasonCode::BANNED {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(reason, ReasonCode::SUCCESS, "after the window");
        assert!(started.elapsed() < Duration::from_secs(8));
        broker.assert_alive();
    })
    .await;
    let log = without_colours(&broker.log_text());
    for n in 1..=3 {
        let line = format!("failures={n}");
        assert!(
            log.lines().any(|l| l.contains("authentication failed")
                && l.contains("peer=127.0.0.1:")
                && l.contains(&line)),
            "{line} in\n{log}"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains("too many failed logins") && l.contains("peer=127.0.0.1:")),
        "{log}"
    );
}
