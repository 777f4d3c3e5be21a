//! Message flow scenarios (fanin, fanout, pairs): connect and subscribe everyone, start
//! the clock, run one task per connection, then merge what the subscribers saw.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use futures::future::try_join_all;
use starling::topic::TopicName;
use tokio::time::Instant;

use crate::conn::Conn;
use crate::publisher::{self, PubSpec, Window};
use crate::report::Report;
use crate::subscriber::{self, SubSpec};
use crate::sys::{self, CpuMeter};
use crate::track::{self, Tracker};
use crate::Common;

/// One subscriber: its filter and the publishers (a contiguous index range) it hears.
pub struct SubPlan {
    pub filter: String,
    pub first_publisher: u32,
    pub publishers: usize,
}

pub struct Plan {
    /// One topic per publisher.
    pub pub_topics: Vec<String>,
    /// Messages each publisher sends.
    pub per_pub: u64,
    pub subs: Vec<SubPlan>,
    /// `pairs`: end-to-end window; subscriber i and publisher i share one.
    pub window: Option<u64>,
}

pub async fn run(c: &Common, plan: Plan, mut rep: Report) -> Result<Report> {
    let deadline = Instant::now() + Duration::from_secs(c.duration_secs);
    let addr = c.addr();
    let (version, qos) = (c.version()?, c.qos()?);
    let tag = format!("sb{}-{}", std::process::id(), rep.scenario);
    let persistent = c.persistent;

    let sub_addr = c.sub_addr();
    let subs = try_join_all(plan.subs.iter().enumerate().map(|(i, sp)| {
        let (addr, id) = (sub_addr.clone(), format!("{tag}-s{i}"));
        async move {
            let mut conn =
                Conn::open_session(&addr, None, version, &id, persistent, deadline).await?;
            conn.subscribe(std::slice::from_ref(&sp.filter), qos, deadline)
                .await?;
            anyhow::Ok(conn)
        }
    }))
    .await
    .map_err(|e| anyhow!("connecting subscribers: {e:#}"))?;
    if c.settle_ms > 0 {
        tokio::time::sleep(Duration::from_millis(c.settle_ms)).await;
    }
    let pubs = try_join_all((0..plan.pub_topics.len()).map(|i| {
        let (addr, id) = (addr.clone(), format!("{tag}-p{i}"));
        async move { Conn::open(&addr, None, version, &id, deadline).await }
    }))
    .await
    .map_err(|e| anyhow!("connecting publishers: {e:#}"))?;
    let windows: Vec<Arc<Window>> = match plan.window {
        Some(_) => plan.pub_topics.iter().map(|_| Arc::default()).collect(),
        None => Vec::new(),
    };

    let pubs_done = Arc::new(AtomicBool::new(false));
    let (gen_cpu, broker_cpu) = (CpuMeter::start(None), CpuMeter::start(c.broker_pid));
    let start = std::time::Instant::now();
    let t0 = Instant::now();

    let mut sub_tasks = Vec::with_capacity(subs.len());
    for (i, (conn, sp)) in subs.into_iter().zip(&plan.subs).enumerate() {
        let spec = SubSpec {
            expected: sp.publishers as u64 * plan.per_pub,
            drain: Duration::from_millis(c.drain_ms),
            window: windows.get(i).cloned(),
        };
        let tracker = Tracker::new(sp.first_publisher, sp.publishers, plan.per_pub, true);
        let done = pubs_done.clone();
        sub_tasks.push(tokio::spawn(subscriber::run(
            conn, spec, tracker, start, done, deadline,
        )));
    }
    let mut pub_tasks = Vec::with_capacity(pubs.len());
    for (i, conn) in pubs.into_iter().enumerate() {
        let topic = TopicName::new(plan.pub_topics[i].as_str())
            .map_err(|e| anyhow!("topic {}: {e}", plan.pub_topics[i]))?;
        let spec = PubSpec {
            index: i as u32,
            topic,
            messages: plan.per_pub,
            qos,
            size: c.size,
            inflight: c.inflight,
            batch: c.batch,
            window: plan.window.map(|w| (w, windows[i].clone())),
            stall: Duration::from_millis(c.drain_ms),
        };
        pub_tasks.push(tokio::spawn(publisher::run(conn, spec, start, deadline)));
    }

    let mut conns = Vec::new();
    let (mut sent_by, mut completed, mut bad_acks) = (Vec::new(), 0, 0);
    for task in pub_tasks {
        let (conn, r) = task.await?;
        conns.push(conn);
        sent_by.push(r.sent);
        completed += r.completed;
        bad_acks += r.bad_acks;
        rep.error(r.error);
    }
    pubs_done.store(true, std::sync::atomic::Ordering::Release);
    let (mut received, mut unique, mut dup, mut reorder, mut foreign) = (0, 0, 0, 0, 0);
    let mut latencies = Vec::new();
    let mut end = None;
    for task in sub_tasks {
        let (conn, mut r) = task.await?;
        conns.push(conn);
        received += r.received;
        unique += r.tracker.unique;
        dup += r.tracker.dup;
        reorder += r.tracker.reorder;
        foreign += r.tracker.foreign;
        latencies.append(&mut r.tracker.latencies);
        end = end.max(r.last_recv);
        rep.error(r.error);
    }
    let secs = end.map_or(0.0, |e: Instant| (e - t0).as_secs_f64());
    rep.gen_cpu_pct = gen_cpu.percent(secs);
    rep.broker_cpu_pct = broker_cpu.percent(secs);
    rep.broker_rss = c.broker_pid.and_then(sys::rss_bytes);

    let expected: u64 = plan.subs.iter().map(|s| s.publishers as u64).sum::<u64>() * plan.per_pub;
    // Loss is counted against what was actually sent (less than planned after a deadline).
    let expected_sent: u64 = plan
        .subs
        .iter()
        .map(|s| {
            let first = s.first_publisher as usize;
            sent_by[first..first + s.publishers].iter().sum::<u64>()
        })
        .sum();
    let sent: u64 = sent_by.iter().sum();
    rep.messages = Some(plan.per_pub * plan.pub_topics.len() as u64);
    rep.expected = Some(expected);
    rep.sent = Some(sent);
    rep.completed = Some(completed);
    rep.received = Some(received);
    rep.lost = Some(expected_sent.saturating_sub(unique));
    rep.dup = Some(dup);
    rep.reorder = Some(reorder);
    rep.foreign = (foreign > 0).then_some(foreign);
    rep.bad_acks = (bad_acks > 0).then_some(bad_acks);
    rep.secs = (secs * 1e4).round() / 1e4;
    rep.msg_per_sec = (secs > 0.0).then(|| (unique as f64 / secs).round());
    if let Some((p50, p99, max)) = track::percentiles_us(&mut latencies) {
        (rep.p50_us, rep.p99_us, rep.max_us) = (
            Some(sys::round1(p50)),
            Some(sys::round1(p99)),
            Some(sys::round1(max)),
        );
    }

    let close_by = Instant::now() + Duration::from_secs(2);
    futures::future::join_all(conns.into_iter().map(|c| c.disconnect(close_by))).await;
    Ok(rep)
}

pub fn fanin(publishers: usize, messages: u64) -> Plan {
    Plan {
        pub_topics: (0..publishers)
            .map(|i| format!("bench/fanin/{i}"))
            .collect(),
        per_pub: messages,
        subs: vec![SubPlan {
            filter: "bench/fanin/+".into(),
            first_publisher: 0,
            publishers,
        }],
        window: None,
    }
}

pub fn fanout(subscribers: usize, messages: u64) -> Plan {
    Plan {
        pub_topics: vec!["bench/fanout".into()],
        per_pub: messages,
        subs: (0..subscribers)
            .map(|_| SubPlan {
                filter: "bench/fanout".into(),
                first_publisher: 0,
                publishers: 1,
            })
            .collect(),
        window: None,
    }
}

pub fn pairs(pairs: usize, window: u64, messages: u64, prefix: &str) -> Plan {
    Plan {
        pub_topics: (0..pairs).map(|i| format!("{prefix}/{i}")).collect(),
        per_pub: messages,
        subs: (0..pairs)
            .map(|i| SubPlan {
                filter: format!("{prefix}/{i}"),
                first_publisher: i as u32,
                publishers: 1,
            })
            .collect(),
        window: Some(window),
    }
}
