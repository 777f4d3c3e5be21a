//! The embeddable broker: builds the router, worker arbiters and listeners from a
//! [`Config`] inside an existing actix `System`.
//!
//! ```no_run
//! # async fn run() -> Result<(), starling::BrokerError> {
//! let mut config = starling::Config::default();
//! config.listeners[0].bind = "127.0.0.1:0".parse().unwrap();
//! let broker = starling::Broker::new(config).start().await?;
//! println!("listening on {:?}", broker.local_addrs());
//! broker.stop().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

mod handle;
mod http;
mod listeners;
mod store;

pub use self::handle::BrokerHandle;

use self::store::{Opened, Origin};
use crate::auth::acl::AclAuthorizer;
use crate::auth::throttle::LoginThrottle;
use crate::auth::{AuthSetupError, Authenticator, PasswordAuthenticator};
use crate::config::{Config, QueueFull};
use crate::hooks::{Authorizer, EventQueue, Hook, Hooks};
use crate::message::ClientId;
use crate::persistence::{Backlog, Persistence, PersistenceError, Snapshot, Store};
use crate::router::messages::{Adopt, AttachCluster, GetStats};
use crate::router::{Router, RouterState};
use crate::session::{Isolation, Session, Shared};
use crate::sys::{Metrics, Sys};
use crate::transport::{ConnectionLimiter, MemoryBudget, TlsError, Workers};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A listener's address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address in the configuration.
        addr: SocketAddr,
        /// Why (in use, not permitted, ...).
        source: std::io::Error,
    },
    /// A TLS listener's certificate, key or CA did not load.
    #[error("listener {addr}: {source}")]
    Tls {
        /// The address in the configuration.
        addr: SocketAddr,
        /// What did not load.
        source: TlsError,
    },
    /// The store could not be opened or loaded.
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
    /// The password file could not be read.
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    /// Cluster mode: NATS or JetStream could not be reached or set up.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The router failed while taking the cluster's port: the node would have run
    /// alone, unseen by the other nodes.
    #[error("the router failed to attach the cluster")]
    ClusterAttach,
    /// The blocking task that opens the store panicked or was cancelled.
    #[error("the task opening the store did not finish")]
    StoreTask,
    /// A listener asks for what this build does not offer yet.
    #[error("listener {addr}: {what} are not available yet")]
    Unsupported {
        /// The listener's address.
        addr: SocketAddr,
        /// What it asked for.
        what: String,
    },
    /// A store was given ([`Broker::store`]) while cluster mode keeps session state in
    /// JetStream.
    #[error("a given store cannot replace JetStream's session state in cluster mode")]
    StoreInCluster,
    /// `[http] token_file` gave no usable token.
    #[error(transparent)]
    HttpToken(#[from] crate::config::TokenError),
}

/// How long a hook's late answer is awaited unless [`Broker::hook_budget`] says.
const DEFAULT_HOOK_BUDGET: Duration = Duration::from_secs(1);

/// A broker to be started.
pub struct Broker {
    config: Config,
    workers: usize,
    authenticator: Option<Arc<dyn Authenticator>>,
    authorizer: Option<Arc<dyn Authorizer>>,
    hooks: Vec<Arc<dyn Hook>>,
    hook_budget: Duration,
    store: Option<Box<dyn Store>>,
}

impl Broker {
    /// A broker for `config`, with the `[auth]` authenticator, no authorizer (all is
    /// allowed), no hooks and the store `[storage]` names, until the builder methods
    /// below say otherwise.
    pub fn new(config: Config) -> Broker {
        let workers = match config.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Broker {
            config,
            workers,
            authenticator: None,
            authorizer: None,
            hooks: Vec::new(),
            hook_budget: DEFAULT_HOOK_BUDGET,
            store: None,
        }
    }

    /// Replaces the `[auth]`-configured authenticator with this one.
    pub fn authenticator(mut self, auth: Arc<dyn Authenticator>) -> Broker {
        self.authenticator = Some(auth);
        self
    }

    /// Decides what each client may publish, subscribe to and receive (by default
    /// everything is allowed). See [`hooks`](crate::hooks).
    pub fn authorizer(mut self, authorizer: impl Authorizer) -> Broker {
        self.authorizer = Some(Arc::new(authorizer));
        self
    }

