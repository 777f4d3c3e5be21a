//! Overload scenarios (`tests/backpressure.rs`, `tests/memory_budget.rs`): pipelined
//! QoS 1 publishers that flood, a subscriber that reads slowly, the broker's RSS
//! sampled while they run, and the `/metrics` counters that tell what the broker did.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use starling::protocol::{Packet, QoS};

use super::http::http_get;
use super::raw::{publish_packet, Event, RawClient};
use super::RECV_TIMEOUT;

/// A message's payload: `"{publisher}:{index}:"` and padding to `size` bytes.
pub fn payload(publisher: usize, index: u32, size: usize) -> Vec<u8> {
    let mut p = format!("{publisher}:{index}:").into_bytes();
    p.resize(size.max(p.len()), b'.');
    p
}

/// Publishes `n` QoS 1 messages of `size` bytes to `topic` as publisher number `who`,
/// keeping `window` unacknowledged; returns the indices acknowledged (all of them, or
/// the test fails on a refusal, a close or 20 s without an acknowledgement).
pub async fn flood(
    mut c: RawClient,
    who: usize,
    topic: &str,
    n: u32,
    size: usize,
    window: usize,
) -> Vec<u32> {
    let mut open: HashMap<u16, u32> = HashMap::new();
    let mut acked = Vec::with_capacity(n as usize);
    let mut next = 0;
    while acked.len() < n as usize {
        while next < n && open.len() < window {
            let id = c.next_packet_id();
            let p = publish_packet(topic, QoS::AtLeastOnce, &payload(who, next, size), Some(id));
            c.send(Packet::Publish(p)).await;
            open.insert(id.get(), next);
            next += 1;
        }
        match c.next_event(Duration::from_secs(20)).await {
            Event::Packet(Packet::PubAck(a)) => {
                assert!(
                    !a.reason.is_error(),
                    "publisher {who}: PUBACK {:?}",
                    a.reason
                );
                let index = open
                    .remove(&a.packet_id.get())
                    .expect("PUBACK of a sent id");
                acked.push(index);
            }
            other => panic!("publisher {who}: {other:?} with {} acked", acked.len()),
        }
    }
    acked.sort_unstable();
    acked
}

/// What a slow subscriber received, per publisher in arrival order, and the largest
/// broker RSS it saw.
#[derive(Debug, Default)]
pub struct Received {
    pub per_publisher: BTreeMap<usize, Vec<u32>>,
    pub peak_rss_kib: u64,
}

impl Received {
    pub fn total(&self) -> usize {
        self.per_publisher.values().map(Vec::len).sum()
    }
}

/// Reads (and acknowledges) QoS 1 messages, pausing `pause` after each, until `want`
/// arrived or nothing came for `silence`; samples the broker's RSS with `rss_kib`
/// after each message.
pub async fn read_slowly(
    c: &mut RawClient,
    want: usize,
    pause: Duration,
    silence: Duration,
    rss_kib: impl Fn() -> u64,
) -> Received {
    let mut got = Received::default();
    let deadline = Instant::now() + Duration::from_secs(50);
    while got.total() < want && Instant::now() < deadline {
        let p = match c.next_event(silence).await {
            Event::Packet(Packet::Publish(p)) => p,
            Event::Timeout => {
                eprintln!("subscriber: silence after {} messages", got.total());
                break;
            }
            other => panic!("subscriber: {other:?} after {} messages", got.total()),
        };
        c.ack(&p).await;
        let text = String::from_utf8_lossy(&p.payload[..p.payload.len().min(32)]).into_owned();
        let mut parts = text.split(':');
        let who: usize = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("publisher");
        let index: u32 = parts.next().and_then(|s| s.parse().ok()).expect("index");
        got.per_publisher.entry(who).or_default().push(index);
        got.peak_rss_kib = got.peak_rss_kib.max(rss_kib());
        tokio::time::sleep(pause).await;
    }
    got
}

/// `name{label="value"}` in the broker's `/metrics` (0 when absent).
pub fn metric(http: SocketAddr, name: &str, label: &str, value: &str) -> f64 {
    let (status, body) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{body}");
    let want = format!("{name}{{{label}=\"{value}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A bounded wait for nothing at all: `RECV_TIMEOUT` is the longest a test waits for
/// one expected packet, so a scenario's silence is shorter.
pub const SILENCE: Duration = Duration::from_millis(1500);
const _: () = assert!(SILENCE.as_millis() < RECV_TIMEOUT.as_millis());
