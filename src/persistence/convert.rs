//! Conversions between the broker's live values and the stored records. Instants become
//! Unix milliseconds on the way in and back on the way out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::records::{
    MessageRecord, PropertiesRecord, QueuedRecord, SessionRecord, SubscriptionRecord, WillRecord,
};
use crate::delivery::{Outgoing, SubEntry};
use crate::message::{ClientId, Message};
use crate::protocol::{LastWill, Properties, QoS, RetainHandling, SubscriptionOptions};
use crate::topic::{TopicFilter, TopicName};

/// Milliseconds since the Unix epoch.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn instant_to_unix_ms(t: Instant) -> u64 {
    let now = Instant::now();
    let base = unix_ms_now();
    match t.checked_duration_since(now) {
        Some(ahead) => base + ahead.as_millis() as u64,
        None => base.saturating_sub(now.duration_since(t).as_millis() as u64),
    }
}

fn unix_ms_to_instant(ms: u64) -> Instant {
    let base = unix_ms_now();
    let now = Instant::now();
    if ms >= base {
        now + Duration::from_millis(ms - base)
    } else {
        now.checked_sub(Duration::from_millis(base - ms))
            .unwrap_or(now)
    }
}

fn qos_from(v: u8) -> QoS {
    QoS::from_u8(v).unwrap_or(QoS::AtLeastOnce)
}

/// The record of a routed message.
pub fn message_record(msg: &Message) -> MessageRecord {
    MessageRecord {
        topic: msg.topic.as_str().to_owned(),
        payload: msg.payload.to_vec(),
        qos: msg.qos as u8,
        retain: msg.retain,
        properties: PropertiesRecord::from(&msg.properties),
        expires_at_ms: msg.expires_at.map(instant_to_unix_ms),
        publisher: msg.publisher.as_ref().map(|c| c.as_str().to_owned()),
    }
}

/// A routed message from its record; `None` when the stored topic is not valid.
pub fn message_from_record(rec: &MessageRecord) -> Option<Message> {
    Some(Message {
        topic: TopicName::new(rec.topic.clone()).ok()?,
        payload: Bytes::from(rec.payload.clone()),
        qos: qos_from(rec.qos),
        retain: rec.retain,
        properties: Properties::from(&rec.properties),
        expires_at: rec.expires_at_ms.map(unix_ms_to_instant),
        publisher: rec.publisher.clone().map(ClientId::new),
        encoded: Default::default(),
    })
}

/// The record of one queued or in-flight delivery.
pub fn queued_record(out: &Outgoing, packet_id: Option<u16>, released: bool) -> QueuedRecord {
    QueuedRecord {
        message: message_record(&out.msg),
        qos: out.qos as u8,
        retain: out.retain,
        sub_ids: out.sub_ids.clone(),
        packet_id,
        released,
    }
}

/// A delivery from its record.
pub fn outgoing_from_record(seq: u64, rec: &QueuedRecord) -> Option<Outgoing> {
    Some(Outgoing {
        msg: Arc::new(message_from_record(&rec.message)?),
        qos: qos_from(rec.qos),
        retain: rec.retain,
        sub_ids: rec.sub_ids.clone(),
        seq: Some(seq),
        // Not stored: after a restart the message stays with this member.
        share: None,
        receipt: None,
    })
}

/// The record of a subscription.
pub fn subscription_record(filter: &TopicFilter, entry: &SubEntry) -> SubscriptionRecord {
    let o = entry.options;
    SubscriptionRecord {
        filter: filter.as_str().to_owned(),
        qos: o.qos as u8,
        no_local: o.no_local,
        retain_as_published: o.retain_as_published,
        retain_handling: o.retain_handling as u8,
        subscription_id: entry.id,
    }
}

/// A subscription from its record; `None` when the stored filter is not valid.
pub fn subscription_from_record(rec: &SubscriptionRecord) -> Option<(TopicFilter, SubEntry)> {
    let retain_handling = match rec.retain_handling {
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => RetainHandling::SendAtSubscribe,
    };
    let options = SubscriptionOptions {
        qos: qos_from(rec.qos),
        no_local: rec.no_local,
        retain_as_published: rec.retain_as_published,
        retain_handling,
    };
    let filter = TopicFilter::new(rec.filter.clone()).ok()?;
    Some((
        filter,
        SubEntry {
            options,
            id: rec.subscription_id,
        },
    ))
}

/// The record of a will.
pub fn will_record(will: &LastWill) -> WillRecord {
    WillRecord {
        topic: will.topic.as_str().to_owned(),
        payload: will.payload.to_vec(),
        qos: will.qos as u8,
        retain: will.retain,
        properties: PropertiesRecord::from(&will.properties),
        delay_secs: will.properties.will_delay_interval.unwrap_or(0),
    }
}

/// A will from its record.
pub fn will_from_record(rec: &WillRecord) -> Option<LastWill> {
    let mut properties = Properties::from(&rec.properties);
    if rec.delay_secs > 0 {
        properties.will_delay_interval = Some(rec.delay_secs);
    }
    Some(LastWill {
        topic: TopicName::new(rec.topic.clone()).ok()?,
        payload: Bytes::from(rec.payload.clone()),
        qos: qos_from(rec.qos),
        retain: rec.retain,
        properties,
    })
}

/// A session record for a connected client.
pub fn session_record(
    client: &ClientId,
    protocol: u8,
    expiry_secs: u32,
    will: Option<&LastWill>,
    disconnected_at_ms: Option<u64>,
) -> SessionRecord {
    SessionRecord {
        client_id: client.as_str().to_owned(),
        protocol,
        expiry_secs,
        disconnected_at_ms,
        will: will.map(will_record),
    }
}
