//! What the configured capabilities allow of a client's PUBLISH and SUBSCRIBE (section
//! 3.2.2.3, "optional server features"), and payload format validation (3.3.2.3.2).
//! Pure checks; the session turns a refusal into a DISCONNECT, an error acknowledgement
//! or an error SUBACK code.

use bytes::Bytes;

use crate::config::Capabilities;
use crate::protocol::{Properties, QoS, ReasonCode};
use crate::topic::{TopicFilter, TopicName};

/// Why a packet is refused: the reason code and a Reason String naming the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: ReasonCode,
    pub text: &'static str,
}

impl Refusal {
    const fn new(reason: ReasonCode, text: &'static str) -> Refusal {
        Refusal { reason, text }
    }
}

/// A PUBLISH above the advertised Maximum QoS [MQTT-3.2.2-11] is refused with 0x9B; a
/// retained one when Retain Available is 0 [MQTT-3.2.2-14] with 0x9A.
pub fn check_publish(caps: &Capabilities, qos: QoS, retain: bool) -> Result<(), Refusal> {
    if qos > caps.max_qos() {
        return Err(Refusal::new(
            ReasonCode::QOS_NOT_SUPPORTED,
            "PUBLISH QoS exceeds the server's Maximum QoS",
        ));
    }
    if retain && !caps.retain_available {
        return Err(Refusal::new(
            ReasonCode::RETAIN_NOT_SUPPORTED,
            "retained messages are not available on this server",
        ));
    }
    Ok(())
}

/// A payload marked as UTF-8 (Payload Format Indicator 1) that is not valid UTF-8 is
/// refused with 0x99 (section 3.3.2.3.2), when validation is enabled.
pub fn check_payload(validate: bool, props: &Properties, payload: &Bytes) -> Result<(), Refusal> {
    if validate
        && props.payload_format_indicator == Some(1)
        && std::str::from_utf8(payload).is_err()
    {
        return Err(Refusal::new(
            ReasonCode::PAYLOAD_FORMAT_INVALID,
            "payload is marked as UTF-8 but is not valid UTF-8",
        ));
    }
    Ok(())
}

/// A SUBSCRIBE carrying a Subscription Identifier when they are not available: a
/// Protocol Error, answered with DISCONNECT 0xA1 (section 3.2.2.3.12).
pub fn check_subscription_ids(caps: &Capabilities, ids: &[u32]) -> Result<(), Refusal> {
    if !ids.is_empty() && !caps.subscription_identifiers {
        return Err(Refusal::new(
            ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            "subscription identifiers are not available on this server",
        ));
    }
    Ok(())
}

/// The QoS granted to one subscription: the requested one, capped at the Maximum QoS
/// (a server without QoS 1/2 still accepts such SUBSCRIBEs [MQTT-3.2.2-10]); or the
/// SUBACK code refusing it (0x9E shared, 0xA2 wildcards not available).
/// True for `$SYS` and the topics under it: the broker's own, which no client may
/// publish to (authorizer or not); a refused publish is answered like an unauthorized
/// one.
pub fn reserved_topic(topic: &TopicName) -> bool {
    let t = topic.as_str();
    t == "$SYS" || t.starts_with("$SYS/")
}

pub fn grant(caps: &Capabilities, filter: &TopicFilter, requested: QoS) -> Result<QoS, ReasonCode> {
    if filter.share().is_some() && !caps.shared_subscriptions {
        return Err(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    if filter.has_wildcards() && !caps.wildcard_subscriptions {
        return Err(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
    }
    Ok(requested.min(caps.max_qos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited() -> Capabilities {
        Capabilities {
            maximum_qos: 1,
            retain_available: false,
            wildcard_subscriptions: false,
            subscription_identifiers: false,
            shared_subscriptions: false,
        }
    }

    fn f(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    #[test]
    fn publish_checks() {
        let all = Capabilities::default();
        assert!(check_publish(&all, QoS::ExactlyOnce, true).is_ok());
        let caps = limited();
        assert!(check_publish(&caps, QoS::AtLeastOnce, false).is_ok());
        let r = check_publish(&caps, QoS::ExactlyOnce, false).unwrap_err();
        assert_eq!(r.reason, ReasonCode::QOS_NOT_SUPPORTED);
        let r = check_publish(&caps, QoS::AtMostOnce, true).unwrap_err();
        assert_eq!(r.reason, ReasonCode::RETAIN_NOT_SUPPORTED);
    }

    #[test]
    fn payload_checks() {
        let mut props = Properties::default();
        let bad = Bytes::from_static(&[0xff, 0xfe]);
        assert!(check_payload(true, &props, &bad).is_ok());
        props.payload_format_indicator = Some(1);
        let r = check_payload(true, &props, &bad).unwrap_err();
        assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        assert!(check_payload(false, &props, &bad).is_ok());
        assert!(check_payload(true, &props, &Bytes::from_static("héllo".as_bytes())).is_ok());
    }

    #[test]
    fn grants_are_capped_and_features_refused() {
        let caps = limited();
        assert_eq!(
            grant(&caps, &f("a/b"), QoS::ExactlyOnce),
            Ok(QoS::AtLeastOnce)
        );
        assert_eq!(
            grant(&caps, &f("a/+"), QoS::AtMostOnce),
            Err(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED)
        );
        assert_eq!(
            grant(&caps, &f("$share/g/a"), QoS::AtMostOnce),
            Err(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)
        );
        let all = Capabilities::default();
        assert_eq!(
            grant(&all, &f("$share/g/#"), QoS::ExactlyOnce),
            Ok(QoS::ExactlyOnce)
        );
        assert!(check_subscription_ids(&all, &[5]).is_ok());
        assert!(check_subscription_ids(&caps, &[]).is_ok());
        assert_eq!(
            check_subscription_ids(&caps, &[5]).unwrap_err().reason,
            ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED
        );
    }
}
