//! Durable state across restarts, black box: the broker binary is stopped with SIGTERM
//! (or SIGKILL, see durability_kill.rs) and started again on the same data directory and
//! port; queued messages, sessions and retained messages must come back, according to
//! `[storage] durability`. Also: damaged data directories, `starling inspect`, and
//! sessions that expire while the broker is down.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    bin, bounded, check_retained, connect_persistent, free_port, publish_pipelined,
    publish_retained, session_expiry, storage_toml, subscribe_offline, BrokerProcess, Collector,
    RawClient, Stop,
};
use starling::protocol::{QoS, ReasonCode};

/// Publishes `n` messages (payload = index) to `topic` at `qos` from a fresh clean client,
/// 50 in flight at most, and asserts that every flow completed.
async fn publish_all(broker: &BrokerProcess, topic: &str, qos: QoS, n: u32) {
    let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
    let out = publish_pipelined(&mut p, topic, qos, 0..n, 50, None).await;
    assert_eq!(
        out.completed.len(),
        n as usize,
        "publishes to {topic} acknowledged (closed: {})",
        out.closed
    );
    p.disconnect().await;
}

/// SIGTERM must end the broker with exit code 0.
fn terminate_ok(broker: &mut BrokerProcess) {
    let status = broker.terminate();
    assert!(
        status.success(),
        "SIGTERM exit status {status}; log:\n{}",
        broker.log_text()
    );
}

/// Reconnects `id` (clean session 0), asserts session present, and collects until `n`
/// distinct indices arrived; then waits 300 ms more for stray re-sends.
async fn collect_after_restart(broker: &BrokerProcess, id: &str, n: usize) -> Collector {
    let (mut c, present) = connect_persistent(broker, id).await;
    assert!(present, "{id}: session present must be 1 after the restart");
    let mut col = Collector::new(0);
    let stop = col.run(&mut c, Some(n), Duration::from_secs(5)).await;
    assert_eq!(
        stop,
        Stop::Count,
        "{id}: got {} of {n} distinct messages; missing {:?}",
        col.counts.len(),
        (0..n as u32)
            .filter(|i| !col.counts.contains_key(i))
            .take(20)
            .collect::<Vec<_>>()
    );
    let stop = col.run(&mut c, None, Duration::from_millis(300)).await;
    assert_eq!(stop, Stop::Silence, "{id}: connection dropped");
    c.disconnect().await;
    col
}

// A graceful restart loses nothing: 1,000 QoS 1 and 1,000 QoS 2 messages queued for
// offline persistent sessions come back in order and exactly once, and so do 50
// retained messages.
#[tokio::test]
async fn graceful_restart_keeps_queued_qos1_qos2_and_retained() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        subscribe_offline(&broker, "s2", "d/q2", QoS::ExactlyOnce).await;
        publish_all(&broker, "d/q1", QoS::AtLeastOnce, 1000).await;
        publish_all(&broker, "d/q2", QoS::ExactlyOnce, 1000).await;
        let mut p = RawClient::connected_v311(broker.addr(), "retainer", true).await;
        publish_retained(&mut p, 50).await;
        p.disconnect().await;
    })
    .await;
    terminate_ok(&mut broker);
    broker.restart();
    bounded(async {
        let s1 = collect_after_restart(&broker, "s1", 1000).await;
        assert_eq!(
            s1.order,
            (0..1000).collect::<Vec<_>>(),
            "s1 order of first deliveries"
        );
        assert_eq!(
            s1.publishes,
            1000,
            "s1: nothing was in flight, so no re-sends; duplicates {:?}",
            s1.duplicates()
        );
        let s2 = collect_after_restart(&broker, "s2", 1000).await;
        assert_eq!(s2.duplicates(), vec![], "s2 (QoS 2) duplicates");
        assert_eq!(s2.counts.len(), 1000);
        check_retained(&broker, 50).await;
    })
    .await;
}

// durability = "periodic": state is written at once and flushed every flush_interval_ms,
// and the final flush at SIGTERM makes a graceful restart lossless. (A kill -9 may lose
// up to the last flush window of acknowledged messages in this mode; not tested.)
#[tokio::test]
async fn periodic_durability_survives_graceful_restart() {
    let toml = storage_toml("periodic", &[("flush_interval_ms", "50")]);
    let mut broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        publish_all(&broker, "d/q1", QoS::AtLeastOnce, 100).await;
    })
    .await;
    terminate_ok(&mut broker);
    broker.restart();
    bounded(async {
        let s1 = collect_after_restart(&broker, "s1", 100).await;
        assert_eq!(s1.order, (0..100).collect::<Vec<_>>());
    })
    .await;
}

