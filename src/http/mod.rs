//! The operations HTTP endpoints, on actix-web: `GET /health`, `GET /ready`,
//! `GET /metrics`, the status page (`GET /`, `GET /status.json`) and the admin API
//! under `/api/v1`.
//!
//! With `[http] bind` set, the broker serves them on a listener of its own. An
//! application that runs its own actix-web server can mount the same routes in its
//! `App` instead, from the [`Ops`] handle of a running broker (its actix-web must be
//! version 4, the one this crate uses):
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = starling::Config::default();
//! config.listeners[0].bind = "127.0.0.1:0".parse()?;
//! let broker = starling::Broker::new(config).start().await?;
//! let ops = broker.ops();
//! let server = HttpServer::new(move || {
//!     let ops = ops.clone();
//!     App::new().configure(move |cfg| starling::http::configure(cfg, &ops))
//! })
//! .bind("127.0.0.1:8080")?
//! .run();
//! # drop(server);
//! # Ok(()) }
//! ```
//!
//! - `/health` answers 200 while the process serves HTTP at all.
//! - `/ready` answers 200 once the broker's start finished (store loaded, persistent
//!   sessions restored, cluster joined, listeners bound) and until it begins to stop,
//!   except while a cluster node is cut off from its cluster; otherwise 503.
//! - `/metrics` is the broker's counters in the Prometheus text format (0.0.4): the
//!   series are listed in README.md, "Operations".
//!
//! - `/` is a status page for people (connections, sessions, messages in and out per
//!   second, drops by reason, busiest topics), plain HTML and JS that polls
//!   `/status.json`: see `status.rs`.
//! - `/api/v1` is the admin API (sessions, subscriptions, retained messages, publish),
//!   behind the bearer token of `[http] token_file`: its routes and JSON are listed in
//!   `api.rs` and README.md, "Operations".

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use actix::Addr;
use actix_web::web;

use crate::metrics::Metrics;
use crate::router::Router;
use crate::session::Isolation;

mod api;
pub mod client;
mod routes;
mod server;
mod status;

pub(crate) use self::api::peers::Peers;
pub(crate) use self::server::OpsServer;

/// What the operations endpoints report on: one broker's counters and state. Cheap to
/// clone; clones share it. Get it from [`BrokerHandle::ops`](crate::BrokerHandle::ops).
#[derive(Clone)]
pub struct Ops(Arc<Inner>);

struct Inner {
    metrics: Arc<Metrics>,
    /// The bearer token of `/api` (`[http] token_file`); `None`: `/api` is refused.
    api_token: Option<String>,
    ready: AtomicBool,
    /// Set once the broker has started.
    running: OnceLock<Running>,
    /// Cluster mode: the other nodes, asked for cluster-wide answers.
    peers: OnceLock<Arc<dyn Peers>>,
}

/// The parts of a started broker the endpoints ask.
struct Running {
    router: Addr<Router>,
    isolation: Isolation,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Ops {
    /// A broker not started yet, counting on `metrics`; `/api` answers to
    /// `api_token`.
    pub(crate) fn new(metrics: Arc<Metrics>, api_token: Option<String>) -> Ops {
        Ops(Arc::new(Inner {
            metrics,
            api_token,
            ready: AtomicBool::new(false),
            running: OnceLock::new(),
            peers: OnceLock::new(),
        }))
    }

    /// The bearer token `/api` accepts, if it is on.
    pub(crate) fn api_token(&self) -> Option<&str> {
        self.0.api_token.as_deref()
    }

    /// The router, once the broker has started.
    pub(crate) fn router(&self) -> Option<Addr<Router>> {
        self.0.running.get().map(|r| r.router.clone())
    }

    /// Cluster mode: the admin API's questions about clients and subscriptions go to
    /// `peers` too.
    pub(crate) fn set_peers(&self, peers: Arc<dyn Peers>) {
        let _ = self.0.peers.set(peers);
    }

    /// The other nodes, in cluster mode.
    pub(crate) fn peers(&self) -> Option<&Arc<dyn Peers>> {
        self.0.peers.get()
    }

    /// This node's answer to another node's admin question (see [`Peers`]).
    pub(crate) async fn answer_peer(&self, request: bytes::Bytes) -> bytes::Bytes {
        api::peers::answer(self, request).await
    }

    /// The counters.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// The broker's start finished: `/ready` answers 200 from now on.
    pub(crate) fn started(&self, router: Addr<Router>, isolation: Isolation) {
        let _ = self.0.running.set(Running { router, isolation });
        self.0.ready.store(true, Ordering::Release);
    }

    /// The broker begins to stop: `/ready` answers 503 from now on.
    pub(crate) fn stopping(&self) {
        self.0.ready.store(false, Ordering::Release);
    }

    /// Whether `/ready` answers 200: started, not stopping, and not cut off from the
    /// cluster.
    pub fn is_ready(&self) -> bool {
        let isolated = self
            .0
            .running
            .get()
            .is_some_and(|r| r.isolation.is_isolated());
        self.0.ready.load(Ordering::Acquire) && !isolated
    }

    /// The `/metrics` text now (the router asked for its values, with a bound wait).
    pub async fn metrics_text(&self) -> String {
        let stats = match self.0.running.get() {
            Some(running) => routes::router_stats(&running.router).await,
            None => None,
        };
        self.0.metrics.render(stats.as_ref())
    }
}

/// Mounts `/health`, `/ready`, `/metrics`, the status page (`/`, `/status.json`) and
/// `/api/v1` for the broker `ops` reports on, in an actix-web `App` (or a
/// `web::scope`): `App::new().configure(|cfg| configure(cfg, &ops))`.
pub fn configure(cfg: &mut web::ServiceConfig, ops: &Ops) {
    routes::configure(cfg, ops);
    status::configure(cfg, ops);
    api::configure(cfg, ops);
}
