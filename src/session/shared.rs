//! What every connection's tasks and actors share: the configuration, the router and
//! persistence actors, the counters, the authenticator and the failed-login counts. The composition root
//! (`broker.rs`) builds one and hands it to every connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::prelude::*;

use crate::auth::throttle::LoginThrottle;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::hooks::Hooks;
use crate::persistence::Persistence;
use crate::router::Router;
use crate::sys::Metrics;
use crate::transport::MemoryBudget;

/// What every connection's tasks and actors share.
pub struct Shared {
    pub config: Config,
    pub router: Addr<Router>,
    /// The router's index, for routing on the session's own thread.
    pub fast: Arc<crate::router::fast::FastRoute>,
    pub persistence: Addr<Persistence>,
    /// Counters for `$SYS`, updated by every session.
    pub metrics: Arc<Metrics>,
    /// Who may connect (`[auth]`, or the one given to [`Broker::authenticator`]).
    pub auth: Arc<dyn Authenticator>,
    /// The authorizer and hooks (none: everything allowed, nothing called).
    pub hooks: Hooks,
    /// Cluster mode: set while the node is cut off from NATS (CONNECTs are refused).
    pub isolation: Isolation,
    /// Failed logins per source address (`[auth] max_login_failures`).
    pub logins: LoginThrottle,
    /// The memory budget (`[limits] max_memory`), when one is set.
    pub memory: Option<Arc<MemoryBudget>>,
}

/// The node refuses new connections: set in cluster mode by the bridge while the node
/// is cut off from the cluster (the cluster's isolation watcher), read by the connect path. A
/// single-host broker is never isolated.
#[derive(Debug, Clone, Default)]
pub struct Isolation(Arc<AtomicBool>);

impl Isolation {
    /// True while the node refuses new connections.
    pub fn is_isolated(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Sets the flag; returns whether it changed.
    pub fn set(&self, isolated: bool) -> bool {
        self.0.swap(isolated, Ordering::AcqRel) != isolated
    }
}
