//! MQTT 5.0 properties (section 2.2.2): one struct for every packet; the decoder checks
//! which identifiers each packet type may carry.

use bytes::Bytes;
use bytestring::ByteString;

/// A user property: a UTF-8 string pair that may repeat and keeps its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProperty {
    pub key: ByteString,
    pub value: ByteString,
}

/// All MQTT 5.0 properties. `None`/empty means absent; absent and default are not merged,
/// so a decoded packet re-encodes to the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01, PUBLISH and will.
    pub payload_format_indicator: Option<u8>,
    /// 0x02, PUBLISH and will, seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03, PUBLISH and will.
    pub content_type: Option<ByteString>,
    /// 0x08, PUBLISH and will.
    pub response_topic: Option<ByteString>,
    /// 0x09, PUBLISH and will.
    pub correlation_data: Option<Bytes>,
    /// 0x0B, PUBLISH (may repeat, server to client) and SUBSCRIBE (once); 1..=268,435,455.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11, CONNECT, CONNACK, DISCONNECT, seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x12, CONNACK.
    pub assigned_client_identifier: Option<ByteString>,
    /// 0x13, CONNACK, seconds.
    pub server_keep_alive: Option<u16>,
    /// 0x15, CONNECT, CONNACK, AUTH.
    pub authentication_method: Option<ByteString>,
    /// 0x16, CONNECT, CONNACK, AUTH.
    pub authentication_data: Option<Bytes>,
    /// 0x17, CONNECT.
    pub request_problem_information: Option<u8>,
    /// 0x18, will, seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19, CONNECT.
    pub request_response_information: Option<u8>,
    /// 0x1A, CONNACK.
    pub response_information: Option<ByteString>,
    /// 0x1C, CONNACK, DISCONNECT.
    pub server_reference: Option<ByteString>,
    /// 0x1F, CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH.
    pub reason_string: Option<ByteString>,
    /// 0x21, CONNECT, CONNACK; non-zero.
    pub receive_maximum: Option<u16>,
    /// 0x22, CONNECT, CONNACK.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23, PUBLISH; non-zero.
    pub topic_alias: Option<u16>,
    /// 0x24, CONNACK; 0 or 1.
    pub maximum_qos: Option<u8>,
    /// 0x25, CONNACK; 0 or 1.
    pub retain_available: Option<u8>,
    /// 0x26, every packet that has properties; may repeat.
    pub user_properties: Vec<UserProperty>,
    /// 0x27, CONNECT, CONNACK; non-zero.
    pub maximum_packet_size: Option<u32>,
    /// 0x28, CONNACK; 0 or 1.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29, CONNACK; 0 or 1.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A, CONNACK; 0 or 1.
    pub shared_subscription_available: Option<u8>,
}

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}
