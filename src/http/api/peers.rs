//! Cluster-wide answers. In cluster mode the broker gives [`Ops`] the other nodes
//! ([`Peers`], NATS request and replies under the hood), and a question about clients
//! or subscriptions goes to every node: each answers for the sessions it holds
//! ([`answer`]), and the node that was asked merges, sorts and pages. The wire format
//! is JSON of [`PeerRequest`] and [`PeerAnswer`]; the http layer names no cluster.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::json::{ClientBody, ClientItem, SubscriptionItem};
use super::{Admin, ApiError, ASK_TIMEOUT};
use crate::http::Ops;
use crate::message::ClientId;
use crate::router::admin::{FindClient, KickClient, ListClients, ListSubscriptions, Window};
use crate::topic::TopicFilter;

/// How long a cluster-wide question waits for the other nodes' answers.
pub(crate) const PEER_WAIT: Duration = Duration::from_millis(500);

/// The other nodes of the cluster, as the admin API reaches them.
pub(crate) trait Peers: Send + Sync + 'static {
    /// Sends `request` to every other node; the answers that came within `wait`.
    fn scatter(&self, request: Bytes, wait: Duration) -> BoxFuture<'static, Vec<Bytes>>;
}

/// A question for every node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub(crate) enum PeerRequest {
    /// Every client it holds.
    Clients,
    /// One client, if it holds it.
    Client { client_id: String },
    /// Disconnect the client (and discard its session), if it holds it.
    Kick { client_id: String, discard: bool },
    /// Its subscriptions under `filter`.
    Subscriptions { filter: Option<String> },
}

/// A node's answer (the fields its question asked for).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct PeerAnswer {
    #[serde(default)]
    pub clients: Vec<ClientItem>,
    #[serde(default)]
    pub client: Option<ClientBody>,
    #[serde(default)]
    pub kicked: bool,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionItem>,
}

/// Everything, for the answers that are merged before they are paged.
const ALL: Window = Window {
    offset: 0,
    limit: usize::MAX,
};

/// This node's answer to `request` (JSON of a [`PeerRequest`]), as JSON of a
/// [`PeerAnswer`]; an empty answer when the request is not understood or the broker is
/// not started.
pub(crate) async fn answer(ops: &Ops, request: Bytes) -> Bytes {
    let answer = match (
        serde_json::from_slice::<PeerRequest>(&request),
        ops.router(),
    ) {
        (Ok(request), Some(router)) => {
            let admin = Admin {
                router,
                ops: ops.clone(),
            };
            local(&admin, request).await.unwrap_or_default()
        }
        (Err(e), _) => {
            warn!(error = %e, "admin request from another node not understood");
            PeerAnswer::default()
        }
        (_, None) => PeerAnswer::default(),
    };
    serde_json::to_vec(&answer).map_or_else(|_| Bytes::new(), Bytes::from)
}

/// What this node answers to `request`.
pub(super) async fn local(admin: &Admin, request: PeerRequest) -> Result<PeerAnswer, ApiError> {
    let mut answer = PeerAnswer::default();
    match request {
        PeerRequest::Clients => {
            let page = admin.ask(ListClients(ALL)).await?;
            answer.clients = page.items.into_iter().map(ClientItem::from).collect();
        }
        PeerRequest::Client { client_id } => {
            answer.client = client(admin, ClientId::new(client_id)).await?;
        }
        PeerRequest::Kick { client_id, discard } => {
            let client_id = ClientId::new(client_id);
            answer.kicked = admin.ask(KickClient { client_id, discard }).await?;
        }
        PeerRequest::Subscriptions { filter } => {
            let filter = filter.and_then(|f| TopicFilter::new(f).ok());
            let page = admin
                .ask(ListSubscriptions {
                    filter,
                    window: ALL,
                })
                .await?;
            let items = page.items.into_iter().map(SubscriptionItem::from);
            answer.subscriptions = items.collect();
        }
    }
    Ok(answer)
}

/// One client's details: the router's part, then the session's.
pub(super) async fn client(admin: &Admin, id: ClientId) -> Result<Option<ClientBody>, ApiError> {
    let Some(entry) = admin.ask(FindClient(id)).await? else {
        return Ok(None);
    };
    let details = match tokio::time::timeout(ASK_TIMEOUT, entry.describe()).await {
        Ok(Ok(details)) => details,
        // An in-process client, or a session actor that stopped meanwhile.
        Ok(Err(_)) => Default::default(),
        Err(_) => return Err(ApiError::Unavailable("the session")),
    };
    Ok(Some(ClientBody::new(
        entry.summary,
        entry.subscriptions,
        details,
    )))
}

/// The other nodes' answers to `request` (none on a single node).
pub(super) async fn ask_others(ops: &Ops, request: &PeerRequest) -> Vec<PeerAnswer> {
    let Some(peers) = ops.peers() else {
        return Vec::new();
    };
    let Ok(bytes) = serde_json::to_vec(request) else {
        return Vec::new();
    };
    let answers = peers.scatter(Bytes::from(bytes), PEER_WAIT).await;
    answers
        .iter()
        .filter_map(|a| match serde_json::from_slice(a) {
            Ok(answer) => Some(answer),
            Err(e) => {
                warn!(error = %e, "admin answer from another node not understood");
                None
            }
        })
        .collect()
}
