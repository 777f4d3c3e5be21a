//! MQTT 5.0 section 3.3.2, PUBLISH variable header and properties: topic aliases in
//! both directions, and the UTF-8 rules of the Topic Name, Response Topic and Content
//! Type.

use std::time::Duration;

use starling::protocol::{Packet, PacketId, Properties, PropertyFields, QoS, ReasonCode};
use starling::topic::TopicName;

use crate::common::{
    bounded, mqtt_str, publish_packet, raw_packet, varint, BrokerProcess, RawClient,
};
use crate::support::assert_refused;

const QUIET: Duration = Duration::from_millis(300);

fn expiry() -> Properties {
    Properties::from(PropertyFields {
        session_expiry_interval: Some(300),
        ..PropertyFields::default()
    })
}

/// A QoS 1 PUBLISH using topic alias `alias`, with the topic name or (empty) without.
fn aliased(topic: &str, alias: u16, id: u16) -> Packet {
    let mut p = publish_packet("x", QoS::AtLeastOnce, b"x", PacketId::new(id));
    p.topic = TopicName::new_allow_empty(topic).expect("topic");
    p.properties.topic_alias = Some(alias);
    Packet::Publish(p)
}

/// Sends a QoS 1 PUBLISH and returns its PUBACK reason.
async fn puback(c: &mut RawClient, packet: Packet) -> ReasonCode {
    c.send(packet).await;
    match c.expect_packet("PUBACK").await {
        Packet::PubAck(r) => r.reason,
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// [MQTT-3.3.2-7], server as receiver: a Topic Alias the client set on one connection
/// means nothing on the next, even in the same session: an alias-only PUBLISH there is a
/// Protocol Error (DISCONNECT 0x82, close).
#[tokio::test]
async fn inbound_topic_alias_does_not_outlive_the_connection() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "al-sub", Properties::default()).await;
        sub.subscribe(&[("al/t", QoS::AtLeastOnce)]).await;
        let mut c = RawClient::open(broker.addr()).await;
        c.connect_v5("al-in", true, 60, expiry()).await;
        assert_eq!(
            puback(&mut c, aliased("al/t", 1, 1)).await,
            ReasonCode::SUCCESS
        );
        assert_eq!(puback(&mut c, aliased("", 1, 2)).await, ReasonCode::SUCCESS);
        for _ in 0..2 {
            assert_eq!(sub.recv_publish_acked().await.topic.as_str(), "al/t");
        }
        drop(c);
        let mut c = RawClient::open(broker.addr()).await;
        assert!(
            c.connect_v5("al-in", false, 60, expiry())
                .await
                .session_present
        );
        c.send(aliased("", 1, 3)).await;
        let d = c.expect_closed().await;
        assert_eq!(d.map(|d| d.reason), Some(ReasonCode::PROTOCOL_ERROR));
        sub.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-3.3.2-7], server as sender: the aliases the server set for a subscriber end
/// with its connection: after an alias-only delivery on the first connection, the first
/// delivery on the next one carries the Topic Name again.
#[tokio::test]
async fn outbound_topic_alias_does_not_outlive_the_connection() {
    let broker = BrokerProcess::start();
    bounded(async {
        let props = Properties::from(PropertyFields {
            topic_alias_maximum: Some(5),
            ..(*expiry()).clone()
        });
        let mut c = RawClient::open(broker.addr()).await;
        c.connect_v5("al-out", true, 60, props.clone()).await;
        c.subscribe(&[("oa/t", QoS::AtLeastOnce)]).await;
        let mut p =
            RawClient::connected_v5(broker.addr(), "al-out-pub", Properties::default()).await;
        p.publish("oa/t", QoS::AtLeastOnce, false, b"1").await;
        p.publish("oa/t", QoS::AtLeastOnce, false, b"2").await;
        let first = c.recv_publish_acked().await;
        let second = c.recv_publish_acked().await;
        assert_eq!(first.topic.as_str(), "oa/t");
        let alias = first
            .properties
            .topic_alias
            .expect("the server uses an alias");
        assert_eq!(
            (second.topic.as_str(), second.properties.topic_alias),
            ("", Some(alias))
        );
        drop(c);
        p.publish("oa/t", QoS::AtLeastOnce, false, b"3").await;
        let mut c = RawClient::open(broker.addr()).await;
        assert!(
            c.connect_v5("al-out", false, 60, props)
                .await
                .session_present
        );
        let third = c.recv_publish_acked().await;
        assert_eq!(
            (third.topic.as_str(), third.payload.as_ref()),
            ("oa/t", &b"3"[..])
        );
    })
    .await;
}

