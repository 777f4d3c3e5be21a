//! MQTT 5.0 features over raw sockets: optional capabilities (advertised in CONNACK and
//! enforced), outbound topic aliases, payload format validation, response information,
//! server redirection, reason strings and `$SYS` topics.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    bounded, connect_packet, filter, publish_packet, subscription_id, topic, BrokerProcess, Event,
    RawClient,
};
use starling::protocol::{
    LastWill, Packet, Properties, PropertyFields, ProtocolVersion, Publish, QoS, ReasonCode,
    Subscribe, SubscriptionOptions,
};

const LIMITED: &str = "[capabilities]\nmaximum_qos = 1\nretain_available = false\n\
                       wildcard_subscriptions = false\nsubscription_identifiers = false\n\
                       shared_subscriptions = false\n";

fn alias_max(n: u16) -> Properties {
    Properties::from(PropertyFields {
        topic_alias_maximum: Some(n),
        ..PropertyFields::default()
    })
}

fn utf8_marked(t: &str, qos: QoS, id: Option<u16>, payload: &'static [u8]) -> Packet {
    let mut p = publish_packet(
        t,
        qos,
        payload,
        id.and_then(starling::protocol::PacketId::new),
    );
    p.properties.payload_format_indicator = Some(1);
    Packet::Publish(p)
}

// [MQTT-3.2.2-9] a server without QoS 2 sends Maximum QoS; Retain Available, Wildcard,
// Subscription Identifier and Shared Subscription Available are sent only when 0.
#[tokio::test]
async fn connack_advertises_only_unavailable_features() {
    let limited = BrokerProcess::start_with_config(Some(LIMITED));
    let full = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(limited.addr()).await;
        let p = c
            .connect_v5("caps1", true, 60, Properties::default())
            .await
            .properties;
        assert_eq!(p.maximum_qos, Some(1));
        assert_eq!(p.retain_available, Some(0));
        assert_eq!(p.wildcard_subscription_available, Some(0));
        assert_eq!(p.subscription_identifier_available, Some(0));
        assert_eq!(p.shared_subscription_available, Some(0));
        let mut c = RawClient::open(full.addr()).await;
        let p = c
            .connect_v5("caps2", true, 60, Properties::default())
            .await
            .properties;
        assert_eq!(p.maximum_qos, None);
        assert_eq!(p.retain_available, None);
        assert_eq!(p.wildcard_subscription_available, None);
        assert_eq!(p.subscription_identifier_available, None);
        assert_eq!(p.shared_subscription_available, None);
    })
    .await;
}

// [MQTT-3.2.2-11]: a PUBLISH above the Maximum QoS is answered with DISCONNECT 0x9B.
#[tokio::test]
async fn publish_above_maximum_qos_gets_disconnect_0x9b() {
    let broker = BrokerProcess::start_with_config(Some(LIMITED));
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "q2pub", Properties::default()).await;
        let id = c.next_packet_id();
        c.send(Packet::Publish(publish_packet(
            "t",
            QoS::ExactlyOnce,
            b"x",
            Some(id),
        )))
        .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::QOS_NOT_SUPPORTED);
        assert!(
            d.properties.reason_string.is_some(),
            "reason string names it"
        );
    })
    .await;
}

// [MQTT-3.2.2-14]: a retained PUBLISH when Retain Available is 0: DISCONNECT 0x9A.
#[tokio::test]
async fn retained_publish_when_unavailable_gets_disconnect_0x9a() {
    let broker = BrokerProcess::start_with_config(Some(LIMITED));
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "rpub", Properties::default()).await;
        let mut p = publish_packet("t", QoS::AtMostOnce, b"x", None);
        p.retain = true;
        c.send(Packet::Publish(p)).await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::RETAIN_NOT_SUPPORTED);
    })
    .await;
}

