//! Helpers of the restart/crash tests: a pipelined publisher that records exactly which
//! publishes the broker acknowledged (and can kill the broker mid-stream), and a
//! collecting subscriber that acknowledges like a real client, including QoS 2 method B
//! (MQTT 3.1.1 section 4.3.3) carried over reconnects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::time::Duration;

use starling::protocol::{Packet, PubResponse, QoS, ReasonCode};

use super::{publish_packet, BrokerProcess, Event, RawClient};

/// Config text with a `[storage]` section (`durability` plus optional extra keys).
pub fn storage_toml(durability: &str, extra: &[(&str, &str)]) -> String {
    let mut toml = format!("[storage]\ndurability = \"{durability}\"\n");
    for (key, value) in extra {
        toml.push_str(&format!("{key} = {value}\n"));
    }
    toml
}

/// What a pipelined publisher saw.
#[derive(Debug, Default)]
pub struct Published {
    /// Indices whose flow completed (PUBACK for QoS 1, PUBCOMP for QoS 2).
    pub completed: BTreeSet<u32>,
    /// QoS 2 indices that got a PUBREC (the broker took them over), completed or not.
    pub recd: BTreeSet<u32>,
    /// Indices sent.
    pub sent: usize,
    /// The connection dropped before every flow completed.
    pub closed: bool,
}

/// Publishes `indices` (payload = the index in decimal) to `topic` at `qos` (1 or 2),
/// keeping at most `window` flows open, and waits for every flow to complete. With
/// `kill = Some((n, broker))` the broker is SIGKILLed as soon as `n` flows completed; the
/// publisher stops sending and reads what is left until the connection drops.
pub async fn publish_pipelined(
    c: &mut RawClient,
    topic: &str,
    qos: QoS,
    indices: Range<u32>,
    window: usize,
    mut kill: Option<(usize, &mut BrokerProcess)>,
) -> Published {
    assert!(qos != QoS::AtMostOnce, "pipelined publisher is for QoS 1/2");
    let mut out = Published::default();
    let mut open: HashMap<u16, u32> = HashMap::new();
    let mut next = indices.start;
    let mut killed = false;
    loop {
        while !killed && next < indices.end && open.len() < window {
            let id = c.next_packet_id();
            let p = publish_packet(topic, qos, next.to_string().as_bytes(), Some(id));
            if c.try_send(Packet::Publish(p)).await.is_err() {
                out.closed = true;
                return out;
            }
            open.insert(id.get(), next);
            out.sent += 1;
            next += 1;
        }
        // After the kill, read on until the connection drops (acks already sent by the
        // broker may still be buffered and complete every open flow first).
        if open.is_empty() && !killed && next >= indices.end {
            return out;
        }
        match c.next_event(super::RECV_TIMEOUT).await {
            Event::Packet(Packet::PubAck(r)) if qos == QoS::AtLeastOnce => {
                let idx = open.remove(&r.packet_id.get()).unwrap_or_else(|| {
                    panic!("PUBACK for unknown packet id {:?}", r.packet_id)
                });
                assert!(!r.reason.is_error(), "PUBACK of {idx}: {:?}", r.reason);
                out.completed.insert(idx);
            }
            Event::Packet(Packet::PubRec(r)) if qos == QoS::ExactlyOnce => {
                let idx = *open.get(&r.packet_id.get()).unwrap_or_else(|| {
                    panic!("PUBREC for unknown packet id {:?}", r.packet_id)
                });
                assert!(!r.reason.is_error(), "PUBREC of {idx}: {:?}", r.reason);
                out.recd.insert(idx);
                if c
                    .try_send(Packet::PubRel(PubResponse::new(r.packet_id)))
                    .await
                    .is_err()
                {
                    out.closed = true;
                    return out;
                }
            }
            Event::Packet(Packet::PubComp(r)) if qos == QoS::ExactlyOnce => {
                let idx = open.remove(&r.packet_id.get()).unwrap_or_else(|| {
                    panic!("PUBCOMP for unknown packet id {:?}", r.packet_id)
                });
                out.completed.insert(idx);
            }
            Event::Closed | Event::Packet(Packet::Disconnect(_)) => {
                out.closed = true;
                return out;
            }
            // A reset after SIGKILL may surface as an I/O error of another kind.
            Event::Error(_) if killed => {
                out.closed = true;
                return out;
            }
            other => panic!(
                "publisher on {topic}: unexpected {other:?} ({} completed, {} open, killed {killed})",
                out.completed.len(),
                open.len()
            ),
        }
        if let Some((n, broker)) = kill.as_mut() {
            if !killed && out.completed.len() >= *n {
                broker.kill9();
                killed = true;
            }
        }
    }
}

