//! In-process clients: the embedding application publishes into the broker as a
//! network client would, without a connection. A [`LocalClient`] comes from
//! [`BrokerHandle::client`](crate::BrokerHandle::client); its publishes go to the same
//! router, under the same rules (the server's Maximum QoS, Retain Available, UTF-8
//! payload validation) and with the same acknowledgement: `publish` returns when a
//! network client would get its PUBACK or PUBCOMP, so after the store holds the
//! message for persistent subscribers under `sync` durability.
//!
//! Subscribing in-process is not there yet: a local client publishes only.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use starling::protocol::QoS;
//! let broker = starling::Broker::new(starling::Config::default()).start().await?;
//! let app = broker.client("my-app");
//! let published = app.publish("sensors/1/temp", "21.5", QoS::AtLeastOnce, false).await?;
//! println!("handed to {} sessions", published.matched);
//! broker.stop().await;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use actix::Addr;
use bytes::Bytes;

use crate::config::Config;
use crate::message::{ClientId, Message};
use crate::protocol::{Properties, QoS, ReasonCode};
use crate::router::messages::Route;
use crate::router::Router;
use crate::session::policy::{check_payload, check_publish};
use crate::topic::TopicName;

/// A client inside the embedding application. Cheap to clone; its client id is the
/// publisher's for subscribers' No Local option.
#[derive(Clone)]
pub struct LocalClient {
    id: ClientId,
    router: Addr<Router>,
    config: Arc<Config>,
}

/// What became of an accepted publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// How many sessions it was handed to on this node (in a cluster, subscribers
    /// elsewhere are not counted).
    pub matched: usize,
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("publish refused ({reason:?}): {why}")]
pub struct PublishError {
    /// The reason code a network client would have got.
    pub reason: ReasonCode,
    pub why: &'static str,
}

impl LocalClient {
    pub(crate) fn new(id: ClientId, router: Addr<Router>, config: Arc<Config>) -> LocalClient {
        LocalClient { id, router, config }
    }

    /// This client's id.
    pub fn id(&self) -> &ClientId {
        &self.id
    }

    /// Publishes `payload` on `topic`. Returns once the message is routed and, for what
    /// the store must keep, stored as the durability setting asks: when a network
    /// client would get its PUBACK (QoS 1) or PUBCOMP (QoS 2).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Published, PublishError> {
        let msg = self.message(topic, payload.into(), qos, retain)?;
        let routed = self
            .router
            .send(Route {
                msg: Arc::new(msg),
                inbound_qos2: None,
            })
            .await
            .map_err(|_| refused(ReasonCode::UNSPECIFIED_ERROR, "the broker has stopped"))?;
        let stored = match routed.durable {
            Some(durable) => durable.wait().await,
            None => true,
        };
        match stored {
            true => Ok(Published {
                matched: routed.matched,
            }),
            false => Err(refused(
                ReasonCode::UNSPECIFIED_ERROR,
                "the message could not be stored",
            )),
        }
    }

    /// The message a network PUBLISH with these fields would become, or its refusal.
    fn message(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<Message, PublishError> {
        let topic = TopicName::new(topic)
            .map_err(|_| refused(ReasonCode::TOPIC_NAME_INVALID, "not a valid topic name"))?;
        let refusal = |r: crate::session::policy::Refusal| refused(r.reason, r.text);
        check_publish(&self.config.capabilities, qos, retain).map_err(refusal)?;
        let properties = Properties::default();
        let validate = self.config.limits.validate_utf8_payloads;
        check_payload(validate, &properties, &payload).map_err(refusal)?;
        Ok(Message {
            topic,
            payload,
            qos,
            retain,
            properties,
            expires_at: None,
            publisher: Some(self.id.clone()),
            encoded: Default::default(),
        })
    }
}

fn refused(reason: ReasonCode, why: &'static str) -> PublishError {
    PublishError { reason, why }
}
