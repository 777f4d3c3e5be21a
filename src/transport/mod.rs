//! Listeners. A listener turns accepted sockets into [`Connection`]s (a reader, a writer
//! and a peer address) and hands them to a worker arbiter; sessions never see the socket
//! type, so TLS or WebSocket listeners slot in beside TCP without touching them.
//! Before the session, a connection may go through [`Handshakes`]: a PROXY protocol
//! header ([`proxy`]), TLS, then the WebSocket upgrade ([`ws`]).

mod handshakes;
mod limiter;
mod memory;
pub mod proxy;
mod rate;
mod tcp;
mod tls;
mod workers;
pub mod ws;

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

pub use handshakes::Handshakes;
pub use limiter::{ConnectionLimiter, ConnectionPermit};
pub use memory::MemoryBudget;
pub use rate::TokenBucket;
pub use tcp::{AcceptFn, Accepted, ServeFn, TcpListenerTask};
pub use tls::{TlsAcceptorHandle, TlsError, TlsSettings};
pub use workers::Workers;

/// The read half of a client connection.
pub type BoxedReader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a client connection.
pub type BoxedWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// An accepted client connection, whatever its transport.
pub struct Connection {
    pub reader: BoxedReader,
    pub writer: BoxedWriter,
    pub peer: SocketAddr,
    /// The address the connection arrived on (the listener's, with a wildcard bind the
    /// interface's).
    pub listener: SocketAddr,
    /// `None` when the connection limit was reached: the session refuses the CONNECT.
    pub permit: Option<ConnectionPermit>,
    /// The listener's connect rate was exceeded: the session refuses the CONNECT (5.0:
    /// 0x9F Connection rate exceeded).
    pub over_rate: bool,
    /// The embedding application's own connection (a persistent in-process client):
    /// its CONNECT is not authenticated, as in-process clients are not.
    pub trusted: bool,
    /// The client certificate's common name on a TLS listener with
    /// `identity_as_username`: it is the client's username, and the certificate its
    /// credential (the CONNECT's username and password are not checked).
    pub identity: Option<String>,
}
