//! In-process clients against loopback TCP (`cargo bench --bench local`): one broker in
//! this process, one publisher and one subscriber, first as `LocalClient`s, then as MQTT
//! clients over 127.0.0.1 (`starling-bench`'s client code), alternately, `ROUNDS`
//! times. Throughput at QoS 0 and 1, then one-at-a-time round trips (p50, p99), each
//! with the process's CPU time and voluntary context switches per message. Both kinds
//! of client run on this program's thread (the actix `System`'s), the broker on its
//! worker thread (`WORKERS`). Prints a Markdown table of the medians on stdout (every
//! round on stderr); exits 1 when a measurement failed or QoS 1 lost or duplicated a
//! message. See benches/README.md.

// The TCP side is the load generator's own client code, included by path (it is a
// binary's modules, not a library); what this bench does not call stays unused.
#[allow(dead_code)]
#[path = "../../src/bin/starling-bench/conn.rs"]
mod conn;
#[path = "../../src/bin/starling-bench/publisher.rs"]
mod publisher;
#[allow(dead_code)]
#[path = "../../src/bin/starling-bench/subscriber.rs"]
mod subscriber;
#[allow(dead_code)]
#[path = "../../src/bin/starling-bench/sys.rs"]
mod sys;
// Plain TCP here (no --tls-ca), but conn.rs goes through it.
#[allow(dead_code)]
#[path = "../../src/bin/starling-bench/tls.rs"]
mod tls;
// Its unit tests are starling-bench's.
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/starling-bench/track.rs"]
mod track;

mod inproc;
mod measure;
mod report;
mod tcp;

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use starling::protocol::QoS;
use starling::{Broker, BrokerHandle, Config};
use tokio::time::Instant;

use crate::measure::Spec;
use crate::report::{Kind, Results, Side};

/// The same allocator as the broker and `starling-bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The whole run may not outlive this.
const CAP: Duration = Duration::from_secs(60);
/// Nor may any one measurement.
const EACH: Duration = Duration::from_secs(10);

/// Sizes of the run, from the environment (defaults in brackets): `ROUNDS` [3],
/// `QOS0_MESSAGES` [200000], `QOS1_MESSAGES` [100000], `LATENCY_MESSAGES` [20000],
/// `WINDOW` [100], `SIZE` [64], `WORKERS` [1], `SIDES` [`both`; `inproc` or `tcp` for
/// one side only, e.g. under `perf record`].
pub struct Opts {
    pub rounds: usize,
    pub qos0_messages: u64,
    pub qos1_messages: u64,
    pub latency_messages: u64,
    pub window: usize,
    pub size: usize,
    pub workers: usize,
    pub sides: Vec<Side>,
}

impl Opts {
    fn from_env() -> Result<Opts> {
        // `cargo test --all-targets` runs this without `--bench` (and unoptimised): a
        // small smoke run there, the full one under `cargo bench`.
        let smoke = !std::env::args().any(|a| a == "--bench");
        let scale = |n: u64| if smoke { (n / 100).max(1) } else { n };
        Ok(Opts {
            rounds: env("ROUNDS", if smoke { 1 } else { 3 })?.max(1),
            qos0_messages: env("QOS0_MESSAGES", scale(200_000))?.max(1),
            qos1_messages: env("QOS1_MESSAGES", scale(100_000))?.max(1),
            latency_messages: env("LATENCY_MESSAGES", scale(20_000))?.max(1),
            window: env("WINDOW", 100)?.clamp(1, 65_000),
            size: env("SIZE", 64)?.max(track::HEADER),
            workers: env("WORKERS", 1)?.max(1),
            sides: match std::env::var("SIDES").as_deref() {
                Err(_) | Ok("both") => vec![Side::InProcess, Side::Tcp],
                Ok("inproc") => vec![Side::InProcess],
                Ok("tcp") => vec![Side::Tcp],
                Ok(v) => bail!("SIDES={v}: both, inproc or tcp"),
            },
        })
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|_| anyhow!("{name}={v}: not a number")),
        Err(_) => Ok(default),
    }
}

