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
use tracing::info;

use crate::config::{Config, ListenerKind};
use crate::persistence::{self, PersistenceError};
use crate::router::messages::ShutdownSessions;
use crate::router::Router;
use crate::transport::{ConnectionLimiter, TcpListenerTask, Workers};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
}

/// What every connection's tasks and actors share.
pub struct Shared {
    pub config: Config,
    pub router: Addr<Router>,
}

/// A broker to be started.
pub struct Broker {
    config: Config,
    workers: usize,
}

/// A running broker.
pub struct BrokerHandle {
    local_addrs: Vec<SocketAddr>,
    router: Addr<Router>,
    workers: Workers,
    router_arbiter: ArbiterHandle,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

impl Broker {
    pub fn new(config: Config) -> Broker {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Broker { config, workers }
    }

    /// How many arbiters run session actors (default: one per core).
    pub fn workers(mut self, n: usize) -> Broker {
        self.workers = n.max(1);
        self
    }

    /// Starts the router, the workers and every listener. Must run inside an actix
    /// `System`; returns once the listeners are bound.
    pub async fn start(self) -> Result<BrokerHandle, BrokerError> {
        persistence::prepare_data_dir(&self.config.storage.data_dir)?;
        let router_arbiter = Arbiter::new().handle();
        let router = Supervisor::start_in_arbiter(&router_arbiter, |ctx| {
            // Must be set before the actor starts: `started` is too late for the mailbox.
            ctx.set_mailbox_capacity(crate::router::MAILBOX_CAPACITY);
            Router::new()
        });
        let workers = Workers::start(self.workers);
        let limiter = ConnectionLimiter::new(self.config.limits.max_connections);
        let shared = Arc::new(Shared {
            config: self.config.clone(),
            router: router.clone(),
        });
        let mut local_addrs = Vec::new();
        let mut listeners = Vec::new();
        for l in &self.config.listeners {
            match l.kind {
                ListenerKind::Tcp => {
                    let task = TcpListenerTask::bind(l.bind).await.map_err(|source| {
                        BrokerError::Bind {
                            addr: l.bind,
                            source,
                        }
                    })?;
                    let addr = task.local_addr().map_err(|source| BrokerError::Bind {
                        addr: l.bind,
                        source,
                    })?;
                    local_addrs.push(addr);
                    let shared = Arc::clone(&shared);
                    let serve: crate::transport::ServeFn = Arc::new(move |conn| {
                        Box::pin(crate::session::serve(conn, Arc::clone(&shared)))
                    });
                    listeners.push(actix_rt::spawn(task.run(
                        workers.clone(),
                        limiter.clone(),
                        serve,
                    )));
                }
            }
        }
        info!(addrs = ?local_addrs, workers = self.workers, "broker started");
        Ok(BrokerHandle {
            local_addrs,
            router,
            workers,
            router_arbiter,
            listeners,
        })
    }
}

impl BrokerHandle {
    /// The bound listener addresses (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The router actor, for embedding applications that publish or inspect.
    pub fn router(&self) -> &Addr<Router> {
        &self.router
    }

    /// Stops accepting, closes every connection (5.0 clients get DISCONNECT 0x8B), and
    /// stops the broker's arbiters.
    pub async fn stop(self) {
        for l in &self.listeners {
            l.abort();
        }
        let _ = self.router.send(ShutdownSessions).await;
        // Give sessions a moment to flush their DISCONNECTs.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.workers.stop();
        self.router_arbiter.stop();
        info!("broker stopped");
    }
}
