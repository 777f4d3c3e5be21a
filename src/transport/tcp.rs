//! The plain TCP listener.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::{Connection, ConnectionLimiter, Workers};

/// A bound TCP listener, ready to accept.
pub struct TcpListenerTask {
    listener: TcpListener,
}

/// What a listener does with each accepted connection (runs on a worker arbiter).
pub type ServeFn =
    std::sync::Arc<dyn Fn(Connection) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

impl TcpListenerTask {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListenerTask> {
        let listener = TcpListener::bind(addr).await?;
        Ok(TcpListenerTask { listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until the task is dropped, moving each socket to a worker arbiter (as a
    /// std socket, so it registers with that arbiter's reactor).
    pub async fn run(self, workers: Workers, limiter: ConnectionLimiter, serve: ServeFn) {
        info!(addr = ?self.listener.local_addr().ok(), "listening");
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let permit = limiter.try_acquire();
            let std_stream = match stream.into_std() {
                Ok(s) => s,
                Err(error) => {
                    debug!(%error, "cannot detach socket");
                    continue;
                }
            };
            let serve = serve.clone();
            workers.spawn(move || async move {
                let stream = match TcpStream::from_std(std_stream) {
                    Ok(s) => s,
                    Err(error) => {
                        debug!(%error, "cannot register socket");
                        return;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (reader, writer) = stream.into_split();
                let conn = Connection {
                    reader: Box::new(reader),
                    writer: Box::new(writer),
                    peer,
                    permit,
                };
                serve(conn).await;
            });
        }
    }
}
