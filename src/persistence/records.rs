//! Plain serde records stored by the persistence layer (no actix, no crate newtypes).

use bytes::Bytes;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::protocol::{Properties, PropertyFields, UserProperty};

/// A session's durable state (its subscriptions, queue and inbound QoS 2 ids are stored
/// separately under the same client id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The client identifier; must not contain U+0000.
    pub client_id: String,
    /// Protocol level: 3 (MQTT 3.1), 4 (3.1.1) or 5.
    pub protocol: u8,
    /// Session expiry interval in seconds; `u32::MAX` means never.
    pub expiry_secs: u32,
    /// Unix time in milliseconds when the client went offline; `None` while connected.
    pub disconnected_at_ms: Option<u64>,
    /// The will message, if the client registered one.
    pub will: Option<WillRecord>,
}

/// A will message registered at CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WillRecord {
    /// Will topic.
    pub topic: String,
    /// Will payload.
    pub payload: Vec<u8>,
    /// Will QoS (0, 1 or 2).
    pub qos: u8,
    /// Will retain flag.
    pub retain: bool,
    /// Forwardable will properties.
    pub properties: PropertiesRecord,
    /// Will delay interval in seconds.
    pub delay_secs: u32,
}

/// The forwardable MQTT 5 PUBLISH properties. Message expiry is not here: it is stored
/// as an absolute time in [`MessageRecord::expires_at_ms`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertiesRecord {
    /// Payload format indicator (0x01).
    pub payload_format_indicator: Option<u8>,
    /// Content type (0x03).
    pub content_type: Option<String>,
    /// Response topic (0x08).
    pub response_topic: Option<String>,
    /// Correlation data (0x09).
    pub correlation_data: Option<Vec<u8>>,
    /// User properties (0x26), in order.
    pub user_properties: Vec<(String, String)>,
}

/// An application message (retained, or the content of a queued delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS the message was published with.
    pub qos: u8,
    /// Retain flag as published.
    pub retain: bool,
    /// Forwardable properties.
    pub properties: PropertiesRecord,
    /// Unix time in milliseconds when the message expires; `None` = never.
    pub expires_at_ms: Option<u64>,
    /// Client id of the publisher, if known (for no-local).
    pub publisher: Option<String>,
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Topic filter (including a `$share/` prefix if shared).
    pub filter: String,
    /// Maximum QoS granted.
    pub qos: u8,
    /// MQTT 5 no-local option.
    pub no_local: bool,
    /// MQTT 5 retain-as-published option.
    pub retain_as_published: bool,
    /// MQTT 5 retain handling (0, 1 or 2).
    pub retain_handling: u8,
    /// MQTT 5 subscription identifier.
    pub subscription_id: Option<u32>,
}

/// A message queued for (or in flight to) a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecord {
    /// The message.
    pub message: MessageRecord,
    /// Delivery QoS (min of publish and subscription QoS).
    pub qos: u8,
    /// Retain flag to deliver with.
    pub retain: bool,
    /// Subscription identifiers to deliver with.
    pub sub_ids: Vec<u32>,
    /// Packet id, set once the message was sent (in flight).
    pub packet_id: Option<u16>,
    /// QoS 2: PUBREC received and PUBREL sent.
    pub released: bool,
}

impl QueuedRecord {
    /// True once the message has been sent and awaits acknowledgement.
    pub fn in_flight(&self) -> bool {
        self.packet_id.is_some()
    }
}

impl From<&Properties> for PropertiesRecord {
    /// Keeps only the forwardable PUBLISH properties (message expiry and subscription
    /// identifiers are dropped; they are stored elsewhere).
    fn from(p: &Properties) -> Self {
        PropertiesRecord {
            payload_format_indicator: p.payload_format_indicator,
            content_type: p.content_type.as_ref().map(|s| s.to_string()),
            response_topic: p.response_topic.as_ref().map(|s| s.to_string()),
            correlation_data: p.correlation_data.as_ref().map(|b| b.to_vec()),
            user_properties: p
                .user_properties
                .iter()
                .map(|u| (u.key.to_string(), u.value.to_string()))
                .collect(),
        }
    }
}