/// [MQTT-3.3.2-12]: the server accepts every alias from 1 to the Topic Alias Maximum it
/// sent in CONNACK: aliases 1 and the maximum are set, used alone, and re-mapped.
#[tokio::test]
async fn aliases_from_1_to_the_maximum_are_accepted() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "am-sub", Properties::default()).await;
        sub.subscribe(&[("am/#", QoS::AtLeastOnce)]).await;
        let mut c = RawClient::open(broker.addr()).await;
        let connack = c.connect_v5("am", true, 60, Properties::default()).await;
        let max = connack
            .properties
            .topic_alias_maximum
            .expect("Topic Alias Maximum");
        assert!(max >= 2, "maximum {max}");
        let steps = [
            ("am/one", 1, "am/one"),
            ("am/max", max, "am/max"),
            ("", 1, "am/one"),
            ("", max, "am/max"),
            ("am/again", max, "am/again"),
            ("", max, "am/again"),
        ];
        for (i, (topic, alias, _)) in steps.iter().enumerate() {
            let id = i as u16 + 1;
            assert_eq!(
                puback(&mut c, aliased(topic, *alias, id)).await,
                ReasonCode::SUCCESS
            );
        }
        for (_, _, expected) in steps {
            assert_eq!(sub.recv_publish_acked().await.topic.as_str(), expected);
        }
    })
    .await;
}

/// A QoS 1 PUBLISH (id 1) with raw topic bytes and a raw property block.
fn raw_publish(topic: &[u8], props: &[u8]) -> Vec<u8> {
    let mut body = mqtt_str(topic);
    body.extend_from_slice(&[0x00, 0x01]);
    body.extend(varint(props.len()));
    body.extend_from_slice(props);
    body.extend_from_slice(b"payload");
    raw_packet(0x32, &body)
}

fn string_property(id: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(mqtt_str(value));
    out
}

/// [MQTT-3.3.2-1] Topic Name, [MQTT-3.3.2-13] Response Topic (0x08) and
/// [MQTT-3.3.2-19] Content Type (0x03) are UTF-8 Encoded Strings: ill-formed UTF-8, a
/// surrogate or U+0000 in any of them make the PUBLISH malformed (DISCONNECT 0x81,
/// close). The same packets with well-formed strings get PUBACK.
#[tokio::test]
async fn utf8_string_fields_must_be_well_formed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let bad: [&[u8]; 3] = [&[b'a', 0xC3, 0x28], &[0xED, 0xA0, 0x80], &[b'a', 0, b'b']];
        for b in bad {
            let cases = [
                raw_publish(b, &[]),
                raw_publish(b"pp/t", &string_property(0x08, b)),
                raw_publish(b"pp/t", &string_property(0x03, b)),
            ];
            for bytes in cases {
                assert_refused(&broker, "pp-bad", &bytes, ReasonCode::MALFORMED_PACKET).await;
            }
        }
        let mut c = RawClient::connected_v5(broker.addr(), "pp-ok", Properties::default()).await;
        let mut props = string_property(0x08, "pp/réponse".as_bytes());
        props.extend(string_property(0x03, "text/plain; ü".as_bytes()));
        c.send_raw(&raw_publish("pp/tópico".as_bytes(), &props))
            .await;
        match c.expect_packet("PUBACK").await {
            Packet::PubAck(r) => assert_eq!(r.packet_id.get(), 1),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    })
    .await;
}

/// [MQTT-3.3.2-14]: a Response Topic must not contain wildcards; one that does is a
/// Protocol Error (DISCONNECT 0x82, close).
#[tokio::test]
async fn response_topic_with_wildcards_is_a_protocol_error() {
    let broker = BrokerProcess::start();
    bounded(async {
        for topic in [&b"re/+"[..], b"re/#", b"#", b"+/x"] {
            let bytes = raw_publish(b"pp/t", &string_property(0x08, topic));
            assert_refused(&broker, "pp-bad", &bytes, ReasonCode::PROTOCOL_ERROR).await;
        }
    })
    .await;
}
