//! MQTT 5.0 properties (section 2.2.2): which identifier each packet type may carry, the
//! repetition rules and the value checks.

use bytes::{Buf, Bytes};

use super::reader::{
    malformed, protocol, read_binary, read_string, read_u16, read_u32, read_u8, read_varint,
    DResult,
};
use crate::protocol::properties::{Properties, UserProperty};

/// The property sets of section 2.2.2.2: one per packet type (and the will properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PropKind {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

const fn bit(id: u8) -> u64 {
    1u64 << id
}

const USER: u64 = bit(0x26);

impl PropKind {
    /// The identifiers this packet type may carry.
    fn allowed(self) -> u64 {
        match self {
            PropKind::Connect => {
                USER | bit(0x11)
                    | bit(0x15)
                    | bit(0x16)
                    | bit(0x17)
                    | bit(0x19)
                    | bit(0x21)
                    | bit(0x22)
                    | bit(0x27)
            }
            PropKind::Will => {
                USER | bit(0x01) | bit(0x02) | bit(0x03) | bit(0x08) | bit(0x09) | bit(0x18)
            }
            PropKind::ConnAck => {
                USER | bit(0x11)
                    | bit(0x12)
                    | bit(0x13)
                    | bit(0x15)
                    | bit(0x16)
                    | bit(0x1A)
                    | bit(0x1C)
                    | bit(0x1F)
                    | bit(0x21)
                    | bit(0x22)
                    | bit(0x24)
                    | bit(0x25)
                    | bit(0x27)
                    | bit(0x28)
                    | bit(0x29)
                    | bit(0x2A)
            }
            PropKind::Publish => {
                USER | bit(0x01)
                    | bit(0x02)
                    | bit(0x03)
                    | bit(0x08)
                    | bit(0x09)
                    | bit(0x0B)
                    | bit(0x23)
            }
            PropKind::PubResp | PropKind::SubAck | PropKind::UnsubAck => USER | bit(0x1F),
            PropKind::Subscribe => USER | bit(0x0B),
            PropKind::Unsubscribe => USER,
            PropKind::Disconnect => USER | bit(0x11) | bit(0x1C) | bit(0x1F),
            PropKind::Auth => USER | bit(0x15) | bit(0x16) | bit(0x1F),
        }
    }
}

macro_rules! property_table {
    ($($id:literal $name:literal),* $(,)?) => {
        /// Every identifier MQTT 5.0 defines.
        const KNOWN: u64 = 0 $(| bit($id))*;

        fn duplicate_msg(id: u8) -> &'static str {
            match id {
                $($id => concat!("[MQTT-2.2.2.2] duplicate property ", stringify!($id), " (", $name, ")"),)*
                _ => "[MQTT-2.2.2.2] duplicate property",
            }
        }

        fn not_allowed_msg(id: u8) -> &'static str {
            match id {
                $($id => concat!("[MQTT-2.2.2.2] property ", stringify!($id), " (", $name,
                    ") is not allowed on this packet type"),)*
                _ => "[MQTT-2.2.2.2] property not allowed on this packet type",
            }
        }
    };
}

property_table! {
    0x01 "payload format indicator", 0x02 "message expiry interval", 0x03 "content type",
    0x08 "response topic", 0x09 "correlation data", 0x0B "subscription identifier",
    0x11 "session expiry interval", 0x12 "assigned client identifier",
    0x13 "server keep alive", 0x15 "authentication method", 0x16 "authentication data",
    0x17 "request problem information", 0x18 "will delay interval",
    0x19 "request response information", 0x1A "response information",
    0x1C "server reference", 0x1F "reason string", 0x21 "receive maximum",
    0x22 "topic alias maximum", 0x23 "topic alias", 0x24 "maximum QoS",
    0x25 "retain available", 0x26 "user property", 0x27 "maximum packet size",
    0x28 "wildcard subscription available", 0x29 "subscription identifier available",
    0x2A "shared subscription available",
}

/// A byte property that may only be 0 or 1.
fn flag(p: &mut Bytes, msg: &'static str) -> DResult<u8> {
    let v = read_u8(p)?;
    if v > 1 {
        return protocol(msg);
    }
    Ok(v)
}

fn non_zero_u16(p: &mut Bytes, msg: &'static str) -> DResult<u16> {
    let v = read_u16(p)?;
    if v == 0 {
        return protocol(msg);
    }
    Ok(v)
}

/// Reads the property length and the properties of a packet of type `kind`.
pub(super) fn read_properties(buf: &mut Bytes, kind: PropKind) -> DResult<Properties> {
    let len = read_varint(buf)? as usize;
    let mut props = Properties::default();
    if len == 0 {
        return Ok(props);
    }
    if buf.remaining() < len {
        return malformed("[MQTT-2.2.2.1] property length runs past the packet");
    }
    let mut p = buf.split_to(len);
    let allowed = kind.allowed();
    let mut seen = 0u64;
    while p.has_remaining() {
        let id = read_varint(&mut p)?;
        if id > 63 || KNOWN & (1u64 << id) == 0 {
            return malformed("[MQTT-2.2.2.2] unknown property identifier");
        }
        let id = id as u8;
        if allowed & bit(id) == 0 {
            return protocol(not_allowed_msg(id));
        }
        let repeats = id == 0x26 || (id == 0x0B && kind == PropKind::Publish);
        if !repeats {
            if seen & bit(id) != 0 {
                return protocol(duplicate_msg(id));
            }
            seen |= bit(id);
        }
        read_one(&mut p, id, &mut props)?;
    }
    Ok(props)
}