/// Why [`Collector::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The wanted number of distinct messages arrived (and no QoS 2 flow is half done).
    Count,
    /// Nothing arrived for the silence period.
    Silence,
    /// The connection dropped.
    Closed,
}

/// A subscriber that acknowledges every message (QoS 1: PUBACK; QoS 2: PUBREC, then
/// PUBCOMP on PUBREL) and counts payloads (decimal indices). QoS 2 follows method B:
/// a packet id PUBREC'd and not yet released is remembered (also across reconnects when
/// the same collector is reused) and a PUBLISH carrying it again is not delivered again.
#[derive(Debug, Default)]
pub struct Collector {
    /// Delivered copies per index.
    pub counts: BTreeMap<u32, u32>,
    /// Indices in order of first delivery.
    pub order: Vec<u32>,
    /// PUBLISHes read (including re-sends suppressed by method B).
    pub publishes: usize,
    /// QoS 2 re-sends suppressed by method B.
    pub suppressed: usize,
    /// QoS 2 packet ids PUBREC'd, PUBREL awaited, with the index delivered under each.
    pub awaiting_rel: HashMap<u16, u32>,
    /// A slow consumer: sleep 1 ms after every `slow_every` PUBLISHes (0: never).
    pub slow_every: usize,
}

impl Collector {
    /// A collector that sleeps 1 ms after every `slow_every` PUBLISHes (0: never).
    pub fn new(slow_every: usize) -> Collector {
        Collector {
            slow_every,
            ..Collector::default()
        }
    }

    /// Indices delivered more than once, with their counts.
    pub fn duplicates(&self) -> Vec<(u32, u32)> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(i, n)| (*i, *n))
            .collect()
    }

    /// Extra copies delivered in total.
    pub fn duplicate_copies(&self) -> u32 {
        self.counts.values().map(|n| n - 1).sum()
    }

    fn deliver(&mut self, idx: u32) {
        let n = self.counts.entry(idx).or_insert(0);
        if *n == 0 {
            self.order.push(idx);
        }
        *n += 1;
    }

    /// Reads and acknowledges until `want` distinct indices arrived, `silence` passed
    /// without a packet, or the connection dropped.
    pub async fn run(&mut self, c: &mut RawClient, want: Option<usize>, silence: Duration) -> Stop {
        loop {
            if want.is_some_and(|n| self.counts.len() >= n) && self.awaiting_rel.is_empty() {
                return Stop::Count;
            }
            let reply = match c.next_event(silence).await {
                Event::Packet(Packet::Publish(p)) => {
                    self.publishes += 1;
                    let text = std::str::from_utf8(&p.payload).expect("utf-8 payload");
                    let idx: u32 = text
                        .parse()
                        .unwrap_or_else(|_| panic!("payload {text:?} on {}", p.topic));
                    if self.slow_every > 0 && self.publishes % self.slow_every == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    match (p.qos(), p.packet_id()) {
                        (QoS::AtMostOnce, _) => {
                            self.deliver(idx);
                            None
                        }
                        (QoS::AtLeastOnce, Some(id)) => {
                            self.deliver(idx);
                            Some(Packet::PubAck(PubResponse::new(id)))
                        }
                        (QoS::ExactlyOnce, Some(id)) => {
                            match self.awaiting_rel.get(&id.get()) {
                                None => {
                                    self.awaiting_rel.insert(id.get(), idx);
                                    self.deliver(idx);
                                }
                                // A re-send of an unreleased id must be the same message:
                                // otherwise method B would swallow a new one.
                                Some(&was) => {
                                    assert_eq!(
                                        was,
                                        idx,
                                        "QoS 2 packet id {} reused for message {idx} before \
                                         the PUBREL of message {was}",
                                        id.get()
                                    );
                                    self.suppressed += 1;
                                }
                            }
                            Some(Packet::PubRec(PubResponse::new(id)))
                        }
                        _ => panic!("QoS {:?} PUBLISH without packet id", p.qos()),
                    }
                }
                Event::Packet(Packet::PubRel(r)) => {
                    self.awaiting_rel.remove(&r.packet_id.get());
                    Some(Packet::PubComp(PubResponse::new(r.packet_id)))
                }
                Event::Packet(Packet::Disconnect(_)) | Event::Closed | Event::Error(_) => {
                    return Stop::Closed
                }
                Event::Timeout => return Stop::Silence,
                Event::Packet(other) => panic!("subscriber: unexpected {other:?}"),
            };
            if let Some(reply) = reply {
                if c.try_send(reply).await.is_err() {
                    return Stop::Closed;
                }
            }
        }
    }
}

