//! CONNECT (section 3.1) and CONNACK (section 3.2).

use bytes::Bytes;

use super::packets::check_reason;
use super::properties::{read_properties, PropKind};
use super::reader::{
    finish, malformed, protocol, read_binary, read_string, read_topic_name, read_u16, read_u8,
    DResult,
};
use crate::protocol::error::DecodeError;
use crate::protocol::packet::{ConnAck, Connect, LastWill, Packet};
use crate::protocol::properties::Properties;
use crate::protocol::types::{ProtocolVersion, QoS, ReasonCode};

/// CONNECT, decoded at the protocol level it declares.
pub(super) fn decode_connect(mut body: Bytes) -> DResult<Packet> {
    let version = read_protocol(&mut body)?;
    let v5 = version.is_v5();
    let flags = ConnectFlags::read(&mut body, v5)?;
    let keep_alive = read_u16(&mut body)?;
    let properties = read_connect_properties(&mut body, v5)?;
    let client_id = read_string(&mut body, v5)?;
    let will = if flags.will {
        Some(read_will(&mut body, &flags, v5)?)
    } else {
        None
    };
    let username = if flags.username {
        Some(read_string(&mut body, v5)?)
    } else {
        None
    };
    let password = if flags.password {
        Some(read_binary(&mut body)?)
    } else {
        None
    };
    finish(&body)?;
    Ok(Packet::Connect(Box::new(Connect {
        protocol: version,
        clean_start: flags.clean_start,
        keep_alive,
        properties,
        client_id,
        will,
        username,
        password,
    })))
}

/// The protocol name and level (section 3.1.2.1 and 3.1.2.2).
fn read_protocol(body: &mut Bytes) -> DResult<ProtocolVersion> {
    let name = read_binary(body)?;
    let level = read_u8(body)?;
    match (&name[..], level) {
        (b"MQTT", 4) => Ok(ProtocolVersion::V311),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQIsdp", 3) => Ok(ProtocolVersion::V31),
        _ => Err(DecodeError::UnsupportedProtocolVersion {
            name: String::from_utf8_lossy(&name).into_owned(),
            level,
        }),
    }
}

/// The connect flags (section 3.1.2.3), checked against each other.
struct ConnectFlags {
    clean_start: bool,
    will: bool,
    will_qos: QoS,
    will_retain: bool,
    password: bool,
    username: bool,
}

impl ConnectFlags {
    fn read(body: &mut Bytes, v5: bool) -> DResult<ConnectFlags> {
        let flags = read_u8(body)?;
        if flags & 0x01 != 0 {
            return malformed("[MQTT-3.1.2-3] CONNECT reserved flag is not 0");
        }
        let will = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0b11;
        let will_retain = flags & 0x20 != 0;
        let password = flags & 0x40 != 0;
        let username = flags & 0x80 != 0;
        if !will {
            if will_qos != 0 {
                return malformed("[MQTT-3.1.2-11] will QoS must be 0 when the will flag is 0");
            }
            if will_retain {
                return malformed("[MQTT-3.1.2-13] will retain must be 0 when the will flag is 0");
            }
        }
        let Some(will_qos) = QoS::from_u8(will_qos) else {
            return malformed("[MQTT-3.1.2-14] will QoS 3");
        };
        if !v5 && password && !username {
            return malformed("[MQTT-3.1.2-22] password flag set without the user name flag");
        }
        Ok(ConnectFlags {
            clean_start: flags & 0x02 != 0,
            will,
            will_qos,
            will_retain,
            password,
            username,
        })
    }
}

/// The CONNECT properties (5.0 only; empty before).
fn read_connect_properties(body: &mut Bytes, v5: bool) -> DResult<Properties> {
    if !v5 {
        return Ok(Properties::default());
    }
    let props = read_properties(body, PropKind::Connect)?;
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        return protocol("[MQTT-3.1.2.11.10] authentication data without an authentication method");
    }
    Ok(props)
}

/// The will properties, topic and payload (section 3.1.3.2 to 3.1.3.4).
fn read_will(body: &mut Bytes, flags: &ConnectFlags, v5: bool) -> DResult<LastWill> {
    let properties = if v5 {
        read_properties(body, PropKind::Will)?
    } else {
        Properties::default()
    };
    let topic = read_topic_name(body, v5, false)?;
    let payload = read_binary(body)?;
    Ok(LastWill {
        topic,
        payload,
        qos: flags.will_qos,
        retain: flags.will_retain,
        properties,
    })
}

/// CONNACK: 3.x return codes are mapped to reason codes.
pub(super) fn decode_connack(mut body: Bytes, v5: bool) -> DResult<Packet> {
    let flags = read_u8(&mut body)?;
    if flags & 0xFE != 0 {
        return malformed("[MQTT-3.2.2-1] CONNACK acknowledge flags bits 7-1 must be 0");
    }
    let session_present = flags & 0x01 != 0;
    let code = read_u8(&mut body)?;
    let (reason, properties) = if v5 {
        let reason = check_reason(2, code)?;
        (reason, read_properties(&mut body, PropKind::ConnAck)?)
    } else {
        let Some(reason) = ReasonCode::from_v3_connack(code) else {
            return malformed("[MQTT-3.2.2.3] reserved CONNACK return code");
        };
        (reason, Properties::default())
    };
    if session_present && reason.is_error() {
        return protocol("[MQTT-3.2.2-6] session present set with a non-zero reason code");
    }
    finish(&body)?;
    Ok(Packet::ConnAck(ConnAck {
        session_present,
        reason,
        properties,
    }))
}