/// Reads the value of property `id` (known and allowed) into `props`.
#[inline]
fn read_one(p: &mut Bytes, id: u8, props: &mut Properties) -> DResult<()> {
    match id {
        0x01..=0x0B | 0x23 => read_message_property(p, id, props),
        0x24 | 0x25 | 0x28..=0x2A => read_capability(p, id, props),
        0x26 => {
            let key = read_string(p, true)?;
            let value = read_string(p, true)?;
            props.user_properties.push(UserProperty { key, value });
            Ok(())
        }
        _ => read_connection_property(p, id, props),
    }
}

/// The properties of an application message (PUBLISH and the will).
#[inline]
fn read_message_property(p: &mut Bytes, id: u8, props: &mut Properties) -> DResult<()> {
    match id {
        0x01 => {
            props.payload_format_indicator = Some(flag(
                p,
                "[MQTT-3.3.2.3.2] payload format indicator other than 0 or 1",
            )?)
        }
        0x02 => props.message_expiry_interval = Some(read_u32(p)?),
        0x03 => props.content_type = Some(read_string(p, true)?),
        0x08 => {
            let topic = read_string(p, true)?;
            if topic.is_empty() || topic.contains(['+', '#']) {
                return protocol("[MQTT-3.3.2-14] response topic is empty or has a wildcard");
            }
            props.response_topic = Some(topic);
        }
        0x09 => props.correlation_data = Some(read_binary(p)?),
        0x0B => {
            let v = read_varint(p)?;
            if v == 0 {
                return protocol("[MQTT-3.8.2.1.2] subscription identifier 0");
            }
            props.subscription_identifiers.push(v);
        }
        // Alias 0 is answered with DISCONNECT 0x94 by the session [MQTT-3.3.2-8].
        0x23 => props.topic_alias = Some(read_u16(p)?),
        _ => return malformed("[MQTT-2.2.2.2] unknown property identifier"),
    }
    Ok(())
}

/// The properties of the connection and the session: CONNECT, CONNACK, DISCONNECT,
/// AUTH, the will delay, and the reason string of the acknowledgements.
fn read_connection_property(p: &mut Bytes, id: u8, props: &mut Properties) -> DResult<()> {
    match id {
        0x11 => props.session_expiry_interval = Some(read_u32(p)?),
        0x12 => props.assigned_client_identifier = Some(read_string(p, true)?),
        0x13 => props.server_keep_alive = Some(read_u16(p)?),
        0x15 => props.authentication_method = Some(read_string(p, true)?),
        0x16 => props.authentication_data = Some(read_binary(p)?),
        0x17 => {
            props.request_problem_information = Some(flag(
                p,
                "[MQTT-3.1.2.11.7] request problem information other than 0 or 1",
            )?)
        }
        0x18 => props.will_delay_interval = Some(read_u32(p)?),
        0x19 => {
            props.request_response_information = Some(flag(
                p,
                "[MQTT-3.1.2.11.6] request response information other than 0 or 1",
            )?)
        }
        0x1A => props.response_information = Some(read_string(p, true)?),
        0x1C => props.server_reference = Some(read_string(p, true)?),
        0x1F => props.reason_string = Some(read_string(p, true)?),
        0x21 => {
            props.receive_maximum = Some(non_zero_u16(p, "[MQTT-3.1.2.11.3] receive maximum 0")?)
        }
        0x22 => props.topic_alias_maximum = Some(read_u16(p)?),
        0x27 => {
            let v = read_u32(p)?;
            if v == 0 {
                return protocol("[MQTT-3.1.2.11.4] maximum packet size 0");
            }
            props.maximum_packet_size = Some(v);
        }
        _ => return malformed("[MQTT-2.2.2.2] unknown property identifier"),
    }
    Ok(())
}

/// The server's capability flags in CONNACK.
fn read_capability(p: &mut Bytes, id: u8, props: &mut Properties) -> DResult<()> {
    let (field, msg) = match id {
        0x24 => (
            &mut props.maximum_qos,
            "[MQTT-3.2.2.3.4] maximum QoS other than 0 or 1",
        ),
        0x25 => (
            &mut props.retain_available,
            "[MQTT-3.2.2.3.5] retain available other than 0 or 1",
        ),
        0x28 => (
            &mut props.wildcard_subscription_available,
            "[MQTT-3.2.2.3.11] wildcard subscription available other than 0 or 1",
        ),
        0x29 => (
            &mut props.subscription_identifier_available,
            "[MQTT-3.2.2.3.12] subscription identifier available other than 0 or 1",
        ),
        0x2A => (
            &mut props.shared_subscription_available,
            "[MQTT-3.2.2.3.13] shared subscription available other than 0 or 1",
        ),
        _ => return malformed("[MQTT-2.2.2.2] unknown property identifier"),
    };
    *field = Some(flag(p, msg)?);
    Ok(())
}
