//! The subscriber task: reads deliveries, acknowledges QoS 1/2 (acks batched per read),
//! and tracks loss, duplicates, reordering and latency.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use starling::protocol::{Packet, PubResponse, QoS};
use tokio::time::{timeout_at, Instant};

use crate::conn::Conn;
use crate::publisher::Window;
use crate::track::Tracker;

pub struct SubSpec {
    /// Unique deliveries expected; the task ends once it has them.
    pub expected: u64,
    /// After the publishers are done, stop when nothing arrived for this long.
    pub drain: Duration,
    /// `pairs`: the window shared with this subscriber's publisher.
    pub window: Option<Arc<Window>>,
}

pub struct SubResult {
    pub tracker: Tracker,
    /// Every PUBLISH received, duplicates included.
    pub received: u64,
    /// Time of the last PUBLISH received.
    pub last_recv: Option<Instant>,
    pub error: Option<String>,
}

/// Slice of waiting while publishers are still running (to notice them finishing).
const POLL: Duration = Duration::from_millis(50);

pub async fn run(
    mut conn: Conn,
    spec: SubSpec,
    mut tracker: Tracker,
    start: std::time::Instant,
    pubs_done: Arc<AtomicBool>,
    deadline: Instant,
) -> (Conn, SubResult) {
    let mut received = 0u64;
    let mut last_recv = None;
    let mut last_activity = Instant::now();
    let error = loop {
        if tracker.unique >= spec.expected {
            break None;
        }
        let now = Instant::now();
        if now >= deadline {
            break Some("deadline reached".to_string());
        }
        let wake = if pubs_done.load(Ordering::Acquire) {
            let drained_at = last_activity + spec.drain;
            if now >= drained_at {
                break None; // the rest is lost
            }
            drained_at
        } else {
            now + POLL
        };
        match timeout_at(wake.min(deadline), conn.fill()).await {
            Err(_) => continue,
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => break Some("connection closed by the broker".to_string()),
            Ok(Err(e)) => break Some(format!("read: {e}")),
        }
        last_activity = Instant::now();
        let now_ns = start.elapsed().as_nanos() as u64;
        let mut fresh = 0u64;
        let mut decode_error = None;
        loop {
            match conn.try_decode() {
                Ok(Some(Packet::Publish(p))) => {
                    received += 1;
                    last_recv = Some(last_activity);
                    if tracker.record(&p.payload, now_ns) {
                        fresh += 1;
                    }
                    match (p.qos(), p.packet_id()) {
                        (QoS::AtLeastOnce, Some(id)) => {
                            conn.queue(&Packet::PubAck(PubResponse::new(id)))
                        }
                        (QoS::ExactlyOnce, Some(id)) => {
                            conn.queue(&Packet::PubRec(PubResponse::new(id)))
                        }
                        _ => {}
                    }
                }
                Ok(Some(Packet::PubRel(r))) => {
                    conn.queue(&Packet::PubComp(PubResponse::new(r.packet_id)));
                }
                Ok(Some(Packet::Disconnect(d))) => {
                    decode_error = Some(format!("DISCONNECT from the broker, reason {}", d.reason));
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    decode_error = Some(format!("decode: {e}"));
                    break;
                }
            }
        }
        if fresh > 0 {
            if let Some(w) = &spec.window {
                w.received.fetch_add(fresh, Ordering::AcqRel);
                w.notify.notify_one();
            }
        }
        if let Err(e) = conn.flush(deadline).await {
            break Some(format!("write: {e}"));
        }
        if decode_error.is_some() {
            break decode_error;
        }
    };
    let result = SubResult {
        tracker,
        received,
        last_recv,
        error,
    };
    (conn, result)
}