// [MQTT-3.2.2-10]: QoS 2 requests are still accepted (granted the maximum); wildcard and
// shared filters are refused per filter when unavailable.
#[tokio::test]
async fn subscribe_is_capped_and_unavailable_filters_refused() {
    let broker = BrokerProcess::start_with_config(Some(LIMITED));
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v5(addr, "capsub", Properties::default()).await;
        let ack = sub
            .subscribe(&[
                ("a/b", QoS::ExactlyOnce),
                ("a/+", QoS::AtMostOnce),
                ("$share/g/a/b", QoS::AtMostOnce),
            ])
            .await;
        assert_eq!(
            ack.reasons,
            vec![
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ]
        );
        let mut publ = RawClient::connected_v5(addr, "cappub", Properties::default()).await;
        publ.publish("a/b", QoS::AtLeastOnce, false, b"one").await;
        let p = sub.recv_publish_acked().await;
        assert_eq!((p.topic.as_str(), p.qos()), ("a/b", QoS::AtLeastOnce));
        sub.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

// Section 3.2.2.3.12: a Subscription Identifier when they are not available is a
// Protocol Error, DISCONNECT 0xA1.
#[tokio::test]
async fn subscription_identifier_when_unavailable_gets_disconnect_0xa1() {
    let broker = BrokerProcess::start_with_config(Some(LIMITED));
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "subid", Properties::default()).await;
        let packet_id = c.next_packet_id();
        c.send(Packet::Subscribe(Subscribe {
            packet_id,
            properties: subscription_id(7),
            filters: vec![(filter("a"), SubscriptionOptions::with_qos(QoS::AtMostOnce))],
        }))
        .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
    })
    .await;
}

// 3.1.1 clients: the SUBACK grants at most the maximum (and 0x80 for refused filters);
// a PUBLISH above the maximum closes the connection.
#[tokio::test]
async fn v311_grants_down_and_closes_on_publish_above_maximum() {
    let broker = BrokerProcess::start_with_config(Some(LIMITED));
    bounded(async {
        let mut c = RawClient::connected_v311(broker.addr(), "old", true).await;
        let ack = c
            .subscribe(&[("x", QoS::ExactlyOnce), ("x/#", QoS::AtMostOnce)])
            .await;
        assert_eq!(ack.reasons[0], ReasonCode::GRANTED_QOS_1);
        assert!(ack.reasons[1].is_error());
        let id = c.next_packet_id();
        c.send(Packet::Publish(publish_packet(
            "x",
            QoS::ExactlyOnce,
            b"x",
            Some(id),
        )))
        .await;
        assert_eq!(c.expect_closed().await, None);
    })
    .await;
}

// [MQTT-3.2.2-12] a will above the Maximum QoS: CONNACK 0x9B; [MQTT-3.2.2-13] a retained
// will when Retain Available is 0: CONNACK 0x9A.
#[tokio::test]
async fn will_beyond_capabilities_is_refused() {
    let broker = BrokerProcess::start_with_config(Some(LIMITED));
    bounded(async {
        for (qos, retain, want) in [
            (QoS::ExactlyOnce, false, ReasonCode::QOS_NOT_SUPPORTED),
            (QoS::AtMostOnce, true, ReasonCode::RETAIN_NOT_SUPPORTED),
        ] {
            let mut c = RawClient::open(broker.addr()).await;
            let mut connect = connect_packet(ProtocolVersion::V5, "willcap", true, 60);
            connect.will = Some(LastWill {
                topic: topic("w"),
                payload: Bytes::from_static(b"bye"),
                qos,
                retain,
                properties: Properties::default(),
            });
            c.set_version(ProtocolVersion::V5);
            c.send(Packet::Connect(Box::new(connect))).await;
            let ack = c.expect_connect_refused().await.expect("CONNACK");
            assert_eq!(ack.reason, want);
        }
    })
    .await;
}

// [MQTT-3.3.2-11] never an alias above the client's Topic Alias Maximum; [MQTT-3.1.2-27]
// none at all to a client that set none. First use: name and alias; then empty name.
#[tokio::test]
async fn outbound_topic_aliases_replace_repeated_topics() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v5(addr, "alias-sub", alias_max(2)).await;
        sub.subscribe(&[("al/#", QoS::AtMostOnce)]).await;
        let mut plain = RawClient::connected_v5(addr, "alias-plain", Properties::default()).await;
        plain.subscribe(&[("al/#", QoS::AtMostOnce)]).await;
        let mut publ = RawClient::connected_v5(addr, "alias-pub", Properties::default()).await;
        let sent = ["al/1", "al/1", "al/2", "al/3", "al/1", "al/2"];
        for t in sent {
            publ.publish(t, QoS::AtLeastOnce, false, t.as_bytes()).await;
        }
        let mut got: Vec<(String, Option<u16>)> = Vec::new();
        for _ in sent {
            let p: Publish = sub.expect_publish().await;
            got.push((p.topic.as_str().to_owned(), p.properties.topic_alias));
        }
        let want = [
            ("al/1", Some(1)),
            ("", Some(1)),
            ("al/2", Some(2)),
            ("al/3", None),
            ("", Some(1)),
            ("", Some(2)),
        ];
        let want: Vec<(String, Option<u16>)> =
            want.iter().map(|(t, a)| (t.to_string(), *a)).collect();
        assert_eq!(got, want);
        for t in sent {
            let p = plain.expect_publish().await;
            assert_eq!((p.topic.as_str(), p.properties.topic_alias), (t, None));
        }
    })
    .await;
}

