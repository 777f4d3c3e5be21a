//! The tokio-util `Decoder`/`Encoder` pair used on every connection.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::decode::decode_packet;
use super::encode::encode_packet;
use super::error::{DecodeError, EncodeError};
use super::packet::Packet;
use super::types::ProtocolVersion;

/// A read buffer grows up to this size while reads keep filling it.
const MAX_READ_BUFFER: usize = 64 * 1024;
/// The least a full read buffer grows by.
const MIN_GROWTH: usize = 256;

/// Frames MQTT packets. Before CONNECT the protocol level is unknown and only CONNECT
/// decodes [MQTT-3.1.0-1]; decoding a CONNECT fixes the level for the rest of the
/// connection. Until then packets are encoded as 3.1.1.
///
/// ```
/// use bytes::BytesMut;
/// use starling::protocol::{MqttCodec, Packet, ProtocolVersion};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut client = MqttCodec::new(1024);
/// client.set_version(ProtocolVersion::V5);
/// let mut wire = BytesMut::new();
/// client.encode(Packet::PingReq, &mut wire)?;
///
/// let mut server = MqttCodec::new(1024);
/// server.set_version(ProtocolVersion::V5);
/// assert_eq!(server.decode(&mut wire)?, Some(Packet::PingReq));
/// assert_eq!(server.decode(&mut wire)?, None, "nothing left");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MqttCodec {
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
}

impl MqttCodec {
    /// A codec refusing inbound packets larger than `max_packet_size` bytes (whole packet,
    /// fixed header included).
    pub fn new(max_packet_size: usize) -> MqttCodec {
        MqttCodec {
            version: None,
            max_packet_size,
        }
    }

    /// The protocol level, once CONNECT was decoded or it was set.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Fixes the protocol level without decoding a CONNECT: for the client side of a
    /// connection, or one whose level is known.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// The largest inbound packet accepted, in bytes (fixed header included).
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        // Connections start with a small buffer (idle ones stay cheap). A read that filled
        // it means more is coming: double it, so busy connections read in large chunks.
        // (Frames are split off as shared `Bytes`, so without this every reallocation
        // would keep the small original size.)
        if src.len() == src.capacity() && src.capacity() < MAX_READ_BUFFER {
            src.reserve(src.capacity().max(MIN_GROWTH));
        }
        let packet = decode_packet(src, self.version, self.max_packet_size)?;
        if let Some(Packet::Connect(connect)) = &packet {
            if self.version.is_none() {
                self.version = Some(connect.protocol);
            }
        }
        Ok(packet)
    }
}

impl Encoder<Packet> for MqttCodec {
    type Error = EncodeError;

    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let version = self.version.unwrap_or(ProtocolVersion::V311);
        encode_packet(&packet, version, dst)
    }
}
