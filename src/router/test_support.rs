//! Builders shared by the router's unit tests.

use std::sync::Arc;

use bytes::Bytes;

use crate::delivery::SubEntry;
use crate::message::{ClientId, Message};
use crate::protocol::{Properties, QoS, SubscriptionOptions};
use crate::topic::{TopicFilter, TopicName};

pub fn id(s: &str) -> ClientId {
    ClientId::new(s.to_string())
}

pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s.to_string()).unwrap()
}

pub fn entry(qos: QoS) -> SubEntry {
    SubEntry {
        options: SubscriptionOptions::with_qos(qos),
        id: None,
    }
}

pub fn message(topic: &str, qos: QoS, retain: bool, payload: &'static str) -> Arc<Message> {
    Arc::new(Message {
        topic: TopicName::new(topic.to_string()).unwrap(),
        payload: Bytes::from_static(payload.as_bytes()),
        qos,
        retain,
        properties: Properties::default(),
        expires_at: None,
        publisher: Some(id("pub")),
        encoded: Default::default(),
    })
}
