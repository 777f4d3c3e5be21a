//! `[limits]`: what one connection and one session may hold and do.

use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, ConfigError};

/// Limits enforced per connection and per session (`[limits]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// `connect_timeout_secs` (default 10, at least 1): seconds a new connection may
    /// take to send a complete CONNECT before it is closed.
    pub connect_timeout_secs: u64,
    /// `max_packet_size` (default 1 MiB, 16 to 268,435,460): the largest packet accepted
    /// from a client, in bytes, fixed header included. A larger one is refused (0x95
    /// Packet too large) before its body is read. Advertised to 5.0 clients.
    pub max_packet_size: u32,
    /// `max_connections` (default 10,000): connections beyond this are refused (CONNACK
    /// 0x89 Server busy / 3.1.1 code 3).
    pub max_connections: usize,
    /// `max_inflight` (default 64, at least 1): QoS 1/2 messages sent to one client and
    /// not yet acknowledged. A 5.0 client's Receive Maximum lowers it further.
    pub max_inflight: u16,
    /// `receive_maximum` (default 256, at least 1): QoS 1/2 publishes a 5.0 client may
    /// leave unacknowledged towards the broker (advertised as Receive Maximum; exceeding
    /// it is DISCONNECT 0x93).
    pub receive_maximum: u16,
    /// `max_queued_messages` (default 10,000): messages queued per session (offline, or
    /// beyond the inflight window). When full, QoS 0 messages are dropped first; then
    /// `queue_full` decides which QoS 1/2 message goes. Every drop is counted.
    pub max_queued_messages: usize,
    /// `max_queued_bytes` (default 100 MiB): bytes of topic and payload queued per
    /// session, with the same policy.
    pub max_queued_bytes: usize,
    /// `max_keepalive_secs` (default 0 = no limit): the largest keep alive a client may
    /// ask for, in seconds; a larger (or zero) request is lowered to this and, for 5.0
    /// clients, returned as Server Keep Alive.
    pub max_keepalive_secs: u16,
    /// `max_client_id_len` (default 256): the longest client identifier accepted, in
    /// bytes.
    pub max_client_id_len: usize,
    /// `topic_alias_maximum` (default 64; 0 disables them): topic aliases a 5.0 client
    /// may use towards the broker (advertised as Topic Alias Maximum).
    pub topic_alias_maximum: u16,
    /// `validate_utf8_payloads` (default `true`): check that a 5.0 PUBLISH whose Payload
    /// Format Indicator is 1 carries UTF-8; if not, it is refused with 0x99 Payload
    /// format invalid.
    pub validate_utf8_payloads: bool,
    /// `queue_full` (default `"drop_new"`): which message a full session queue drops
    /// once it holds no QoS 0 message to drop first, or (`"backpressure"`) that it
    /// drops none and holds the publishers back instead.
    pub queue_full: QueueFull,
    /// `max_session_expiry_secs` (default 604,800 = 7 days; 4,294,967,295 = no cap): the
    /// longest a session outlives its connection. A 5.0 client asking for more gets this
    /// (returned in CONNACK as Session Expiry Interval); a 3.1.1 client's persistent
    /// session (which never expires by the protocol) expires after it, as with
    /// Mosquitto's `persistent_client_expiration`.
    pub max_session_expiry_secs: u32,
    /// `max_subscriptions_per_client` (default 10,000; 0 = no limit): subscriptions one
    /// session may hold. A SUBSCRIBE beyond it gets 0x97 Quota exceeded (3.1.1: 0x80) for
    /// each new filter that does not fit.
    pub max_subscriptions_per_client: usize,
    /// `max_topic_levels` (default 128; 0 = no limit): levels a topic name or filter may
    /// have. A PUBLISH with more is refused (5.0: PUBACK/PUBREC 0x90 Topic Name invalid,
    /// QoS 0 dropped; 3.1.1: acknowledged and dropped); a filter with more gets 0x8F
    /// Topic Filter invalid (3.1.1: 0x80).
    pub max_topic_levels: usize,
    /// `max_publish_rate` (default 0 = no limit): PUBLISH packets a second one client
    /// may send (a second's worth may come at once). Beyond it the broker stops reading
    /// from the client until the rate allows, so the client slows down (TCP
    /// backpressure); nothing is refused or lost.
    pub max_publish_rate: u64,
    /// `max_publish_bytes_rate` (default 0 = no limit): bytes of PUBLISH packets a
    /// second one client may send, enforced the same way.
    pub max_publish_bytes_rate: u64,
    /// `max_memory` (default 0 = no budget): the broker's memory budget, in bytes or
    /// with a unit (`"512MiB"`), measured as the process's resident set size. Above
    /// `memory_high_watermark` of it the broker stops reading from publishers; above
    /// `memory_refuse_watermark` it also refuses new connections (CONNACK 0x97 Quota
    /// exceeded; 3.1.1: code 3 Server unavailable).
    pub max_memory: ByteSize,
    /// `memory_high_watermark` (default 0.8): the fraction of `max_memory` above which
    /// publishers are not read (reading resumes below it less 5% of the budget).
    pub memory_high_watermark: f64,
    /// `memory_refuse_watermark` (default 0.95, at least the high watermark): the
    /// fraction of `max_memory` above which new connections are refused.
    pub memory_refuse_watermark: f64,
}

