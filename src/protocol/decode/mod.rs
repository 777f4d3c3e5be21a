//! Decoding: bytes from the network to [`Packet`]s, strictly validated. Each error names
//! the normative statement (or section) of the specification it enforces.

mod connect;
mod packets;
mod properties;
mod reader;

use bytes::{Buf, Bytes, BytesMut};

use super::error::DecodeError;
use super::packet::{Packet, PubResponse};
use super::types::{PacketId, ProtocolVersion};
#[cfg(test)]
pub(crate) use packets::valid_reason;
use reader::{malformed, protocol, DResult};

/// The largest remaining length a 4 byte variable byte integer holds.
pub(crate) const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Decodes one packet from the front of `src`.
///
/// Returns `Ok(None)` and consumes nothing while the packet is incomplete (reserving room
/// for the rest of it in `src`). Before CONNECT (`version` is `None`) only CONNECT decodes;
/// a CONNECT decodes with the protocol level it declares. A packet whose total size
/// (fixed header included) exceeds `max_packet_size` is refused as soon as its fixed
/// header is readable, before its body is buffered.
///
/// Payloads and binary fields are zero-copy slices of the consumed bytes.
pub fn decode_packet(
    src: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = src.first() else {
        return Ok(None);
    };
    check_first_byte(first, version)?;
    if let Some(ack) = decode_plain_ack(src, version, max_packet_size) {
        return Ok(Some(ack));
    }
    let Some((header_len, remaining)) = read_remaining_length(src)? else {
        return Ok(None);
    };

    let total = header_len + remaining;
    if total > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    if src.len() < total {
        src.reserve(total - src.len());
        return Ok(None);
    }

    let mut body = src.split_to(total).freeze();
    body.advance(header_len);
    decode_body(first, body, version).map(Some)
}

/// The commonest packet from a subscriber, taken without slicing a body off: a PUBACK,
/// PUBREC, PUBREL or PUBCOMP of remaining length 2 (a packet id only; in 5.0, reason
/// code Success and no properties, section 3.4.2.1). Its first byte was checked; a
/// packet id 0 is left to the full decoder, which refuses it.
#[inline]
fn decode_plain_ack(
    src: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Option<Packet> {
    let [first, 2, high, low, ..] = src[..] else {
        return None;
    };
    if !(4..=7).contains(&(first >> 4)) || version.is_none() || max_packet_size < 4 {
        return None;
    }
    let response = PubResponse::new(PacketId::new(u16::from_be_bytes([high, low]))?);
    src.advance(4);
    Some(match first >> 4 {
        4 => Packet::PubAck(response),
        5 => Packet::PubRec(response),
        6 => Packet::PubRel(response),
        _ => Packet::PubComp(response),
    })
}

/// Reads the remaining length after the first byte: the fixed header's length and the
/// remaining length, or `None` while the variable byte integer is incomplete.
#[inline]
fn read_remaining_length(src: &[u8]) -> DResult<Option<(usize, usize)>> {
    let mut remaining = 0usize;
    let mut header_len = 1;
    loop {
        let Some(&b) = src.get(header_len) else {
            return Ok(None);
        };
        remaining |= usize::from(b & 0x7F) << (7 * (header_len - 1));
        header_len += 1;
        if b & 0x80 == 0 {
            if header_len > 2 && b == 0 {
                return malformed("[MQTT-1.5.5-1] remaining length not in its minimal encoding");
            }
            return Ok(Some((header_len, remaining)));
        }
        if header_len == 5 {
            return malformed("[MQTT-1.5.5-1] remaining length longer than 4 bytes");
        }
    }
}

/// Decodes the complete body of a packet whose first byte is `first`.
fn decode_body(first: u8, body: Bytes, version: Option<ProtocolVersion>) -> DResult<Packet> {
    let flags = first & 0x0F;
    let packet_type = first >> 4;
    if packet_type == 1 {
        return connect::decode_connect(body);
    }
    // check_first_byte refused everything but CONNECT without a version.
    let Some(version) = version else {
        return protocol(FIRST_NOT_CONNECT);
    };
    let v5 = version.is_v5();
    Ok(match packet_type {
        2 => connect::decode_connack(body, v5)?,
        3 => Packet::Publish(packets::decode_publish(body, flags, v5)?),
        4 => Packet::PubAck(packets::decode_pub_response(body, packet_type, v5)?),
        5 => Packet::PubRec(packets::decode_pub_response(body, packet_type, v5)?),
        6 => Packet::PubRel(packets::decode_pub_response(body, packet_type, v5)?),
        7 => Packet::PubComp(packets::decode_pub_response(body, packet_type, v5)?),
        8 => Packet::Subscribe(packets::decode_subscribe(body, v5)?),
        9 => Packet::SubAck(packets::decode_suback(body, v5)?),
        10 => Packet::Unsubscribe(packets::decode_unsubscribe(body, v5)?),
        11 => Packet::UnsubAck(packets::decode_unsuback(body, v5)?),
        12 => empty(
            &body,
            Packet::PingReq,
            "[MQTT-3.12.1] PINGREQ with a non-zero remaining length",
        )?,
        13 => empty(
            &body,
            Packet::PingResp,
            "[MQTT-3.13.1] PINGRESP with a non-zero remaining length",
        )?,
        14 => Packet::Disconnect(packets::decode_disconnect(body, v5)?),
        _ => Packet::Auth(packets::decode_auth(body)?),
    })
}

/// A packet without a body (PINGREQ, PINGRESP).
fn empty(body: &Bytes, packet: Packet, msg: &'static str) -> DResult<Packet> {
    if body.has_remaining() {
        return malformed(msg);
    }
    Ok(packet)
}

const FIRST_NOT_CONNECT: &str = "[MQTT-3.1.0-1] the first packet from a client must be CONNECT";

/// Validates the packet type and the fixed header flags (section 2.1.2 and 2.1.3 of 5.0,
/// 2.2.1 and 2.2.2 of 3.1.1) as soon as the first byte is there.
fn check_first_byte(first: u8, version: Option<ProtocolVersion>) -> DResult<()> {
    let packet_type = first >> 4;
    let flags = first & 0x0F;
    if packet_type == 0 {
        return malformed("[MQTT-2.1.2] reserved control packet type 0");
    }
    match version {
        None if packet_type != 1 => return protocol(FIRST_NOT_CONNECT),
        Some(v) if packet_type == 15 && !v.is_v5() => {
            return malformed("[MQTT-2.2.1] reserved control packet type 15 (AUTH is 5.0 only)");
        }
        _ => {}
    }
    match packet_type {
        3 => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return malformed("[MQTT-3.3.1-4] PUBLISH QoS 3");
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return malformed("[MQTT-3.3.1-2] PUBLISH DUP flag set with QoS 0");
            }
        }
        6 if flags != 0b0010 => {
            return malformed("[MQTT-3.6.1-1] PUBREL fixed header flags must be 0b0010");
        }
        8 if flags != 0b0010 => {
            return malformed("[MQTT-3.8.1-1] SUBSCRIBE fixed header flags must be 0b0010");
        }
        10 if flags != 0b0010 => {
            return malformed("[MQTT-3.10.1-1] UNSUBSCRIBE fixed header flags must be 0b0010");
        }
        6 | 8 | 10 => {}
        _ if flags != 0 => {
            return malformed("[MQTT-2.2.2-1] reserved fixed header flags must be 0");
        }
        _ => {}
    }
    Ok(())
}
