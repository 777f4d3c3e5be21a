//! proptest strategies for valid packets of 3.1.1 and 5.0, with properties valid for
//! each packet type.

use bytes::Bytes;
use bytestring::ByteString;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

use crate::protocol::decode::valid_reason;
use crate::protocol::{
    Auth, ConnAck, Connect, Disconnect, Flow, LastWill, Packet, PacketId, Properties,
    PropertyFields, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, UserProperty,
};
use crate::topic::{TopicFilter, TopicName};

pub(super) fn text() -> impl Strategy<Value = ByteString> {
    "\\PC{0,6}".prop_map(ByteString::from)
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..12).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn pid() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|v| PacketId::new(v).unwrap())
}

pub(super) fn topic_name() -> impl Strategy<Value = TopicName> {
    "[a-z0-9$ é]{1,5}(/[a-z0-9]{0,5}){0,3}".prop_map(|s| TopicName::new(s).unwrap())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof!["[a-z0-9]{0,4}", Just("+".to_string())];
    (vec(level, 1..4), any::<bool>(), any::<bool>()).prop_map(|(levels, hash, share)| {
        let mut s = levels.join("/");
        if s.is_empty() {
            s.push('x');
        }
        if hash {
            s.push_str("/#");
        }
        if share {
            s = format!("$share/grp/{s}");
        }
        TopicFilter::new(s).unwrap()
    })
}

/// Property sets by packet type, written out independently of the decoder's table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResp,
    Subscribe,
    Ack,
    Unsubscribe,
    Disconnect,
    Auth,
}

fn allowed(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Connect => &[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27],
        Kind::Will => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26],
        Kind::ConnAck => &[
            0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27,
            0x28, 0x29, 0x2A,
        ],
        Kind::Publish => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26],
        Kind::PubResp | Kind::Ack => &[0x1F, 0x26],
        Kind::Subscribe => &[0x0B, 0x26],
        Kind::Unsubscribe => &[0x26],
        Kind::Disconnect => &[0x11, 0x1C, 0x1F, 0x26],
        Kind::Auth => &[0x15, 0x16, 0x1F, 0x26],
    }
}

fn all_properties() -> impl Strategy<Value = Properties> {
    let flag = || of(0u8..=1);
    let response_topic = "[a-z]{1,4}(/[a-z]{1,3}){0,2}".prop_map(ByteString::from);
    let a = (
        flag(),
        of(any::<u32>()),
        of(text()),
        of(response_topic),
        of(data()),
        vec(1u32..=268_435_455, 0..3),
        of(any::<u32>()),
        of(text()),
        of(any::<u16>()),
        of(text()),
    );
    let b = (
        of(data()),
        flag(),
        of(any::<u32>()),
        flag(),
        of(text()),
        of(text()),
        of(text()),
        of(1u16..),
        of(any::<u16>()),
        of(1u16..),
    );
    let user = (text(), text()).prop_map(|(key, value)| UserProperty { key, value });
    let c = (
        flag(),
        flag(),
        vec(user, 0..3),
        of(1u32..),
        flag(),
        flag(),
        flag(),
    );
    (a, b, c).prop_map(|(a, b, c)| {
        Properties::from(PropertyFields {
            payload_format_indicator: a.0,
            message_expiry_interval: a.1,
            content_type: a.2,
            response_topic: a.3,
            correlation_data: a.4,
            subscription_identifiers: a.5,
            session_expiry_interval: a.6,
            assigned_client_identifier: a.7,
            server_keep_alive: a.8,
            authentication_method: a.9,
            authentication_data: b.0,
            request_problem_information: b.1,
            will_delay_interval: b.2,
            request_response_information: b.3,
            response_information: b.4,
            server_reference: b.5,
            reason_string: b.6,
            receive_maximum: b.7,
            topic_alias_maximum: b.8,
            topic_alias: b.9,
            maximum_qos: c.0,
            retain_available: c.1,
            user_properties: c.2,
            maximum_packet_size: c.3,
            wildcard_subscription_available: c.4,
            subscription_identifier_available: c.5,
            shared_subscription_available: c.6,
        })
    })
}

