//! `conns`: open many idle connections (optionally each with one subscription), measure
//! the connect(+subscribe) rate and the broker's resident memory per connection.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::conn::Conn;
use crate::report::Report;
use crate::sys::{self, CpuMeter};
use crate::Common;

pub struct ConnsSpec {
    pub connections: usize,
    pub subscribe: bool,
    /// Handshakes in progress at once.
    pub concurrency: usize,
    /// Idle time with everything open before the second RSS sample.
    pub hold: Duration,
    /// Loopback source addresses to spread connections over (0: auto).
    pub source_ips: usize,
}

/// Source addresses: several of 127.0.0.0/8 for a loopback target with many connections
/// (each has its own ephemeral port range: 20k connections use most of one), else none.
fn sources(host: &str, connections: usize, wanted: usize) -> Vec<Option<IpAddr>> {
    let loopback = host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    let n = match wanted {
        0 if loopback => connections.div_ceil(4000),
        0 => 1,
        n => n,
    };
    if n <= 1 || !loopback {
        return vec![None];
    }
    (1..=n.min(250) as u8)
        .map(|i| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))))
        .collect()
}

pub async fn run(c: &Common, spec: ConnsSpec, mut rep: Report) -> Result<Report> {
    let fd_limit = sys::raise_fd_limit();
    if spec.connections as u64 + 32 > fd_limit {
        eprintln!(
            "starling-bench: warning: {} connections but the fd limit is {fd_limit}; some will fail",
            spec.connections
        );
    }
    let deadline = Instant::now() + Duration::from_secs(c.duration_secs);
    let (addr, version, qos) = (c.addr(), c.version()?, c.qos()?);
    let tag = format!("sb{}-conns", std::process::id());
    rep.rss_before = c.broker_pid.and_then(sys::rss_bytes);
    let (gen_cpu, broker_cpu) = (CpuMeter::start(None), CpuMeter::start(c.broker_pid));
    let t0 = Instant::now();

    let sources = sources(&c.host, spec.connections, spec.source_ips);
    let gate = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..spec.connections {
        let (gate, addr, id) = (gate.clone(), addr.clone(), format!("{tag}-{i}"));
        let (subscribe, source) = (spec.subscribe, sources[i % sources.len()]);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut conn = Conn::open(&addr, source, version, &id, deadline).await?;
            if subscribe {
                let filter = format!("bench/conns/{i}");
                conn.subscribe(std::slice::from_ref(&filter), qos, deadline)
                    .await?;
            }
            anyhow::Ok(conn)
        });
    }
    let mut open = Vec::with_capacity(spec.connections);
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(conn) => open.push(conn),
            Err(e) => {
                failed += 1;
                rep.error(Some(format!("{e:#}")));
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    rep.gen_cpu_pct = gen_cpu.percent(secs);
    rep.broker_cpu_pct = broker_cpu.percent(secs);
    sleep_until((Instant::now() + spec.hold).min(deadline)).await;
    rep.rss_after = c.broker_pid.and_then(sys::rss_bytes);
    rep.broker_rss = rep.rss_after;
    if let (Some(before), Some(after)) = (rep.rss_before, rep.rss_after) {
        if !open.is_empty() {
            rep.rss_per_conn = Some((after as i64 - before as i64) / open.len() as i64);
        }
    }
    rep.connections = Some(spec.connections);
    rep.connected = Some(open.len());
    rep.failed = Some(failed);
    rep.secs = (secs * 1e4).round() / 1e4;
    rep.conn_per_sec = (secs > 0.0).then(|| (open.len() as f64 / secs).round());
    let close_by = Instant::now() + Duration::from_secs(5);
    futures::future::join_all(open.into_iter().map(|c| c.disconnect(close_by))).await;
    Ok(rep)
}