// Section 3.3.2.3.2: a payload marked UTF-8 that is not: PUBACK/PUBREC 0x99, not routed;
// at QoS 0, DISCONNECT 0x99.
#[tokio::test]
async fn invalid_utf8_payload_is_refused_with_0x99() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v5(addr, "pfi-sub", Properties::default()).await;
        sub.subscribe(&[("pfi/#", QoS::AtLeastOnce)]).await;
        let mut c = RawClient::connected_v5(addr, "pfi-pub", Properties::default()).await;
        c.send(utf8_marked("pfi/1", QoS::AtLeastOnce, Some(1), b"\xff\xfe"))
            .await;
        match c.expect_packet("PUBACK").await {
            Packet::PubAck(r) => assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID),
            other => panic!("expected PUBACK, got {other:?}"),
        }
        c.send(utf8_marked("pfi/2", QoS::ExactlyOnce, Some(2), b"\xc3"))
            .await;
        match c.expect_packet("PUBREC").await {
            Packet::PubRec(r) => assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID),
            other => panic!("expected PUBREC, got {other:?}"),
        }
        // Valid UTF-8 goes through; the refused ones were never routed.
        c.send(utf8_marked(
            "pfi/3",
            QoS::AtLeastOnce,
            Some(3),
            "ok ✓".as_bytes(),
        ))
        .await;
        match c.expect_packet("PUBACK").await {
            Packet::PubAck(r) => assert_eq!(r.reason, ReasonCode::SUCCESS),
            other => panic!("expected PUBACK, got {other:?}"),
        }
        let p = sub.recv_publish_acked().await;
        assert_eq!(p.topic.as_str(), "pfi/3");
        assert_eq!(p.properties.payload_format_indicator, Some(1));
        c.send(utf8_marked("pfi/4", QoS::AtMostOnce, None, b"\xff"))
            .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
        sub.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

#[tokio::test]
async fn utf8_validation_can_be_switched_off() {
    let broker =
        BrokerProcess::start_with_config(Some("[limits]\nvalidate_utf8_payloads = false\n"));
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "pfi-off", Properties::default()).await;
        c.subscribe(&[("pfi", QoS::AtMostOnce)]).await;
        c.send(utf8_marked("pfi", QoS::AtMostOnce, None, b"\xff"))
            .await;
        assert_eq!(c.expect_publish().await.payload.as_ref(), b"\xff");
    })
    .await;
}

// [MQTT-3.1.2-28]: Response Information only to a client that asked for it.
#[tokio::test]
async fn response_information_when_requested() {
    let broker =
        BrokerProcess::start_with_config(Some("[server]\nresponse_information = \"replies/\"\n"));
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let asked = Properties::from(PropertyFields {
            request_response_information: Some(1),
            ..PropertyFields::default()
        });
        let ack = c.connect_v5("ri1", true, 60, asked).await;
        assert_eq!(
            ack.properties.response_information.as_deref(),
            Some("replies/")
        );
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("ri2", true, 60, Properties::default()).await;
        assert_eq!(ack.properties.response_information, None);
    })
    .await;
}

// Section 4.11: a redirecting server refuses with 0x9C/0x9D and a Server Reference;
// 3.1.1 clients get return code 3.
#[tokio::test]
async fn server_redirection_refuses_with_a_reference() {
    let other = BrokerProcess::start_with_config(Some("[server]\nserver_reference = \"b:1883\"\n"));
    let moved = BrokerProcess::start_with_config(Some(
        "[server]\nserver_reference = \"c:1883\"\nserver_moved = true\n",
    ));
    bounded(async {
        let mut c = RawClient::open(other.addr()).await;
        let ack = c.connect_v5("redir", true, 60, Properties::default()).await;
        assert_eq!(ack.reason, ReasonCode::USE_ANOTHER_SERVER);
        assert_eq!(ack.properties.server_reference.as_deref(), Some("b:1883"));
        assert!(matches!(
            c.next_event(Duration::from_secs(5)).await,
            Event::Closed
        ));
        let mut c = RawClient::open(moved.addr()).await;
        let ack = c.connect_v5("redir", true, 60, Properties::default()).await;
        assert_eq!(ack.reason, ReasonCode::SERVER_MOVED);
        assert_eq!(ack.properties.server_reference.as_deref(), Some("c:1883"));
        let mut c = RawClient::open(moved.addr()).await;
        let ack = c.connect_v311("redir", true, 60).await;
        assert_eq!(ack.reason, ReasonCode::SERVER_UNAVAILABLE);
    })
    .await;
}