/// Clears every property `kind` may not carry.
fn restrict(mut p: Properties, kind: Kind) -> Properties {
    let ok = |id: u8| allowed(kind).contains(&id);
    macro_rules! keep {
        ($($id:literal $field:ident),*) => {$(
            if !ok($id) { p.$field = Default::default(); }
        )*};
    }
    keep!(0x01 payload_format_indicator, 0x02 message_expiry_interval, 0x03 content_type,
        0x08 response_topic, 0x09 correlation_data, 0x0B subscription_identifiers,
        0x11 session_expiry_interval, 0x12 assigned_client_identifier, 0x13 server_keep_alive,
        0x15 authentication_method, 0x16 authentication_data, 0x17 request_problem_information,
        0x18 will_delay_interval, 0x19 request_response_information, 0x1A response_information,
        0x1C server_reference, 0x1F reason_string, 0x21 receive_maximum,
        0x22 topic_alias_maximum, 0x23 topic_alias, 0x24 maximum_qos, 0x25 retain_available,
        0x26 user_properties, 0x27 maximum_packet_size, 0x28 wildcard_subscription_available,
        0x29 subscription_identifier_available, 0x2A shared_subscription_available);
    if kind == Kind::Subscribe {
        p.subscription_identifiers.truncate(1);
    }
    if kind == Kind::Connect && p.authentication_method.is_none() {
        p.authentication_data = None;
    }
    p
}

/// Properties valid for `kind` in 5.0; none before.
pub(super) fn properties(kind: Kind, v5: bool) -> BoxedStrategy<Properties> {
    if !v5 {
        return Just(Properties::default()).boxed();
    }
    prop_oneof![
        1 => Just(Properties::default()),
        3 => all_properties().prop_map(move |p| restrict(p, kind)),
    ]
    .boxed()
}

fn reason(packet_type: u8) -> impl Strategy<Value = ReasonCode> {
    let codes: Vec<u8> = (0..=255u8)
        .filter(|&c| valid_reason(packet_type, c))
        .collect();
    proptest::sample::select(codes).prop_map(ReasonCode)
}

pub(super) fn connect(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v5 = version.is_v5();
    let will = (
        topic_name(),
        data(),
        qos(),
        any::<bool>(),
        properties(Kind::Will, v5),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    let fields = (
        any::<bool>(),
        any::<u16>(),
        properties(Kind::Connect, v5),
        text(),
    );
    (fields, of(will), of(text()), of(data()))
        .prop_map(
            move |((clean_start, keep_alive, properties, client_id), will, username, password)| {
                // Before 5.0 a password needs a user name [MQTT-3.1.2-22].
                let password = if v5 || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                }))
            },
        )
        .boxed()
}

pub(super) fn connack(v5: bool) -> BoxedStrategy<Packet> {
    let code = if v5 {
        reason(2).boxed()
    } else {
        proptest::sample::select(vec![0u8, 0x84, 0x85, 0x86, 0x87, 0x88])
            .prop_map(ReasonCode)
            .boxed()
    };
    (any::<bool>(), code, properties(Kind::ConnAck, v5))
        .prop_map(|(sp, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present: sp && !reason.is_error(),
                reason,
                properties,
            })
        })
        .boxed()
}

