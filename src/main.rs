//! The `starling` binary: a thin command-line shell over [`starling::Broker`].

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use starling::persistence::StoreSpec;
use tracing::info;

/// mimalloc: many small, short-lived allocations (envelopes, deliveries, buffers) freed on
/// the same thread; glibc's malloc spent 8-10% of a fanout profile consolidating chunks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Starling, an MQTT 3.1.1 and 5.0 broker.
#[derive(Debug, Parser)]
#[command(name = "starling", version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (TOML). Without it the built-in defaults apply, which are
    /// the values in config/starling.toml (listen on 127.0.0.1:1883).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the TCP listener, replacing the config's plain TCP listeners (e.g.
    /// 0.0.0.0:1883); other kinds, and TCP listeners with settings beyond bind, stay.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for persistent state, overriding the config (default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print what the store holds (sessions, subscriptions, queue depths, retained
    /// count) without changing it. A sled store must not be in use by a broker; with
    /// --url, ask a running broker's admin API instead.
    Inspect {
        /// The store: sled:DIR, postgres://... or redis://... (default: --data-dir).
        #[arg(value_name = "STORE", conflicts_with_all = ["data_dir", "url"])]
        store: Option<StoreSpec>,
        /// The broker's data directory (its sled store).
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// A running broker's operations listener (`[http] bind`), e.g.
        /// http://127.0.0.1:8080: its admin API answers for that node.
        #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
        url: Option<String>,
        /// The admin API's bearer token file (`[http] token_file`), with --url.
        #[arg(long, value_name = "FILE", requires = "url")]
        token_file: Option<PathBuf>,
    },
    /// Copy every session, subscription, queued message, inbound QoS 2 id, retained
    /// message and the queue seq from one stopped store into another, then verify
    /// (counts and checksums per keyspace). Refuses a non-empty target without --force;
    /// an interrupted migration is finished by running it again with --force.
    Migrate {
        /// The source: sled:DIR (a data directory), postgres://... or redis://...
        #[arg(long, value_name = "STORE")]
        from: StoreSpec,
        /// The target, named the same way (a sled directory is created if missing).
        #[arg(long, value_name = "STORE")]
        to: StoreSpec,
        /// Make a non-empty target a copy of the source: what matches stays, what
        /// differs is rewritten, its other sessions and retained messages are deleted.
        #[arg(long)]
        force: bool,
        /// Ops per write to the target.
        #[arg(long, value_name = "N", default_value_t = starling::persistence::DEFAULT_BATCH_OPS)]
        batch: usize,
        /// Only compare the two stores (print the table), writing nothing.
        #[arg(long)]
        verify_only: bool,
    },
    /// Add USER to a password file (or replace its hash), reading the password from
    /// the first line of standard input. Creates the file if missing.
    Passwd {
        /// The password file (`[auth] password_file`).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The hash: argon2id, or pbkdf2-sha256 for a user who logs in with
        /// SCRAM-SHA-256 (which needs it).
        #[arg(long, value_enum, default_value_t = Scheme::Argon2id)]
        scheme: Scheme,
        /// PBKDF2 iterations with pbkdf2-sha256 (also SCRAM-SHA-256's iteration count;
        /// at least 1000).
        #[arg(long, default_value_t = starling::auth::password::DEFAULT_ITERATIONS)]
        iterations: u32,
        user: String,
    },
    /// Check a configuration file without starting: exits 0 when it is valid, else
    /// prints `FILE:LINE: REASON` and exits 1.
    CheckConfig {
        /// The configuration file (TOML).
        file: PathBuf,
    },
}

/// The hash scheme `starling passwd` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Scheme {
    /// Argon2id (plain username/password logins).
    Argon2id,
    /// PBKDF2-HMAC-SHA256 (plain logins and SCRAM-SHA-256).
    Pbkdf2Sha256,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::CheckConfig { file }) = &args.command {
        check_config(file);
    }
    let mut config = match &args.config {
        Some(path) => starling::Config::from_file(path)?,
        None => starling::Config::default(),
    };
    init_logging(&config.log);
    match &args.command {
        Some(Command::Inspect {
            store,
            data_dir,
            url,
            token_file,
        }) => {
            return inspect(
                store.as_ref(),
                data_dir,
                url.as_deref(),
                token_file.as_deref(),
            )
        }
        Some(Command::Migrate {
            from,
            to,
            force,
            batch,
            verify_only,
        }) => return migrate(from, to, *force, *batch, *verify_only),
        _ => {}
    }
    if let Some(Command::Passwd {
        file,
        scheme,
        iterations,
        user,
    }) = &args.command
    {
        return passwd(file, user, *scheme, *iterations);
    }
    if let Some(addr) = args.listen {
        // It replaces the config's plain TCP listeners; one with settings of its own
        // (behind a load balancer, limited) is not for quick starts and stays.
        config.listeners.retain(|l| !l.is_plain_tcp());
        config
            .listeners
            .push(starling::config::ListenerConfig::tcp(addr));
    }
    if let Some(dir) = args.data_dir {
        config.storage.data_dir = dir;
    }
    actix::System::new().block_on(async move {
        let broker = starling::Broker::new(config)
            .start()
            .await
            .context("starting the broker")?;
        // systemd (Type=notify): ready once the store is replayed and listeners are open.
        service_manager(&[sd_notify::NotifyState::Ready]);
        wait_for_signal(&broker).await?;
        info!("shutting down");
        service_manager(&[sd_notify::NotifyState::Stopping]);
        broker.stop().await;
        anyhow::Ok(())
    })
}