// A server DISCONNECT for an error names the problem in a Reason String, unless the
// client set Request Problem Information = 0 (Starling then sends none; [MQTT-3.1.2-29]
// allows it only on PUBLISH, CONNACK and DISCONNECT).
#[tokio::test]
async fn disconnect_reason_string_unless_problem_information_off() {
    let broker = BrokerProcess::start();
    bounded(async {
        for (request, expect_text) in [(None, true), (Some(0), false)] {
            let props = Properties::from(PropertyFields {
                request_problem_information: request,
                ..PropertyFields::default()
            });
            let mut c = RawClient::connected_v5(broker.addr(), "rs", props).await;
            let mut p = publish_packet("t", QoS::AtMostOnce, b"x", None);
            p.properties.topic_alias = Some(1000); // above the broker's 64 [MQTT-3.3.2-9]
            c.send(Packet::Publish(p)).await;
            let d = c.expect_closed().await.expect("DISCONNECT");
            assert_eq!(d.reason, ReasonCode::TOPIC_ALIAS_INVALID);
            assert_eq!(
                d.properties.reason_string.is_some(),
                expect_text,
                "{request:?}"
            );
        }
        // [MQTT-3.1.2-29]: with Request Problem Information = 0, no Reason String on a
        // PUBACK.
        let props = Properties::from(PropertyFields {
            request_problem_information: Some(0),
            ..PropertyFields::default()
        });
        let mut c = RawClient::connected_v5(broker.addr(), "rs2", props).await;
        c.send(utf8_marked("t", QoS::AtLeastOnce, Some(1), b"\xff"))
            .await;
        match c.expect_packet("PUBACK").await {
            Packet::PubAck(r) => {
                assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
                assert_eq!(r.properties.reason_string, None);
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
        // [MQTT-3.4.2-2]: no Reason String that would exceed the client's Maximum
        // Packet Size.
        let props = Properties::from(PropertyFields {
            maximum_packet_size: Some(16),
            ..PropertyFields::default()
        });
        let mut c = RawClient::connected_v5(broker.addr(), "rs3", props).await;
        c.send(utf8_marked("t", QoS::AtLeastOnce, Some(1), b"\xff"))
            .await;
        match c.expect_packet("PUBACK").await {
            Packet::PubAck(r) => {
                assert_eq!(r.reason, ReasonCode::PAYLOAD_FORMAT_INVALID);
                assert_eq!(r.properties.reason_string, None);
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    })
    .await;
}

// $SYS topics arrive on `$SYS/broker/#` (retained, refreshed every second), never on `#`
// [MQTT-4.7.2-1].
#[tokio::test]
async fn sys_topics_are_published_and_hidden_from_hash() {
    let broker = BrokerProcess::start_with_config(Some("[server]\nsys_interval_secs = 1\n"));
    bounded(async {
        let addr = broker.addr();
        let mut all = RawClient::connected_v5(addr, "sys-all", Properties::default()).await;
        all.subscribe(&[("#", QoS::AtMostOnce)]).await;
        let mut sys = RawClient::connected_v5(addr, "sys-sub", Properties::default()).await;
        sys.subscribe(&[("$SYS/broker/#", QoS::AtMostOnce)]).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut version, mut uptimes) = (None, Vec::new());
        while (version.is_none() || uptimes.len() < 2) && Instant::now() < deadline {
            let Event::Packet(Packet::Publish(p)) = sys.next_event(Duration::from_secs(3)).await
            else {
                continue;
            };
            let payload = String::from_utf8_lossy(&p.payload).into_owned();
            match p.topic.as_str() {
                "$SYS/broker/version" => version = Some(payload),
                "$SYS/broker/uptime" => uptimes.push(payload),
                _ => {}
            }
        }
        let version = version.expect("$SYS/broker/version");
        assert!(version.starts_with("starling "), "{version}");
        assert!(uptimes.len() >= 2, "uptime refreshed: {uptimes:?}");
        assert!(
            uptimes.iter().all(|u| u.ends_with(" seconds")),
            "{uptimes:?}"
        );
        all.expect_nothing(Duration::from_millis(500)).await;
    })
    .await;
}
