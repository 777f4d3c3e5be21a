//! MQTT 5.0 section 3.3, PUBLISH: the DUP and RETAIN flags, overlapping subscriptions'
//! copies, and what a full receive window must not hold back. Properties (topic
//! aliases, UTF-8 string properties) are in `v5_3_3_publish_props`.

use std::time::Duration;

use starling::protocol::{
    Packet, Properties, PropertyFields, PubResponse, QoS, ReasonCode, SubscriptionOptions,
    Unsubscribe,
};

use crate::common::{
    bounded, filter, mqtt_str, raw_packet, subscription_id, BrokerProcess, Event, RawClient,
};

const QUIET: Duration = Duration::from_millis(300);

/// [MQTT-3.3.1-1]: a re-delivered PUBLISH has DUP 1: a QoS 1 message first sent with
/// DUP 0 and never acknowledged comes again with DUP 1 and the same id when the client
/// returns to its session.
#[tokio::test]
async fn redelivery_sets_dup() {
    let broker = BrokerProcess::start();
    bounded(async {
        let expiry = Properties::from(PropertyFields {
            session_expiry_interval: Some(300),
            ..PropertyFields::default()
        });
        let mut c = RawClient::open(broker.addr()).await;
        c.connect_v5("p-dup", true, 60, expiry.clone()).await;
        c.subscribe(&[("dup/t", QoS::AtLeastOnce)]).await;
        let mut p =
            RawClient::connected_v5(broker.addr(), "p-dup-pub", Properties::default()).await;
        p.publish("dup/t", QoS::AtLeastOnce, false, b"x").await;
        let first = c.expect_publish().await;
        assert!(!first.dup);
        drop(c);
        let mut c = RawClient::open(broker.addr()).await;
        assert!(
            c.connect_v5("p-dup", false, 60, expiry)
                .await
                .session_present
        );
        let again = c.expect_publish().await;
        assert_eq!((again.packet_id(), again.dup), (first.packet_id(), true));
        c.ack(&again).await;
    })
    .await;
}

/// [MQTT-3.3.1-2]: DUP must be 0 on QoS 0: a client PUBLISH with QoS 0 and DUP 1 is
/// malformed: DISCONNECT 0x81 and close. (The server's own QoS 0 deliveries have DUP 0:
/// v5_4_3_qos::first_deliveries_have_dup_0_at_every_qos.)
#[tokio::test]
async fn qos0_publish_with_dup_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut body = mqtt_str(b"dup/q0");
        body.push(0); // no properties
        body.extend_from_slice(b"x");
        let mut c = RawClient::connected_v5(broker.addr(), "p-dup0", Properties::default()).await;
        c.send_raw(&raw_packet(0x38, &body)).await;
        let d = c.expect_closed().await;
        assert_eq!(d.map(|d| d.reason), Some(ReasonCode::MALFORMED_PACKET));
    })
    .await;
}

/// [MQTT-3.3.1-8]: a PUBLISH with RETAIN 0 is not stored as retained and neither
/// replaces nor removes the retained message: after retained "kept", a non-retained
/// "live" and a non-retained empty payload on the same topic, and a non-retained message
/// on another topic, a new subscriber gets only "kept" (RETAIN 1).
#[tokio::test]
async fn retain_0_neither_stores_nor_replaces_the_retained_message() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut p = RawClient::connected_v5(broker.addr(), "p-ret", Properties::default()).await;
        p.publish("ret/t", QoS::AtLeastOnce, true, b"kept").await;
        p.publish("ret/t", QoS::AtLeastOnce, false, b"live").await;
        p.publish("ret/t", QoS::AtMostOnce, false, b"").await;
        p.publish("ret/other", QoS::AtLeastOnce, false, b"not kept")
            .await;
        p.publish("ret/t", QoS::ExactlyOnce, false, b"live2").await;
        let mut c =
            RawClient::connected_v5(broker.addr(), "p-ret-sub", Properties::default()).await;
        c.subscribe(&[("ret/#", QoS::AtLeastOnce)]).await;
        let got = c.recv_publish_acked().await;
        assert_eq!(
            (got.topic.as_str(), got.payload.as_ref()),
            ("ret/t", &b"kept"[..])
        );
        assert!(got.retain);
        c.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-3.3.1-12], [MQTT-3.3.1-13]: on a live delivery RETAIN is 0 under Retain As
