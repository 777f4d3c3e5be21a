//! The vocabulary shared by the session, router, persistence and cluster layers: what
//! one subscription keeps, and one message on its way to one session. It sits below all
//! of them, so that none has to import another to speak of a delivery.

use std::sync::Arc;

use crate::message::Message;
use crate::protocol::{QoS, SubscriptionOptions};
use crate::topic::TopicFilter;

/// What the router keeps for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubEntry {
    pub options: SubscriptionOptions,
    /// The 5.0 subscription identifier given with the SUBSCRIBE, if any.
    pub id: Option<u32>,
}

/// One message for one session's client: what the router hands a session, and what the
/// session queues and keeps in flight.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub msg: Arc<Message>,
    /// The QoS to deliver at: the lower of the message's and the subscription's.
    pub qos: QoS,
    /// The RETAIN flag to deliver with.
    pub retain: bool,
    /// The 5.0 subscription identifiers of the matching subscriptions.
    pub sub_ids: Vec<u32>,
    /// Its number in the session's stored queue (persistent sessions, QoS 1/2).
    pub seq: Option<u64>,
    /// The shared subscription (`$share/{group}/{filter}`) it came through, when only a
    /// shared subscription matched: another member may take it over (section 4.8.2).
    pub share: Option<TopicFilter>,
}

/// A message's number in the cluster: the publishing node's incarnation and its
/// sequence number there. Copies of one message carry the same `Origin`, so duplicates
/// are recognised and a resumed session's replay knows what it already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The publishing node's incarnation (new at every start).
    pub node: u64,
    /// The message's number among that incarnation's messages, from 1.
    pub seq: u64,
}