pub(super) fn publish(v5: bool) -> BoxedStrategy<Packet> {
    let topic = if v5 {
        prop_oneof![3 => topic_name(), 1 => Just(TopicName::empty())].boxed()
    } else {
        topic_name().boxed()
    };
    let payload = vec(any::<u8>(), 0..64).prop_map(Bytes::from);
    (
        any::<(bool, bool)>(),
        qos(),
        topic,
        pid(),
        properties(Kind::Publish, v5),
        payload,
    )
        .prop_map(|((dup, retain), qos, topic, id, mut properties, payload)| {
            if topic.is_empty() && properties.topic_alias.is_none() {
                properties.topic_alias = Some(1);
            }
            let has_id = qos != QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && has_id,
                flow: Flow::with_id(qos, id),
                retain,
                topic,
                properties,
                payload,
            })
        })
        .boxed()
}

/// PUBACK (4), PUBREC (5), PUBREL (6) or PUBCOMP (7).
pub(super) fn pub_response(packet_type: u8, v5: bool) -> BoxedStrategy<Packet> {
    let code = if v5 {
        reason(packet_type).boxed()
    } else {
        Just(ReasonCode::SUCCESS).boxed()
    };
    (pid(), code, properties(Kind::PubResp, v5))
        .prop_map(move |(packet_id, reason, properties)| {
            let r = PubResponse {
                packet_id,
                reason,
                properties,
            };
            match packet_type {
                4 => Packet::PubAck(r),
                5 => Packet::PubRec(r),
                6 => Packet::PubRel(r),
                _ => Packet::PubComp(r),
            }
        })
        .boxed()
}

fn options(v5: bool) -> impl Strategy<Value = SubscriptionOptions> {
    let rh = prop_oneof![
        Just(RetainHandling::SendAtSubscribe),
        Just(RetainHandling::SendIfNew),
        Just(RetainHandling::DoNotSend)
    ];
    (qos(), any::<(bool, bool)>(), rh).prop_map(move |(qos, (no_local, rap), retain_handling)| {
        if !v5 {
            return SubscriptionOptions::with_qos(qos);
        }
        SubscriptionOptions {
            qos,
            no_local,
            retain_as_published: rap,
            retain_handling,
        }
    })
}

pub(super) fn subscribe(v5: bool) -> BoxedStrategy<Packet> {
    (
        pid(),
        properties(Kind::Subscribe, v5),
        vec((topic_filter(), options(v5)), 1..4),
    )
        .prop_map(|(packet_id, properties, mut filters)| {
            for (f, o) in &mut filters {
                if f.share().is_some() {
                    o.no_local = false; // [MQTT-3.8.3-4]
                }
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

pub(super) fn suback(v5: bool) -> BoxedStrategy<Packet> {
    let code = if v5 {
        reason(9).boxed()
    } else {
        proptest::sample::select(vec![0u8, 1, 2, 0x80])
            .prop_map(ReasonCode)
            .boxed()
    };
    (pid(), properties(Kind::Ack, v5), vec(code, 0..4))
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons,
            })
        })
        .boxed()
}

pub(super) fn unsubscribe(v5: bool) -> BoxedStrategy<Packet> {
    (
        pid(),
        properties(Kind::Unsubscribe, v5),
        vec(topic_filter(), 1..4),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        })
        .boxed()
}

pub(super) fn unsuback(v5: bool) -> BoxedStrategy<Packet> {
    let max = if v5 { 4 } else { 1 };
    (pid(), properties(Kind::Ack, v5), vec(reason(11), 0..max))
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reasons,
            })
        })
        .boxed()
}

pub(super) fn disconnect(v5: bool) -> BoxedStrategy<Packet> {
    if !v5 {
        return Just(Packet::Disconnect(Disconnect::new(
            ReasonCode::NORMAL_DISCONNECTION,
        )))
        .boxed();
    }
    (reason(14), properties(Kind::Disconnect, v5))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
        .boxed()
}

pub(super) fn auth() -> BoxedStrategy<Packet> {
    (reason(15), properties(Kind::Auth, true))
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
        .boxed()
}

pub(super) fn ping() -> BoxedStrategy<Packet> {
    prop_oneof![Just(Packet::PingReq), Just(Packet::PingResp)].boxed()
}