/// Connects `id` with 3.1.1 (clean session 0) and returns the client and session present.
pub async fn connect_persistent(broker: &BrokerProcess, id: &str) -> (RawClient, bool) {
    let mut c = RawClient::open(broker.addr()).await;
    let ack = c.connect_v311(id, false, 60).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK of {id}");
    (c, ack.session_present)
}

/// Connects `id` persistently (3.1.1, clean session 0; asserts no session existed),
/// subscribes to `filter` at `qos` and disconnects normally.
pub async fn subscribe_offline(broker: &BrokerProcess, id: &str, filter: &str, qos: QoS) {
    let (mut c, present) = connect_persistent(broker, id).await;
    assert!(!present, "{id}: no session should exist yet");
    let ack = c.subscribe(&[(filter, qos)]).await;
    assert_eq!(ack.reasons.len(), 1);
    assert!(
        !ack.reasons[0].is_error(),
        "SUBACK of {id}: {:?}",
        ack.reasons
    );
    c.disconnect().await;
}

/// Publishes `n` retained QoS 1 messages: payload `retained-i` on `d/r/i`.
pub async fn publish_retained(c: &mut RawClient, n: u32) {
    for i in 0..n {
        let payload = format!("retained-{i}");
        c.publish(
            &format!("d/r/{i}"),
            QoS::AtLeastOnce,
            true,
            payload.as_bytes(),
        )
        .await;
    }
}

/// A new clean client subscribing to `d/r/#` gets exactly the `n` retained messages of
/// [`publish_retained`], with their payloads and the retain flag.
pub async fn check_retained(broker: &BrokerProcess, n: u32) {
    let mut c = RawClient::connected_v311(broker.addr(), "retained-reader", true).await;
    c.subscribe(&[("d/r/#", QoS::AtLeastOnce)]).await;
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let p = match c.next_event(super::RECV_TIMEOUT).await {
            Event::Packet(Packet::Publish(p)) => p,
            other => panic!(
                "retained messages: got {} of {n}, then {other:?}; seen {:?}",
                seen.len(),
                seen.keys().collect::<Vec<_>>()
            ),
        };
        c.ack(&p).await;
        assert!(
            p.retain,
            "retained copy of {} without the retain flag",
            p.topic
        );
        let payload = String::from_utf8(p.payload.to_vec()).expect("utf-8");
        assert!(
            seen.insert(p.topic.as_str().to_owned(), payload).is_none(),
            "retained {} delivered twice",
            p.topic
        );
    }
    for i in 0..n {
        assert_eq!(
            seen.get(&format!("d/r/{i}")).map(String::as_str),
            Some(format!("retained-{i}").as_str()),
            "retained message of d/r/{i}"
        );
    }
    c.expect_nothing(Duration::from_millis(300)).await;
    c.disconnect().await;
}

/// Acknowledged indices that `col` never delivered.
pub fn missing(acked: &std::collections::BTreeSet<u32>, col: &Collector) -> Vec<u32> {
    acked
        .iter()
        .filter(|i| !col.counts.contains_key(i))
        .copied()
        .collect()
}
