//! Values that travel between sessions and the router: client ids and routed messages.

use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;

use crate::protocol::{Properties, QoS};
use crate::topic::TopicName;

/// A client identifier as sent in CONNECT (or assigned by the broker).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(ByteString);

impl ClientId {
    pub fn new(id: impl Into<ByteString>) -> ClientId {
        ClientId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytestring(&self) -> &ByteString {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({:?})", &*self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One application message as the router sees it: published once, shared by every
/// subscriber through an `Arc`, never copied per subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: TopicName,
    pub payload: Bytes,
    /// The QoS it was published with; each subscriber gets at most its granted QoS.
    pub qos: QoS,
    /// The RETAIN flag it was published with.
    pub retain: bool,
    /// 5.0 properties forwarded to subscribers (topic alias and subscription identifiers
    /// removed; message expiry rewritten on delivery from `expires_at`).
    pub properties: Properties,
    /// When the message expiry interval runs out, if one was given.
    pub expires_at: Option<Instant>,
    /// The publishing client (for the no-local option); `None` for messages the broker
    /// itself publishes.
    pub publisher: Option<ClientId>,
}

impl Message {
    /// True once the message expiry interval has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Seconds left of the message expiry interval, rounded up, for forwarding.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|t| {
            let left = t.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }

    /// Payload bytes, for queue accounting.
    pub fn size(&self) -> usize {
        self.payload.len() + self.topic.as_str().len()
    }
}
