//! Per-packet lengths and bodies.

use bytes::{BufMut, BytesMut};

use super::properties::{block_len, properties_len, put_properties};
use super::{bin_len, check_remaining, put_bin, put_str, str_len, Sizes};
use crate::protocol::error::EncodeError;
use crate::protocol::packet::{
    ConnAck, Connect, Flow, Packet, PubResponse, Publish, SubAck, Subscribe, SubscriptionOptions,
    Unsubscribe,
};
use crate::protocol::properties::Properties;
use crate::protocol::types::ProtocolVersion;

/// The first byte of the fixed header: type and flags.
pub(super) fn first_byte(packet: &Packet) -> u8 {
    let flags = match packet {
        Packet::Publish(p) => (u8::from(p.dup) << 3) | ((p.qos() as u8) << 1) | u8::from(p.retain),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    (packet.packet_type() << 4) | flags
}

/// Property length of a 5.0 packet, 0 (and not written) before 5.0.
fn props(p: &Properties, v5: bool) -> Result<usize, EncodeError> {
    if v5 {
        properties_len(p)
    } else {
        Ok(0)
    }
}

/// Remaining length and property lengths, validating what the encoding needs.
pub(super) fn sizes(packet: &Packet, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
    let v5 = version.is_v5();
    let mut s = Sizes::default();
    let remaining = match packet {
        Packet::Connect(c) => return connect_sizes(c),
        Packet::ConnAck(c) => {
            s.props = props(&c.properties, v5)?;
            2 + if v5 { block_len(s.props) } else { 0 }
        }
        Packet::Publish(p) => publish_len(p, v5, &mut s)?,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            pub_response_len(r, v5, &mut s)?
        }
        Packet::Subscribe(sub) => subscribe_len(sub, v5, &mut s)?,
        Packet::SubAck(a) => {
            s.props = props(&a.properties, v5)?;
            2 + if v5 { block_len(s.props) } else { 0 } + a.reasons.len()
        }
        Packet::Unsubscribe(u) => unsubscribe_len(u, v5, &mut s)?,
        Packet::UnsubAck(a) => {
            if v5 {
                s.props = properties_len(&a.properties)?;
                2 + block_len(s.props) + a.reasons.len()
            } else {
                2
            }
        }
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => {
            if v5 {
                s.props = properties_len(&d.properties)?;
                reason_and_props(d.reason.0, s.props)
            } else {
                0
            }
        }
        Packet::Auth(a) => {
            if !v5 {
                return Err(EncodeError::Invalid(
                    "[MQTT-2.1.2] AUTH exists only in MQTT 5.0",
                ));
            }
            s.props = properties_len(&a.properties)?;
            reason_and_props(a.reason.0, s.props)
        }
    };
    s.remaining = check_remaining(remaining)?;
    Ok(s)
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: the reason code and the properties only when needed.
#[inline]
fn pub_response_len(r: &PubResponse, v5: bool, s: &mut Sizes) -> Result<usize, EncodeError> {
    if !v5 {
        return Ok(2);
    }
    s.props = properties_len(&r.properties)?;
    Ok(match (r.reason.0, s.props) {
        (0, 0) => 2,
        (_, 0) => 3,
        (_, n) => 3 + block_len(n),
    })
}

fn subscribe_len(sub: &Subscribe, v5: bool, s: &mut Sizes) -> Result<usize, EncodeError> {
    if sub.filters.is_empty() {
        return Err(EncodeError::Invalid(
            "[MQTT-3.8.3-3] SUBSCRIBE without topic filters",
        ));
    }
    s.props = props(&sub.properties, v5)?;
    let mut n = 2 + if v5 { block_len(s.props) } else { 0 };
    for (f, _) in &sub.filters {
        n += str_len(f.as_str())? + 1;
    }
    Ok(n)
}

fn unsubscribe_len(u: &Unsubscribe, v5: bool, s: &mut Sizes) -> Result<usize, EncodeError> {
    if u.filters.is_empty() {
        return Err(EncodeError::Invalid(
            "[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters",
        ));
    }
    s.props = props(&u.properties, v5)?;
    let mut n = 2 + if v5 { block_len(s.props) } else { 0 };
    for f in &u.filters {
        n += str_len(f.as_str())?;
    }
    Ok(n)
}

/// DISCONNECT and AUTH: empty when successful without properties.
fn reason_and_props(reason: u8, props: usize) -> usize {
    match (reason, props) {
        (0, 0) => 0,
        (_, 0) => 1,
        (_, n) => 1 + block_len(n),
    }
}

fn publish_len(p: &Publish, v5: bool, s: &mut Sizes) -> Result<usize, EncodeError> {
    // (A QoS 0 PUBLISH with a packet id, or a QoS 1/2 one without [MQTT-2.2.1-2/3],
    // cannot be built: `Flow`.)
    if p.dup && p.flow == Flow::AtMostOnce {
        return Err(EncodeError::Invalid(
            "[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH",
        ));
    }
    if !v5 && p.topic.is_empty() {
        return Err(EncodeError::Invalid(
            "[MQTT-4.7.3-1] empty topic name before MQTT 5.0",
        ));
    }
    let mut n = str_len(p.topic.as_str())? + p.payload.len();
    if p.packet_id().is_some() {
        n += 2;
    }
    if v5 {
        s.props = properties_len(&p.properties)?;
        n += block_len(s.props);
    }
    Ok(n)
}

fn connect_sizes(c: &Connect) -> Result<Sizes, EncodeError> {
    let v5 = c.protocol.is_v5();
    let mut s = Sizes::default();
    if !v5 && c.password.is_some() && c.username.is_none() {
        return Err(EncodeError::Invalid(
            "[MQTT-3.1.2-22] password without a user name",
        ));
    }
    let name = if c.protocol == ProtocolVersion::V31 {
        8
    } else {
        6
    };
    let mut n = name + 1 + 1 + 2 + str_len(&c.client_id)?;
    if v5 {
        s.props = properties_len(&c.properties)?;
        n += block_len(s.props);
    }
    if let Some(w) = &c.will {
        if w.topic.is_empty() {
            return Err(EncodeError::Invalid("[MQTT-4.7.3-1] empty will topic"));
        }
        if v5 {
            s.will_props = properties_len(&w.properties)?;
            n += block_len(s.will_props);
        }
        n += str_len(w.topic.as_str())? + bin_len(&w.payload)?;
    }
    if let Some(u) = &c.username {
        n += str_len(u)?;
    }
    if let Some(p) = &c.password {
        n += bin_len(p)?;
    }
    s.remaining = check_remaining(n)?;
    Ok(s)
}

/// Writes the body of a packet whose [`sizes`] succeeded.
pub(super) fn put_body(packet: &Packet, version: ProtocolVersion, s: Sizes, dst: &mut BytesMut) {
    let v5 = version.is_v5();
    match packet {
        Packet::Connect(c) => put_connect(c, s, dst),
        Packet::ConnAck(c) => put_connack(c, v5, s, dst),
        Packet::Publish(p) => put_publish(p, v5, s, dst),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            put_pub_response(r, v5, s, dst)
        }
        Packet::Subscribe(sub) => put_subscribe(sub, v5, s, dst),
        Packet::SubAck(a) => put_suback(a, v5, s, dst),
        Packet::Unsubscribe(u) => put_unsubscribe(u, v5, s, dst),
        Packet::UnsubAck(a) => {
            dst.put_u16(a.packet_id.get());
            if v5 {
                put_properties(&a.properties, s.props, dst);
                for r in &a.reasons {
                    dst.put_u8(r.0);
                }
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => {
            if v5 {
                put_reason_and_props(d.reason.0, &d.properties, s, dst);
            }
        }
        Packet::Auth(a) => put_reason_and_props(a.reason.0, &a.properties, s, dst),
    }
}

fn put_connack(c: &ConnAck, v5: bool, s: Sizes, dst: &mut BytesMut) {
    dst.put_u8(u8::from(c.session_present));
    if v5 {
        dst.put_u8(c.reason.0);
        put_properties(&c.properties, s.props, dst);
    } else {
        dst.put_u8(c.reason.to_v3_connack());
    }
}

#[inline]
fn put_publish(p: &Publish, v5: bool, s: Sizes, dst: &mut BytesMut) {
    put_str(dst, p.topic.as_str());
    if let Some(id) = p.packet_id() {
        dst.put_u16(id.get());
    }
    if v5 {
        put_properties(&p.properties, s.props, dst);
    }
    dst.put_slice(&p.payload);
}

fn put_subscribe(sub: &Subscribe, v5: bool, s: Sizes, dst: &mut BytesMut) {
    dst.put_u16(sub.packet_id.get());
    if v5 {
        put_properties(&sub.properties, s.props, dst);
    }
    for (f, o) in &sub.filters {
        put_str(dst, f.as_str());
        dst.put_u8(options_byte(o, v5));
    }
}

/// SUBACK: 3.x knows only the granted QoS and failure (0x80).
fn put_suback(a: &SubAck, v5: bool, s: Sizes, dst: &mut BytesMut) {
    dst.put_u16(a.packet_id.get());
    if v5 {
        put_properties(&a.properties, s.props, dst);
    }
    for r in &a.reasons {
        dst.put_u8(match r.0 {
            code if v5 => code,
            code @ 0..=2 => code,
            _ => 0x80,
        });
    }
}

fn put_unsubscribe(u: &Unsubscribe, v5: bool, s: Sizes, dst: &mut BytesMut) {
    dst.put_u16(u.packet_id.get());
    if v5 {
        put_properties(&u.properties, s.props, dst);
    }
    for f in &u.filters {
        put_str(dst, f.as_str());
    }
}

/// DISCONNECT and AUTH (5.0): what [`reason_and_props`] sized.
fn put_reason_and_props(reason: u8, props: &Properties, s: Sizes, dst: &mut BytesMut) {
    if s.remaining > 0 {
        dst.put_u8(reason);
        if s.remaining > 1 {
            put_properties(props, s.props, dst);
        }
    }
}

fn put_pub_response(r: &PubResponse, v5: bool, s: Sizes, dst: &mut BytesMut) {
    dst.put_u16(r.packet_id.get());
    if v5 && s.remaining > 2 {
        dst.put_u8(r.reason.0);
        if s.remaining > 3 {
            put_properties(&r.properties, s.props, dst);
        }
    }
}

/// The options byte of a SUBSCRIBE entry; only the QoS before 5.0.
fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    let qos = o.qos as u8;
    if !v5 {
        return qos;
    }
    qos | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

fn put_connect(c: &Connect, s: Sizes, dst: &mut BytesMut) {
    let v5 = c.protocol.is_v5();
    put_str(
        dst,
        if c.protocol == ProtocolVersion::V31 {
            "MQIsdp"
        } else {
            "MQTT"
        },
    );
    dst.put_u8(c.protocol.level());
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0x04 | ((w.qos as u8) << 3) | (u8::from(w.retain) << 5);
    }
    flags |= u8::from(c.password.is_some()) << 6;
    flags |= u8::from(c.username.is_some()) << 7;
    dst.put_u8(flags);
    dst.put_u16(c.keep_alive);
    if v5 {
        put_properties(&c.properties, s.props, dst);
    }
    put_str(dst, &c.client_id);
    if let Some(w) = &c.will {
        if v5 {
            put_properties(&w.properties, s.will_props, dst);
        }
        put_str(dst, w.topic.as_str());
        put_bin(dst, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(dst, u);
    }
    if let Some(p) = &c.password {
        put_bin(dst, p);
    }
}
