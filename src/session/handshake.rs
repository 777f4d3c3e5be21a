//! CONNECT negotiation (section 3.1 and 3.2): what the broker accepts and what it
//! answers. Pure functions over the packet and the configuration.

use bytes::Bytes;
use bytestring::ByteString;

use crate::config::{Capabilities, Config, Limits, ServerConfig};
use crate::message::ClientId;
use crate::protocol::{ConnAck, Connect, Properties, ProtocolVersion, ReasonCode};

/// The session expiry that means "never" [MQTT-3.1.2-? 5.0 3.1.2.11.2].
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// What was agreed with a client whose CONNECT is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub client_id: ClientId,
    /// The client sent an empty id and the broker chose one.
    pub assigned_id: bool,
    pub protocol: ProtocolVersion,
    pub clean_start: bool,
    /// Keep alive in force, seconds (0 = none).
    pub keep_alive: u16,
    /// True when the broker lowered the client's keep alive (5.0: Server Keep Alive).
    pub keep_alive_changed: bool,
    /// Seconds the session outlives its connection (3.1.1: 0, or never up to
    /// `[limits] max_session_expiry_secs`).
    pub session_expiry: u32,
    /// True when the broker lowered a 5.0 client's Session Expiry Interval (returned in
    /// CONNACK).
    pub session_expiry_changed: bool,
    /// How many QoS 1/2 messages may be in flight towards the client.
    pub outbound_window: u16,
    /// The client's Maximum Packet Size, if it set one.
    pub client_max_packet_size: Option<u32>,
    /// The client asked for Reason Strings and User Properties on errors (5.0).
    pub request_problem_information: bool,
    /// The client asked for Response Information in CONNACK (5.0).
    pub request_response_information: bool,
    /// Topic aliases the client accepts from the server (5.0; 0 = none).
    pub client_topic_alias_maximum: u16,
    /// Enhanced authentication (5.0): the method, echoed in CONNACK.
    pub auth_method: Option<ByteString>,
    /// The method's final data for CONNACK (SCRAM: server-final).
    pub auth_data: Option<Bytes>,
    /// The CONNECT's User Name, for re-authentication (5.0, section 4.12.1).
    pub username: Option<ByteString>,
}

/// Everything that decides whether a CONNECT is accepted: redirection, the will against
/// the capabilities, then [`negotiate`]. The error is the refusing CONNACK.
pub fn admit(
    connect: &Connect,
    config: &Config,
    fresh_id: impl FnOnce() -> String,
) -> Result<Accepted, Box<ConnAck>> {
    let refuse = |reason| Box::new(refusal(reason));
    if let Some(ack) = redirect(&config.server, connect.protocol) {
        return Err(Box::new(ack));
    }
    check_will(connect, &config.capabilities).map_err(refuse)?;
    negotiate(connect, &config.limits, fresh_id).map_err(refuse)
}

/// With a server reference configured, every CONNECT is refused: 5.0 clients are told
/// where to go (0x9D moved / 0x9C use another server, section 4.11), older clients get
/// "server unavailable".
pub fn redirect(server: &ServerConfig, protocol: ProtocolVersion) -> Option<ConnAck> {
    let reference = server.server_reference.as_ref()?;
    if !protocol.is_v5() {
        return Some(refusal(ReasonCode::SERVER_UNAVAILABLE));
    }
    let reason = if server.server_moved {
        ReasonCode::SERVER_MOVED
    } else {
        ReasonCode::USE_ANOTHER_SERVER
    };
    let mut ack = refusal(reason);
    ack.properties.server_reference = Some(reference.as_str().into());
    Some(ack)
}

/// A will the server could not publish refuses the connection: QoS above the maximum
/// [MQTT-3.2.2-12] (0x9B), retain when retained messages are not available
/// [MQTT-3.2.2-13] (0x9A).
pub fn check_will(connect: &Connect, caps: &Capabilities) -> Result<(), ReasonCode> {
    let Some(will) = &connect.will else {
        return Ok(());
    };
    if will.qos > caps.max_qos() {
        return Err(ReasonCode::QOS_NOT_SUPPORTED);
    }
    if will.retain && !caps.retain_available {
        return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
    }
    Ok(())
}

