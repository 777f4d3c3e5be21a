//! Values that travel between sessions and the router: client ids and routed messages.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;
use bytestring::ByteString;

use crate::protocol::{EncodedPublish, Flow, PacketId, Properties, ProtocolVersion, Publish, QoS};
use crate::topic::TopicName;

/// A client identifier as sent in CONNECT (or assigned by the broker).
/// An `Arc<str>`: the router clones and drops one per delivery, and the count sits beside
/// the text its registry lookup reads anyway (a `ByteString`'s count is a separate,
/// often cold, allocation: 10% of a fan-out profile).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(std::sync::Arc<str>);

impl ClientId {
    /// The id with this text. Not validated: CONNECT's rules (length, characters) are
    /// the session's to apply.
    ///
    /// ```
    /// use starling::ClientId;
    ///
    /// let id = ClientId::new("sensor-7");
    /// assert_eq!(id.as_str(), "sensor-7");
    /// assert_eq!(id, ClientId::from("sensor-7"));
    /// ```
    pub fn new(id: impl Into<ByteString>) -> ClientId {
        let id: ByteString = id.into();
        ClientId(std::sync::Arc::from(&*id))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where this id's shared text lives: equal for clones of one id, and unique among
    /// the ids alive at one time (a cheap identity check before a lookup).
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

impl From<&str> for ClientId {
    fn from(id: &str) -> ClientId {
        ClientId(std::sync::Arc::from(id))
    }
}

impl From<String> for ClientId {
    fn from(id: String) -> ClientId {
        ClientId(std::sync::Arc::from(id))
    }
}

/// Looked up by its text (the store's records carry it as a `String`).
impl std::borrow::Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
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
///
/// ```
/// use bytes::Bytes;
/// use starling::message::EncodedCache;
/// use starling::protocol::{Properties, QoS};
/// use starling::topic::TopicName;
/// use starling::Message;
///
/// let msg = Message {
///     topic: TopicName::new("sensors/1/temp")?,
///     payload: Bytes::from_static(b"21.5"),
///     qos: QoS::AtLeastOnce,
///     retain: false,
///     properties: Properties::default(),
///     expires_at: None,
///     publisher: None,
///     encoded: EncodedCache::default(),
/// };
/// assert_eq!(msg.size(), 18);
/// assert!(!msg.is_expired(std::time::Instant::now()));
/// # Ok::<(), starling::topic::TopicError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to (never empty: a topic alias is resolved first).
    pub topic: TopicName,
    /// The application payload, shared (cloning it copies no bytes).
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
    /// Its PUBLISH as encoded for the first receiver of each kind, reused for the others.
    /// Derived: build a message with `EncodedCache::default()`.
    pub encoded: EncodedCache,
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

    /// Payload and topic bytes, for queue accounting (`[limits] max_queued_bytes`).
    pub fn size(&self) -> usize {
        self.payload.len() + self.topic.as_str().len()
    }

    /// The PUBLISH of this message as every receiver of `kind` gets it (no subscription
    /// identifier, no topic alias, no expiry to count down), encoded once and reused.
    ///
    /// `None` for the first receiver of a kind: it encodes straight into its own buffer,
    /// so a message with one receiver (fan-in) costs no extra copy; the second one fills
    /// the cache. Also `None` when the message cannot be encoded at that level; the
    /// caller then takes the ordinary path, which reports why.
    pub(crate) fn encoded(&self, kind: Encoding) -> Option<&EncodedPublish> {
        let index = kind.index();
        let slot = &self.encoded.slots[index];
        if let Some(enc) = slot.get() {
            return enc.as_ref();
        }
        let bit = 1u8 << index;
        if self.encoded.asked.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            return None;
        }
        slot.get_or_init(|| {
            let (flow, retain) = match kind.variant {
                Variant::Qos0 { retain } => (Flow::AtMostOnce, retain),
                // Flags and id are patched per receiver; 1 is a placeholder.
                Variant::WithPacketId => (Flow::AtLeastOnce(PacketId::MIN), false),
            };
            let publish = Publish {
                dup: false,
                flow,
                retain,
                topic: self.topic.clone(),
                properties: if kind.v5 {
                    self.properties.clone()
                } else {
                    Properties::default()
                },
                payload: self.payload.clone(),
            };
            let version = if kind.v5 {
                ProtocolVersion::V5
            } else {
                ProtocolVersion::V311
            };
            EncodedPublish::new(publish, version).ok()
        })
        .as_ref()
    }
}

/// Which shared encoding of a message a delivery can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoding {
    /// MQTT 5.0 (with the message's properties), or 3.1/3.1.1 (the same bytes).
    pub(crate) v5: bool,
    /// The shape of the PUBLISH.
    pub(crate) variant: Variant,
}

/// The part of a PUBLISH's shape that differs between deliveries of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// QoS 0: the bytes go out unchanged, so the RETAIN flag is part of the key.
    Qos0 { retain: bool },
    /// QoS 1/2: a template whose flags and packet identifier each receiver patches.
    WithPacketId,
}

impl Encoding {
    fn index(self) -> usize {
        let variant = match self.variant {
            Variant::Qos0 { retain: false } => 0,
            Variant::Qos0 { retain: true } => 1,
            Variant::WithPacketId => 2,
        };
        usize::from(self.v5) * 3 + variant
    }
}

/// The lazily filled shared encodings of one message, one slot per kind of receiver
/// (protocol level, QoS 0 with or without RETAIN, or QoS 1/2). Derived data: a clone
/// starts empty and equality ignores it. Build one with `EncodedCache::default()`.
#[derive(Default)]
pub struct EncodedCache {
    slots: [OnceLock<Option<EncodedPublish>>; 6],
    /// One bit per slot: a receiver of that kind has already been served.
    asked: AtomicU8,
}

impl Clone for EncodedCache {
    fn clone(&self) -> Self {
        EncodedCache::default()
    }
}

impl PartialEq for EncodedCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for EncodedCache {}

impl fmt::Debug for EncodedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncodedCache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn second_receiver_of_a_kind_gets_the_shared_encoding() {
        let msg = Message {
            topic: TopicName::new("a/b").unwrap(),
            payload: Bytes::from_static(b"hello"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
            expires_at: None,
            publisher: None,
            encoded: EncodedCache::default(),
        };
        let kind = Encoding {
            v5: false,
            variant: Variant::Qos0 { retain: false },
        };
        assert!(
            msg.encoded(kind).is_none(),
            "the first receiver encodes itself"
        );
        let enc = msg.encoded(kind).expect("cached for the second");
        let mut direct = BytesMut::new();
        let publish = Publish {
            dup: false,
            flow: Flow::AtMostOnce,
            retain: false,
            topic: msg.topic.clone(),
            properties: Properties::default(),
            payload: msg.payload.clone(),
        };
        crate::protocol::encode_packet(
            &crate::protocol::Packet::Publish(publish),
            ProtocolVersion::V311,
            &mut direct,
        )
        .unwrap();
        assert_eq!(&enc.bytes()[..], &direct[..]);
        // Other kinds are separate.
        let v5 = Encoding { v5: true, ..kind };
        assert!(msg.encoded(v5).is_none());
        assert_eq!(msg.clone().encoded(kind), None, "a clone starts empty");
    }
}
