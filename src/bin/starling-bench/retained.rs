//! `retained`: one client stores N retained messages (`bench/retained/<i>`, QoS 1, a
//! window of `--inflight`), then one subscriber subscribes to `bench/retained/#` at
//! `--qos` (0 or 1) and the clock runs from its SUBSCRIBE until every retained message
//! has arrived. Reports that rate and the broker's RSS once they are stored.

use anyhow::{anyhow, bail, Result};
use starling::protocol::{
    Flow, Packet, PacketId, Properties, PubResponse, Publish, QoS, Subscribe, SubscriptionOptions,
};
use starling::topic::{TopicFilter, TopicName};
use tokio::time::Instant;

use crate::conn::Conn;
use crate::report::Report;
use crate::sys::{self, CpuMeter};
use crate::{track, Common};

const FILTER: &str = "bench/retained/#";

pub async fn run(c: &Common, messages: u64, mut rep: Report) -> Result<Report> {
    let deadline = Instant::now() + std::time::Duration::from_secs(c.duration_secs);
    let (version, qos) = (c.version()?, c.qos()?);
    if qos == QoS::ExactlyOnce {
        bail!("retained runs at --qos 0 or 1");
    }
    let tag = format!("sb{}-retained", std::process::id());
    let mut publisher = Conn::open(&c.addr(), None, version, &format!("{tag}-p"), deadline).await?;
    store(&mut publisher, messages, c, deadline).await?;
    rep.rss_before = c.broker_pid.and_then(sys::rss_bytes);

    let mut sub = Conn::open(&c.addr(), None, version, &format!("{tag}-s"), deadline).await?;
    let (gen_cpu, broker_cpu) = (CpuMeter::start(None), CpuMeter::start(c.broker_pid));
    let t0 = Instant::now();
    let received = receive_all(&mut sub, messages, qos, deadline).await;
    let secs = t0.elapsed().as_secs_f64();
    let (received, error) = match received {
        Ok(n) => (n, None),
        Err((n, e)) => (n, Some(e.to_string())),
    };
    rep.error(error);
    rep.gen_cpu_pct = gen_cpu.percent(secs);
    rep.broker_cpu_pct = broker_cpu.percent(secs);
    rep.broker_rss = c.broker_pid.and_then(sys::rss_bytes);
    rep.messages = Some(messages);
    rep.expected = Some(messages);
    rep.received = Some(received);
    rep.lost = Some(messages.saturating_sub(received));
    rep.secs = (secs * 1e4).round() / 1e4;
    rep.msg_per_sec = (secs > 0.0).then(|| (received as f64 / secs).round());
    let close_by = Instant::now() + std::time::Duration::from_secs(2);
    publisher.disconnect(close_by).await;
    sub.disconnect(close_by).await;
    Ok(rep)
}

/// Publishes the retained messages at QoS 1, at most `--inflight` unacknowledged.
async fn store(conn: &mut Conn, messages: u64, c: &Common, deadline: Instant) -> Result<()> {
    let window = c
        .inflight
        .min(usize::from(conn.receive_maximum.unwrap_or(u16::MAX))) as u64;
    let (mut sent, mut acked) = (0u64, 0u64);
    while acked < messages {
        while sent < messages && sent - acked < window {
            let id = PacketId::new((sent % 65_535 + 1) as u16);
            let topic = TopicName::new(format!("bench/retained/{sent}"))
                .map_err(|e| anyhow!("topic: {e}"))?;
            conn.queue(&Packet::Publish(Publish {
                dup: false,
                flow: Flow::new(QoS::AtLeastOnce, id).expect("an id at QoS 1"),
                retain: true,
                topic,
                properties: Properties::default(),
                payload: track::payload(0, sent, 0, c.size),
            }));
            sent += 1;
        }
        conn.flush(deadline).await?;
        match conn.next_packet(deadline).await? {
            Packet::PubAck(ack) if !ack.reason.is_error() => acked += 1,
            Packet::PubAck(ack) => bail!("retained publish refused: {}", ack.reason),
            Packet::Disconnect(d) => bail!("DISCONNECT {} while storing", d.reason),
            _ => {}
        }
    }
    Ok(())
}

/// Subscribes and counts retained PUBLISHes (acknowledging QoS 1 ones) until all came.
async fn receive_all(
    conn: &mut Conn,
    messages: u64,
    qos: QoS,
    deadline: Instant,
) -> std::result::Result<u64, (u64, anyhow::Error)> {
    let filter = TopicFilter::new(FILTER).expect("a valid filter");
    conn.queue(&Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).expect("1 is a packet id"),
        properties: Properties::default(),
        filters: vec![(filter, SubscriptionOptions::with_qos(qos))],
    }));
    let mut received = 0u64;
    conn.flush(deadline).await.map_err(|e| (0, e))?;
    while received < messages {
        let packet = conn
            .next_packet(deadline)
            .await
            .map_err(|e| (received, e))?;
        match packet {
            Packet::Publish(p) if p.retain => {
                received += 1;
                if let Some(id) = p.flow.packet_id() {
                    conn.queue(&Packet::PubAck(PubResponse::new(id)));
                }
            }
            Packet::SubAck(ack) if ack.reasons.iter().any(|r| r.is_error()) => {
                return Err((received, anyhow!("SUBACK refused: {:?}", ack.reasons)));
            }
            Packet::Disconnect(d) => {
                return Err((received, anyhow!("DISCONNECT {} while receiving", d.reason)));
            }
            _ => {}
        }
        if !conn.has_queued() {
            continue;
        }
        // Acknowledge in bursts: whatever is already buffered is read first.
        if conn.read_buffer_empty() {
            conn.flush(deadline).await.map_err(|e| (received, e))?;
        }
    }
    conn.flush(deadline).await.map_err(|e| (received, e))?;
    Ok(received)
}
