//! The plain TCP listener: one SO_REUSEPORT socket per worker arbiter, each accepting and
//! serving its own connections, so a new connection never crosses threads (the kernel
//! spreads connections over the sockets). What each accepted socket goes through is the
//! listener's [`AcceptFn`] (see [`Handshakes`](super::Handshakes)).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Connection, ConnectionLimiter, ConnectionPermit, Workers};

/// What a listener does with each accepted connection (runs on a worker arbiter).
pub type ServeFn =
    std::sync::Arc<dyn Fn(Connection) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

/// A socket just accepted, before any handshake of the transport above TCP.
pub struct Accepted {
    /// The socket.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the connection arrived on.
    pub listener: SocketAddr,
    /// `None` when a connection limit was reached.
    pub permit: Option<ConnectionPermit>,
    /// The listener's connect rate was exceeded.
    pub over_rate: bool,
}

/// What a listener does with each accepted socket (runs on the worker arbiter that
/// accepted it): plain TCP serves it at once ([`plain`]), TLS shakes hands first.
pub type AcceptFn =
    std::sync::Arc<dyn Fn(Accepted) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

/// Plain MQTT over TCP: each socket is split and served as it is.
pub fn plain(serve: ServeFn) -> AcceptFn {
    std::sync::Arc::new(move |accepted: Accepted| {
        let (reader, writer) = accepted.stream.into_split();
        serve(Connection {
            reader: Box::new(reader),
            writer: Box::new(writer),
            peer: accepted.peer,
            listener: accepted.listener,
            permit: accepted.permit,
            over_rate: accepted.over_rate,
            trusted: false,
            identity: None,
        })
    })
}

/// A TCP listener spread over the worker arbiters.
pub struct TcpListenerTask {
    sockets: Vec<std::net::TcpListener>,
    local_addr: SocketAddr,
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
        })
    }

    /// The bound address (with port 0, the port picked).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    /// Starts one accept loop per worker arbiter; they stop when `stop` is cancelled.
    pub fn run(
        self,
        workers: &Workers,
        limiter: ConnectionLimiter,
        serve: AcceptFn,
        stop: CancellationToken,
    ) {
        for (i, socket) in self.sockets.into_iter().enumerate() {
            let (limiter, serve, stop) = (limiter.clone(), serve.clone(), stop.clone());
            workers.spawn_on(i, move || async move {
                match TcpListener::from_std(socket) {
                    Ok(listener) => accept_loop(listener, limiter, serve, stop).await,
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
    serve: AcceptFn,
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
        let accepted = Accepted {
            stream,
            peer,
            listener: bound,
            permit,
            over_rate: false,
        };
        actix_rt::spawn(serve(accepted));
    }
}
