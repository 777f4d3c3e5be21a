//! The plain TCP listener: one SO_REUSEPORT socket per worker arbiter, each accepting and
//! serving its own connections, so a new connection never crosses threads (the kernel
//! spreads connections over the sockets). A connection goes through the listener's
//! [`Handshakes`] (PROXY header, WebSocket upgrade) before its session starts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::proxy::{self, ProxyHeader, Rewind};
use super::ws::{self, WsError, WsSettings};
use super::{BoxedReader, BoxedWriter, Connection, ConnectionLimiter, ConnectionPermit, Workers};

/// What a listener does with each accepted connection (runs on a worker arbiter).
pub type ServeFn =
    std::sync::Arc<dyn Fn(Connection) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

/// A TCP listener spread over the worker arbiters.
pub struct TcpListenerTask {
    sockets: Vec<std::net::TcpListener>,
    local_addr: SocketAddr,
    handshakes: Arc<Handshakes>,
}

/// A listening socket with SO_REUSEPORT, detached from any reactor.
fn reuseport_socket(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

impl TcpListenerTask {
    /// Binds `addr` once per worker (port 0 is resolved by the first bind).
    pub async fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<TcpListenerTask> {
        let first = reuseport_socket(addr)?;
        let local_addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..workers.max(1) {
            sockets.push(reuseport_socket(local_addr)?);
        }
        Ok(TcpListenerTask {
            sockets,
            local_addr,
            handshakes: Arc::new(Handshakes::default()),
        })
    }

    /// What each connection goes through before its session (default: nothing).
    pub fn with_handshakes(mut self, handshakes: Handshakes) -> TcpListenerTask {
        self.handshakes = Arc::new(handshakes);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    /// Starts one accept loop per worker arbiter; they stop when `stop` is cancelled.
    pub fn run(
        self,
        workers: &Workers,
        limiter: ConnectionLimiter,
        serve: ServeFn,
        stop: CancellationToken,
    ) {
        let hs = &self.handshakes;
        let (kind, path) = hs
            .websocket
            .as_ref()
            .map_or(("tcp", ""), |ws| ("ws", ws.path()));
        let proxy_protocol = hs.proxy_protocol;
        info!(addr = %self.local_addr, sockets = self.sockets.len(), kind, path, proxy_protocol, "listening");
        for (i, socket) in self.sockets.into_iter().enumerate() {
            let (limiter, serve, stop) = (limiter.clone(), serve.clone(), stop.clone());
            let handshakes = Arc::clone(&self.handshakes);
            workers.spawn_on(i, move || async move {
                match TcpListener::from_std(socket) {
                    Ok(listener) => accept_loop(listener, limiter, serve, handshakes, stop).await,
                    Err(error) => warn!(%error, "cannot register listening socket"),
                }
            });
        }
    }
}

/// Accepts until `stop`, serving each connection on this arbiter.
async fn accept_loop(
    listener: TcpListener,
    limiter: ConnectionLimiter,
    serve: ServeFn,
    handshakes: Arc<Handshakes>,
    stop: CancellationToken,
) {
    let Ok(bound) = listener.local_addr() else {
        warn!("listening socket has no address");
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = limiter.try_acquire();
        let _ = stream.set_nodelay(true);
        if handshakes.is_plain() {
            let (reader, writer) = stream.into_split();
            let conn = Connection {
                reader: Box::new(reader),
                writer: Box::new(writer),
                peer,
                listener: bound,
                permit,
                trusted: false,
            };
            actix_rt::spawn(serve(conn));
            continue;
        }
        let (serve, handshakes) = (serve.clone(), Arc::clone(&handshakes));
        actix_rt::spawn(async move {
            if let Some(conn) = handshakes.open(stream, peer, bound, permit).await {
                serve(conn).await;
            }
        });
    }
}

/// What an accepted socket goes through before its session starts, in this order: a
/// PROXY protocol header, (TLS, for `wss`: not built yet), the WebSocket upgrade. All of
/// it within the connect timeout.
#[derive(Debug, Clone)]
pub struct Handshakes {
    /// Read a PROXY protocol v1/v2 header first; its source address becomes the peer.
    pub proxy_protocol: bool,
    /// Upgrade to MQTT over WebSocket.
    pub websocket: Option<WsSettings>,
    /// The bound of all the handshakes together (the connect timeout).
    pub timeout: Duration,
}

impl Default for Handshakes {
    /// None: the session reads the socket as it is (the timeout is the default connect
    /// timeout, for a caller that turns one handshake on).
    fn default() -> Handshakes {
        Handshakes {
            proxy_protocol: false,
            websocket: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Handshakes {
    fn is_plain(&self) -> bool {
        !self.proxy_protocol && self.websocket.is_none()
    }

    /// Runs the handshakes; `None` (logged) when the connection was refused or closed.
    async fn open(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        listener: SocketAddr,
        permit: Option<ConnectionPermit>,
    ) -> Option<Connection> {
        let opened = tokio::time::timeout(self.timeout, self.layers(stream, peer)).await;
        let Ok(layers) = opened else {
            debug!(%peer, "handshake not done within the connect timeout; closing");
            return None;
        };
        let (reader, writer, peer) = layers?;
        Some(Connection {
            reader,
            writer,
            peer,
            listener,
            permit,
            trusted: false,
        })
    }

    /// The PROXY header, then the WebSocket upgrade: the connection's two halves and the
    /// client's address, or `None` when refused.
    async fn layers(
        &self,
        mut stream: TcpStream,
        mut peer: SocketAddr,
    ) -> Option<(BoxedReader, BoxedWriter, SocketAddr)> {
        let mut rest = Bytes::new();
        if self.proxy_protocol {
            match proxy::read_header(&mut stream).await {
                Ok((ProxyHeader::Proxied { source, .. }, after)) => {
                    debug!(socket = %peer, client = %source, "PROXY header");
                    (peer, rest) = (source, after);
                }
                Ok((ProxyHeader::Local, after)) => rest = after,
                Err(error) => {
                    info!(%peer, %error, "PROXY protocol header refused; closing");
                    return None;
                }
            }
        }
        let stream = Rewind::new(rest, stream);
        let Some(settings) = &self.websocket else {
            let (reader, writer) = tokio::io::split(stream);
            return Some((Box::new(reader), Box::new(writer), peer));
        };
        match ws::accept(stream, settings, peer).await {
            Ok((reader, writer)) => Some((reader, writer, peer)),
            Err(error @ WsError::Refused(_)) => {
                info!(%peer, %error, "WebSocket handshake refused");
                None
            }
            Err(error) => {
                debug!(%peer, %error, "WebSocket handshake failed");
                None
            }
        }
    }
}