/// The broker: a loopback listener on a free port, the store in `dir`, and the limits
/// `benches/compare.sh` lifts (queues unbounded, a large in-flight window).
fn config(dir: &std::path::Path) -> Result<Config> {
    let mut config = Config::default();
    config.listeners[0].bind = "127.0.0.1:0".parse()?;
    config.storage.data_dir = dir.to_path_buf();
    config.limits.max_queued_messages = 10_000_000;
    config.limits.max_queued_bytes = 4 << 30;
    config.limits.max_inflight = 65_535;
    Ok(config)
}

async fn run(opts: &Opts) -> Result<Results> {
    let dir = tempfile::tempdir()?;
    let broker = Broker::new(config(dir.path())?)
        .workers(opts.workers)
        .start()
        .await?;
    let addr = broker
        .local_addrs()
        .first()
        .ok_or_else(|| anyhow!("no listener"))?
        .to_string();
    let mut results = Results::default();
    for round in 0..opts.rounds {
        // Alternate which side goes first.
        let mut sides = opts.sides.clone();
        if round % 2 == 1 {
            sides.reverse();
        }
        for kind in Kind::ALL {
            for &side in &sides {
                let spec = spec(opts, kind, side, round);
                measure(&broker, &addr, kind, side, &spec, &mut results).await?;
            }
        }
    }
    broker.stop().await;
    Ok(results)
}

fn spec(opts: &Opts, kind: Kind, side: Side, round: usize) -> Spec {
    let messages = match kind {
        Kind::Throughput(QoS::AtMostOnce) => opts.qos0_messages,
        Kind::Throughput(_) => opts.qos1_messages,
        Kind::Latency(_) => opts.latency_messages,
    };
    Spec {
        name: format!("{}-{}-r{round}", kind.tag(), side.tag()),
        qos: kind.qos(),
        messages,
        size: opts.size,
        window: opts.window,
        deadline: Instant::now() + EACH,
    }
}

async fn measure(
    broker: &BrokerHandle,
    addr: &str,
    kind: Kind,
    side: Side,
    spec: &Spec,
    results: &mut Results,
) -> Result<()> {
    let what = format!("{} {}", kind.tag(), side.tag());
    match (kind, side) {
        (Kind::Throughput(_), Side::InProcess) => {
            let pair = inproc::pair(broker, spec);
            let t = on_client_thread(broker, inproc::throughput(pair, spec.clone())).await?;
            results.throughput(kind, side, t, &what);
            Ok(())
        }
        (Kind::Throughput(_), Side::Tcp) => {
            let t = tcp::throughput(addr, spec).await?;
            results.throughput(kind, side, t, &what);
            Ok(())
        }
        (Kind::Latency(_), Side::InProcess) => {
            let pair = inproc::pair(broker, spec);
            let l = on_client_thread(broker, inproc::latency(pair, spec.clone())).await?;
            results.latency(kind, side, l, &what);
            Ok(())
        }
        (Kind::Latency(_), Side::Tcp) => {
            let l = tcp::latency(addr, spec).await?;
            results.latency(kind, side, l, &what);
            Ok(())
        }
    }
}

/// Runs the in-process side on this thread, or with `CLIENT_THREAD=broker` on the
/// broker's own (the router's) arbiter, where a hop needs no thread switch.
async fn on_client_thread<T: Send + 'static>(
    broker: &BrokerHandle,
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    if std::env::var("CLIENT_THREAD").as_deref() != Ok("broker") {
        return work.await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    broker.arbiter().spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.await
        .map_err(|_| anyhow!("the broker's arbiter dropped the measurement"))?
}

fn main() {
    // `cargo bench` passes `--bench` (and any filter): this bench takes none.
    let opts = match Opts::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("local bench: {e:#}");
            std::process::exit(2);
        }
    };
    let load_before = report::load_average();
    let outcome = actix_rt::System::new().block_on(async {
        match tokio::time::timeout(CAP, run(&opts)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!("the run took over {CAP:?}")),
        }
    });
    match outcome {
        Ok(results) => {
            let load = (load_before, report::load_average());
            println!("{}", results.table(&opts, load));
            if let Some(fault) = results.fault() {
                eprintln!("local bench: {fault}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("local bench: {e:#}");
            std::process::exit(1);
        }
    }
}
