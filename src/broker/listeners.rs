//! Starting the `[[listeners]]`: each kind's handshakes (PROXY, TLS, WebSocket) over the
//! shared TCP accept loops, each listener's own connection limit under the global one,
//! and the TLS configurations kept for reloads.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::BrokerError;
use crate::config::{ListenerConfig, ListenerKind};
use crate::session::Shared;
use crate::transport::ws::WsSettings;
use crate::transport::{
    AcceptFn, Accepted, ConnectionLimiter, Handshakes, ServeFn, TcpListenerTask, TlsAcceptorHandle,
    TlsError, TlsSettings, TokenBucket, Workers,
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
        let handshakes = handshakes(l, shared)?;
        let bind_err = |source| BrokerError::Bind {
            addr: l.bind,
            source,
        };
        let task = TcpListenerTask::bind(l.bind, workers.len())
            .await
            .map_err(bind_err)?;
        let addr = task.local_addr().map_err(bind_err)?;
        if let Some(tls) = &handshakes.tls {
            listeners.tls.push((addr, Arc::clone(tls)));
        }
        let limiter = match l.max_connections {
            Some(max) => limiter.child(max),
            None => limiter.clone(),
        };
        let path = handshakes
            .websocket
            .as_ref()
            .map_or("", |ws| ws.path())
            .to_owned();
        let (kind, proxy_protocol) = (l.kind.name(), l.proxy_protocol);
        let mut accept = handshakes.accept_fn(serve_fn(shared));
        if let Some(rate) = l.max_connection_rate {
            accept = rate_limited(accept, rate);
        }
        task.run(workers, limiter, accept, stop.clone());
        info!(%addr, kind, path, proxy_protocol, max_connections = l.max_connections, "listening");
        listeners.addrs.push(addr);
    }
    Ok(listeners)
}

/// What a listener's connections go through before their session: the PROXY header
/// when asked for, TLS on `tls` and `wss`, the WebSocket upgrade on `ws` and `wss`.
fn handshakes(l: &ListenerConfig, shared: &Shared) -> Result<Handshakes, BrokerError> {
    let limits = &shared.config.limits;
    let ws = || WsSettings::new(l.path.clone(), limits.max_packet_size as usize);
    let (tls, websocket) = match l.kind {
        ListenerKind::Tcp => (None, None),
        ListenerKind::Tls => (Some(load_tls(l, &[TlsAcceptorHandle::MQTT_ALPN])?), None),
        ListenerKind::Ws => (None, Some(ws())),
        // Browsers offer ALPN h2 and http/1.1; the upgrade is HTTP/1.1.
        ListenerKind::Wss => (Some(load_tls(l, &[b"http/1.1"])?), Some(ws())),
    };
    Ok(Handshakes {
        proxy_protocol: l.proxy_protocol,
        tls,
        websocket,
        timeout: limits.connect_timeout(),
    })
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

/// Marks the connections beyond `rate` a second as over the listener's connect rate
/// (their CONNECT is refused with 0x9F); the bucket is shared by the accept loops.
fn rate_limited(accept: AcceptFn, rate: u64) -> AcceptFn {
    let bucket = Arc::new(Mutex::new(TokenBucket::new(rate, Instant::now())));
    Arc::new(move |mut accepted: Accepted| {
        let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        accepted.over_rate = !bucket.try_take(1, Instant::now());
        drop(bucket);
        accept(accepted)
    })
}