/// Tells the service manager (systemd's `NOTIFY_SOCKET`, when set) about the state.
fn service_manager(states: &[sd_notify::NotifyState]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "could not notify the service manager");
    }
}

/// Logs to stderr in `[log] format`, filtered by `RUST_LOG` or else `[log] level`.
fn init_logging(log: &starling::config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        starling::config::LogFormat::Text => logger.init(),
        starling::config::LogFormat::Json => logger.json().init(),
    }
}

/// `starling inspect`: a running broker's admin API (`url`), a store named by a spec,
/// or the sled store of `data_dir`.
fn inspect(
    store: Option<&StoreSpec>,
    data_dir: &std::path::Path,
    url: Option<&str>,
    token_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if let Some(url) = url {
        let token = match token_file {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("reading the token file {}", file.display()))?,
            None => String::new(),
        };
        println!("{}", starling::http::client::inspect_remote(url, &token)?);
        return Ok(());
    }
    let spec = store
        .cloned()
        .unwrap_or_else(|| StoreSpec::Sled(data_dir.to_owned()));
    let report = starling::persistence::inspect_spec(&spec)
        .with_context(|| format!("inspecting {spec} (a sled store must not be in use)"))?;
    println!("{report}");
    Ok(())
}

/// `starling migrate`: copies `from` into `to` and prints the verification table; fails
/// when the target does not match.
fn migrate(
    from: &StoreSpec,
    to: &StoreSpec,
    force: bool,
    batch_ops: usize,
    verify_only: bool,
) -> anyhow::Result<()> {
    use starling::persistence::{open_spec, MigrateOptions, OpenMode};
    anyhow::ensure!(from != to, "--from and --to name the same store");
    let source = open_spec(from, OpenMode::Existing).with_context(|| {
        format!("opening the source {from} (it must exist and not be in use: stop its broker)")
    })?;
    let mode = if verify_only {
        OpenMode::Existing
    } else {
        OpenMode::Create
    };
    let mut target = open_spec(to, mode).with_context(|| {
        format!("opening the target {to} (it must not be in use: stop its broker)")
    })?;
    let started = std::time::Instant::now();
    let comparison = if verify_only {
        starling::persistence::compare(source.as_ref(), target.as_ref())?
    } else {
        let options = MigrateOptions { force, batch_ops };
        let summary = starling::persistence::migrate(source.as_ref(), target.as_mut(), options)?;
        println!(
            "migrated {from} -> {to}: {} sessions written, {} unchanged, {} deleted; {} ops in {} batches, {:.1} s",
            summary.sessions_written,
            summary.unchanged,
            summary.deleted,
            summary.ops,
            summary.batches,
            started.elapsed().as_secs_f64()
        );
        summary.comparison
    };
    println!("{comparison}");
    anyhow::ensure!(
        comparison.verified(),
        "the target does not match the source; run the migration again with --force"
    );
    Ok(())
}

/// `starling passwd`: hashes the password read from stdin into `file`.
fn passwd(
    file: &std::path::Path,
    user: &str,
    scheme: Scheme,
    iterations: u32,
) -> anyhow::Result<()> {
    use starling::auth::password::{set_user, PasswordHash, MIN_ITERATIONS};
    use starling::auth::stored::StoredPassword;
    anyhow::ensure!(
        !user.is_empty() && !user.contains([':', '\n']),
        "bad user name"
    );
    anyhow::ensure!(
        iterations >= MIN_ITERATIONS,
        "at least {MIN_ITERATIONS} iterations"
    );
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "empty password (give it on stdin)");
    let old = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let hash = match scheme {
        Scheme::Argon2id => StoredPassword::argon2id(password.as_bytes()),
        Scheme::Pbkdf2Sha256 => PasswordHash::new(password.as_bytes(), iterations).into(),
    };
    std::fs::write(file, set_user(&old, user, &hash))
        .with_context(|| format!("writing {}", file.display()))?;
    info!(user, file = %file.display(), scheme = hash.scheme(), "password set");
    Ok(())
}

/// `starling check-config`: exits 0 when `file` is a valid configuration, else 1 after
/// printing where and why it is not.
fn check_config(file: &std::path::Path) -> ! {
    let shown = file.display();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{shown}: cannot read: {e}");
            std::process::exit(1);
        }
    };
    match starling::Config::check(&text) {
        Ok(_) => {
            println!("{shown}: ok");
            std::process::exit(0);
        }
        Err(problem) => {
            match problem.line {
                Some(line) => eprintln!("{shown}:{line}: {}", problem.reason),
                None => eprintln!("{shown}: {}", problem.reason),
            }
            std::process::exit(1);
        }
    }
}

/// Resolves on SIGINT or SIGTERM; on SIGHUP re-reads the password and ACL files and the
/// TLS listeners' certificates, keys and CAs.
async fn wait_for_signal(broker: &starling::BrokerHandle) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                match broker.reload_auth() {
                    Ok(users) => info!(users, "password file reloaded"),
                    Err(error) => tracing::error!(%error, "password file not reloaded; the old users stay"),
                }
                match broker.reload_acl().await {
                    Ok(Some(rules)) => info!(rules, "ACL file reloaded"),
                    Ok(None) => {}
                    Err(error) => tracing::error!(%error, "ACL file not reloaded; the old rules stay"),
                }
                // Each listener's outcome is logged by the broker.
                if let Err(error) = broker.reload_tls() {
                    tracing::error!(%error, "TLS files not reloaded on every listener; those listeners keep the old ones");
                }
            }
        }
    }
}
