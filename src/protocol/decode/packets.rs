//! PUBLISH, the publish responses, SUBSCRIBE/UNSUBSCRIBE and their acks, DISCONNECT, AUTH.

use bytes::{Buf, Bytes};

use super::properties::{read_properties, PropKind};
use super::reader::{
    finish, malformed, protocol, read_packet_id, read_topic_filter, read_topic_name, read_u8,
    DResult,
};
use crate::protocol::packet::{
    Auth, Disconnect, Flow, PubResponse, Publish, RetainHandling, SubAck, Subscribe,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};
use crate::protocol::properties::Properties;
use crate::protocol::types::{QoS, ReasonCode};

/// True when MQTT 5.0 lists `code` as a reason code of packet type `packet_type`
/// (tables of sections 3.2.2.2, 3.4.2.1 ... 3.15.2.1).
pub(crate) fn valid_reason(packet_type: u8, code: u8) -> bool {
    match packet_type {
        2 => matches!(code, 0x00 | 0x80..=0x8A | 0x8C | 0x90 | 0x95 | 0x97 | 0x99..=0x9D | 0x9F),
        4 | 5 => matches!(
            code,
            0x00 | 0x10 | 0x80 | 0x83 | 0x87 | 0x90 | 0x91 | 0x97 | 0x99
        ),
        6 | 7 => matches!(code, 0x00 | 0x92),
        9 => matches!(
            code,
            0x00 | 0x01 | 0x02 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91 | 0x97 | 0x9E | 0xA1 | 0xA2
        ),
        11 => matches!(code, 0x00 | 0x11 | 0x80 | 0x83 | 0x87 | 0x8F | 0x91),
        14 => {
            matches!(code, 0x00 | 0x04 | 0x80..=0x83 | 0x87 | 0x89 | 0x8B | 0x8D..=0x90 | 0x93..=0xA2)
        }
        15 => matches!(code, 0x00 | 0x18 | 0x19),
        _ => false,
    }
}

/// A 5.0 reason code, refused as malformed unless listed for the packet type.
pub(super) fn check_reason(packet_type: u8, code: u8) -> DResult<ReasonCode> {
    if valid_reason(packet_type, code) {
        return Ok(ReasonCode(code));
    }
    malformed(match packet_type {
        2 => "[MQTT-3.2.2-8] invalid CONNACK reason code",
        4 => "[MQTT-3.4.2-1] invalid PUBACK reason code",
        5 => "[MQTT-3.5.2-1] invalid PUBREC reason code",
        6 => "[MQTT-3.6.2-1] invalid PUBREL reason code",
        7 => "[MQTT-3.7.2-1] invalid PUBCOMP reason code",
        9 => "[MQTT-3.9.3-2] invalid SUBACK reason code",
        11 => "[MQTT-3.11.3-2] invalid UNSUBACK reason code",
        14 => "[MQTT-3.14.2-1] invalid DISCONNECT reason code",
        _ => "[MQTT-3.15.2-1] invalid AUTH reason code",
    })
}

