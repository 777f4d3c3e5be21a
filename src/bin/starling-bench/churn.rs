//! `churn`: C clients subscribe to S distinct filters in all
//! (`bench/churn/<client>/<i / 100>/<i % 100>`, one in ten ending in `/+`), F filters per
//! SUBSCRIBE: the subscribe rate and the broker's RSS per subscription. Then every client
//! unsubscribes and re-subscribes its filters, F at a time, for `--cycles` rounds while
//! the trie stays full: the churn rate (filters per second, an UNSUBSCRIBE and a
//! SUBSCRIBE each counting one).

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use futures::future::try_join_all;
use starling::protocol::{
    Packet, PacketId, Properties, QoS, Subscribe, SubscriptionOptions, Unsubscribe,
};
use starling::topic::TopicFilter;
use tokio::sync::Barrier;
use tokio::time::Instant;

use crate::conn::Conn;
use crate::report::Report;
use crate::sys::{self, CpuMeter};
use crate::Common;

/// The shape of one run.
pub struct ChurnSpec {
    pub clients: usize,
    pub subscriptions: usize,
    pub per_packet: usize,
    pub cycles: usize,
}

pub async fn run(c: &Common, spec: ChurnSpec, mut rep: Report) -> Result<Report> {
    let deadline = Instant::now() + std::time::Duration::from_secs(c.duration_secs);
    let version = c.version()?;
    let tag = format!("sb{}-churn", std::process::id());
    let conns = try_join_all((0..spec.clients).map(|i| {
        let (addr, id) = (c.addr(), format!("{tag}-{i}"));
        async move { Conn::open(&addr, None, version, &id, deadline).await }
    }))
    .await
    .map_err(|e| anyhow!("connecting: {e:#}"))?;
    rep.rss_before = c.broker_pid.and_then(sys::rss_bytes);
    // Every task, and this one, meets here after each phase.
    let phase = Arc::new(Barrier::new(spec.clients + 1));
    let per_client = spec.subscriptions.div_ceil(spec.clients);
    let mut tasks = Vec::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let filters = filters_of(
            i,
            per_client.min(spec.subscriptions - (i * per_client).min(spec.subscriptions)),
        );
        let job = Job {
            filters,
            per_packet: spec.per_packet,
            cycles: spec.cycles,
            phase: phase.clone(),
            deadline,
        };
        tasks.push(tokio::spawn(job.run(conn)));
    }
    let broker_cpu = CpuMeter::start(c.broker_pid);
    let t0 = Instant::now();
    phase.wait().await;
    let subscribe_secs = t0.elapsed().as_secs_f64();
    rep.rss_after = c.broker_pid.and_then(sys::rss_bytes);
    let t1 = Instant::now();
    phase.wait().await;
    let churn_secs = t1.elapsed().as_secs_f64();
    rep.broker_cpu_pct = broker_cpu.percent(subscribe_secs + churn_secs);
    rep.broker_rss = c.broker_pid.and_then(sys::rss_bytes);
    let (mut subscribed, mut churned) = (0u64, 0u64);
    for task in tasks {
        let (conn, outcome) = task.await?;
        match outcome {
            Ok((s, ch)) => (subscribed, churned) = (subscribed + s, churned + ch),
            Err(e) => rep.error(Some(format!("{e:#}"))),
        }
        conn.disconnect(Instant::now() + std::time::Duration::from_secs(2))
            .await;
    }
    rep.connections = Some(spec.clients);
    rep.subscriptions = Some(subscribed);
    rep.sub_per_sec = Some((subscribed as f64 / subscribe_secs).round());
    rep.churn_per_sec =
        (churn_secs > 0.0 && churned > 0).then(|| (churned as f64 / churn_secs).round());
    if let (Some(before), Some(after)) = (rep.rss_before, rep.rss_after) {
        rep.rss_per_sub =
            (subscribed > 0).then(|| (after as f64 - before as f64) / subscribed as f64);
    }
    rep.secs = ((subscribe_secs + churn_secs) * 1e4).round() / 1e4;
    Ok(rep)
}

/// Client `i`'s `n` filters.
fn filters_of(i: usize, n: usize) -> Vec<TopicFilter> {
    (0..n)
        .map(|k| {
            let wild = if k % 10 == 9 { "/+" } else { "" };
            TopicFilter::new(format!("bench/churn/{i}/{}/{}{wild}", k / 100, k % 100))
                .expect("a valid filter")
        })
        .collect()
}

/// One client's work.
struct Job {
    filters: Vec<TopicFilter>,
    per_packet: usize,
    cycles: usize,
    phase: Arc<Barrier>,
    deadline: Instant,
}

impl Job {
    /// Subscribes everything, meets the others, churns, meets them again. The barrier
    /// is met even after an error, so that the run ends.
    async fn run(self, mut conn: Conn) -> (Conn, Result<(u64, u64)>) {
        let subscribed = self.subscribe_all(&mut conn).await;
        self.phase.wait().await;
        let churned = match subscribed {
            Ok(_) => self.churn(&mut conn).await,
            Err(_) => Ok(0),
        };
        self.phase.wait().await;
        let outcome = subscribed.and_then(|s| churned.map(|ch| (s, ch)));
        (conn, outcome)
    }

    async fn subscribe_all(&self, conn: &mut Conn) -> Result<u64> {
        for chunk in self.filters.chunks(self.per_packet) {
            request(conn, subscribe(chunk), self.deadline).await?;
        }
        Ok(self.filters.len() as u64)
    }

    async fn churn(&self, conn: &mut Conn) -> Result<u64> {
        let mut ops = 0u64;
        for _ in 0..self.cycles {
            for chunk in self.filters.chunks(self.per_packet) {
                let unsubscribe = Packet::Unsubscribe(Unsubscribe {
                    packet_id: id(),
                    properties: Properties::default(),
                    filters: chunk.to_vec(),
                });
                request(conn, unsubscribe, self.deadline).await?;
                request(conn, subscribe(chunk), self.deadline).await?;
                ops += 2 * chunk.len() as u64;
            }
        }
        Ok(ops)
    }
}

fn id() -> PacketId {
    PacketId::new(1).expect("1 is a packet id")
}

fn subscribe(filters: &[TopicFilter]) -> Packet {
    let options = SubscriptionOptions::with_qos(QoS::AtMostOnce);
    Packet::Subscribe(Subscribe {
        packet_id: id(),
        properties: Properties::default(),
        filters: filters.iter().map(|f| (f.clone(), options)).collect(),
    })
}

/// Sends `packet` and waits for its SUBACK or UNSUBACK (refusals are errors).
async fn request(conn: &mut Conn, packet: Packet, deadline: Instant) -> Result<()> {
    conn.queue(&packet);
    conn.flush(deadline).await?;
    loop {
        match conn.next_packet(deadline).await? {
            Packet::SubAck(ack) => {
                if let Some(bad) = ack.reasons.iter().find(|r| r.is_error()) {
                    bail!("SUBACK refused with reason {bad}");
                }
                return Ok(());
            }
            Packet::UnsubAck(_) => return Ok(()),
            Packet::Disconnect(d) => bail!("DISCONNECT {}", d.reason),
            _ => {}
        }
    }
}
