//! MQTT 5.0 section 3.8, SUBSCRIBE: the packet's form (flags, UTF-8 filters, option
//! bits), No Local, and what a repeated filter does to the existing subscription.

use std::collections::BTreeSet;
use std::time::Duration;

use starling::protocol::{
    Packet, Properties, PubResponse, QoS, ReasonCode, RetainHandling, Subscribe,
    SubscriptionOptions,
};

use crate::common::{
    bounded, filter, mqtt_str, raw_packet, subscription_id, BrokerProcess, Event, RawClient,
};
use crate::support::{assert_refused, BAD_UTF8};

const QUIET: Duration = Duration::from_millis(300);

/// A 5.0 SUBSCRIBE body: packet id 1, no properties, one filter with this options byte.
fn subscribe_body(topic_filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, 0x00];
    body.extend(mqtt_str(topic_filter));
    body.push(options);
    body
}

/// [MQTT-3.8.1-1]: fixed-header flags other than 0010 make the SUBSCRIBE malformed:
/// DISCONNECT 0x81 and close. The same body with 0010 gets its SUBACK.
#[tokio::test]
async fn subscribe_with_flags_other_than_0010_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let body = subscribe_body(b"s/flags", 0x01);
        for first in [0x80, 0x83, 0x8A, 0x86] {
            assert_refused(
                &broker,
                "s-bad",
                &raw_packet(first, &body),
                ReasonCode::MALFORMED_PACKET,
            )
            .await;
        }
        let mut c = RawClient::connected_v5(broker.addr(), "s-ok", Properties::default()).await;
        c.send_raw(&raw_packet(0x82, &body)).await;
        match c.expect_packet("SUBACK").await {
            Packet::SubAck(a) => assert_eq!(a.reasons, vec![ReasonCode::GRANTED_QOS_1]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    })
    .await;
}

/// [MQTT-3.8.3-1]: Topic Filters are UTF-8 Encoded Strings; ill-formed UTF-8, a
/// surrogate or U+0000 make the SUBSCRIBE malformed: DISCONNECT 0x81 and close.
#[tokio::test]
async fn subscribe_filter_that_is_not_utf8_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        for bad in BAD_UTF8 {
            let bytes = raw_packet(0x82, &subscribe_body(bad, 0x00));
            assert_refused(&broker, "s-bad", &bytes, ReasonCode::MALFORMED_PACKET).await;
        }
    })
    .await;
}

/// [MQTT-3.8.3-4]: No Local on a Shared Subscription is a Protocol Error: DISCONNECT
/// 0x82 and close. No Local on an ordinary filter is accepted.
#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = BrokerProcess::start();
    bounded(async {
        let bytes = raw_packet(0x82, &subscribe_body(b"$share/g/nl", 0x04 | 0x01));
        assert_refused(&broker, "s-bad", &bytes, ReasonCode::PROTOCOL_ERROR).await;
        let mut c = RawClient::connected_v5(broker.addr(), "s-nl", Properties::default()).await;
        c.send_raw(&raw_packet(0x82, &subscribe_body(b"nl", 0x04 | 0x01)))
            .await;
        match c.expect_packet("SUBACK").await {
            Packet::SubAck(a) => assert_eq!(a.reasons, vec![ReasonCode::GRANTED_QOS_1]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    })
    .await;
}

/// [MQTT-3.8.3-5]: non-zero reserved bits (6, 7) of the Subscription Options make the
/// SUBSCRIBE malformed: DISCONNECT 0x81 and close. Retain Handling 3 (section 3.8.3.1)
/// is a Protocol Error: DISCONNECT 0x82.
#[tokio::test]
async fn reserved_subscription_option_bits_are_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        for options in [0x40, 0x80, 0xC1, 0x41] {
            let bytes = raw_packet(0x82, &subscribe_body(b"s/opt", options));
            assert_refused(&broker, "s-bad", &bytes, ReasonCode::MALFORMED_PACKET).await;
        }
        let bytes = raw_packet(0x82, &subscribe_body(b"s/opt", 0x30));
        assert_refused(&broker, "s-bad", &bytes, ReasonCode::PROTOCOL_ERROR).await;
    })
    .await;
}

