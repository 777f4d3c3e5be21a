//! Whether this node is cut off from the cluster. When its NATS connection has been
//! down for longer than `[cluster] isolation_grace_ms`, the node is *isolated*: new
//! CONNECTs are refused with CONNACK 0x88 Server unavailable (3.1.1: return code 3) and
//! the connected clients are closed (5.0: DISCONNECT 0x9C Use another server, since 0x88
//! is not a DISCONNECT reason code [MQTT-3.14.2-1]), so that they reconnect to a node
//! that reaches the cluster instead of silently missing its traffic. Once NATS is back
//! the node accepts connections again.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::metrics::ClusterMetrics;
use crate::protocol::ReasonCode;
use crate::session::Isolation;

/// The DISCONNECT reason for clients of an isolated node (5.0): the client should use
/// another server for now. (0x88 Server unavailable is CONNACK-only [MQTT-3.14.2-1].)
pub const DISCONNECT_REASON: ReasonCode = ReasonCode::USE_ANOTHER_SERVER;
/// The Reason String sent with it.
pub const DISCONNECT_WHY: &str = "this node is cut off from the cluster";

/// How often the watcher is told the connection's state besides its events.
const POLL: Duration = Duration::from_millis(500);

/// Where the connection's state goes: `true` connected, `false` disconnected.
pub(super) type LinkTx = mpsc::UnboundedSender<bool>;

/// Adds to `options` an event callback reporting connects and disconnects; returns the
/// watcher's end and a sender for [`poll`].
pub(super) fn track(
    options: async_nats::ConnectOptions,
) -> (
    async_nats::ConnectOptions,
    mpsc::UnboundedReceiver<bool>,
    LinkTx,
) {
    // Unbounded: one item per connection event plus one per `POLL`, read at once by the
    // watcher (a few items a second at most).
    let (tx, rx) = mpsc::unbounded_channel();
    let events = tx.clone();
    let options = options.event_callback(move |event| {
        let up = match event {
            async_nats::Event::Connected => Some(true),
            async_nats::Event::Disconnected | async_nats::Event::Closed => Some(false),
            async_nats::Event::SlowConsumer(sid) => {
                warn!(
                    sid,
                    "NATS subscription full: messages from other nodes dropped (slow consumer)"
                );
                None
            }
            _ => None,
        };
        let events = events.clone();
        async move {
            if let Some(up) = up {
                let _ = events.send(up);
            }
        }
    });
    (options, rx, tx)
}

/// Reports the connection's state every [`POLL`] as well: async-nats drops events when
/// its event channel is full, and a lost `Connected` would leave the node isolated.
pub(super) async fn poll(client: async_nats::Client, link: LinkTx) {
    loop {
        tokio::time::sleep(POLL).await;
        let up = client.connection_state() == async_nats::connection::State::Connected;
        if link.send(up).is_err() {
            return;
        }
    }
}

/// Follows the NATS connection's state (`true`: connected, `false`: disconnected, as
/// async-nats reports them) and sets `isolation` once the connection has stayed down
/// for `grace`; `on_isolated` then runs once (it closes the local connections). A
/// reconnect clears the flag at once. Ends when the sender is dropped.
pub(super) async fn watch(
    mut link: mpsc::UnboundedReceiver<bool>,
    grace: Duration,
    (isolation, metrics): (Isolation, Option<ClusterMetrics>),
    on_isolated: impl Fn(),
) {
    let mut down_since: Option<Instant> = None;
    loop {
        let event = match down_since {
            Some(since) if !isolation.is_isolated() => {
                match tokio::time::timeout_at(since + grace, link.recv()).await {
                    Ok(event) => event,
                    Err(_) => {
                        isolation.set(true);
                        warn!(
                            grace_ms = grace.as_millis() as u64,
                            "cut off from NATS; refusing connections and closing local clients"
                        );
                        on_isolated();
                        continue;
                    }
                }
            }
            _ => link.recv().await,
        };
        if let (Some(m), Some(up)) = (&metrics, event) {
            m.nats_link(up);
        }
        match event {
            None => return,
            Some(true) => {
                down_since = None;
                if isolation.set(false) {
                    info!("NATS connection back; accepting connections again");
                }
            }
            Some(false) => {
                down_since.get_or_insert_with(Instant::now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    const GRACE: Duration = Duration::from_millis(2000);

    /// Runs the watcher; returns the link sender, the flag and the callback count.
    fn start() -> (mpsc::UnboundedSender<bool>, Isolation, Arc<AtomicUsize>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let isolation = Isolation::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        tokio::spawn(watch(rx, GRACE, (isolation.clone(), None), move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        (tx, isolation, calls)
    }

    async fn after(d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Right after a disconnect: not isolated just before the grace, isolated just after.
    async fn isolates_at_the_grace(isolation: &Isolation) {
        after(GRACE - Duration::from_millis(10)).await;
        assert!(!isolation.is_isolated());
        after(Duration::from_millis(20)).await;
        assert!(isolation.is_isolated());
    }

    #[tokio::test(start_paused = true)]
    async fn isolated_only_after_the_grace() {
        let (tx, isolation, calls) = start();
        tx.send(false).unwrap();
        isolates_at_the_grace(&isolation).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Still down: no second round of closing.
        after(GRACE * 3).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tx.send(true).unwrap();
        after(Duration::from_millis(1)).await;
        assert!(!isolation.is_isolated());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconnect_within_the_grace_keeps_the_node_serving() {
        let (tx, isolation, calls) = start();
        tx.send(false).unwrap();
        after(GRACE / 2).await;
        tx.send(true).unwrap();
        after(GRACE).await;
        assert!(!isolation.is_isolated());
        // A second outage counts its grace from its own start, not the first one's.
        tx.send(false).unwrap();
        isolates_at_the_grace(&isolation).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_disconnect_events_do_not_restart_the_grace() {
        let (tx, isolation, _) = start();
        tx.send(false).unwrap();
        after(GRACE / 2).await;
        tx.send(false).unwrap();
        after(GRACE / 2 + Duration::from_millis(10)).await;
        assert!(isolation.is_isolated());
    }
}
