//! Starting the `[[listeners]]`: each kind's accept step over the shared TCP accept
//! loops, each listener's own connection limit under the global one, and the TLS
//! configurations kept for reloads.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::BrokerError;
use crate::config::{ListenerConfig, ListenerKind};
use crate::session::Shared;
use crate::transport::{
    plain, ConnectionLimiter, ServeFn, TcpListenerTask, TlsAcceptorHandle, TlsError, TlsSettings,
    Workers,
};

/// The listeners started.
#[derive(Default)]
pub(super) struct Listeners {
    /// Their bound addresses, in configuration order.
    pub addrs: Vec<SocketAddr>,
    /// The TLS side of each `tls` listener, by bound address, for SIGHUP.
    pub tls: Vec<(SocketAddr, Arc<TlsAcceptorHandle>)>,
}

impl Listeners {
    /// Re-reads every TLS listener's files; a listener whose files do not load keeps
    /// its configuration (and is logged). Returns how many reloaded, or the first
    /// error once all were tried.
    pub fn reload_tls(&self) -> Result<usize, TlsError> {
        let mut first_error = None;
        let mut reloaded = 0;
        for (addr, tls) in &self.tls {
            match tls.reload() {
                Ok(()) => {
                    info!(listener = %addr, cert = %tls.cert_path().display(), "TLS certificate reloaded");
                    reloaded += 1;
                }
                Err(error) => {
                    warn!(listener = %addr, %error, "TLS files not reloaded; the old ones stay");
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(reloaded), Err)
    }
}

/// Binds and starts every configured listener.
pub(super) async fn start(
    configs: &[ListenerConfig],
    shared: &Arc<Shared>,
    workers: &Workers,
    limiter: &ConnectionLimiter,
    stop: &CancellationToken,
) -> Result<Listeners, BrokerError> {
    let mut listeners = Listeners::default();
    for l in configs {
        let unsupported = |what: String| BrokerError::Unsupported { addr: l.bind, what };
        if l.proxy_protocol {
            return Err(unsupported("proxy_protocol listeners".into()));
        }
        let tls = match l.kind {
            ListenerKind::Tcp => None,
            ListenerKind::Tls => Some(load_tls(l, &[TlsAcceptorHandle::MQTT_ALPN])?),
            other => return Err(unsupported(format!("{other:?} listeners"))),
        };
        let bind_err = |source| BrokerError::Bind {
            addr: l.bind,
            source,
        };
        let task = TcpListenerTask::bind(l.bind, workers.len())
            .await
            .map_err(bind_err)?;
        let addr = task.local_addr().map_err(bind_err)?;
        let accept = match tls {
            None => plain(serve_fn(shared)),
            Some(tls) => {
                listeners.tls.push((addr, Arc::clone(&tls)));
                let timeout = shared.config.limits.connect_timeout();
                tls.accept_fn(serve_fn(shared), timeout)
            }
        };
        let limiter = match l.max_connections {
            Some(max) => limiter.child(max),
            None => limiter.clone(),
        };
        task.run(workers, limiter, accept, stop.clone());
        listeners.addrs.push(addr);
    }
    Ok(listeners)
}

/// The TLS side of a `tls` or `wss` listener, its files loaded; `alpn` are the
/// protocols offered.
fn load_tls(l: &ListenerConfig, alpn: &[&[u8]]) -> Result<Arc<TlsAcceptorHandle>, BrokerError> {
    // Validation made sure of cert and key.
    let (Some(cert), Some(key)) = (&l.cert, &l.key) else {
        return Err(BrokerError::Unsupported {
            addr: l.bind,
            what: "tls listeners without cert and key".into(),
        });
    };
    let settings = TlsSettings {
        cert: cert.clone(),
        key: key.clone(),
        ca: l.ca.clone(),
        require_client_cert: l.require_client_cert,
        identity_as_username: l.identity_as_username,
    };
    let tls = TlsAcceptorHandle::load(settings, alpn).map_err(|source| BrokerError::Tls {
        addr: l.bind,
        source,
    })?;
    Ok(Arc::new(tls))
}

/// Serves a connection, whatever its transport, as a session.
fn serve_fn(shared: &Arc<Shared>) -> ServeFn {
    let shared = Arc::clone(shared);
    Arc::new(move |conn| Box::pin(crate::session::serve(conn, Arc::clone(&shared))))
}
