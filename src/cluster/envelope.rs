//! What travels on NATS: one routed message as a postcard record plus the node
//! incarnation that published it and a sequence number, and the window that drops the
//! second copy a node receives when several of its NATS subscriptions match one
//! message. Pure.

use std::collections::VecDeque;

use ahash::AHashSet as HashSet;
use serde::{Deserialize, Serialize};

use crate::delivery::Origin;
use crate::message::Message;
use crate::persistence::convert::{message_from_record, message_record};
use crate::persistence::MessageRecord;

/// One message on the wire between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The publishing node's incarnation (random at every start): a node drops its own
    /// messages arriving on plain subscriptions, which it already delivered locally.
    pub origin: u64,
    /// Numbers the origin's messages, for [`Dedup`] and the replay cursors.
    pub seq: u64,
    /// When the origin published it (Unix ms, its clock): the replay gives a
    /// subscription only messages from after it was made.
    pub at_ms: u64,
    pub message: MessageRecord,
}

/// Why a NATS payload is not an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("undecodable envelope: {0}")]
    Decode(#[from] postcard::Error),
    #[error("envelope carries an invalid topic")]
    Topic,
}

impl Envelope {
    pub fn new(origin: u64, seq: u64, msg: &Message) -> Envelope {
        Envelope {
            origin,
            seq,
            at_ms: crate::persistence::convert::unix_ms_now(),
            message: message_record(msg),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Ok(postcard::from_bytes(bytes)?)
    }

    /// The routed message it carries.
    pub fn to_message(&self) -> Result<Message, EnvelopeError> {
        message_from_record(&self.message).ok_or(EnvelopeError::Topic)
    }
}

/// Remembers the last `capacity` (origin, seq) pairs seen. Copies of one message from
/// several subscriptions of one connection arrive close together (NATS writes them
/// one after the other), so a window much larger than the number of filters suffices.
#[derive(Debug)]
pub struct Dedup {
    seen: HashSet<Origin>,
    order: VecDeque<Origin>,
    capacity: usize,
}

impl Dedup {
    pub fn new(capacity: usize) -> Dedup {
        Dedup {
            seen: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// True the first time a message number is seen (within the window).
    pub fn first(&mut self, origin: Origin) -> bool {
        if !self.seen.insert(origin) {
            return false;
        }
        self.order.push_back(origin);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Properties, QoS};
    use crate::topic::TopicName;
    use bytes::Bytes;

    #[test]
    fn envelope_round_trips() {
        let msg = Message {
            topic: TopicName::new("a/b.c").unwrap(),
            payload: Bytes::from_static(b"hi"),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: Properties::default(),
            expires_at: None,
            publisher: Some(crate::message::ClientId::new("c1")),
            encoded: Default::default(),
        };
        let env = Envelope::new(7, 9, &msg);
        let back = Envelope::decode(&env.encode().unwrap()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.to_message().unwrap(), msg);
        assert!(Envelope::decode(b"\xff\xff").is_err());
    }

    #[test]
    fn dedup_drops_repeats_within_the_window() {
        let mut d = Dedup::new(2);
        assert!(d.first(Origin { node: 1, seq: 1 }));
        assert!(!d.first(Origin { node: 1, seq: 1 }));
        assert!(d.first(Origin { node: 2, seq: 1 }));
        assert!(d.first(Origin { node: 1, seq: 2 }));
        // (1, 1) fell out of the window.
        assert!(d.first(Origin { node: 1, seq: 1 }));
    }
}