impl From<&PropertiesRecord> for Properties {
    /// Builds PUBLISH properties with only the forwardable fields set; the caller adds
    /// the remaining message expiry and subscription identifiers.
    fn from(r: &PropertiesRecord) -> Self {
        Properties::from(PropertyFields {
            payload_format_indicator: r.payload_format_indicator,
            content_type: r.content_type.clone().map(ByteString::from),
            response_topic: r.response_topic.clone().map(ByteString::from),
            correlation_data: r.correlation_data.clone().map(Bytes::from),
            user_properties: r
                .user_properties
                .iter()
                .map(|(k, v)| UserProperty {
                    key: ByteString::from(k.clone()),
                    value: ByteString::from(v.clone()),
                })
                .collect(),
            ..PropertyFields::default()
        })
    }
}

impl MessageRecord {
    /// Seconds left before expiry at `now_ms` (rounded up), for the MQTT 5 message
    /// expiry interval property when forwarding; `None` if the message never expires.
    /// Returns `Some(0)` once expired.
    pub fn remaining_expiry_secs(&self, now_ms: u64) -> Option<u32> {
        self.expires_at_ms.map(|at| {
            let left_ms = at.saturating_sub(now_ms);
            u32::try_from(left_ms.div_ceil(1000)).unwrap_or(u32::MAX)
        })
    }

    /// True if the message has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip() {
        let p = Properties::from(PropertyFields {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(30),
            content_type: Some("text/plain".into()),
            response_topic: Some("r/t".into()),
            correlation_data: Some(Bytes::from_static(b"\x00\x01")),
            user_properties: vec![UserProperty {
                key: "k".into(),
                value: "v".into(),
            }],
            ..PropertyFields::default()
        });
        let rec = PropertiesRecord::from(&p);
        let back = Properties::from(&rec);
        assert_eq!(back.message_expiry_interval, None);
        assert_eq!(
            back,
            Properties::from(PropertyFields {
                message_expiry_interval: None,
                ..(*p).clone()
            })
        );
    }

    #[test]
    fn remaining_expiry() {
        let m = MessageRecord {
            topic: "t".into(),
            payload: vec![],
            qos: 0,
            retain: false,
            properties: PropertiesRecord::default(),
            expires_at_ms: Some(10_500),
            publisher: None,
        };
        assert_eq!(m.remaining_expiry_secs(10_000), Some(1));
        assert_eq!(m.remaining_expiry_secs(8_500), Some(2));
        assert_eq!(m.remaining_expiry_secs(11_000), Some(0));
        assert!(m.is_expired(10_500));
        assert!(!m.is_expired(10_499));
    }
}

/// Cluster mode: what a session had received, for the replay of the message log when it
/// resumes on another node (the cluster's message log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayCursor {
    /// Per publishing node incarnation: the highest sequence number queued for the
    /// session, and when that was recorded (Unix ms; old entries are pruned).
    pub origins: Vec<(u64, u64, u64)>,
    /// Each subscription's filter and since when it exists (Unix ms): older messages
    /// are not replayed to it.
    pub subs: Vec<(String, u64)>,
    /// The (origin, seq) of each message in the session's loaded queue: never replayed,
    /// whatever `origins` says. Filled at the load, not stored in the cursor.
    #[serde(skip)]
    pub stored: Vec<(u64, u64)>,
    /// The message log position the session's stored queue covers: every log entry up
    /// to this stream sequence that matched the session was queued for it (or was not
    /// for it), so its replay starts above it. `None` for cursors written without one
    /// (the replay then starts at its oldest subscription's time). Stored as a trailer
    /// after the postcard record (`cluster/js_store/cursor.rs`), not by serde, so that
    /// cursors written before it still decode, and readers that know no trailer read
    /// new ones.
    #[serde(skip)]
    pub position: Option<u64>,
}
