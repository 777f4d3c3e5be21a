//! Tests of the persistence layer: model-based store equivalence, sled specifics, expiry.

mod expiry;
mod loading;
mod measure;
mod migrate;
mod model;
mod postgres;
mod redis;
#[path = "../../../tests/common/redis.rs"]
mod redis_server;
mod sled;

use super::records::{MessageRecord, PropertiesRecord, QueuedRecord, SessionRecord};

/// A message on `topic` with `payload`, never expiring.
pub(super) fn msg(topic: &str, payload: &[u8]) -> MessageRecord {
    MessageRecord {
        topic: topic.into(),
        payload: payload.to_vec(),
        qos: 1,
        retain: false,
        properties: PropertiesRecord::default(),
        expires_at_ms: None,
        publisher: None,
    }
}

/// A QoS 1 queued record of `msg(topic, payload)`, not in flight.
pub(super) fn queued(topic: &str, payload: &[u8]) -> QueuedRecord {
    QueuedRecord {
        message: msg(topic, payload),
        qos: 1,
        retain: false,
        sub_ids: vec![],
        packet_id: None,
        released: false,
    }
}

/// An MQTT 5 session record.
pub(super) fn session(
    id: &str,
    expiry_secs: u32,
    disconnected_at_ms: Option<u64>,
) -> SessionRecord {
    SessionRecord {
        client_id: id.into(),
        protocol: 5,
        expiry_secs,
        disconnected_at_ms,
        will: None,
    }
}
