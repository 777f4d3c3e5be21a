//! MQTT 5.0 section 4.7, Topic Names and Topic Filters end to end: wildcard placement,
//! empty and maximum-length topics, and matching without normalisation.

use std::time::Duration;

use starling::protocol::{Packet, Properties, QoS, ReasonCode};

use crate::common::{bounded, mqtt_str, publish_packet, raw_packet, BrokerProcess, RawClient};

const QUIET: Duration = Duration::from_millis(300);

/// Publishes at QoS 1 and returns the PUBACK reason (0x10: no subscriber matched).
async fn puback_reason(c: &mut RawClient, topic: &str) -> ReasonCode {
    let id = c.next_packet_id();
    let p = publish_packet(topic, QoS::AtLeastOnce, topic.as_bytes(), Some(id));
    c.send(Packet::Publish(p)).await;
    match c.expect_packet("PUBACK").await {
        Packet::PubAck(r) if r.packet_id == id => r.reason,
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// A 5.0 SUBSCRIBE (id 1, no properties, QoS 0) for raw filter bytes.
fn raw_subscribe(topic_filter: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, 0x00];
    body.extend(mqtt_str(topic_filter));
    body.push(0x00);
    raw_packet(0x82, &body)
}

/// [MQTT-4.7.1-1]: '#' only on its own or after '/', and last; [MQTT-4.7.1-2]: '+'
/// occupies a whole level; [MQTT-4.7.3-1]: filters are not empty. A SUBSCRIBE with such
/// a filter is malformed: DISCONNECT 0x81 and close. Well-placed wildcards are granted.
#[tokio::test]
async fn misplaced_wildcards_and_empty_filters_are_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let bad: [&[u8]; 8] = [
            b"a/#/b", b"a#", b"a/b#", b"#/", b"a+/b", b"a/+b", b"++", b"",
        ];
        for f in bad {
            let mut c =
                RawClient::connected_v5(broker.addr(), "t-bad", Properties::default()).await;
            c.send_raw(&raw_subscribe(f)).await;
            let d = c.expect_closed().await;
            assert_eq!(
                d.map(|d| d.reason),
                Some(ReasonCode::MALFORMED_PACKET),
                "{f:?}"
            );
        }
        let mut c = RawClient::connected_v5(broker.addr(), "t-good", Properties::default()).await;
        let good = [
            ("#", QoS::AtMostOnce),
            ("+", QoS::AtMostOnce),
            ("a/+/#", QoS::AtMostOnce),
            ("+/+", QoS::AtMostOnce),
            ("/#", QoS::AtMostOnce),
        ];
        let ack = c.subscribe(&good).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_0; good.len()]);
    })
    .await;
}

/// [MQTT-4.7.0-1], [MQTT-4.7.3-1]: a Topic Name with a wildcard, or an empty one
/// without a Topic Alias, is refused (DISCONNECT, close): 0x81 for the wildcard
/// (malformed name), 0x82 for the empty name (section 3.3.2.1 calls it a Protocol
/// Error).
#[tokio::test]
async fn topic_names_without_wildcards_and_not_empty() {
    let broker = BrokerProcess::start();
    bounded(async {
        let cases: [(&[u8], ReasonCode); 4] = [
            (b"a/+", ReasonCode::MALFORMED_PACKET),
            (b"a/#", ReasonCode::MALFORMED_PACKET),
            (b"+", ReasonCode::MALFORMED_PACKET),
            (b"", ReasonCode::PROTOCOL_ERROR),
        ];
        for (name, reason) in cases {
            let mut body = mqtt_str(name);
            body.push(0x00); // no properties
            body.extend_from_slice(b"x");
            let mut c =
                RawClient::connected_v5(broker.addr(), "t-name", Properties::default()).await;
            c.send_raw(&raw_packet(0x30, &body)).await;
            let d = c.expect_closed().await;
            assert_eq!(d.map(|d| d.reason), Some(reason), "{name:?}");
        }
    })
    .await;
}

/// [MQTT-4.7.3-3]: names and filters encode to at most 65,535 bytes, which is what the
/// length prefix holds: a filter and a Topic Name of exactly 65,535 bytes work end to
/// end, and the delivery carries the whole name.
#[tokio::test]
async fn maximum_length_topic_round_trips() {
    let broker = BrokerProcess::start();
    bounded(async {
        let long: String = "t/".to_string() + &"x".repeat(65_535 - 2);
        assert_eq!(long.len(), 65_535);
        let mut c = RawClient::connected_v5(broker.addr(), "t-long", Properties::default()).await;
        let ack = c.subscribe(&[(long.as_str(), QoS::AtLeastOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
        let mut p =
            RawClient::connected_v5(broker.addr(), "t-long-pub", Properties::default()).await;
        assert_eq!(puback_reason(&mut p, &long).await, ReasonCode::SUCCESS);
        let got = c.recv_publish_acked().await;
        assert_eq!(got.topic.as_str(), long);
    })
    .await;
}

/// [MQTT-4.7.3-4]: matching compares the exact characters, with no normalisation or
/// substitution: an NFC filter does not match the NFD spelling of the same name, nor do
/// case, doubled, leading or trailing separators or spaces match; each such publish finds
/// no subscriber (PUBACK 0x10). The exact names are delivered byte for byte.
#[tokio::test]
async fn matching_does_not_normalise_topics() {
    let broker = BrokerProcess::start();
    bounded(async {
        let nfc = "caf\u{e9}/x";
        let exact = [nfc, "Case/t", "sl/a"];
        let mut c = RawClient::connected_v5(broker.addr(), "t-norm", Properties::default()).await;
        let filters: Vec<(&str, QoS)> = exact.iter().map(|f| (*f, QoS::AtLeastOnce)).collect();
        c.subscribe(&filters).await;
        let mut p =
            RawClient::connected_v5(broker.addr(), "t-norm-pub", Properties::default()).await;
        let near = [
            "cafe\u{301}/x",
            "case/t",
            "CASE/t",
            "sl/a/",
            "sl//a",
            "/sl/a",
            "sl/a ",
            " sl/a",
            "sl\u{ff0f}a",
        ];
        for t in near {
            assert_eq!(
                puback_reason(&mut p, t).await,
                ReasonCode::NO_MATCHING_SUBSCRIBERS,
                "{t:?}"
            );
        }
        c.expect_nothing(QUIET).await;
        for t in exact {
            assert_eq!(puback_reason(&mut p, t).await, ReasonCode::SUCCESS, "{t:?}");
            let got = c.recv_publish_acked().await;
            assert_eq!(got.topic.as_str().as_bytes(), t.as_bytes());
        }
    })
    .await;
}
