//! The will message (section 3.1.2.5) as a routed message.

use std::time::{Duration, Instant};

use crate::message::{ClientId, Message};
use crate::protocol::LastWill;

/// The message a will publishes: its will properties become PUBLISH properties, minus
/// the will delay interval, which only concerns the broker.
pub fn will_message(will: &LastWill, client: &ClientId) -> Message {
    let mut properties = will.properties.clone();
    properties.will_delay_interval = None;
    let expires_at = properties
        .message_expiry_interval
        .map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
    Message {
        topic: will.topic.clone(),
        payload: will.payload.clone(),
        qos: will.qos,
        retain: will.retain,
        properties,
        expires_at,
        publisher: Some(client.clone()),
    }
}
