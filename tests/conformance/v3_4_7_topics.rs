//! MQTT 3.1.1 section 4.7, topic names and filters: the 65,535-byte limit and matching
//! without normalisation.

use std::time::Duration;

use starling::protocol::{Packet, QoS, ReasonCode};

use crate::common::{bounded, BrokerProcess, Event, RawClient};

/// [MQTT-4.7.3-3]: topic names and filters are at most 65,535 bytes: a name and a
/// filter of exactly 65,535 bytes (the most a length prefix can announce) are accepted
/// and matched, and the name arrives whole.
#[tokio::test]
async fn longest_topic_name_and_filter_are_accepted() {
    let broker = BrokerProcess::start();
    bounded(async {
        let long = format!("long/{}", "x".repeat(65_535 - 5));
        assert_eq!(long.len(), 65_535);
        let mut s = RawClient::connected_v311(broker.addr(), "long-sub", true).await;
        let ack = s.subscribe(&[(&long, QoS::AtLeastOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
        let mut p = RawClient::connected_v311(broker.addr(), "long-pub", true).await;
        p.publish(&long, QoS::AtLeastOnce, false, b"long").await;
        let got = s.recv_publish_acked().await;
        assert_eq!(got.topic.as_str(), long);
        assert_eq!(got.payload.as_ref(), b"long");
    })
    .await;
}

/// [MQTT-4.7.3-4]: no normalisation when matching: the filter "café/a/b" (é as U+00E9)
/// matches only the identical name, not the decomposed "cafe\u{301}/a/b", nor names that
/// differ in case, an empty level or a trailing '/'.
#[tokio::test]
async fn matching_does_not_normalise_topics() {
    let broker = BrokerProcess::start();
    bounded(async {
        let exact = "caf\u{e9}/a/b";
        let mut s = RawClient::connected_v311(broker.addr(), "norm-sub", true).await;
        s.subscribe(&[(exact, QoS::AtLeastOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "norm-pub", true).await;
        for near in [
            "cafe\u{301}/a/b",
            "CAF\u{c9}/a/b",
            "caf\u{e9}/A/b",
            "caf\u{e9}//a/b",
            "caf\u{e9}/a/b/",
            "/caf\u{e9}/a/b",
            "caf\u{e9} /a/b",
        ] {
            p.publish(near, QoS::AtLeastOnce, false, near.as_bytes())
                .await;
        }
        p.publish(exact, QoS::AtLeastOnce, false, b"exact").await;
        let got = s.recv_publish_acked().await;
        assert_eq!(got.payload.as_ref(), b"exact", "{got:?}");
        match s.next_event(Duration::from_millis(300)).await {
            Event::Timeout => {}
            Event::Packet(Packet::Publish(p)) => panic!("near miss matched: {p:?}"),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
}
