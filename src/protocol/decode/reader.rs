//! Bounds-checked primitive reads from a packet body. Every read that runs past the body
//! is a malformed packet, never a panic.

use bytes::{Buf, Bytes};
use bytestring::ByteString;

use crate::protocol::error::DecodeError;
use crate::topic::{TopicError, TopicFilter, TopicName};

pub(super) type DResult<T> = Result<T, DecodeError>;

/// A field runs past the end of the packet (the remaining length is too short for it).
pub(super) const TRUNCATED: &str = "[MQTT-2.1.4] packet content runs past its remaining length";
/// Bytes are left after the last field the packet may carry.
pub(super) const TRAILING: &str = "[MQTT-2.1.4] bytes left after the packet's declared content";

pub(super) fn malformed<T>(msg: &'static str) -> DResult<T> {
    Err(DecodeError::Malformed(msg))
}

pub(super) fn protocol<T>(msg: &'static str) -> DResult<T> {
    Err(DecodeError::Protocol(msg))
}

/// Fails with [`TRAILING`] unless the body was read to its end.
pub(super) fn finish(buf: &Bytes) -> DResult<()> {
    if buf.has_remaining() {
        return malformed(TRAILING);
    }
    Ok(())
}

pub(super) fn read_u8(buf: &mut Bytes) -> DResult<u8> {
    if buf.remaining() < 1 {
        return malformed(TRUNCATED);
    }
    Ok(buf.get_u8())
}

pub(super) fn read_u16(buf: &mut Bytes) -> DResult<u16> {
    if buf.remaining() < 2 {
        return malformed(TRUNCATED);
    }
    Ok(buf.get_u16())
}

pub(super) fn read_u32(buf: &mut Bytes) -> DResult<u32> {
    if buf.remaining() < 4 {
        return malformed(TRUNCATED);
    }
    Ok(buf.get_u32())
}

/// A variable byte integer (section 1.5.5): at most 4 bytes, minimally encoded.
pub(super) fn read_varint(buf: &mut Bytes) -> DResult<u32> {
    let mut value = 0u32;
    for i in 0..4 {
        let b = read_u8(buf)?;
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return malformed(
                    "[MQTT-1.5.5-1] variable byte integer not in its minimal encoding",
                );
            }
            return Ok(value);
        }
    }
    malformed("[MQTT-1.5.5-1] variable byte integer longer than 4 bytes")
}

/// A non-zero packet identifier [MQTT-2.2.1-3].
pub(super) fn read_packet_id(buf: &mut Bytes) -> DResult<crate::protocol::PacketId> {
    match crate::protocol::PacketId::new(read_u16(buf)?) {
        Some(id) => Ok(id),
        None => malformed("[MQTT-2.2.1-3] packet identifier 0"),
    }
}

/// Binary data: a two byte length and that many bytes, sliced without copying.
pub(super) fn read_binary(buf: &mut Bytes) -> DResult<Bytes> {
    let len = usize::from(read_u16(buf)?);
    if buf.remaining() < len {
        return malformed(TRUNCATED);
    }
    Ok(buf.split_to(len))
}

/// UTF-8 bytes to a `ByteString` without copying; the caller checked for U+0000 or lets
/// a topic type do it.
fn utf8(raw: Bytes, v5: bool) -> DResult<ByteString> {
    ByteString::try_from(raw).map_err(|_| {
        DecodeError::Malformed(if v5 {
            "[MQTT-1.5.4-1] ill-formed UTF-8 string"
        } else {
            "[MQTT-1.5.3-1] ill-formed UTF-8 string"
        })
    })
}

/// A UTF-8 encoded string: well-formed [MQTT-1.5.4-1] and free of U+0000 [MQTT-1.5.4-2]
/// (1.5.3-1 and 1.5.3-2 in 3.1.1).
pub(super) fn read_string(buf: &mut Bytes, v5: bool) -> DResult<ByteString> {
    let raw = read_binary(buf)?;
    if raw.contains(&0) {
        return malformed(if v5 {
            "[MQTT-1.5.4-2] string contains U+0000"
        } else {
            "[MQTT-1.5.3-2] string contains U+0000"
        });
    }
    utf8(raw, v5)
}

/// A topic name (PUBLISH, will topic). `allow_empty` only in 5.0 PUBLISH (topic alias).
pub(super) fn read_topic_name(buf: &mut Bytes, v5: bool, allow_empty: bool) -> DResult<TopicName> {
    let s = utf8(read_binary(buf)?, v5)?;
    let topic = if allow_empty {
        TopicName::new_allow_empty(s)
    } else {
        TopicName::new(s)
    };
    topic.map_err(|e| DecodeError::Malformed(topic_error(e)))
}

/// A topic filter (SUBSCRIBE, UNSUBSCRIBE).
pub(super) fn read_topic_filter(buf: &mut Bytes, v5: bool) -> DResult<TopicFilter> {
    let s = utf8(read_binary(buf)?, v5)?;
    TopicFilter::new(s).map_err(|e| DecodeError::Malformed(topic_error(e)))
}

/// The static message naming the clause a topic violates.
fn topic_error(e: TopicError) -> &'static str {
    match e {
        TopicError::Empty => "[MQTT-4.7.3-1] empty topic name or filter",
        TopicError::TooLong => "[MQTT-4.7.3-3] topic longer than 65,535 bytes",
        TopicError::NullCharacter => "[MQTT-4.7.3-2] topic contains U+0000",
        TopicError::WildcardInName => "[MQTT-3.3.2-2] topic name contains a wildcard character",
        TopicError::InvalidMultiLevelWildcard => {
            "[MQTT-4.7.1-2] '#' must be the last character and alone in its level"
        }
        TopicError::InvalidSingleLevelWildcard => "[MQTT-4.7.1-3] '+' must occupy an entire level",
        TopicError::InvalidShare => {
            "[MQTT-4.8.2-1] shared subscription must be $share/{group}/{filter}"
        }
    }
}
