//! The broker embedded in the test process, with its persistent in-process clients:
//! started on a data directory the test keeps across restarts; network publishers.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use starling::protocol::QoS;
use starling::{Broker, BrokerHandle, Config, LocalMessage, PersistentClient};

use super::RawClient;

/// The longest wait for any one message.
pub const WAIT: Duration = Duration::from_secs(10);
/// The session expiry of the clients here.
pub const HOUR: Duration = Duration::from_secs(3600);

/// A broker in this process (one worker, a listener on a free loopback port) on
/// `data_dir`, configured further by `configure`.
pub async fn start_embedded(data_dir: &Path, configure: impl FnOnce(&mut Config)) -> BrokerHandle {
    let mut config = Config::default();
    config.listeners[0].bind = "127.0.0.1:0".parse().expect("address");
    config.storage.data_dir = data_dir.to_path_buf();
    configure(&mut config);
    Broker::new(config)
        .workers(1)
        .start()
        .await
        .expect("broker starts")
}

/// A persistent in-process client of `broker` with session expiry [`HOUR`].
pub async fn persistent_local(broker: &BrokerHandle, id: &str) -> PersistentClient {
    let client = broker.persistent_client(id, HOUR);
    tokio::time::timeout(WAIT, client)
        .await
        .expect("connected in time")
        .expect("connected")
}

/// The next message of `c` within [`WAIT`].
pub async fn next(c: &PersistentClient) -> LocalMessage {
    tokio::time::timeout(WAIT, c.next())
        .await
        .expect("a message in time")
        .expect("the connection goes on")
}

/// The payload of the next message, as text.
pub async fn next_text(c: &PersistentClient) -> String {
    String::from_utf8_lossy(&next(c).await.payload).into_owned()
}

/// True when `c` yields nothing within a short while.
pub async fn quiet(c: &PersistentClient) -> bool {
    let next = tokio::time::timeout(Duration::from_millis(300), c.next()).await;
    next.is_err()
}

/// Waits (bounded) until `n` messages were delivered to `c` and not taken.
pub async fn wait_queued(c: &PersistentClient, n: usize) {
    let deadline = Instant::now() + WAIT;
    while c.queued() < n {
        assert!(Instant::now() < deadline, "{} of {n} delivered", c.queued());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A network publisher: `m{i}` on `{prefix}/{i}` at `qos`, each acknowledged.
pub async fn publish_range(addr: SocketAddr, prefix: &str, qos: QoS, range: Range<u32>) {
    let mut p = RawClient::connected_v311(addr, "net-publisher", true).await;
    for i in range {
        let payload = format!("m{i}");
        p.publish(&format!("{prefix}/{i}"), qos, false, payload.as_bytes())
            .await;
    }
    p.disconnect().await;
}

pub fn texts(range: Range<u32>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}
