//! The broker under a service manager: the systemd notify protocol (`Type=notify` in
//! dist/starling.service) spoken to a datagram socket the test holds as
//! `NOTIFY_SOCKET`, and the container image's config (dist/docker.toml) checked.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, free_port, kill_and_reap, wait_child};

/// The next notification (bounded), as text.
fn next_notification(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

// READY=1 comes once the listeners accept; STOPPING=1 on SIGTERM, before the exit.
#[test]
fn ready_and_stopping_are_notified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let port = free_port();
    let child = Command::new(bin())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("NOTIFY_SOCKET", &path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn starling");
    let mut child = Some(child);
    let ready = next_notification(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("listening once ready");
    let pid = child.as_ref().map(|c| c.id().to_string()).expect("pid");
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.expect("run kill").success());
    let stopping = next_notification(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = wait_child(child.as_mut().expect("child"), Duration::from_secs(10));
    if status.is_none() {
        kill_and_reap(&mut child);
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
}

// The image's config is valid (`starling check-config`), and binds every interface.
#[test]
fn the_container_config_checks_ok() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/docker.toml");
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run starling check-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("read dist/docker.toml");
    assert!(text.contains("0.0.0.0:1883"));
}
