//! The MQTT wire format: packets, properties, and a strict tokio-util codec.
//! Pure: no actix, no tokio runtime; only the codec traits of tokio-util.
//!
//! [`encode_packet`] and [`decode_packet`] turn a [`Packet`] into bytes at a protocol
//! level and back; [`MqttCodec`] wraps them for a framed connection.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use starling::protocol::{
//!     decode_packet, encode_packet, encoded_len, Flow, Packet, PacketId, Properties,
//!     ProtocolVersion, Publish,
//! };
//! use starling::topic::TopicName;
//!
//! let v311 = ProtocolVersion::V311;
//! let publish = Packet::Publish(Publish {
//!     dup: false,
//!     flow: Flow::AtLeastOnce(PacketId::new(7).unwrap()),
//!     retain: false,
//!     topic: TopicName::new("a/b")?,
//!     properties: Properties::default(),
//!     payload: Bytes::from_static(b"hi"),
//! });
//! let mut wire = BytesMut::new();
//! encode_packet(&publish, v311, &mut wire)?;
//! assert_eq!(&wire[..], b"\x32\x09\x00\x03a/b\x00\x07hi");
//! assert_eq!(wire.len(), encoded_len(&publish, v311));
//!
//! // An incomplete packet decodes to `None` and is left in the buffer.
//! let mut partial = BytesMut::from(&wire[..4]);
//! assert_eq!(decode_packet(&mut partial, Some(v311), 1024)?, None);
//! assert_eq!(partial.len(), 4);
//!
//! assert_eq!(decode_packet(&mut wire, Some(v311), 1024)?, Some(publish));
//! assert!(wire.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod codec;
mod decode;
mod encode;
mod error;
mod packet;
mod properties;
mod types;

#[cfg(test)]
mod tests;

pub use codec::MqttCodec;
pub use decode::decode_packet;
pub use encode::{encode_packet, encoded_len, EncodedPublish};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Flow, LastWill, Packet, PubResponse, Publish,
    RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
pub use properties::{Properties, PropertyFields, UserProperty};
pub use types::{PacketId, ProtocolVersion, QoS, ReasonCode};
