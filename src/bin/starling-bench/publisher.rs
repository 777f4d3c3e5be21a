//! The publisher task: sends `messages` numbered PUBLISHes to one topic, in batches, with
//! a bounded QoS 1/2 in-flight window and, for `pairs`, a bounded end-to-end window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use starling::protocol::{Flow, Packet, PacketId, Properties, PubResponse, Publish, QoS};
use starling::topic::TopicName;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use crate::conn::Conn;
use crate::track;

/// End-to-end window shared by a publisher and its subscriber (`pairs`).
#[derive(Default)]
pub struct Window {
    /// New messages the subscriber has received.
    pub received: AtomicU64,
    /// Signalled by the subscriber when `received` grows.
    pub notify: Notify,
}

pub struct PubSpec {
    pub index: u32,
    pub topic: TopicName,
    pub messages: u64,
    pub qos: QoS,
    pub size: usize,
    /// Most QoS 1/2 messages awaiting PUBACK/PUBCOMP.
    pub inflight: usize,
    /// Most PUBLISHes encoded into one write.
    pub batch: usize,
    /// Most messages sent but not yet received by the subscriber, and the shared counter.
    pub window: Option<(u64, Arc<Window>)>,
    /// Give up when the end-to-end window makes no progress for this long.
    pub stall: Duration,
}

#[derive(Debug, Default)]
pub struct PubResult {
    pub sent: u64,
    /// QoS 0: sent; QoS 1: PUBACKed; QoS 2: PUBCOMPed.
    pub completed: u64,
    /// Acks for packet ids not in flight, and refusals (reason code >= 0x80).
    pub bad_acks: u64,
    pub error: Option<String>,
}

/// Packet id states.
const FREE: u8 = 0;
const AWAIT_ACK: u8 = 1;
const AWAIT_COMP: u8 = 2;

/// Runs until every message is sent and acknowledged, an error, or `deadline`. Returns the
/// connection still open (closing it early could reset unread data at the broker).
pub async fn run(
    mut conn: Conn,
    spec: PubSpec,
    start: std::time::Instant,
    deadline: Instant,
) -> (Conn, PubResult) {
    let mut res = PubResult::default();
    let max_inflight = conn
        .receive_maximum
        .map_or(spec.inflight, |rm| spec.inflight.min(usize::from(rm)));
    let qos0 = spec.qos == QoS::AtMostOnce;
    let mut ids = vec![FREE; 65536];
    let mut next_id: u16 = 1;
    let mut inflight = 0usize;
    let idle = Notify::new();
    let (window, win) = match &spec.window {
        Some((w, shared)) => (Some(*w), Some(shared.clone())),
        None => (None, None),
    };
    let notify = win.as_ref().map_or(&idle, |w| &w.notify);
    let mut last_progress = Instant::now();
    let mut last_received = 0u64;

    res.error = loop {
        if res.sent == spec.messages && inflight == 0 {
            break None;
        }
        let now = Instant::now();
        if now >= deadline {
            break Some("deadline reached".into());
        }
        let mut can = (spec.messages - res.sent).min(spec.batch as u64);
        if !qos0 {
            can = can.min((max_inflight - inflight) as u64);
        }
        let mut window_blocked = false;
        if let (Some(w), Some(shared)) = (window, &win) {
            let received = shared.received.load(Ordering::Acquire);
            if received != last_received {
                last_received = received;
                last_progress = now;
            }
            let free = w.saturating_sub(res.sent.saturating_sub(received));
            window_blocked = free == 0;
            can = can.min(free);
        }
        for _ in 0..can {
            let packet_id = if qos0 {
                None
            } else {
                while ids[usize::from(next_id)] != FREE {
                    next_id = next_id.checked_add(1).unwrap_or(1);
                }
                ids[usize::from(next_id)] = AWAIT_ACK;
                inflight += 1;
                let id = PacketId::new(next_id);
                next_id = next_id.checked_add(1).unwrap_or(1);
                id
            };
            let sent_ns = start.elapsed().as_nanos() as u64;
            conn.queue(&Packet::Publish(Publish {
                dup: false,
                flow: Flow::new(spec.qos, packet_id).expect("an id exactly at QoS 1/2"),
                retain: false,
                topic: spec.topic.clone(),
                properties: Properties::default(),
                payload: track::payload(spec.index, res.sent, sent_ns, spec.size),
            }));
            res.sent += 1;
        }
        if conn.has_queued() {
            if let Err(e) = conn.flush(deadline).await {
                break Some(format!("write: {e}"));
            }
        }
        if can > 0 && res.sent < spec.messages {
            // Room for more: keep sending; acks are read once the window is full.
            continue;
        }
        let wait_read = !qos0 && inflight > 0;
        let wait_window = window_blocked && res.sent < spec.messages;
        if !wait_read && !wait_window {
            continue;
        }
        let wake = if wait_window {
            deadline.min(last_progress + spec.stall)
        } else {
            deadline
        };
        tokio::select! {
            r = conn.fill(), if wait_read => match r {
                Ok(true) => {}
                Ok(false) => break Some("connection closed by the broker".into()),
                Err(e) => break Some(format!("read: {e}")),
            },
            _ = notify.notified(), if wait_window => {}
            _ = sleep_until(wake) => {
                if wait_window && Instant::now() >= last_progress + spec.stall
                    && win.as_ref().map(|w| w.received.load(Ordering::Acquire)) == Some(last_received) {
                    break Some(format!(
                        "window stalled: no delivery for {:?} with {} outstanding",
                        spec.stall, res.sent - last_received
                    ));
                }
                continue;
            }
        }
        loop {
            let packet = match conn.try_decode() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    res.error = Some(format!("decode: {e}"));
                    break;
                }
            };
            let (r, expected) = match (&packet, spec.qos) {
                (Packet::PubAck(r), QoS::AtLeastOnce) | (Packet::PubRec(r), QoS::ExactlyOnce) => {
                    (r, AWAIT_ACK)
                }
                (Packet::PubComp(r), QoS::ExactlyOnce) => (r, AWAIT_COMP),
                (Packet::Disconnect(d), _) => {
                    res.error = Some(format!("DISCONNECT from the broker, reason {}", d.reason));
                    break;
                }
                (Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_), _) => {
                    res.bad_acks += 1;
                    continue;
                }
                _ => continue,
            };
            let id = usize::from(r.packet_id.get());
            if ids[id] != expected {
                res.bad_acks += 1;
                continue;
            }
            if r.reason.is_error() {
                res.bad_acks += 1;
                ids[id] = FREE;
                inflight -= 1;
            } else if matches!(packet, Packet::PubRec(_)) {
                ids[id] = AWAIT_COMP;
                conn.queue(&Packet::PubRel(PubResponse::new(r.packet_id)));
            } else {
                ids[id] = FREE;
                inflight -= 1;
                res.completed += 1;
            }
        }
        if res.error.is_some() {
            break res.error.take();
        }
    };
    if qos0 {
        res.completed = res.sent;
    }
    (conn, res)
}
