//! The broker's side of the operations endpoints: `[http]` at start (the token file
//! checked, the listener bound before the store is loaded, so that `/health` answers
//! and `/ready` says 503 meanwhile), and readiness once the start is done.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use actix::Addr;
use tracing::info;

use super::BrokerError;
use crate::cluster::{AdminHandler, AdminLink};
use crate::config::{read_token, Config};
use crate::http::{Ops, OpsServer, Peers};
use crate::metrics::Metrics;
use crate::persistence::{ObserveStore, Persistence};

/// The operations handle and, with `[http] bind`, its listener.
pub(super) fn start(config: &Config) -> Result<(Ops, Option<OpsServer>), BrokerError> {
    let http = &config.http;
    let token = http.token_file.as_deref().map(read_token).transpose()?;
    let metrics = if config.cluster.enabled {
        Metrics::with_cluster()
    } else {
        Metrics::new()
    };
    let ops = Ops::new(Arc::new(metrics), token);
    let Some(bind) = http.bind else {
        return Ok((ops, None));
    };
    let server =
        OpsServer::start(bind, &ops).map_err(|source| BrokerError::Bind { addr: bind, source })?;
    Ok((ops, Some(server)))
}

/// Has the persistence actor count its commits and restarts on `ops`'s metrics.
pub(super) fn observe_store(ops: &Ops, persistence: &Addr<Persistence>) {
    persistence.do_send(ObserveStore(ops.metrics().store().clone()));
}

/// Logs where the listener is, once the broker is ready.
pub(super) fn log_ready(server: Option<&OpsServer>) {
    if let Some(server) = server {
        info!(addr = %server.local_addr(), "ready (GET /ready answers 200)");
    }
}

/// How this node answers the other nodes' admin questions: as its admin API would.
pub(super) fn answer_peers(ops: &Ops) -> AdminHandler {
    let ops = ops.clone();
    AdminHandler(Arc::new(move |request| {
        let ops = ops.clone();
        Box::pin(async move { ops.answer_peer(request).await })
    }))
}

/// Has the admin API ask the other nodes through `link` (cluster-wide answers).
pub(super) fn ask_peers(ops: &Ops, link: AdminLink) {
    ops.set_peers(Arc::new(NatsPeers(link)));
}

/// The other nodes, reached over NATS.
struct NatsPeers(AdminLink);

impl Peers for NatsPeers {
    fn scatter(&self, request: Bytes, wait: Duration) -> BoxFuture<'static, Vec<Bytes>> {
        let link = self.0.clone();
        Box::pin(async move { link.scatter(request, wait).await })
    }
}
