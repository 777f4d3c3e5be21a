//! The MQTT wire format: packets, properties, and a strict tokio-util codec.
//! Pure: no actix, no tokio runtime; only the codec traits of tokio-util.

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
