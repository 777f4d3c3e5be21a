//! What an accepted socket goes through before its session starts, in this order: a
//! PROXY protocol header ([`proxy`](super::proxy)), the TLS handshake
//! ([`tls`](super::tls)), the WebSocket upgrade ([`ws`](super::ws)); all of it within the
//! connect timeout. A listener with none of them serves the socket as it is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::{debug, info};

use super::proxy::{self, ProxyHeader, Rewind};
use super::tcp::{plain, AcceptFn, Accepted, ServeFn};
use super::tls::{Handshaken, TlsAcceptorHandle};
use super::ws::{self, WsError, WsSettings};
use super::{BoxedReader, BoxedWriter, Connection};

/// The handshakes of one listener.
#[derive(Clone)]
pub struct Handshakes {
    /// Read a PROXY protocol v1/v2 header first; its source address becomes the peer.
    pub proxy_protocol: bool,
    /// Shake hands over TLS (`tls` and `wss` listeners).
    pub tls: Option<Arc<TlsAcceptorHandle>>,
    /// Upgrade to MQTT over WebSocket (`ws` and `wss` listeners).
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
            tls: None,
            websocket: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A connection's two halves after the handshakes, its client's address and its TLS
/// identity.
struct Opened {
    reader: BoxedReader,
    writer: BoxedWriter,
    peer: SocketAddr,
    identity: Option<String>,
}

impl Handshakes {
    /// The listener's accept step: the handshakes, then `serve`. Without any, the socket
    /// is served as it is.
    pub fn accept_fn(self, serve: ServeFn) -> AcceptFn {
        if !self.proxy_protocol && self.tls.is_none() && self.websocket.is_none() {
            return plain(serve);
        }
        let handshakes = Arc::new(self);
        Arc::new(move |accepted: Accepted| {
            let (handshakes, serve) = (Arc::clone(&handshakes), Arc::clone(&serve));
            Box::pin(async move {
                if let Some(conn) = handshakes.open(accepted).await {
                    serve(conn).await;
                }
            })
        })
    }

    /// Runs the handshakes; `None` (logged) when the connection was refused or closed.
    async fn open(&self, accepted: Accepted) -> Option<Connection> {
        let Accepted {
            stream,
            peer,
            listener,
            permit,
            over_rate,
        } = accepted;
        let opened = tokio::time::timeout(self.timeout, self.layers(stream, peer, listener)).await;
        let Ok(layers) = opened else {
            debug!(%peer, %listener, "handshake not done within the connect timeout; closing");
            return None;
        };
        let opened = layers?;
        Some(Connection {
            reader: opened.reader,
            writer: opened.writer,
            peer: opened.peer,
            listener,
            permit,
            over_rate,
            trusted: false,
            identity: opened.identity,
        })
    }

    /// The PROXY header, then TLS, then the WebSocket upgrade; `None` when refused.
    async fn layers(
        &self,
        mut stream: TcpStream,
        mut peer: SocketAddr,
        listener: SocketAddr,
    ) -> Option<Opened> {
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
        let Some(tls) = &self.tls else {
            return self.websocket(stream, peer, None).await;
        };
        match tls.handshake(stream, self.timeout).await {
            Ok(Handshaken { stream, identity }) => self.websocket(stream, peer, identity).await,
            Err(error) => {
                info!(%peer, %listener, %error, "TLS handshake failed; closing");
                None
            }
        }
    }

    /// The WebSocket upgrade when the listener has one; the stream as it is otherwise.
    async fn websocket<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        identity: Option<String>,
    ) -> Option<Opened>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let opened = |(reader, writer)| Opened {
            reader,
            writer,
            peer,
            identity,
        };
        let Some(settings) = &self.websocket else {
            let (reader, writer) = tokio::io::split(stream);
            let halves: (BoxedReader, BoxedWriter) = (Box::new(reader), Box::new(writer));
            return Some(opened(halves));
        };
        match ws::accept(stream, settings, peer).await {
            Ok(halves) => Some(opened(halves)),
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