/// PUBLISH: the hot path. The payload is the rest of the body, not copied.
pub(super) fn decode_publish(mut body: Bytes, flags: u8, v5: bool) -> DResult<Publish> {
    let Some(qos) = QoS::from_u8((flags >> 1) & 0b11) else {
        return malformed("[MQTT-3.3.1-4] PUBLISH QoS 3");
    };
    let topic = read_topic_name(&mut body, v5, v5)?;
    let flow = match qos {
        QoS::AtMostOnce => Flow::AtMostOnce,
        _ => Flow::with_id(qos, read_packet_id(&mut body)?),
    };
    let properties = if v5 {
        let props = read_properties(&mut body, PropKind::Publish)?;
        if topic.is_empty() && props.topic_alias.is_none() {
            return protocol("[MQTT-3.3.2.3.4] empty topic name without a topic alias");
        }
        props
    } else {
        Properties::default()
    };
    Ok(Publish {
        dup: flags & 0b1000 != 0,
        flow,
        retain: flags & 0b0001 != 0,
        topic,
        properties,
        payload: body,
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP; in 5.0 reason and properties may be left out.
pub(super) fn decode_pub_response(
    mut body: Bytes,
    packet_type: u8,
    v5: bool,
) -> DResult<PubResponse> {
    let packet_id = read_packet_id(&mut body)?;
    if !v5 || !body.has_remaining() {
        finish(&body)?;
        return Ok(PubResponse::new(packet_id));
    }
    let reason = check_reason(packet_type, read_u8(&mut body)?)?;
    let properties = if body.has_remaining() {
        read_properties(&mut body, PropKind::PubResp)?
    } else {
        Properties::default()
    };
    finish(&body)?;
    Ok(PubResponse {
        packet_id,
        reason,
        properties,
    })
}

/// The options byte of a SUBSCRIBE entry (section 3.8.3.1).
fn subscription_options(opts: u8, v5: bool, shared: bool) -> DResult<SubscriptionOptions> {
    if !v5 {
        if opts & 0xFC != 0 {
            return malformed("[MQTT-3-8.3-4] SUBSCRIBE requested QoS byte has reserved bits set");
        }
        return match QoS::from_u8(opts) {
            Some(qos) => Ok(SubscriptionOptions::with_qos(qos)),
            None => malformed("[MQTT-3-8.3-4] SUBSCRIBE requested QoS 3"),
        };
    }
    if opts & 0xC0 != 0 {
        return malformed("[MQTT-3.8.3-5] SUBSCRIBE options reserved bits 6-7 set");
    }
    let Some(qos) = QoS::from_u8(opts & 0b11) else {
        return malformed("[MQTT-3.8.3.1] SUBSCRIBE maximum QoS 3");
    };
    let retain_handling = match (opts >> 4) & 0b11 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return protocol("[MQTT-3.8.3.1] SUBSCRIBE retain handling 3"),
    };
    let no_local = opts & 0b0100 != 0;
    if no_local && shared {
        return protocol("[MQTT-3.8.3-4] no local set on a shared subscription");
    }
    Ok(SubscriptionOptions {
        qos,
        no_local,
        retain_as_published: opts & 0b1000 != 0,
        retain_handling,
    })
}

pub(super) fn decode_subscribe(mut body: Bytes, v5: bool) -> DResult<Subscribe> {
    let packet_id = read_packet_id(&mut body)?;
    let properties = if v5 {
        read_properties(&mut body, PropKind::Subscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    while body.has_remaining() {
        let filter = read_topic_filter(&mut body, v5)?;
        let options = subscription_options(read_u8(&mut body)?, v5, filter.share().is_some())?;
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return protocol("[MQTT-3.8.3-3] SUBSCRIBE without topic filters");
    }
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

pub(super) fn decode_suback(mut body: Bytes, v5: bool) -> DResult<SubAck> {
    let packet_id = read_packet_id(&mut body)?;
    let properties = if v5 {
        read_properties(&mut body, PropKind::SubAck)?
    } else {
        Properties::default()
    };
    let mut reasons = Vec::with_capacity(body.remaining());
    while body.has_remaining() {
        let code = body.get_u8();
        reasons.push(if v5 {
            check_reason(9, code)?
        } else if matches!(code, 0x00 | 0x01 | 0x02 | 0x80) {
            ReasonCode(code)
        } else {
            return malformed("[MQTT-3.9.3-2] invalid SUBACK return code");
        });
    }
    Ok(SubAck {
        packet_id,
        properties,
        reasons,
    })
}

pub(super) fn decode_unsubscribe(mut body: Bytes, v5: bool) -> DResult<Unsubscribe> {
    let packet_id = read_packet_id(&mut body)?;
    let properties = if v5 {
        read_properties(&mut body, PropKind::Unsubscribe)?
    } else {
        Properties::default()
    };
    let mut filters = Vec::new();
    while body.has_remaining() {
        filters.push(read_topic_filter(&mut body, v5)?);
    }
    if filters.is_empty() {
        return protocol("[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters");
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

/// UNSUBACK: 3.x has no payload, so `reasons` stays empty.
pub(super) fn decode_unsuback(mut body: Bytes, v5: bool) -> DResult<UnsubAck> {
    let packet_id = read_packet_id(&mut body)?;
    let mut unsuback = UnsubAck {
        packet_id,
        properties: Properties::default(),
        reasons: Vec::new(),
    };
    if !v5 {
        finish(&body)?;
        return Ok(unsuback);
    }
    unsuback.properties = read_properties(&mut body, PropKind::UnsubAck)?;
    unsuback.reasons.reserve(body.remaining());
    while body.has_remaining() {
        unsuback.reasons.push(check_reason(11, body.get_u8())?);
    }
    Ok(unsuback)
}

/// DISCONNECT: empty in 3.x; in 5.0 an empty one is a normal disconnection.
pub(super) fn decode_disconnect(mut body: Bytes, v5: bool) -> DResult<Disconnect> {
    if !v5 {
        if body.has_remaining() {
            return malformed("[MQTT-3.14.1] DISCONNECT with a non-zero remaining length");
        }
        return Ok(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION));
    }
    if !body.has_remaining() {
        return Ok(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION));
    }
    let reason = check_reason(14, read_u8(&mut body)?)?;
    let properties = if body.has_remaining() {
        read_properties(&mut body, PropKind::Disconnect)?
    } else {
        Properties::default()
    };
    finish(&body)?;
    Ok(Disconnect { reason, properties })
}

/// AUTH (5.0 only): an empty one means success.
pub(super) fn decode_auth(mut body: Bytes) -> DResult<Auth> {
    let mut auth = Auth {
        reason: ReasonCode::SUCCESS,
        properties: Properties::default(),
    };
    if !body.has_remaining() {
        return Ok(auth);
    }
    auth.reason = check_reason(15, read_u8(&mut body)?)?;
    if body.has_remaining() {
        auth.properties = read_properties(&mut body, PropKind::Auth)?;
    }
    finish(&body)?;
    Ok(auth)
}