/// `[limits] queue_full`: what a session queue that is full (in messages or bytes) and
/// holds no QoS 0 message does with one more QoS 1/2 message.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum QueueFull {
    /// `"drop_new"`: the new message is dropped.
    #[default]
    DropNew,
    /// `"drop_oldest"`: the oldest queued message is dropped to make room (HiveMQ's
    /// `discard-oldest`).
    DropOldest,
    /// `"backpressure"`: nothing is dropped for a connected subscriber. Its queue takes
    /// the message beyond the limit and the publishers that feed it are not read until
    /// it drains to half the limit (QoS 0 alike). One slow subscriber slows every
    /// publisher that feeds it. An offline session's full queue drops the new message,
    /// as with `"drop_new"`: its client may never come back.
    Backpressure,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connect_timeout_secs: 10,
            max_packet_size: 1024 * 1024,
            max_connections: 10_000,
            max_inflight: 64,
            receive_maximum: 256,
            max_queued_messages: 10_000,
            max_queued_bytes: 100 * 1024 * 1024,
            max_keepalive_secs: 0,
            max_client_id_len: 256,
            topic_alias_maximum: 64,
            validate_utf8_payloads: true,
            queue_full: QueueFull::DropNew,
            max_session_expiry_secs: 7 * 24 * 3600,
            max_subscriptions_per_client: 10_000,
            max_topic_levels: 128,
            max_publish_rate: 0,
            max_publish_bytes_rate: 0,
            max_memory: ByteSize(0),
            memory_high_watermark: 0.8,
            memory_refuse_watermark: 0.95,
        }
    }
}

impl Limits {
    /// `connect_timeout_secs` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// Whether a topic name or filter has at most `max_topic_levels` levels. Levels are
    /// counted only for one long enough to have more (a topic of n bytes has at most
    /// n + 1 levels), so short topics cost a comparison.
    pub fn topic_levels_allowed(&self, topic: &str) -> bool {
        let max = self.max_topic_levels;
        max == 0 || topic.len() < max || topic.bytes().filter(|&b| b == b'/').count() < max
    }

    /// Checks values that parse but make no sense.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why: &str| Err(ConfigError::Invalid(format!("limits.{why}")));
        if self.max_packet_size < 16 || self.max_packet_size > 268_435_460 {
            return bad("max_packet_size must be between 16 and 268435460");
        }
        if self.max_inflight == 0 || self.receive_maximum == 0 {
            return bad("max_inflight and limits.receive_maximum must be at least 1");
        }
        if self.connect_timeout_secs == 0 {
            return bad("connect_timeout_secs must be at least 1");
        }
        let (high, refuse) = (self.memory_high_watermark, self.memory_refuse_watermark);
        if !(high > 0.0 && high <= refuse && refuse <= 1.0) {
            return bad("memory watermarks must satisfy 0 < high <= refuse <= 1");
        }
        Ok(())
    }
}
