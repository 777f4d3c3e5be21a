//! `starling-bench`: an MQTT load generator speaking raw TCP with Starling's own codec.
//!
//! One scenario per run, one JSON line on stdout, logs on stderr. Every run is bounded by
//! `--duration-secs` and always exits by itself. See benches/README.md.

#[path = "starling-bench/churn.rs"]
mod churn;
#[path = "starling-bench/conn.rs"]
mod conn;
#[path = "starling-bench/conns.rs"]
mod conns;
#[path = "starling-bench/flow.rs"]
mod flow;
#[path = "starling-bench/publisher.rs"]
mod publisher;
#[path = "starling-bench/report.rs"]
mod report;
#[path = "starling-bench/retained.rs"]
mod retained;
#[path = "starling-bench/subscriber.rs"]
mod subscriber;
#[path = "starling-bench/sys.rs"]
mod sys;
#[path = "starling-bench/tls.rs"]
mod tls;
#[path = "starling-bench/track.rs"]
mod track;
#[path = "starling-bench/wire.rs"]
mod wire;

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use starling::protocol::{ProtocolVersion, QoS};

use crate::report::Report;

/// The same allocator as the broker binary: the generator should cost as little as it can.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// MQTT load generator for Starling (and any MQTT 3.1.1/5.0 broker).
#[derive(Debug, Parser)]
#[command(name = "starling-bench")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Options of every scenario.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Broker host.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, global = true, default_value_t = 1883)]
    pub port: u16,
    /// Subscribers connect to this port instead (same host): publisher and subscribers
    /// on different nodes of a cluster (`benches/cluster.sh`).
    #[arg(long, global = true)]
    pub sub_port: Option<u16>,
    /// Pause between the subscribers' SUBACKs and the first publish (ms): time for a
    /// cluster to carry the new interest to every NATS server.
    #[arg(long, global = true, default_value_t = 0)]
    pub settle_ms: u64,
    /// Protocol: 3 (MQTT 3.1.1) or 5.
    #[arg(long, global = true, default_value_t = 3)]
    pub mqtt: u8,
    /// QoS of publishes and subscriptions: 0, 1 or 2.
    #[arg(long, global = true, default_value_t = 0)]
    pub qos: u8,
    /// Payload bytes (at least 20: publisher u32, seq u64, timestamp u64).
    #[arg(long, global = true, default_value_t = 64)]
    pub size: usize,
    /// Hard cap on the run; tasks stop at this deadline and the run reports what it saw.
    #[arg(long, global = true, default_value_t = 60)]
    pub duration_secs: u64,
    /// The broker's pid: its CPU use, RSS (and RSS per connection for `conns`).
    #[arg(long, global = true)]
    pub broker_pid: Option<u32>,
    /// Tokio worker threads of the generator.
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// QoS 1/2 messages a publisher may have unacknowledged.
    #[arg(long, global = true, default_value_t = 100)]
    pub inflight: usize,
    /// Most PUBLISHes encoded into one write.
    #[arg(long, global = true, default_value_t = 64)]
    pub batch: usize,
    /// After publishers finish, subscribers stop once idle this long (ms); the rest is
    /// counted as lost. Also how long a `pairs` window may stall.
    #[arg(long, global = true, default_value_t = 2000)]
    pub drain_ms: u64,
    /// Subscribers use persistent sessions (their QoS 1/2 deliveries are stored by
    /// brokers that persist sessions).
    #[arg(long, global = true)]
    pub persistent: bool,
    /// Free text copied into the JSON line as "label" (e.g. the broker's name).
    #[arg(long, global = true)]
    pub label: Option<String>,
    /// Connect with TLS, trusting the CA certificates in this PEM file (the server's
    /// certificate must name `--host`).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
}

impl Common {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Where subscribers connect: `--sub-port`, else the broker's address.
    pub fn sub_addr(&self) -> String {
        format!("{}:{}", self.host, self.sub_port.unwrap_or(self.port))
    }

    pub fn version(&self) -> Result<ProtocolVersion> {
        conn::version_from_flag(self.mqtt)
    }

    pub fn qos(&self) -> Result<QoS> {
        conn::qos_from_flag(self.qos)
    }
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// P publishers each send N messages to `bench/fanin/<i>`; one subscriber on `bench/fanin/+`.
    Fanin {
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        /// Messages per publisher.
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
    },
    /// One publisher sends N messages to bench/fanout; K subscribers receive each.
    Fanout {
        #[arg(long, default_value_t = 50)]
        subscribers: usize,
        #[arg(long, default_value_t = 50_000)]
        messages: u64,
    },
    /// P publisher/subscriber pairs on distinct topics, at most W messages outstanding
    /// end to end per pair; reports latency percentiles.
    Pairs {
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        #[arg(long, default_value_t = 8)]
        window: u64,
        /// Messages per pair.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        /// Topics are `<PREFIX>/<i>`: several generators against one cluster each
        /// give their own, so that their pairs do not receive each other's messages.
        #[arg(long, default_value = "bench/pairs")]
        topic_prefix: String,
    },
    /// Open C idle connections (optionally one subscription each); reports the rate and,
    /// with --broker-pid, the broker's RSS per connection.
    Conns {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long)]
        subscribe: bool,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Milliseconds to hold everything open before sampling RSS again.
        #[arg(long, default_value_t = 1000)]
        hold_ms: u64,
        /// Spread connections over 127.0.0.1..=127.0.0.N (loopback targets only);
        /// 0 = one address per 4,000 connections.
        #[arg(long, default_value_t = 0)]
        source_ips: usize,
    },
    /// N retained messages stored, then one `#` subscriber: how fast they all arrive.
    Retained {
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
    },
    /// C clients fill the trie with S subscriptions (F per SUBSCRIBE), then unsubscribe
    /// and re-subscribe them for R rounds: rates and RSS per subscription.
    Churn {
        #[arg(long, default_value_t = 100)]
        clients: usize,
        #[arg(long, default_value_t = 1_000_000)]
        subscriptions: usize,
        #[arg(long, default_value_t = 100)]
        per_packet: usize,
        #[arg(long, default_value_t = 1)]
        cycles: usize,
    },
}

