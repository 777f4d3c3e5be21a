//! The loopback TCP side, with `starling-bench`'s own MQTT 3.1.1 client code (raw tokio
//! sockets, Starling's codec, batched writes): its publisher and subscriber tasks for
//! throughput, its `Conn` for the round trips. Both clients run on the embedding
//! application's thread, as the in-process ones do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use starling::protocol::{
    Flow, Packet, PacketId, Properties, ProtocolVersion, PubResponse, Publish, QoS,
};
use starling::topic::TopicName;
use tokio::time::Instant;

use crate::conn::Conn;
use crate::measure::{seq_of, Latency, Spec, Throughput, Usage, IDLE, ROUND_TRIP};
use crate::publisher::{self, PubSpec};
use crate::subscriber::{self, SubSpec};
use crate::track::Tracker;

/// PUBLISHes encoded into one write (`starling-bench --batch`).
const BATCH: usize = 64;

/// A publisher connection and a subscriber connection, subscribed to the spec's topic.
async fn clients(addr: &str, spec: &Spec) -> Result<(Conn, Conn)> {
    let v = ProtocolVersion::V311;
    let mut sub = Conn::open(addr, None, v, &spec.client_id("sub"), spec.deadline).await?;
    sub.subscribe(&[spec.topic()], spec.qos, spec.deadline)
        .await?;
    let publisher = Conn::open(addr, None, v, &spec.client_id("pub"), spec.deadline).await?;
    Ok((publisher, sub))
}

fn topic(spec: &Spec) -> Result<TopicName> {
    TopicName::new(spec.topic()).map_err(|e| anyhow!("topic: {e}"))
}

/// `starling-bench`'s publisher and subscriber tasks: QoS 0 sent without pause in
/// writes of [`BATCH`], QoS 1 with `spec.window` awaiting PUBACK.
pub async fn throughput(addr: &str, spec: &Spec) -> Result<Throughput> {
    let (publisher, sub) = clients(addr, spec).await?;
    let (n, pub_spec) = (spec.messages, pub_spec(spec)?);
    let pubs_done = Arc::new(AtomicBool::new(false));
    let start = std::time::Instant::now();
    let (t0, usage) = (Instant::now(), Usage::now());
    let sub_spec = SubSpec {
        expected: n,
        drain: IDLE,
        window: None,
    };
    let tracker = Tracker::new(0, 1, n, false);
    let done = Arc::clone(&pubs_done);
    let receiving = actix_rt::spawn(subscriber::run(
        sub,
        sub_spec,
        tracker,
        start,
        done,
        spec.deadline,
    ));
    let (publisher, sent) = publisher::run(publisher, pub_spec, start, spec.deadline).await;
    pubs_done.store(true, Ordering::Release);
    let (sub, got) = receiving.await?;
    let usage = usage.since();
    let mut error = sent.error.or(got.error);
    if sent.bad_acks > 0 {
        error = error.or(Some(format!("{} bad acks", sent.bad_acks)));
    }
    let tracker = got.tracker;
    let result = Throughput {
        received: tracker.unique,
        lost: sent.sent.saturating_sub(tracker.unique),
        dup: tracker.dup,
        reorder: tracker.reorder,
        secs: got.last_recv.map_or(0.0, |l| (l - t0).as_secs_f64()),
        usage,
        error,
    };
    close(publisher, sub).await;
    Ok(result)
}

fn pub_spec(spec: &Spec) -> Result<PubSpec> {
    Ok(PubSpec {
        index: 0,
        topic: topic(spec)?,
        messages: spec.messages,
        qos: spec.qos,
        size: spec.size,
        inflight: spec.window,
        batch: BATCH,
        window: None,
        stall: IDLE,
    })
}

async fn close(publisher: Conn, sub: Conn) {
    let by = Instant::now() + Duration::from_secs(2);
    futures::future::join(publisher.disconnect(by), sub.disconnect(by)).await;
}

/// `spec.messages` round trips, one at a time: the clock runs from just before the
/// PUBLISH is encoded and written until the subscriber has decoded it; the next round
/// trip starts once the QoS 1 acknowledgements are done (the subscriber's PUBACK sent,
/// the publisher's received).
pub async fn latency(addr: &str, spec: &Spec) -> Result<Latency> {
    let (mut publisher, mut sub) = clients(addr, spec).await?;
    let topic = topic(spec)?;
    let mut samples = Vec::with_capacity(spec.messages as usize);
    let usage = Usage::now();
    for seq in 0..spec.messages {
        let by = spec.deadline.min(Instant::now() + ROUND_TRIP);
        let id = match spec.qos {
            QoS::AtMostOnce => None,
            _ => PacketId::new((seq % 65_535) as u16 + 1),
        };
        let t0 = std::time::Instant::now();
        publisher.queue(&Packet::Publish(Publish {
            dup: false,
            flow: Flow::new(spec.qos, id).ok_or_else(|| anyhow!("QoS 2 is not measured"))?,
            retain: false,
            topic: topic.clone(),
            properties: Properties::default(),
            payload: crate::track::payload(0, seq, 0, spec.size),
        }));
        publisher.flush(by).await?;
        let p = next_publish(&mut sub, by).await?;
        let took = t0.elapsed();
        if seq_of(&p.payload) != Some(seq) {
            bail!("round trip {seq}: received {:?}", seq_of(&p.payload));
        }
        if let (Some(sub_id), Some(id)) = (p.packet_id(), id) {
            sub.queue(&Packet::PubAck(PubResponse::new(sub_id)));
            sub.flush(by).await?;
            expect_puback(&mut publisher, id, by).await?;
        }
        samples.push(took.as_nanos() as u64);
    }
    let usage = usage.since();
    close(publisher, sub).await;
    Ok(Latency { samples, usage })
}

async fn next_publish(sub: &mut Conn, by: Instant) -> Result<Publish> {
    loop {
        match sub.next_packet(by).await? {
            Packet::Publish(p) => return Ok(p),
            Packet::Disconnect(d) => bail!("DISCONNECT {} to the subscriber", d.reason),
            _ => {}
        }
    }
}

async fn expect_puback(publisher: &mut Conn, id: PacketId, by: Instant) -> Result<()> {
    loop {
        match publisher.next_packet(by).await? {
            Packet::PubAck(r) if r.packet_id == id => return Ok(()),
            Packet::Disconnect(d) => bail!("DISCONNECT {} to the publisher", d.reason),
            _ => {}
        }
    }
}