    /// Adds a hook: it hears client events and may rewrite or drop publishes. Hooks run
    /// in the order they were added. See [`hooks`](crate::hooks).
    pub fn hook(mut self, hook: impl Hook) -> Broker {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// How long a hook's late answer ([`Answer::later`](crate::hooks::Answer::later))
    /// is awaited (default 1 s); see [`hooks`](crate::hooks) for what happens after.
    pub fn hook_budget(mut self, budget: Duration) -> Broker {
        self.hook_budget = budget;
        self
    }

    /// Keeps sessions and retained messages in `store` instead of the one `[storage]
    /// durability` names (`sync` and `periodic` still decide when it is flushed). The
    /// store is loaded at start; it stays the same value for the broker's life, also
    /// across a restart of the persistence actor. Not with cluster mode's session state
    /// in JetStream ([`BrokerError::StoreInCluster`]).
    pub fn store(mut self, store: impl Store) -> Broker {
        self.store = Some(Box::new(store));
        self
    }

    /// How many arbiters run session actors (default: `[server] workers`, where 0 means
    /// one per core).
    pub fn workers(mut self, n: usize) -> Broker {
        self.workers = n.max(1);
        self
    }

    /// Opens the store, restores the router and the persistent sessions from it, then
    /// starts the listeners: nothing is accepted before the stored state is back. Must
    /// run inside an actix `System`; returns once the listeners are bound.
    pub async fn start(mut self) -> Result<BrokerHandle, BrokerError> {
        let auth: Arc<dyn Authenticator> = match &self.authenticator {
            Some(a) => Arc::clone(a),
            None => Arc::new(PasswordAuthenticator::from_config(&self.config)?),
        };
        let (ops, ops_server) = self::http::start(&self.config)?;
        let Opened {
            store,
            snapshot,
            origin,
        } = store::open(&self.config, self.store.take()).await?;
        let storage = self.config.storage.clone();
        let persistence_arbiter = Arbiter::new().handle();
        let backlog = Backlog::default();
        let b = backlog.clone();
        let persistence =
            Supervisor::start_in_arbiter(&persistence_arbiter, move |_| match origin {
                Origin::Reopen(reopen) => Persistence::with_reopen(store, &storage, b, reopen),
                Origin::Config => Persistence::new(store, &storage, b),
                Origin::Given => Persistence::given(store, &storage, b),
            });
        self::http::observe_store(&ops, &persistence);
        let mut router_state = RouterState::restore(&snapshot);
        router_state.set_share_strategy(self.config.server.shared_subscription_strategy);
        router_state.set_subscription_limit(self.config.limits.max_subscriptions_per_client);
        let (p, durability) = (persistence.clone(), self.config.storage.durability);
        let fast = Arc::clone(router_state.fast());
        let workers = Workers::start(self.workers);
        // Sharing a worker's thread saves a cross-thread wake-up (an eventfd write and a
        // context switch) per message each way when there is one core to run on.
        let shared_thread = self.config.server.router_thread.shares_worker(self.workers);
        let own_arbiter = (!shared_thread).then(|| Arbiter::new().handle());
        let router_arbiter = own_arbiter
            .clone()
            .unwrap_or_else(|| workers.first().clone());
        let backpressure = self.config.limits.queue_full == QueueFull::Backpressure;
        let router = Supervisor::start_in_arbiter(&router_arbiter, move |ctx| {
            // Must be set before the actor starts: `started` is too late for the mailbox.
            ctx.set_mailbox_capacity(crate::router::MAILBOX_CAPACITY);
            Router::new(router_state, p, durability, backlog).with_backpressure(backpressure)
        });
        let acl = self.acl()?;
        let (hooks, events_arbiter) = self.hooks();
        let shared = Arc::new(Shared {
            config: self.config.clone(),
            router: router.clone(),
            fast,
            persistence: persistence.clone(),
            metrics: Arc::clone(ops.metrics()),
            auth: Arc::clone(&auth),
            hooks,
            isolation: Isolation::default(),
            logins: LoginThrottle::from_config(&self.config.auth),
            memory: self.memory_budget(ops.metrics()),
        });
        let cluster_arbiter = self
            .join_cluster(&router, &persistence, (&shared, &ops))
            .await?;
        let sys_interval = self.config.server.sys_interval_secs;
        // After joining: the first tick publishes every value, cluster-wide too.
        if sys_interval > 0 {
            let (r, m) = (router.clone(), Arc::clone(&shared.metrics));
            let every = Duration::from_secs(sys_interval);
            let mirror = crate::cluster::sys::mirror_node(&self.config.cluster);
            // On the router's arbiter: it stops with it.
            Sys::start_in_arbiter(&router_arbiter, move |_| {
                Sys::new(r, m, every).with_mirror(mirror)
            });
        }
        restore_sessions(snapshot, &shared, &workers).await;
        let accepting = CancellationToken::new();
        let limiter = ConnectionLimiter::new(self.config.limits.max_connections);
        let listeners = listeners::start(
            &self.config.listeners,
            &shared,
            &workers,
            &limiter,
            &accepting,
        )
        .await?;
        info!(addrs = ?listeners.addrs, workers = self.workers, router_shares_worker = shared_thread, "broker started");
        ops.started(router.clone(), shared.isolation.clone());
        self::http::log_ready(ops_server.as_ref());
        Ok(BrokerHandle {
            listeners,
            router,
            workers,
            router_arbiter: own_arbiter,
            persistence,
            persistence_arbiter,
            cluster_arbiter,
            accepting,
            limiter,
            auth,
            shared,
            events_arbiter,
            acl,
            ops,
            ops_server,
        })
    }

    /// `[auth] acl_file` as the authorizer, unless the builder was given one.
    /// The memory budget's sampler, when `[limits] max_memory` is set.
    fn memory_budget(&self, metrics: &Metrics) -> Option<Arc<MemoryBudget>> {
        let limits = &self.config.limits;
        let max = limits.max_memory.0;
        (max > 0).then(|| {
            let (high, refuse) = (limits.memory_high_watermark, limits.memory_refuse_watermark);
            let queued = metrics.queued_gauge();
            MemoryBudget::start(max, high, refuse, Box::new(move || queued.get()))
        })?
    }

    fn acl(&mut self) -> Result<Option<Arc<AclAuthorizer>>, BrokerError> {
        let Some(path) = &self.config.auth.acl_file else {
            return Ok(None);
        };
        if self.authorizer.is_some() {
            tracing::warn!(path = %path.display(), "the authorizer given to the broker replaces [auth] acl_file");
            return Ok(None);
        }
        let acl = Arc::new(AclAuthorizer::open(path)?);
        info!(path = %path.display(), rules = acl.current_len(), "ACL file loaded");
        self.authorizer = Some(Arc::clone(&acl) as Arc<dyn Authorizer>);
        Ok(Some(acl))
    }

    /// The hooks as sessions call them; with event hooks, the thread they run on.
    fn hooks(&mut self) -> (Hooks, Option<ArbiterHandle>) {
        let hooks = std::mem::take(&mut self.hooks);
        let events =
            (!hooks.is_empty()).then(|| EventQueue::start(hooks.clone(), self.hook_budget));
        let (queue, arbiter) = events.unzip();
        let retain = self.config.capabilities.retain_available;
        let bundle = Hooks::new(
            self.authorizer.take(),
            hooks,
            self.hook_budget,
            retain,
            queue,
        );
        (bundle, arbiter)
    }

    /// Cluster mode (`[cluster] enabled`): connects the bridge to NATS, loads the
    /// cluster's retained messages and hands the bridge to the router.
    async fn join_cluster(
        &self,
        router: &Addr<Router>,
        persistence: &Addr<Persistence>,
        (shared, ops): (&Shared, &crate::http::Ops),
    ) -> Result<Option<ArbiterHandle>, BrokerError> {
        if !self.config.cluster.enabled {
            return Ok(None);
        }
        // Without session state in JetStream nothing replays the message log.
        let mut config = self.config.cluster.clone();
        config.session_state = self.config.session_state_in_cluster();
        config.message_log &= config.session_state;
        config.sys = self.config.server.sys_interval_secs > 0;
        let config = &config;
        let arbiter = Arbiter::new().handle();
        let (router, persistence) = (router.clone(), persistence.clone());
        let bridge = crate::cluster::Bridge {
            router: router.clone(),
            persistence,
            isolation: shared.isolation.clone(),
            metrics: shared.metrics.cluster().cloned(),
            admin: Some(self::http::answer_peers(ops)),
        };
        let handle = match crate::cluster::start(config, bridge, &arbiter).await {
            Ok((handle, peers)) => {
                self::http::ask_peers(ops, peers);
                handle
            }
            Err(e) => {
                arbiter.stop();
                return Err(e.into());
            }
        };
        let attach = AttachCluster {
            port: Box::new(handle),
        };
        if router.send(attach).await != Ok(true) {
            error!(node_id = %config.node_id, "the router failed to attach the cluster; not starting");
            arbiter.stop();
            return Err(BrokerError::ClusterAttach);
        }
        info!(node_id = %config.node_id, "joined the cluster");
        Ok(Some(arbiter))
    }
}

/// Starts an offline session actor for every stored session and waits until the router
/// has them all in its registry.
async fn restore_sessions(snapshot: Snapshot, shared: &Arc<Shared>, workers: &Workers) {
    let count = snapshot.sessions.len();
    if count == 0 {
        return;
    }
    for stored in snapshot.sessions {
        let client_id = ClientId::new(stored.record.client_id.clone());
        let shared2 = Arc::clone(shared);
        let addr = Session::start_in_arbiter(workers.next_arbiter(), move |_| {
            Session::restored(stored, shared2)
        });
        let addr = crate::session::link(addr);
        shared.router.do_send(Adopt { client_id, addr });
    }
    // The router handles one sender's messages in order: this answer comes after them.
    let _ = shared.router.send(GetStats).await;
    info!(sessions = count, "restored persistent sessions");
}
