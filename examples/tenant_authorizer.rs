//! A custom [`Authorizer`] for a multi-tenant deployment, and a [`Hook`] that logs who
//! connects and disconnects.
//!
//! The rules: a client's username is its tenant.
//! - It may publish and subscribe only under `tenants/{username}/` (the filter
//!   `tenants/{username}/#` and narrower ones, also behind `$share/{group}/`), and is
//!   delivered only what is published there. Any other filter, `#` and `tenants/+/x`
//!   included, is refused: SUBACK 0x87 (3.1.1: 0x80). A publish elsewhere is refused:
//!   PUBACK 0x87 for a 5.0 QoS 1/2 publish, otherwise acknowledged and dropped.
//! - A client with no username, or one that is not a known tenant, may do nothing.
//! - `$SYS/#` may be subscribed to and read by the operator `admin` only (not a tenant:
//!   it has no topics of its own).
//!
//! Tenants are known to a directory service, simulated here by the `--tenants` list
//! answered after a short delay. The first question about a username waits for the
//! directory ([`Answer::later`]: only that client waits, never the broker); the answer
//! is cached, and every later question is answered at once ([`Answer::ready`]), as are
//! those decided by the topic alone.
//!
//! Run: `cargo run --example tenant_authorizer -- --mqtt 127.0.0.1:1883 --tenants alice,bob`
//! (port 0 picks a free port). It prints `tenant_authorizer mqtt=ADDR` on stdout once it
//! listens; logs (connects, disconnects) go to stderr. Ctrl-C or SIGTERM stops it.
//!
//! ```text
//! mosquitto_sub -p 1883 -u alice -t 'tenants/alice/#' -v &
//! mosquitto_pub -p 1883 -u alice -t tenants/alice/lights -m on           # delivered
//! mosquitto_pub -p 1883 -V mqttv5 -q 1 -u alice -t tenants/bob/x -m on   # 0x87
//! mosquitto_sub -p 1883 -V mqttv5 -u alice -t '#'                        # 0x87
//! mosquitto_sub -p 1883 -u admin -t '$SYS/broker/version' -v
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use clap::Parser;
use starling::hooks::{Access, Answer, Authorizer, ClientInfo, Decision, Event, Hook};
use tracing::info;

/// How long the simulated directory service takes to answer.
const LOOKUP_DELAY: Duration = Duration::from_millis(20);
/// The operator who may read `$SYS`.
const ADMIN: &str = "admin";

#[derive(Parser)]
struct Args {
    /// The MQTT listener's address.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,
    /// The tenants the directory knows, comma-separated.
    #[arg(long, value_delimiter = ',')]
    tenants: Vec<String>,
}

/// The directory service (simulated) and a cache of its answers.
struct Directory {
    /// What the service knows.
    tenants: HashSet<String>,
    /// Its answers so far: username → is a tenant. A real cache would expire entries.
    cache: RwLock<HashMap<String, bool>>,
}

impl Directory {
    fn cached(&self, username: &str) -> Option<bool> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.get(username).copied()
    }

    /// Asks the service (a network round trip, in real life) and caches the answer.
    async fn look_up(self: Arc<Self>, username: String) -> bool {
        tokio::time::sleep(LOOKUP_DELAY).await;
        let known = self.tenants.contains(&username);
        info!(username, known, "directory answered");
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.insert(username, known);
        known
    }
}

/// The multi-tenant rules.
struct TenantRules {
    directory: Arc<Directory>,
}

impl Authorizer for TenantRules {
    fn authorize(&self, client: &ClientInfo, access: Access, topic: &str) -> Answer<Decision> {
        let Some(username) = client.username.as_deref() else {
            return Answer::ready(Decision::Deny);
        };
        if topic == "$SYS" || topic.starts_with("$SYS/") {
            return Answer::ready(allow(username == ADMIN && access != Access::Publish));
        }
        let topic = match access {
            Access::Subscribe => unshared(topic),
            Access::Publish | Access::Receive => topic,
        };
        if !is_level(username) || !under_tenant(username, topic) {
            return Answer::ready(Decision::Deny);
        }
        match self.directory.cached(username) {
            Some(known) => Answer::ready(allow(known)),
            None => {
                let lookup = self.directory.clone().look_up(username.to_owned());
                Answer::later(async move { allow(lookup.await) })
            }
        }
    }
}

fn allow(yes: bool) -> Decision {
    match yes {
        true => Decision::Allow,
        false => Decision::Deny,
    }
}

/// A filter without its `$share/{group}/` prefix.
fn unshared(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_group, filter)| filter)
}

/// A username usable as one topic level: otherwise tenant `a` would own `a/b`'s topics.
fn is_level(username: &str) -> bool {
    !username.is_empty() && !username.contains(['/', '+', '#'])
}

/// `tenants/{username}` or below it.
fn under_tenant(username: &str, topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix("tenants/") else {
        return false;
    };
    match rest.strip_prefix(username) {
        Some(below) => below.is_empty() || below.starts_with('/'),
        None => false,
    }
}

/// Logs connects and disconnects.
struct ConnectionLog;

impl Hook for ConnectionLog {
    fn on_event(&self, event: &Event) -> Answer<()> {
        match event {
            Event::Connected {
                client,
                session_present,
            } => {
                let username = client.username.as_deref().unwrap_or("-");
                info!(%client, username, session_present, "connected");
            }
            Event::Disconnected { client } => info!(%client, "disconnected"),
            _ => {}
        }
        Answer::ready(())
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let directory = Arc::new(Directory {
        tenants: args.tenants.into_iter().collect(),
        cache: RwLock::default(),
    });
    actix_rt::System::new().block_on(serve(args.mqtt, directory))
}

async fn serve(mqtt: SocketAddr, directory: Arc<Directory>) -> anyhow::Result<()> {
    let mut config = starling::Config::default();
    config.listeners[0].bind = mqtt;
    config.storage.durability = starling::config::Durability::Memory;
    let broker = starling::Broker::new(config)
        .authorizer(TenantRules { directory })
        .hook(ConnectionLog)
        .start()
        .await?;
    println!("tenant_authorizer mqtt={}", broker.local_addrs()[0]);
    terminated().await?;
    broker.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn terminated() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = term.recv() => Ok(()),
    }
}
