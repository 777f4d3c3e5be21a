//! Errors of the protocol layer, each naming the normative statement it enforces.

use super::types::ReasonCode;

/// Why bytes from the network are not a valid packet. The session turns one into the
/// spec's reaction (CONNACK or DISCONNECT with [`DecodeError::reason_code`]) and closes.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The packet is not well formed: bad flags, lengths, strings or property values.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Well formed but forbidden by the protocol (e.g. a property on the wrong packet).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The remaining length announces a packet over the configured maximum.
    #[error("[MQTT-3.2.2-15] packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// The packet's whole size, in bytes.
        size: usize,
        /// The maximum packet size, in bytes.
        max: usize,
    },
    /// CONNECT with a protocol name/level this server does not speak [MQTT-3.1.2-2].
    #[error("[MQTT-3.1.2-2] unsupported protocol level {level} (name {name:?})")]
    UnsupportedProtocolVersion {
        /// The protocol name it sent (`MQTT`, or `MQIsdp` for 3.1).
        name: String,
        /// The protocol level it sent.
        level: u8,
    },
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl DecodeError {
    /// The MQTT 5.0 reason code a server sends for this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MALFORMED_PACKET,
            DecodeError::Protocol(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion { .. } => {
                ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
            }
            DecodeError::Io(_) => ReasonCode::UNSPECIFIED_ERROR,
        }
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The encoded packet would exceed 268,435,455 bytes or a field's length prefix.
    #[error("packet too large to encode: {0}")]
    TooLarge(&'static str),
    /// The packet cannot be expressed at the negotiated protocol level.
    #[error("packet not valid for this protocol level: {0}")]
    Invalid(&'static str),
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