/// [MQTT-3.8.3-3]: with No Local, a client's own messages are not forwarded to it; the
/// other subscriber gets them, and messages from others still reach it.
#[tokio::test]
async fn no_local_skips_only_the_publishing_client() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut me = RawClient::connected_v5(broker.addr(), "s-me", Properties::default()).await;
        let mut opts = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
        opts.no_local = true;
        me.subscribe_with(Properties::default(), vec![(filter("nl/t"), opts)])
            .await;
        let mut other =
            RawClient::connected_v5(broker.addr(), "s-other", Properties::default()).await;
        other.subscribe(&[("nl/t", QoS::AtLeastOnce)]).await;
        me.publish("nl/t", QoS::AtLeastOnce, false, b"mine").await;
        let got = other.recv_publish_acked().await;
        assert_eq!(got.payload.as_ref(), b"mine");
        me.expect_nothing(QUIET).await;
        other
            .publish("nl/t", QoS::AtLeastOnce, false, b"theirs")
            .await;
        let got = me.recv_publish_acked().await;
        assert_eq!(got.payload.as_ref(), b"theirs");
    })
    .await;
}

/// [MQTT-3.8.4-3]: SUBSCRIBE with a filter identical to an existing non-shared one
/// replaces it: after QoS 0 (id 1) then QoS 2 (id 2) on the same filter, a QoS 2
/// message arrives once, at QoS 2, with Subscription Identifier 2 only.
#[tokio::test]
async fn identical_filter_replaces_the_subscription() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "s-rep", Properties::default()).await;
        for (qos, id) in [(QoS::AtMostOnce, 1), (QoS::ExactlyOnce, 2)] {
            let opts = SubscriptionOptions::with_qos(qos);
            let ack = c
                .subscribe_with(subscription_id(id), vec![(filter("rep/t"), opts)])
                .await;
            assert_eq!(ack.reasons, vec![ReasonCode::granted(qos)]);
        }
        let mut p =
            RawClient::connected_v5(broker.addr(), "s-rep-pub", Properties::default()).await;
        p.publish("rep/t", QoS::ExactlyOnce, false, b"x").await;
        let got = c.recv_publish_acked().await;
        assert_eq!(got.qos(), QoS::ExactlyOnce);
        assert_eq!(got.properties.subscription_identifiers, vec![2]);
        c.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-3.8.4-4]: re-subscribing with Retain Handling 0 re-sends the retained message
/// (RETAIN 1), and no message is lost while the subscription is replaced: 60 QoS 1
/// messages published concurrently with the second SUBSCRIBE all arrive, each once.
#[tokio::test]
async fn resubscribe_resends_retained_and_loses_nothing() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut p = RawClient::connected_v5(broker.addr(), "s-rh-pub", Properties::default()).await;
        p.publish("rh/kept", QoS::AtLeastOnce, true, b"retained")
            .await;
        let mut c = RawClient::connected_v5(broker.addr(), "s-rh", Properties::default()).await;
        let mut opts = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
        opts.retain_handling = RetainHandling::SendAtSubscribe;
        c.subscribe_with(Properties::default(), vec![(filter("rh/#"), opts)])
            .await;
        let first = c.recv_publish_acked().await;
        assert_eq!(
            (first.payload.as_ref(), first.retain),
            (&b"retained"[..], true)
        );
        let total = 60;
        let publisher = tokio::spawn(async move {
            for i in 0..total {
                p.publish(
                    "rh/live",
                    QoS::AtLeastOnce,
                    false,
                    format!("{i}").as_bytes(),
                )
                .await;
            }
            p
        });
        let mut live = Vec::new();
        let mut retained = 0;
        // Let part of the stream arrive, then replace the subscription mid-stream.
        while live.len() < 10 {
            let m = c.recv_publish_acked().await;
            live.push(String::from_utf8(m.payload.to_vec()).expect("utf-8"));
        }
        let id = c.next_packet_id();
        c.send(Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: Properties::default(),
            filters: vec![(filter("rh/#"), opts)],
        }))
        .await;
        let mut subacks = 0;
        while live.len() < total || retained == 0 || subacks == 0 {
            match c.next_event(Duration::from_secs(5)).await {
                Event::Packet(Packet::SubAck(a)) if a.packet_id == id => subacks += 1,
                Event::Packet(Packet::Publish(m)) => {
                    if let Some(pid) = m.packet_id() {
                        c.send(Packet::PubAck(PubResponse::new(pid))).await;
                    }
                    match (m.topic.as_str(), m.retain) {
                        ("rh/kept", true) => retained += 1,
                        ("rh/live", false) => {
                            live.push(String::from_utf8(m.payload.to_vec()).expect("utf-8"))
                        }
                        _ => panic!("unexpected {m:?}"),
                    }
                }
                other => panic!("waiting for the stream: {other:?} after {live:?}"),
            }
        }
        publisher.await.expect("publisher task");
        c.expect_nothing(QUIET).await;
        assert_eq!(retained, 1, "the retained message is re-sent once");
        let unique: BTreeSet<&String> = live.iter().collect();
        assert_eq!(
            unique.len(),
            live.len(),
            "a message arrived twice: {live:?}"
        );
        let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
        assert_eq!(live, expected, "lost or reordered messages");
    })
    .await;
}