fn check(c: &Common, scenario: &Scenario) -> Result<()> {
    c.version()?;
    c.qos()?;
    if c.size < track::HEADER {
        bail!("--size must be at least {} bytes", track::HEADER);
    }
    if !(1..=65_000).contains(&c.inflight) || c.batch == 0 || c.threads == 0 {
        bail!("--inflight must be 1..=65000, --batch and --threads at least 1");
    }
    match *scenario {
        Scenario::Fanin { publishers: n, .. }
        | Scenario::Fanout { subscribers: n, .. }
        | Scenario::Pairs { pairs: n, .. }
            if n == 0 =>
        {
            bail!("need at least one client")
        }
        Scenario::Pairs { window: 0, .. } => bail!("--window must be at least 1"),
        Scenario::Churn {
            clients,
            subscriptions,
            per_packet,
            ..
        } if clients == 0 || subscriptions < clients || per_packet == 0 => {
            bail!("churn needs --clients >= 1, --subscriptions >= --clients, --per-packet >= 1")
        }
        _ => Ok(()),
    }
}

async fn run(c: Common, scenario: Scenario) -> Result<Report> {
    let rep = Report {
        label: c.label.clone(),
        mqtt: if c.version()?.is_v5() { "5.0" } else { "3.1.1" },
        qos: c.qos,
        size: c.size,
        threads: c.threads,
        ..Report::default()
    };
    let inflight = (c.qos > 0).then_some(c.inflight);
    match scenario {
        Scenario::Fanin {
            publishers,
            messages,
        } => {
            let rep = Report {
                scenario: "fanin",
                publishers: Some(publishers),
                subscribers: Some(1),
                inflight,
                ..rep
            };
            flow::run(&c, flow::fanin(publishers, messages), rep).await
        }
        Scenario::Fanout {
            subscribers,
            messages,
        } => {
            let rep = Report {
                scenario: "fanout",
                publishers: Some(1),
                subscribers: Some(subscribers),
                inflight,
                ..rep
            };
            flow::run(&c, flow::fanout(subscribers, messages), rep).await
        }
        Scenario::Pairs {
            pairs,
            window,
            messages,
            topic_prefix,
        } => {
            let rep = Report {
                scenario: "pairs",
                pairs: Some(pairs),
                window: Some(window),
                inflight,
                ..rep
            };
            flow::run(&c, flow::pairs(pairs, window, messages, &topic_prefix), rep).await
        }
        Scenario::Conns {
            connections,
            subscribe,
            concurrency,
            hold_ms,
            source_ips,
        } => {
            let rep = Report {
                scenario: if subscribe { "conns+sub" } else { "conns" },
                ..rep
            };
            let spec = conns::ConnsSpec {
                connections,
                subscribe,
                concurrency,
                hold: Duration::from_millis(hold_ms),
                source_ips,
            };
            conns::run(&c, spec, rep).await
        }
        Scenario::Retained { messages } => {
            let rep = Report {
                scenario: "retained",
                publishers: Some(1),
                subscribers: Some(1),
                ..rep
            };
            retained::run(&c, messages, rep).await
        }
        Scenario::Churn {
            clients,
            subscriptions,
            per_packet,
            cycles,
        } => {
            let rep = Report {
                scenario: "churn",
                ..rep
            };
            let spec = churn::ChurnSpec {
                clients,
                subscriptions,
                per_packet,
                cycles,
            };
            churn::run(&c, spec, rep).await
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = check(&cli.common, &cli.scenario) {
        eprintln!("starling-bench: {e:#}");
        std::process::exit(2);
    }
    if let Some(ca) = &cli.common.tls_ca {
        if let Err(e) = tls::configure(ca) {
            eprintln!("starling-bench: --tls-ca: {e:#}");
            std::process::exit(2);
        }
    }
    sys::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.common.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starling-bench: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    // A safety net over the per-task deadlines: the run may not outlive this.
    let cap = Duration::from_secs(cli.common.duration_secs + 15);
    let outcome = runtime.block_on(async move {
        match tokio::time::timeout(cap, tokio::spawn(run(cli.common, cli.scenario))).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(anyhow::anyhow!("scenario task failed: {join}")),
            Err(_) => Err(anyhow::anyhow!("hard time cap of {cap:?} reached")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(rep) => match serde_json::to_string(&rep) {
            Ok(line) => {
                println!("{line}");
                std::process::exit(0)
            }
            Err(e) => {
                eprintln!("starling-bench: {e}");
                std::process::exit(1)
            }
        },
        Err(e) => {
            eprintln!("starling-bench: {e:#}");
            std::process::exit(1)
        }
    }
}