// durability = "memory": nothing survives a restart, which proves the mode switch is
// honoured.
#[tokio::test]
async fn memory_durability_forgets_on_restart() {
    let mut broker = BrokerProcess::start_with_config(Some(&storage_toml("memory", &[])));
    bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        publish_all(&broker, "d/q1", QoS::AtLeastOnce, 10).await;
    })
    .await;
    terminate_ok(&mut broker);
    broker.restart();
    bounded(async {
        let (mut c, present) = connect_persistent(&broker, "s1").await;
        assert!(!present, "memory durability: no session survives a restart");
        c.expect_nothing(Duration::from_secs(1)).await;
        c.disconnect().await;
    })
    .await;
}

/// Runs the broker on `data_dir` and expects it to refuse to start: a non-zero exit
/// within 10 s, never accepting TCP meanwhile. Returns stderr.
fn expect_refused_start(data_dir: &Path) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err_path = tmp.path().join("stderr");
    let port = free_port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = Command::new(bin())
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn starling");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        served |= std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok();
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("broker still running 10 s after start on a bad data dir; stderr:\n{stderr}")
    });
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        !served,
        "the broker accepted TCP on a bad data dir; stderr:\n{stderr}"
    );
    stderr
}

/// Deterministic pseudo-random bytes (xorshift).
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

// A data dir whose store holds garbage, or something that is not a store at all, is a
// clear start-up error naming the store path, never an empty broker.
#[test]
fn corrupt_data_dir_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("garbage");
    let store = data.join("store");
    std::fs::create_dir_all(&store).expect("mkdir");
    std::fs::write(store.join("db"), garbage(64 * 1024, 0x9e37_79b9_7f4a_7c15)).unwrap();
    std::fs::write(store.join("conf"), garbage(512, 0x1234_5678_9abc_def1)).unwrap();
    let stderr = expect_refused_start(&data);
    let path = store.display().to_string();
    assert!(
        stderr.contains(&path),
        "stderr must name {path}; stderr:\n{stderr}"
    );

    let data = tmp.path().join("unrelated");
    let store = data.join("store");
    std::fs::create_dir_all(&store).expect("mkdir");
    std::fs::write(store.join("notes.txt"), "shopping list\n").unwrap();
    let stderr = expect_refused_start(&data);
    let path = store.display().to_string();
    assert!(
        stderr.contains(&path),
        "stderr must name {path}; stderr:\n{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&store).unwrap().count(),
        1,
        "the refused store directory must be left untouched"
    );

    // A real store (written by a broker run) whose database file was overwritten.
    let mut broker = BrokerProcess::start();
    terminate_ok(&mut broker);
    let store = broker.data_dir().join("store");
    std::fs::write(store.join("db"), garbage(64 * 1024, 0x0dd_b1a5_ed5e_ed00)).unwrap();
    let stderr = expect_refused_start(broker.data_dir());
    let path = store.display().to_string();
    assert!(
        stderr.contains(&path),
        "stderr must name {path}; stderr:\n{stderr}"
    );
}

// `starling inspect` on a stopped broker's data dir lists the persistent sessions and
// their queue depths.
#[tokio::test]
async fn inspect_lists_sessions_after_shutdown() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        subscribe_offline(&broker, "s2", "d/q2", QoS::ExactlyOnce).await;
        publish_all(&broker, "d/q1", QoS::AtLeastOnce, 10).await;
        publish_all(&broker, "d/q2", QoS::ExactlyOnce, 10).await;
    })
    .await;
    terminate_ok(&mut broker);
    let out = Command::new(bin())
        .arg("inspect")
        .arg("--data-dir")
        .arg(broker.data_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run starling inspect");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "inspect exit {}; stdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for id in ["s1", "s2"] {
        let at = lines
            .iter()
            .position(|l| l.contains(&format!("\"{id}\"")))
            .unwrap_or_else(|| panic!("inspect does not list {id}:\n{stdout}"));
        // The session's own lines run until the next session line (or the trailer).
        let own: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| l.starts_with("    "))
            .copied()
            .collect();
        assert!(
            own.iter().any(|l| l.trim_start().starts_with("queue 10 ")),
            "inspect: {id} must show queue depth 10:\n{stdout}"
        );
    }
}

// A session whose expiry ran out while the broker was down is dropped at start.
#[tokio::test]
async fn expired_session_dropped_at_start() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("e1", true, 60, session_expiry(2)).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.subscribe(&[("e/t", QoS::AtLeastOnce)]).await;
        c.disconnect().await;
        publish_all(&broker, "e/t", QoS::AtLeastOnce, 5).await;
    })
    .await;
    terminate_ok(&mut broker);
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("e1", false, 60, session_expiry(60)).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(
            !ack.session_present,
            "the session expired while the broker was down"
        );
        c.expect_nothing(Duration::from_secs(1)).await;
        c.disconnect().await;
    })
    .await;
}