/// Accepts or refuses a CONNECT; the error is the CONNACK reason code to send.
pub fn negotiate(
    connect: &Connect,
    limits: &Limits,
    fresh_id: impl FnOnce() -> String,
) -> Result<Accepted, ReasonCode> {
    let v5 = connect.protocol.is_v5();
    let props = &connect.properties;
    let mut assigned_id = false;
    let client_id = if connect.client_id.is_empty() {
        // 3.1.1 allows an empty id only with a clean session [MQTT-3.1.3-8]; 3.1 never.
        if !v5 && (!connect.clean_start || connect.protocol == ProtocolVersion::V31) {
            return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        }
        assigned_id = true;
        ClientId::new(fresh_id())
    } else {
        let too_long = connect.client_id.len() > limits.max_client_id_len
            || (connect.protocol == ProtocolVersion::V31 && connect.client_id.len() > 23);
        if too_long {
            return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        }
        ClientId::new(connect.client_id.clone())
    };
    let (keep_alive, keep_alive_changed) = match limits.max_keepalive_secs {
        0 => (connect.keep_alive, false),
        max if connect.keep_alive == 0 || connect.keep_alive > max => (max, true),
        _ => (connect.keep_alive, false),
    };
    let requested_expiry = if v5 {
        props.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        NEVER_EXPIRES
    };
    let session_expiry = requested_expiry.min(limits.max_session_expiry_secs);
    let client_receive_max = props.receive_maximum.unwrap_or(u16::MAX);
    Ok(Accepted {
        client_id,
        assigned_id,
        protocol: connect.protocol,
        clean_start: connect.clean_start,
        keep_alive,
        // 3.1.1 has no way to tell the client; it is enforced all the same.
        keep_alive_changed: keep_alive_changed && v5,
        session_expiry,
        session_expiry_changed: v5 && session_expiry != requested_expiry,
        outbound_window: client_receive_max.min(limits.max_inflight),
        client_max_packet_size: props.maximum_packet_size,
        request_problem_information: props.request_problem_information != Some(0),
        request_response_information: props.request_response_information == Some(1),
        client_topic_alias_maximum: if v5 {
            props.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        },
        auth_method: None,
        auth_data: None,
        username: connect.username.clone(),
    })
}

/// The CONNACK for an accepted connection, advertising the server's limits and the
/// features it lacks (5.0; an absent property means "available" / QoS 2).
pub fn connack(accepted: &Accepted, session_present: bool, config: &Config) -> ConnAck {
    let limits = &config.limits;
    let caps = &config.capabilities;
    let mut properties = Properties::default();
    if accepted.protocol.is_v5() {
        // [MQTT-3.2.2-9]: a server without QoS 1 or 2 says so.
        if caps.maximum_qos < 2 {
            properties.maximum_qos = Some(caps.maximum_qos);
        }
        let unavailable = |on: bool| (!on).then_some(0);
        properties.retain_available = unavailable(caps.retain_available);
        properties.wildcard_subscription_available = unavailable(caps.wildcard_subscriptions);
        properties.subscription_identifier_available = unavailable(caps.subscription_identifiers);
        properties.shared_subscription_available = unavailable(caps.shared_subscriptions);
        // [MQTT-3.1.2-28]: only to a client that asked for it.
        if accepted.request_response_information {
            properties.response_information = config
                .server
                .response_information
                .as_deref()
                .map(Into::into);
        }
        properties.receive_maximum = Some(limits.receive_maximum);
        properties.maximum_packet_size = Some(limits.max_packet_size);
        properties.topic_alias_maximum = Some(limits.topic_alias_maximum);
        if accepted.assigned_id {
            properties.assigned_client_identifier = Some(accepted.client_id.as_str().into());
        }
        properties.authentication_method = accepted.auth_method.clone();
        properties.authentication_data = accepted.auth_data.clone();
        if accepted.keep_alive_changed {
            properties.server_keep_alive = Some(accepted.keep_alive);
        }
        // Section 3.2.2.3.2: the server says so when it uses another value.
        if accepted.session_expiry_changed {
            properties.session_expiry_interval = Some(accepted.session_expiry);
        }
    }
    ConnAck {
        session_present,
        reason: ReasonCode::SUCCESS,
        properties,
    }
}

