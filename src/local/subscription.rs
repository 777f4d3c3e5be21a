//! An in-process subscription: a [`futures::Stream`] of the messages its filter matched.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix::Recipient;
use bytes::Bytes;
use futures::{Future, Stream, StreamExt};

use super::inbox::Inbox;
use super::Core;
use crate::delivery::Outgoing;
use crate::hooks::{Access, Decision, Pending};
use crate::protocol::{Properties, QoS};
use crate::router::messages::Unsubscribe;
use crate::topic::{TopicFilter, TopicName};

/// One message delivered to an in-process subscription. It is also an actix message,
/// for [`Subscription::deliver_to`].
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct LocalMessage {
    /// The topic it was published to.
    pub topic: TopicName,
    /// Its payload.
    pub payload: Bytes,
    /// The QoS it was delivered at: the lower of the publish's and the subscription's.
    pub qos: QoS,
    /// Set for a retained message sent at subscribe time.
    pub retain: bool,
    /// The publisher's 5.0 properties (user properties, content type, ...).
    pub properties: Properties,
}

/// The messages one filter of a [`LocalClient`](super::LocalClient) matches, in the
/// order the router dealt them. Its queue has the bounds of a network session's
/// (`[limits] max_queued_messages`, `max_queued_bytes`) and the same policy when full:
/// QoS 0 messages go first, then new messages are dropped ([`Subscription::dropped`]);
/// the router never waits for a slow reader. The stream ends when the client id is
/// taken over by another connection or the broker stops. Dropping it unsubscribes.
pub struct Subscription {
    pub(super) core: Arc<Core>,
    pub(super) inbox: Arc<Inbox>,
    pub(super) filter: TopicFilter,
    pub(super) id: u32,
    pub(super) granted: QoS,
    /// A message waiting for the authorizer's late answer on its receipt.
    pub(super) pending: Option<(Outgoing, LateDecision)>,
}

/// The authorizer's answer, later (the hook budget applied).
pub(super) type LateDecision = Pin<Box<dyn Future<Output = Decision> + Send>>;

impl Subscription {
    /// The QoS granted: the lower of the one asked for and the server's Maximum QoS.
    pub fn granted_qos(&self) -> QoS {
        self.granted
    }

    /// The filter subscribed to (not `filter`, which `StreamExt::filter` would shadow).
    pub fn topic_filter(&self) -> &TopicFilter {
        &self.filter
    }

    /// Messages dropped so far because this subscription's queue was full.
    pub fn dropped(&self) -> u64 {
        self.inbox.dropped()
    }

    /// Hands each message to `recipient` (an actor of the application), one at a time:
    /// the next is sent once the actor has handled the previous one, so a slow actor
    /// is bounded by this subscription's queue like a slow stream reader. Forwarding
    /// ends (and the subscription with it) when the stream ends or the actor stops.
    pub fn deliver_to(mut self, recipient: Recipient<LocalMessage>) {
        actix_rt::spawn(async move {
            while let Some(message) = self.next().await {
                if recipient.send(message).await.is_err() {
                    return;
                }
            }
        });
    }

    /// Unsubscribes and waits until the router no longer routes to it.
    pub async fn unsubscribe(self) {
        if !self.core.has_filter(&self.filter, self.id) {
            return; // already unsubscribed (LocalClient::unsubscribe)
        }
        if let Some(unsubscribe) = self.forget() {
            let _ = self.core.router.send(unsubscribe).await;
        }
    }

    /// Takes this subscription out of the client; the `Unsubscribe` to send, unless it
    /// had ended (the client id was taken over: the router's subscriptions for that id
    /// are another session's now).
    fn forget(&self) -> Option<Unsubscribe> {
        let ended = self.inbox.is_closed();
        self.core.link.remove(self.id);
        self.core.forget_filter(&self.filter);
        self.inbox.close();
        self.core.announce_unsubscribed(&self.filter);
        (!ended).then(|| Unsubscribe {
            client_id: self.core.id.clone(),
            filters: vec![self.filter.clone()],
        })
    }
}

impl Stream for Subscription {
    type Item = LocalMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LocalMessage>> {
        let this = self.get_mut();
        loop {
            if let Some((_, decision)) = &mut this.pending {
                let Poll::Ready(decision) = decision.as_mut().poll(cx) else {
                    return Poll::Pending;
                };
                let out = this.pending.take().map(|(out, _)| out);
                match (decision, out) {
                    (Decision::Allow, Some(out)) => return Poll::Ready(Some(message(&out))),
                    _ => continue,
                }
            }
            let out = match this.inbox.poll_next(cx) {
                Poll::Ready(Some(out)) => out,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            // Expired while queued: dropped, as for a network session.
            if out.msg.is_expired(Instant::now()) {
                continue;
            }
            let topic = out.msg.topic.as_str();
            match this.core.authorize(Access::Receive, topic) {
                Pending::Ready(Decision::Allow) => return Poll::Ready(Some(message(&out))),
                Pending::Ready(Decision::Deny) => continue,
                Pending::Later(decision) => this.pending = Some((out, decision)),
            }
        }
    }
}

fn message(out: &Outgoing) -> LocalMessage {
    LocalMessage {
        topic: out.msg.topic.clone(),
        payload: out.msg.payload.clone(),
        qos: out.qos,
        retain: out.retain,
        properties: out.msg.properties.clone(),
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.core.has_filter(&self.filter, self.id) {
            if let Some(unsubscribe) = self.forget() {
                self.core.router.do_send(unsubscribe);
            }
        }
    }
}
