//! Admin questions between nodes, for the admin API's cluster-wide answers: a node
//! asks every other node at once (a NATS request on [`SUBJECT`] whose replies it
//! gathers for a bounded time, [`AdminLink::scatter`]), and each node answers with the
//! [`AdminHandler`] the broker gave it. The bytes are opaque here (the http layer's
//! JSON); a node ignores its own question.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use tracing::{debug, warn};

/// The subject every node answers admin questions on.
pub const SUBJECT: &str = "starling.admin";
/// The header naming the asking node's incarnation (a node ignores its own question).
const ORIGIN_HEADER: &str = "Starling-Origin";
/// Answers gathered at most for one question.
const MAX_ANSWERS: usize = 1024;

/// How this node answers another node's question (given by the broker).
#[derive(Clone)]
pub struct AdminHandler(pub Arc<dyn Fn(Bytes) -> BoxFuture<'static, Bytes> + Send + Sync>);

/// Asks the other nodes (cheap to clone).
#[derive(Debug, Clone)]
pub struct AdminLink {
    client: async_nats::Client,
    origin: u64,
}

impl AdminLink {
    pub(super) fn new(client: async_nats::Client, origin: u64) -> AdminLink {
        AdminLink { client, origin }
    }

    /// Sends `request` to every other node and returns the answers that came within
    /// `wait` (none when NATS is unreachable).
    pub async fn scatter(&self, request: Bytes, wait: Duration) -> Vec<Bytes> {
        let deadline = tokio::time::Instant::now() + wait;
        let inbox = self.client.new_inbox();
        let Ok(mut replies) = self.client.subscribe(inbox.clone()).await else {
            return Vec::new();
        };
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN_HEADER, self.origin.to_string().as_str());
        let sent = self
            .client
            .publish_with_reply_and_headers(SUBJECT, inbox, headers, request)
            .await;
        if let Err(e) = sent {
            warn!(error = %e, "admin question not sent to the other nodes");
            return Vec::new();
        }
        let mut answers = Vec::new();
        while answers.len() < MAX_ANSWERS {
            match tokio::time::timeout_at(deadline, replies.next()).await {
                Ok(Some(reply)) => answers.push(reply.payload),
                _ => break,
            }
        }
        answers
    }
}

/// Answers the other nodes' questions until the connection closes.
pub(super) async fn serve(client: async_nats::Client, origin: u64, handler: AdminHandler) {
    let mut questions = match client.subscribe(SUBJECT).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot answer other nodes' admin questions");
            return;
        }
    };
    let me = origin.to_string();
    while let Some(q) = questions.next().await {
        let from = q.headers.as_ref().and_then(|h| h.get(ORIGIN_HEADER));
        if from.map(|v| v.as_str()) == Some(me.as_str()) {
            continue;
        }
        let Some(reply) = q.reply else {
            debug!("admin question without a reply subject");
            continue;
        };
        let (client, handler) = (client.clone(), handler.clone());
        tokio::spawn(async move {
            let answer = (handler.0)(q.payload).await;
            if let Err(e) = client.publish(reply, answer).await {
                debug!(error = %e, "admin answer not sent");
            }
        });
    }
}