/// Published 0 and equals the publisher's flag under Retain As Published 1.
#[tokio::test]
async fn retain_as_published_decides_the_forwarded_retain_flag() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "p-rap", Properties::default()).await;
        for (f, rap) in [("rap/0", false), ("rap/1", true)] {
            let mut opts = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
            opts.retain_as_published = rap;
            c.subscribe_with(Properties::default(), vec![(filter(f), opts)])
                .await;
        }
        let mut p =
            RawClient::connected_v5(broker.addr(), "p-rap-pub", Properties::default()).await;
        let mut seen = Vec::new();
        for (t, retain) in [("rap/0", true), ("rap/1", true), ("rap/1", false)] {
            p.publish(t, QoS::AtLeastOnce, retain, b"x").await;
            let got = c.recv_publish_acked().await;
            seen.push((got.topic.as_str().to_string(), got.retain));
        }
        let want = [("rap/0", false), ("rap/1", true), ("rap/1", false)];
        let want: Vec<_> = want.iter().map(|(t, r)| (t.to_string(), *r)).collect();
        assert_eq!(seen, want);
    })
    .await;
}

/// [MQTT-3.3.4-5] (if the server sends several copies, each carries its own
/// subscription's identifier): Starling never sends several; a message matching a
/// client's shared and non-shared subscriptions arrives as one copy carrying both
/// identifiers ([MQTT-3.3.4-4]; section 4.8.2 allows either).
#[tokio::test]
async fn shared_and_plain_overlap_arrives_once_with_both_identifiers() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "p-ov", Properties::default()).await;
        for (f, id) in [("ov/t", 1), ("$share/g/ov/t", 2)] {
            let opts = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
            c.subscribe_with(subscription_id(id), vec![(filter(f), opts)])
                .await;
        }
        let mut p = RawClient::connected_v5(broker.addr(), "p-ov-pub", Properties::default()).await;
        p.publish("ov/t", QoS::AtLeastOnce, false, b"x").await;
        let got = c.recv_publish_acked().await;
        let mut ids = got.properties.subscription_identifiers.clone();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2]);
        c.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-3.3.4-10]: with the client's Receive Maximum (1) used up by an unacknowledged
/// QoS 1 message, the server still answers PINGREQ, SUBSCRIBE, UNSUBSCRIBE and the
/// client's own QoS 1/2 PUBLISHes at once, and sends no second PUBLISH until the PUBACK
/// ([MQTT-3.3.4-9]).
#[tokio::test]
async fn full_receive_window_holds_back_only_publishes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let window = Properties::from(PropertyFields {
            receive_maximum: Some(1),
            ..PropertyFields::default()
        });
        let mut c = RawClient::connected_v5(broker.addr(), "p-win", window).await;
        c.subscribe(&[("win/t", QoS::AtLeastOnce)]).await;
        let mut p = RawClient::connected_v5(broker.addr(), "p-win-pub", Properties::default()).await;
        p.publish("win/t", QoS::AtLeastOnce, false, b"1").await;
        p.publish("win/t", QoS::AtLeastOnce, false, b"2").await;
        let first = c.expect_publish().await;
        assert_eq!(first.payload, "1");
        c.send(Packet::PingReq).await;
        assert!(matches!(c.expect_packet("PINGRESP").await, Packet::PingResp));
        let ack = c.subscribe(&[("win/other", QoS::AtMostOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_0]);
        let packet_id = c.next_packet_id();
        c.send(Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties: Properties::default(),
            filters: vec![filter("win/other")],
        }))
        .await;
        assert!(matches!(c.expect_packet("UNSUBACK").await, Packet::UnsubAck(a) if a.packet_id == packet_id));
        c.publish("elsewhere", QoS::AtLeastOnce, false, b"own").await;
        c.publish("elsewhere", QoS::ExactlyOnce, false, b"own").await;
        match c.next_event(QUIET).await {
            Event::Timeout => {}
            other => panic!("a second PUBLISH beyond Receive Maximum 1: {other:?}"),
        }
        c.send(Packet::PubAck(PubResponse::new(first.packet_id().expect("id"))))
            .await;
        let second = c.recv_publish_acked().await;
        assert_eq!(second.payload, "2");
    })
    .await;
}