/// A refusing CONNACK: session present is 0 [MQTT-3.2.2-6].
pub fn refusal(reason: ReasonCode) -> ConnAck {
    ConnAck {
        session_present: false,
        reason,
        properties: Properties::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(protocol: ProtocolVersion, id: &str, clean: bool) -> Connect {
        Connect {
            protocol,
            clean_start: clean,
            keep_alive: 30,
            properties: Properties::default(),
            client_id: ByteString::from(id),
            will: None,
            username: None,
            password: None,
        }
    }

    #[test]
    fn empty_client_id_rules() {
        let l = Limits::default();
        let id = || "gen".to_string();
        // [MQTT-3.1.3-8]
        let c = connect(ProtocolVersion::V311, "", false);
        assert_eq!(
            negotiate(&c, &l, id),
            Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
        let c = connect(ProtocolVersion::V311, "", true);
        assert!(negotiate(&c, &l, id).unwrap().assigned_id);
        let c = connect(ProtocolVersion::V5, "", false);
        let a = negotiate(&c, &l, id).unwrap();
        assert_eq!(a.client_id.as_str(), "gen");
        let ack = connack(&a, false, &Config::default());
        assert_eq!(
            ack.properties.assigned_client_identifier.as_deref(),
            Some("gen")
        );
    }

    #[test]
    fn session_expiry_by_level() {
        let l = Limits {
            max_session_expiry_secs: NEVER_EXPIRES,
            ..Limits::default()
        };
        let a = negotiate(&connect(ProtocolVersion::V311, "a", false), &l, String::new).unwrap();
        assert_eq!(a.session_expiry, NEVER_EXPIRES);
        let a = negotiate(&connect(ProtocolVersion::V311, "a", true), &l, String::new).unwrap();
        assert_eq!(a.session_expiry, 0);
        let mut c = connect(ProtocolVersion::V5, "a", false);
        assert_eq!(negotiate(&c, &l, String::new).unwrap().session_expiry, 0);
        c.properties.session_expiry_interval = Some(60);
        assert_eq!(negotiate(&c, &l, String::new).unwrap().session_expiry, 60);
    }

    #[test]
    fn session_expiry_is_capped_and_announced_to_5_0_clients() {
        let l = Limits {
            max_session_expiry_secs: 3600,
            ..Limits::default()
        };
        let config = Config {
            limits: l.clone(),
            ..Config::default()
        };
        let a = negotiate(&connect(ProtocolVersion::V311, "a", false), &l, String::new).unwrap();
        assert_eq!((a.session_expiry, a.session_expiry_changed), (3600, false));
        let mut c = connect(ProtocolVersion::V5, "a", false);
        c.properties.session_expiry_interval = Some(NEVER_EXPIRES);
        let a = negotiate(&c, &l, String::new).unwrap();
        assert_eq!((a.session_expiry, a.session_expiry_changed), (3600, true));
        let ack = connack(&a, false, &config);
        assert_eq!(ack.properties.session_expiry_interval, Some(3600));
        c.properties.session_expiry_interval = Some(60);
        let a = negotiate(&c, &l, String::new).unwrap();
        assert_eq!((a.session_expiry, a.session_expiry_changed), (60, false));
        assert_eq!(
            connack(&a, false, &config)
                .properties
                .session_expiry_interval,
            None
        );
    }

    #[test]
    fn keep_alive_is_capped_and_announced() {
        let l = Limits {
            max_keepalive_secs: 10,
            ..Limits::default()
        };
        let a = negotiate(&connect(ProtocolVersion::V5, "a", true), &l, String::new).unwrap();
        assert_eq!((a.keep_alive, a.keep_alive_changed), (10, true));
        let config = Config {
            limits: l,
            ..Config::default()
        };
        assert_eq!(
            connack(&a, false, &config).properties.server_keep_alive,
            Some(10)
        );
    }

    #[test]
    fn long_ids_are_refused() {
        let l = Limits::default();
        let c = connect(ProtocolVersion::V31, "abcdefghijklmnopqrstuvwxyz", true);
        assert_eq!(
            negotiate(&c, &l, String::new),
            Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID)
        );
    }

    #[test]
    fn connack_advertises_only_missing_features() {
        let mut config = Config::default();
        let c = connect(ProtocolVersion::V5, "a", true);
        let a = negotiate(&c, &config.limits, String::new).unwrap();
        let p = connack(&a, false, &config).properties;
        assert_eq!(p.maximum_qos, None);
        assert_eq!(p.retain_available, None);
        assert_eq!(p.wildcard_subscription_available, None);
        config.capabilities = Capabilities {
            maximum_qos: 1,
            retain_available: false,
            wildcard_subscriptions: false,
            subscription_identifiers: false,
            shared_subscriptions: false,
        };
        let p = connack(&a, false, &config).properties;
        assert_eq!(p.maximum_qos, Some(1));
        assert_eq!(p.retain_available, Some(0));
        assert_eq!(p.wildcard_subscription_available, Some(0));
        assert_eq!(p.subscription_identifier_available, Some(0));
        assert_eq!(p.shared_subscription_available, Some(0));
    }

    #[test]
    fn response_information_only_when_requested() {
        let mut config = Config::default();
        config.server.response_information = Some("replies/".into());
        let mut c = connect(ProtocolVersion::V5, "a", true);
        let a = negotiate(&c, &config.limits, String::new).unwrap();
        assert_eq!(
            connack(&a, false, &config).properties.response_information,
            None
        );
        c.properties.request_response_information = Some(1);
        let a = negotiate(&c, &config.limits, String::new).unwrap();
        let info = connack(&a, false, &config)
            .properties
            .response_information
            .clone();
        assert_eq!(info.as_deref(), Some("replies/"));
    }

    #[test]
    fn redirection_and_will_checks() {
        let mut config = Config::default();
        config.server.server_reference = Some("b:1883".into());
        let c5 = connect(ProtocolVersion::V5, "a", true);
        let ack = admit(&c5, &config, String::new).unwrap_err();
        assert_eq!(ack.reason, ReasonCode::USE_ANOTHER_SERVER);
        assert_eq!(ack.properties.server_reference.as_deref(), Some("b:1883"));
        config.server.server_moved = true;
        let ack = admit(&c5, &config, String::new).unwrap_err();
        assert_eq!(ack.reason, ReasonCode::SERVER_MOVED);
        let c3 = connect(ProtocolVersion::V311, "a", true);
        let ack = admit(&c3, &config, String::new).unwrap_err();
        assert_eq!(ack.reason.to_v3_connack(), 3);

        let mut caps = Capabilities {
            maximum_qos: 1,
            ..Capabilities::default()
        };
        let mut c = connect(ProtocolVersion::V5, "a", true);
        c.will = Some(crate::protocol::LastWill {
            topic: crate::topic::TopicName::new("w").unwrap(),
            payload: Default::default(),
            qos: crate::protocol::QoS::ExactlyOnce,
            retain: true,
            properties: Properties::default(),
        });
        // [MQTT-3.2.2-12]
        assert_eq!(check_will(&c, &caps), Err(ReasonCode::QOS_NOT_SUPPORTED));
        caps.maximum_qos = 2;
        caps.retain_available = false;
        // [MQTT-3.2.2-13]
        assert_eq!(check_will(&c, &caps), Err(ReasonCode::RETAIN_NOT_SUPPORTED));
    }
}
