//! MQTT 5.0 properties (section 2.2.2): one struct for every packet; the decoder checks
//! which identifiers each packet type may carry.

use bytes::Bytes;
use bytestring::ByteString;
use std::fmt;

/// A user property: a UTF-8 string pair that may repeat and keeps its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProperty {
    /// The name.
    pub key: ByteString,
    /// The value.
    pub value: ByteString,
}

/// All MQTT 5.0 properties of a packet, read and written as the fields of
/// [`PropertyFields`] (`props.topic_alias`, `props.user_properties.push(..)`).
///
/// Most packets carry none (every 3.1.1 packet, most 5.0 acknowledgements), so the fields
/// live behind one box that is allocated on the first write: an empty `Properties` is one
/// pointer, which keeps every [`Packet`](super::Packet) small and cheap to move. Reading
/// an empty one sees all fields absent. Build a full set with
/// `Properties::from(PropertyFields { .., ..PropertyFields::default() })`.
///
/// ```
/// use starling::protocol::{Properties, PropertyFields};
///
/// let mut props = Properties::default();
/// assert!(props.is_empty() && props.topic_alias.is_none());
/// props.message_expiry_interval = Some(60);
/// assert!(!props.is_empty());
///
/// let full = Properties::from(PropertyFields {
///     message_expiry_interval: Some(60),
///     ..PropertyFields::default()
/// });
/// assert_eq!(props, full);
/// ```
#[derive(Clone, Default)]
pub struct Properties(Option<Box<PropertyFields>>);

/// The fields of [`Properties`]. `None`/empty means absent; absent and default are not
/// merged, so a decoded packet re-encodes to the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyFields {
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

/// What an empty [`Properties`] reads as.
static NO_PROPERTIES: PropertyFields = PropertyFields {
    payload_format_indicator: None,
    message_expiry_interval: None,
    content_type: None,
    response_topic: None,
    correlation_data: None,
    subscription_identifiers: Vec::new(),
    session_expiry_interval: None,
    assigned_client_identifier: None,
    server_keep_alive: None,
    authentication_method: None,
    authentication_data: None,
    request_problem_information: None,
    will_delay_interval: None,
    request_response_information: None,
    response_information: None,
    server_reference: None,
    reason_string: None,
    receive_maximum: None,
    topic_alias_maximum: None,
    topic_alias: None,
    maximum_qos: None,
    retain_available: None,
    user_properties: Vec::new(),
    maximum_packet_size: None,
    wildcard_subscription_available: None,
    subscription_identifier_available: None,
    shared_subscription_available: None,
};

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(|f| *f == NO_PROPERTIES)
    }

    /// The fields, or `None` when none was ever written (without comparing them all, so
    /// `Some` may still hold only absent fields).
    pub fn fields(&self) -> Option<&PropertyFields> {
        self.0.as_deref()
    }
}

impl From<PropertyFields> for Properties {
    fn from(fields: PropertyFields) -> Properties {
        Properties(Some(Box::new(fields)))
    }
}

impl std::ops::Deref for Properties {
    type Target = PropertyFields;

    fn deref(&self) -> &PropertyFields {
        self.0.as_deref().unwrap_or(&NO_PROPERTIES)
    }
}

impl std::ops::DerefMut for Properties {
    /// Allocates the fields on the first write.
    fn deref_mut(&mut self) -> &mut PropertyFields {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Properties) -> bool {
        **self == **other
    }
}

impl Eq for Properties {}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
