//! The running broker as the application holds it: its addresses, reloads, in-process
//! clients, and `stop`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::listeners::Listeners;
use crate::auth::acl::AclAuthorizer;
use crate::auth::{AuthSetupError, Authenticator};
use crate::http::{Ops, OpsServer};
use crate::local::{LocalClient, PersistentClient, Refused};
use crate::message::ClientId;
use crate::persistence::{FlushNow, Persistence};
use crate::router::messages::{GetStats, RecheckSubscriptions, ShutdownSessions};
use crate::router::Router;
use crate::session::Shared;
use crate::transport::{ConnectionLimiter, TlsError, Workers};

/// The longest wait at shutdown for connections to flush and close: a session's own
/// linger (5 s) and a little more.
const SHUTDOWN_LINGER: Duration = Duration::from_secs(6);

/// A running broker.
pub struct BrokerHandle {
    pub(super) router: Addr<Router>,
    pub(super) workers: Workers,
    /// `None` when the router runs on the first worker's thread.
    pub(super) router_arbiter: Option<ArbiterHandle>,
    pub(super) persistence: Addr<Persistence>,
    pub(super) persistence_arbiter: ArbiterHandle,
    /// Cluster mode: where the NATS bridge runs.
    pub(super) cluster_arbiter: Option<ArbiterHandle>,
    /// Cancelled to stop every accept loop.
    pub(super) accepting: CancellationToken,
    /// Counts live connections; shutdown waits until it reaches zero.
    pub(super) limiter: ConnectionLimiter,
    pub(super) auth: Arc<dyn Authenticator>,
    /// What sessions share (the configuration, the hooks), for in-process clients.
    pub(super) shared: Arc<Shared>,
    /// Where event hooks run, when there are any.
    pub(super) events_arbiter: Option<ArbiterHandle>,
    /// `[auth] acl_file`'s authorizer, for reloads.
    pub(super) acl: Option<Arc<AclAuthorizer>>,
    /// The listeners, with their TLS configurations for reloads.
    pub(super) listeners: Listeners,
    /// What `/health`, `/ready` and `/metrics` report on.
    pub(super) ops: Ops,
    /// `[http] bind`'s listener.
    pub(super) ops_server: Option<OpsServer>,
}

impl BrokerHandle {
    /// The bound listener addresses (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.listeners.addrs
    }

    /// Re-reads the password file (the `starling` binary does it on SIGHUP): new
    /// CONNECTs and re-authentications see the new users; connected clients stay.
    pub fn reload_auth(&self) -> Result<usize, AuthSetupError> {
        self.auth.reload()
    }

    /// Re-reads `[auth] acl_file` (the `starling` binary does it on SIGHUP); on error the
    /// rules in force stay. Every connected client then loses the subscriptions it may
    /// no longer hold, and later publishes and deliveries follow the new rules.
    /// Returns how many rules the file holds, `None` without an ACL file.
    pub async fn reload_acl(&self) -> Result<Option<usize>, AuthSetupError> {
        let Some(acl) = &self.acl else {
            return Ok(None);
        };
        let rules = acl.reload()?;
        if self.router.send(RecheckSubscriptions).await != Ok(true) {
            tracing::warn!("the router failed rechecking subscriptions; asking again");
            let _ = self.router.send(RecheckSubscriptions).await;
        }
        Ok(Some(rules))
    }

    /// Re-reads the certificate, key and CA of every `tls` and `wss` listener (the
    /// `starling` binary does it on SIGHUP): new handshakes use them, connected clients
    /// stay. A listener whose files do not load keeps the ones in force (and is logged).
    /// Returns how many listeners reloaded, or the first error once all were tried.
    pub fn reload_tls(&self) -> Result<usize, TlsError> {
        self.listeners.reload_tls()
    }

    /// An in-process client with this client id, for publishing from the embedding
    /// application ([`LocalClient`]).
    pub fn client(&self, id: &str) -> LocalClient {
        LocalClient::new(ClientId::from(id), Arc::clone(&self.shared))
    }

    /// An in-process client with a persistent session ([`PersistentClient`]): it
    /// connects as an MQTT 5.0 client with clean start 0 and this session expiry, so it
    /// resumes the session stored for `id` (also one a network client left, or one
    /// restored at start-up) and takes it over from a connection holding it.
    pub async fn persistent_client(
        &self,
        id: &str,
        session_expiry: Duration,
    ) -> Result<PersistentClient, Refused> {
        let shared = Arc::clone(&self.shared);
        let id = ClientId::from(id);
        PersistentClient::connect(id, session_expiry, shared, &self.workers, &self.limiter).await
    }

    /// The arbiter (thread) the router runs on. Actors of the application started
    /// there (`Actor::start_in_arbiter`, or `arbiter.spawn(..)` for a task) talk to the
    /// broker through in-process clients without a thread switch per message; keep
    /// their work short, as it shares the thread with routing.
    pub fn arbiter(&self) -> ArbiterHandle {
        match &self.router_arbiter {
            Some(arbiter) => arbiter.clone(),
            None => self.workers.first().clone(),
        }
    }

    /// The operations endpoints' view of this broker, to mount `/health`, `/ready` and
    /// `/metrics` in an application's own actix-web `App` ([`crate::http`]).
    pub fn ops(&self) -> Ops {
        self.ops.clone()
    }

    /// The bound address of the `[http]` listener, when there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.ops_server.as_ref().map(OpsServer::local_addr)
    }

    /// The router actor, for embedding applications that publish or inspect.
    pub fn router(&self) -> &Addr<Router> {
        &self.router
    }

    /// Stops accepting, closes every connection (5.0 clients get DISCONNECT 0x8B), and
    /// stops the broker's arbiters.
    pub async fn stop(self) {
        self.ops.stopping();
        self.accepting.cancel();
        // A router that failed meanwhile is asked once more once restarted; otherwise
        // the connections would stay open until the linger below.
        if self.router.send(ShutdownSessions).await != Ok(true) {
            tracing::warn!("the router failed closing the connections; asking again");
            let _ = self.router.send(ShutdownSessions).await;
        }
        // Each connection closes once its DISCONNECT is flushed (a session waits for the
        // acknowledgements it owes first); a socket that takes no more data is given up
        // after the session's own linger.
        if tokio::time::timeout(SHUTDOWN_LINGER, self.limiter.all_closed())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.limiter.live(),
                "connections still open at shutdown"
            );
        }
        // What the sessions sent the router on closing (their stored records) has
        // reached the persistence actor once the router answers this.
        let _ = self.router.send(GetStats).await;
        if !self.persistence.send(FlushNow).await.unwrap_or(false) {
            tracing::error!("final store flush failed");
        }
        self.workers.stop();
        if let Some(arbiter) = self.router_arbiter {
            arbiter.stop();
        }
        self.persistence_arbiter.stop();
        if let Some(arbiter) = self.cluster_arbiter {
            arbiter.stop();
        }
        if let Some(arbiter) = self.events_arbiter {
            arbiter.stop();
        }
        if let Some(server) = self.ops_server {
            server.stop().await;
        }
        info!("broker stopped");
    }
}
