//! Encoding of MQTT 5.0 properties, in identifier order. The encoder writes whatever is
//! set; which properties fit which packet is the caller's concern (the decoder checks).

use bytes::{BufMut, BytesMut};

use super::{bin_len, put_bin, put_str, put_varint, str_len, varint_len};
use crate::protocol::decode::MAX_REMAINING_LENGTH;
use crate::protocol::error::EncodeError;
use crate::protocol::properties::{Properties, PropertyFields};

/// The length of the properties, without their own length prefix.
pub(super) fn properties_len(p: &Properties) -> Result<usize, EncodeError> {
    let Some(p) = p.fields() else {
        return Ok(0);
    };
    let mut n = 0;
    n += p.payload_format_indicator.map_or(0, |_| 2);
    n += p.message_expiry_interval.map_or(0, |_| 5);
    n += opt_str(p.content_type.as_deref())?;
    n += opt_str(p.response_topic.as_deref())?;
    n += opt_bin(p.correlation_data.as_deref())?;
    for &id in &p.subscription_identifiers {
        if id == 0 || id as usize > MAX_REMAINING_LENGTH {
            return Err(EncodeError::Invalid(
                "[MQTT-3.8.2.1.2] subscription identifier outside 1..=268,435,455",
            ));
        }
        n += 1 + varint_len(id as usize);
    }
    n += p.session_expiry_interval.map_or(0, |_| 5);
    n += opt_str(p.assigned_client_identifier.as_deref())?;
    n += p.server_keep_alive.map_or(0, |_| 3);
    n += opt_str(p.authentication_method.as_deref())?;
    n += opt_bin(p.authentication_data.as_deref())?;
    n += p.request_problem_information.map_or(0, |_| 2);
    n += p.will_delay_interval.map_or(0, |_| 5);
    n += p.request_response_information.map_or(0, |_| 2);
    n += opt_str(p.response_information.as_deref())?;
    n += opt_str(p.server_reference.as_deref())?;
    n += opt_str(p.reason_string.as_deref())?;
    n += p.receive_maximum.map_or(0, |_| 3);
    n += p.topic_alias_maximum.map_or(0, |_| 3);
    n += p.topic_alias.map_or(0, |_| 3);
    n += p.maximum_qos.map_or(0, |_| 2);
    n += p.retain_available.map_or(0, |_| 2);
    for up in &p.user_properties {
        n += 1 + str_len(&up.key)? + str_len(&up.value)?;
    }
    n += p.maximum_packet_size.map_or(0, |_| 5);
    n += p.wildcard_subscription_available.map_or(0, |_| 2);
    n += p.subscription_identifier_available.map_or(0, |_| 2);
    n += p.shared_subscription_available.map_or(0, |_| 2);
    if n > MAX_REMAINING_LENGTH {
        return Err(EncodeError::TooLarge(
            "properties longer than 268,435,455 bytes",
        ));
    }
    Ok(n)
}

fn opt_str(s: Option<&str>) -> Result<usize, EncodeError> {
    s.map_or(Ok(0), |s| Ok(1 + str_len(s)?))
}

fn opt_bin(b: Option<&[u8]>) -> Result<usize, EncodeError> {
    b.map_or(Ok(0), |b| Ok(1 + bin_len(b)?))
}

/// The bytes a property block takes on the wire, length prefix included.
pub(super) fn block_len(props_len: usize) -> usize {
    varint_len(props_len) + props_len
}

/// Writes the property length `len` (from [`properties_len`]) and the properties.
pub(super) fn put_properties(p: &Properties, len: usize, dst: &mut BytesMut) {
    put_varint(dst, len);
    if len == 0 {
        return;
    }
    let p: &PropertyFields = p;
    if let Some(v) = p.payload_format_indicator {
        dst.put_u8(0x01);
        dst.put_u8(v);
    }
    put_u32(dst, 0x02, p.message_expiry_interval);
    put_opt_str(dst, 0x03, p.content_type.as_deref());
    put_opt_str(dst, 0x08, p.response_topic.as_deref());
    if let Some(v) = &p.correlation_data {
        dst.put_u8(0x09);
        put_bin(dst, v);
    }
    for &id in &p.subscription_identifiers {
        dst.put_u8(0x0B);
        put_varint(dst, id as usize);
    }
    put_u32(dst, 0x11, p.session_expiry_interval);
    put_opt_str(dst, 0x12, p.assigned_client_identifier.as_deref());
    put_u16(dst, 0x13, p.server_keep_alive);
    put_opt_str(dst, 0x15, p.authentication_method.as_deref());
    if let Some(v) = &p.authentication_data {
        dst.put_u8(0x16);
        put_bin(dst, v);
    }
    put_byte(dst, 0x17, p.request_problem_information);
    put_u32(dst, 0x18, p.will_delay_interval);
    put_byte(dst, 0x19, p.request_response_information);
    put_opt_str(dst, 0x1A, p.response_information.as_deref());
    put_opt_str(dst, 0x1C, p.server_reference.as_deref());
    put_opt_str(dst, 0x1F, p.reason_string.as_deref());
    put_u16(dst, 0x21, p.receive_maximum);
    put_u16(dst, 0x22, p.topic_alias_maximum);
    put_u16(dst, 0x23, p.topic_alias);
    put_byte(dst, 0x24, p.maximum_qos);
    put_byte(dst, 0x25, p.retain_available);
    for up in &p.user_properties {
        dst.put_u8(0x26);
        put_str(dst, &up.key);
        put_str(dst, &up.value);
    }
    put_u32(dst, 0x27, p.maximum_packet_size);
    put_byte(dst, 0x28, p.wildcard_subscription_available);
    put_byte(dst, 0x29, p.subscription_identifier_available);
    put_byte(dst, 0x2A, p.shared_subscription_available);
}

fn put_byte(dst: &mut BytesMut, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u8(v);
    }
}

fn put_u16(dst: &mut BytesMut, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u16(v);
    }
}

fn put_u32(dst: &mut BytesMut, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        dst.put_u8(id);
        dst.put_u32(v);
    }
}

fn put_opt_str(dst: &mut BytesMut, id: u8, v: Option<&str>) {
    if let Some(v) = v {
        dst.put_u8(id);
        put_str(dst, v);
    }
}
