//! `conns`: open many idle connections (optionally each with one subscription), measure
//! the connect(+subscribe) rate and the broker's resident memory per connection.
//!
//! The generator should cost the broker's measurement as little as it can: `--concurrency`
//! worker tasks each open connections one after the other (no task, timer or buffer per
//! connection), from handshake packets encoded once ([`crate::wire`]), and keep only the
//! socket of each open connection.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use bytes::{Buf, BytesMut};
use starling::protocol::ProtocolVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::report::Report;
use crate::sys::{self, CpuMeter};
use crate::tls::Stream;
use crate::wire::{self, Frame, Template};
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

/// What every worker shares.
struct Plan {
    addr: String,
    sources: Vec<Option<IpAddr>>,
    version: ProtocolVersion,
    connect: Template,
    subscribe: Option<Template>,
    /// The next connection number to open.
    next: AtomicUsize,
    total: usize,
}

/// What one worker opened, and how many it failed to.
#[derive(Default)]
struct Opened {
    open: Vec<Stream>,
    errors: Vec<String>,
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
    let (version, qos) = (c.version()?, c.qos()?);
    let width = wire::width(spec.connections);
    let tag = format!("sb{}-conns", std::process::id());
    let plan = Arc::new(Plan {
        addr: c.addr(),
        sources: sources(&c.host, spec.connections, spec.source_ips),
        version,
        connect: wire::connect(version, &tag, width)?,
        subscribe: match spec.subscribe {
            true => Some(wire::subscribe(version, qos, width)?),
            false => None,
        },
        next: AtomicUsize::new(0),
        total: spec.connections,
    });
    rep.rss_before = c.broker_pid.and_then(sys::rss_bytes);
    let (gen_cpu, broker_cpu) = (CpuMeter::start(None), CpuMeter::start(c.broker_pid));
    let t0 = Instant::now();

    let mut tasks = JoinSet::new();
    for _ in 0..spec.concurrency.max(1).min(spec.connections.max(1)) {
        tasks.spawn(worker(Arc::clone(&plan), deadline));
    }
    let mut open = Vec::with_capacity(spec.connections);
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        let opened = joined?;
        open.extend(opened.open);
        failed += opened.errors.len();
        for e in opened.errors {
            rep.error(Some(e));
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
    futures::future::join_all(open.into_iter().map(|s| disconnect(s, close_by))).await;
    Ok(rep)
}

/// Opens connections one after the other until every number is taken or the deadline;
/// a connection still shaking hands at the deadline counts as failed.
async fn worker(plan: Arc<Plan>, deadline: Instant) -> Opened {
    let mut opened = Opened::default();
    let (mut out, mut rbuf) = (Vec::with_capacity(128), BytesMut::with_capacity(256));
    loop {
        let n = plan.next.fetch_add(1, Ordering::Relaxed);
        if n >= plan.total {
            return opened;
        }
        let handshake = open_one(&plan, n, &mut out, &mut rbuf);
        match timeout_at(deadline, handshake).await {
            Ok(Ok(stream)) => opened.open.push(stream),
            Ok(Err(e)) => opened.errors.push(format!("{e:#}")),
            Err(_) => {
                // This one and every number not yet taken.
                let left = plan.next.swap(plan.total, Ordering::Relaxed);
                let missed = plan.total.saturating_sub(left) + 1;
                for _ in 0..missed {
                    opened
                        .errors
                        .push("deadline reached before the handshake".into());
                }
                return opened;
            }
        }
    }
}

/// TCP connect, CONNECT, CONNACK, then SUBSCRIBE and SUBACK when the plan has one.
async fn open_one(plan: &Plan, n: usize, out: &mut Vec<u8>, rbuf: &mut BytesMut) -> Result<Stream> {
    let source = plan.sources[n % plan.sources.len()];
    let tcp = crate::conn::tcp_connect(&plan.addr, source).await?;
    // Plain TCP needs no TCP_NODELAY (a system call per connection): each packet waits
    // for the broker's answer before the next, so Nagle never holds one back. TLS does:
    // the CONNECT follows the client's Finished record before any answer.
    if crate::tls::enabled() {
        tcp.set_nodelay(true)?;
    }
    let mut stream = crate::tls::wrap(tcp, &plan.addr).await?;
    rbuf.clear();
    plan.connect.fill(n, out);
    write(&mut stream, out).await?;
    if !read_until(&mut stream, rbuf, |f| f.connack()).await? {
        bail!("connection closed by the broker before CONNACK");
    }
    if let Some(subscribe) = &plan.subscribe {
        subscribe.fill(n, out);
        write(&mut stream, out).await?;
        if !read_until(&mut stream, rbuf, |f| f.suback(plan.version)).await? {
            bail!("connection closed by the broker before SUBACK");
        }
    }
    Ok(stream)
}

async fn write(stream: &mut Stream, bytes: &[u8]) -> Result<()> {
    stream.write_all(bytes).await?;
    // TLS may keep the last records until flushed (a no-op on plain TCP).
    stream.flush().await?;
    Ok(())
}

/// Reads until `wanted` accepts a packet (`Ok(true)`; packets it passes over with
/// `Ok(false)` are skipped); `Ok(false)` on end of input.
async fn read_until(
    stream: &mut Stream,
    rbuf: &mut BytesMut,
    wanted: impl Fn(&Frame<'_>) -> Result<bool>,
) -> Result<bool> {
    loop {
        while let Some(frame) = Frame::parse(rbuf)? {
            let (found, len) = (wanted(&frame)?, frame.len);
            rbuf.advance(len);
            if found {
                return Ok(true);
            }
        }
        if rbuf.capacity() - rbuf.len() < 64 {
            rbuf.reserve(4096);
        }
        if stream.read_buf(rbuf).await? == 0 {
            return Ok(false);
        }
    }
}

/// Sends DISCONNECT and waits (until `deadline`) for the broker to close first, so
/// that TIME_WAIT lands on the broker's side and not on the generator's ephemeral
/// ports (thousands of those slow down every later connect()).
async fn disconnect(mut stream: Stream, deadline: Instant) {
    if timeout_at(deadline, write(&mut stream, &wire::DISCONNECT))
        .await
        .map_err(|_| anyhow!("timed out"))
        .and_then(|r| r)
        .is_err()
    {
        return;
    }
    let mut sink = [0u8; 256];
    while let Ok(Ok(n)) = timeout_at(deadline, stream.read(&mut sink)).await {
        if n == 0 {
            return;
        }
    }
}
