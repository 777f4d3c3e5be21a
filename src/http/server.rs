//! The broker's own HTTP listener (`[http] bind`), serving [`configure`](super::configure)'s
//! routes on one worker thread.

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use tracing::info;

use super::Ops;

/// A running operations listener; dropping it stops it.
pub(crate) struct OpsServer {
    handle: ServerHandle,
    addr: SocketAddr,
}

impl OpsServer {
    /// Binds `addr` and serves the routes for `ops` (inside an actix `System`).
    pub(crate) fn start(addr: SocketAddr, ops: &Ops) -> std::io::Result<OpsServer> {
        let ops = ops.clone();
        let server = HttpServer::new(move || {
            let ops = ops.clone();
            App::new().configure(move |cfg| super::configure(cfg, &ops))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(addr)?;
        let addr = server.addrs().first().copied().unwrap_or(addr);
        let server = server.run();
        let handle = server.handle();
        actix::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "the HTTP listener failed");
            }
        });
        info!(%addr, "HTTP listener open (/, /health, /ready, /metrics, /api/v1)");
        Ok(OpsServer { handle, addr })
    }

    /// The bound address (useful with port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits (at most a second) for requests in progress.
    pub(crate) async fn stop(self) {
        self.handle.stop(true).await;
    }
}

impl Drop for OpsServer {
    fn drop(&mut self) {
        // The command is sent at once; a broker that failed to start need not wait.
        drop(self.handle.stop(false));
    }
}
