//! [`Hook`]: events about clients, and an interceptor that may rewrite or drop a
//! publish before it is routed.

use std::sync::Arc;

use bytes::Bytes;

use super::{Answer, ClientInfo};
use crate::protocol::{Properties, QoS};
use crate::topic::{TopicFilter, TopicName};

/// Something that happened to a client, handed to [`Hook::on_event`] on the broker's
/// event thread, in the order each client's session produced them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A network client's CONNECT was accepted (CONNACK 0x00 is on its way).
    Connected {
        /// Who connected.
        client: Arc<ClientInfo>,
        /// The CONNACK's Session Present flag: a stored session was resumed.
        session_present: bool,
    },
    /// A network client's connection ended (DISCONNECT, lost, taken over, kicked).
    Disconnected {
        /// Who it was.
        client: Arc<ClientInfo>,
    },
    /// A filter was subscribed to (network or in-process client).
    Subscribed {
        /// Who subscribed.
        client: Arc<ClientInfo>,
        /// The filter, as the client wrote it.
        filter: TopicFilter,
        /// The QoS granted.
        qos: QoS,
    },
    /// A filter was unsubscribed from.
    Unsubscribed {
        /// Who unsubscribed.
        client: Arc<ClientInfo>,
        /// The filter.
        filter: TopicFilter,
    },
}

/// A publish as an interceptor sees it, and may change it.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The topic it is published to; may be rewritten.
    pub topic: TopicName,
    /// The payload; may be rewritten.
    pub payload: Bytes,
    /// The QoS it was published with. A rewrite may lower it, not raise it: the
    /// publisher's acknowledgement already follows the QoS it sent.
    pub qos: QoS,
    /// The RETAIN flag; may be changed where the server offers retained messages.
    pub retain: bool,
    /// The 5.0 properties forwarded to subscribers (user properties, content type,
    /// response topic, ...); may be rewritten.
    pub properties: Properties,
}

/// What an interceptor makes of a publish.
#[derive(Debug, Clone)]
pub enum Intercept {
    /// Route this (the publish as it came, or rewritten).
    Publish(Publication),
    /// Drop it: nobody receives it. The publisher is acknowledged as usual.
    Drop,
}

/// Events and a publish interceptor, given to [`Broker::hook`]. Both methods have
/// defaults that do nothing, so a hook implements what it needs.
///
/// - [`Hook::on_event`] runs on the broker's own event thread: a slow or blocking
///   event handler delays only later events. Events queue up to a bound (4,096) and
///   are dropped, counted and logged beyond it; a [`Answer::later`] not done within
///   the hook budget is abandoned with a warning.
/// - [`Hook::intercept`] runs for every publish (network and in-process), after the
///   [`Authorizer`](super::Authorizer) allowed it, in the order hooks were added. A
///   [`Answer::later`] holds up only the publishing client. When the budget runs out
///   the publish is refused as if not authorized (5.0 QoS 1/2: reason 0x87; otherwise
///   acknowledged and dropped) and a warning is logged: nothing unvetted is routed.
///
/// [`Broker::hook`]: crate::Broker::hook
///
/// ```
/// use starling::hooks::{Answer, ClientInfo, Hook, Intercept, Publication};
///
/// /// Routes everything published under `legacy/` to `v2/` instead.
/// struct Renamer;
///
/// impl Hook for Renamer {
///     fn intercept(&self, _client: &ClientInfo, mut p: Publication) -> Answer<Intercept> {
///         if let Some(rest) = p.topic.as_str().strip_prefix("legacy/") {
///             if let Ok(topic) = starling::topic::TopicName::new(format!("v2/{rest}")) {
///                 p.topic = topic;
///             }
///         }
///         Answer::ready(Intercept::Publish(p))
///     }
/// }
/// ```
pub trait Hook: Send + Sync + 'static {
    /// Called for each [`Event`].
    fn on_event(&self, _event: &Event) -> Answer<()> {
        Answer::ready(())
    }

    /// Inspects, rewrites or drops a publish before it is routed.
    fn intercept(&self, _client: &ClientInfo, publication: Publication) -> Answer<Intercept> {
        Answer::ready(Intercept::Publish(publication))
    }
}
