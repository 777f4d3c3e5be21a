//! MQTT 5.0 section 3.10, UNSUBSCRIBE: the packet's form (flags, UTF-8 filters, at
//! least one filter) and what the server does with it: exact, character-by-character
//! removal, no new messages for the filter, in-flight deliveries completed, one UNSUBACK
//! per packet.

use std::time::Duration;

use starling::protocol::{
    Packet, PacketId, Properties, PubResponse, QoS, ReasonCode, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};

use crate::common::{
    bounded, filter, mqtt_str, publish_packet, raw_packet, session_expiry, subscription_id,
    BrokerProcess, Event, RawClient,
};
use crate::support::{assert_refused, BAD_UTF8};

const QUIET: Duration = Duration::from_millis(300);

/// Sends an UNSUBSCRIBE with this packet id and waits for the UNSUBACK with that id.
pub async fn unsubscribe_id(c: &mut RawClient, id: u16, filters: &[&str]) -> UnsubAck {
    let packet_id = PacketId::new(id).expect("non-zero id");
    c.send(Packet::Unsubscribe(Unsubscribe {
        packet_id,
        properties: Properties::default(),
        filters: filters.iter().map(|f| filter(f)).collect(),
    }))
    .await;
    match c.expect_packet("UNSUBACK").await {
        Packet::UnsubAck(a) => a,
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// Publishes at QoS 1 and returns the PUBACK's reason code (0x10 = no matching
/// subscribers, which tells whether a subscription is left).
pub async fn puback_reason(c: &mut RawClient, topic: &str, payload: &[u8]) -> ReasonCode {
    let id = c.next_packet_id();
    let p = publish_packet(topic, QoS::AtLeastOnce, payload, Some(id));
    c.send(Packet::Publish(p)).await;
    match c
        .wait_for(
            "PUBACK",
            |p| matches!(p, Packet::PubAck(r) if r.packet_id == id),
        )
        .await
    {
        Packet::PubAck(r) => r.reason,
        _ => unreachable!(),
    }
}

/// A 5.0 UNSUBSCRIBE body: packet id 1, no properties, these filters as raw bytes.
fn unsubscribe_body(filters: &[&[u8]]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, 0x00];
    for f in filters {
        body.extend(mqtt_str(f));
    }
    body
}

/// [MQTT-3.10.1-1]: fixed-header flags other than 0010 make the UNSUBSCRIBE malformed:
/// DISCONNECT 0x81 and close. The same body with flags 0010 gets its UNSUBACK.
#[tokio::test]
async fn unsubscribe_with_flags_other_than_0010_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let body = unsubscribe_body(&[b"u/flags"]);
        for first in [0xA0, 0xA3, 0xAA, 0xA6] {
            let bytes = raw_packet(first, &body);
            assert_refused(&broker, "u-flags", &bytes, ReasonCode::MALFORMED_PACKET).await;
        }
        let mut c = RawClient::connected_v5(broker.addr(), "u-flags", Properties::default()).await;
        c.send_raw(&raw_packet(0xA2, &body)).await;
        match c.expect_packet("UNSUBACK").await {
            Packet::UnsubAck(a) => assert_eq!(a.reasons, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]),
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    })
    .await;
}

/// [MQTT-3.10.3-1]: the filters are UTF-8 Encoded Strings; ill-formed UTF-8, a UTF-16
/// surrogate or U+0000 ([MQTT-1.5.4-1]/[-2]) make the packet malformed: DISCONNECT
/// 0x81 and close.
#[tokio::test]
async fn unsubscribe_filter_that_is_not_utf8_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        for bad in BAD_UTF8 {
            let bytes = raw_packet(0xA2, &unsubscribe_body(&[b"ok/first", bad]));
            assert_refused(&broker, "u-utf8", &bytes, ReasonCode::MALFORMED_PACKET).await;
        }
    })
    .await;
}

/// [MQTT-3.10.3-2]: an UNSUBSCRIBE without any filter is a Protocol Error: the
/// connection closes after DISCONNECT 0x82.
#[tokio::test]
async fn unsubscribe_without_filters_is_refused() {
    let broker = BrokerProcess::start();
    bounded(async {
        let bytes = raw_packet(0xA2, &unsubscribe_body(&[]));
        assert_refused(&broker, "u-none", &bytes, ReasonCode::PROTOCOL_ERROR).await;
    })
    .await;
}

/// [MQTT-3.10.4-1]: filters are compared character by character with the client's
/// filters; only an exact match removes a subscription. Near misses (case, trailing
/// level, another wildcard) get 0x11 and leave both subscriptions; then "cmp/b" goes and
/// a message for cmp/b arrives once, through "cmp/+" only (its Subscription Identifier).
#[tokio::test]
async fn only_an_exactly_equal_filter_is_removed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "u-cmp", Properties::default()).await;
        for (f, sub_id) in [("cmp/+", 1), ("cmp/b", 2)] {
            let props = subscription_id(sub_id);
            let opts = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
            let ack = c.subscribe_with(props, vec![(filter(f), opts)]).await;
            assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
        }
        let misses = [
            "cmp/B", "Cmp/+", "cmp/+/", "cmp/#", "cmp/b/", "/cmp/b", "cmp//b",
        ];
        let ack = unsubscribe_id(&mut c, 7, &misses).await;
        assert_eq!(
            ack.reasons,
            vec![ReasonCode::NO_SUBSCRIPTION_EXISTED; misses.len()]
        );
        let ack = unsubscribe_id(&mut c, 8, &["cmp/b"]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::SUCCESS]);
        let mut p =
            RawClient::connected_v5(broker.addr(), "u-cmp-pub", Properties::default()).await;
        assert_eq!(
            puback_reason(&mut p, "cmp/b", b"m").await,
            ReasonCode::SUCCESS
        );
        let got = c.expect_publish().await;
        assert_eq!(got.topic.as_str(), "cmp/b");
        assert_eq!(got.properties.subscription_identifiers, vec![1]);
        c.ack(&got).await;
        c.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-3.10.4-2]: once the UNSUBACK is out, no new message for the filter is added:
/// a publish right after it finds no matching subscriber (PUBACK 0x10) and the former
/// subscriber gets nothing.
#[tokio::test]
async fn no_new_messages_after_unsubscribe() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "u-stop", Properties::default()).await;
        c.subscribe(&[("stop/t", QoS::AtLeastOnce)]).await;
        let mut p =
            RawClient::connected_v5(broker.addr(), "u-stop-pub", Properties::default()).await;
        assert_eq!(
            puback_reason(&mut p, "stop/t", b"before").await,
            ReasonCode::SUCCESS
        );
        let got = c.recv_publish_acked().await;
        assert_eq!(got.payload.as_ref(), b"before");
        let ack = unsubscribe_id(&mut c, 9, &["stop/t"]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::SUCCESS]);
        for i in 0..5 {
            let reason = puback_reason(&mut p, "stop/t", format!("after{i}").as_bytes()).await;
            assert_eq!(reason, ReasonCode::NO_MATCHING_SUBSCRIBERS);
        }
        c.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-3.10.4-3]: QoS 1 and QoS 2 deliveries the server had started when the
/// subscription went are completed: after the UNSUBACK, the PUBREC of the QoS 2 message
/// still gets PUBREL 0x00 (not 0x92); when the client comes back to its session, the
/// unacknowledged QoS 1 PUBLISH is re-sent (DUP 1, same id) and the PUBREL too
/// ([MQTT-4.4.0-1]), though the subscription is gone.
#[tokio::test]
async fn inflight_qos1_and_qos2_deliveries_complete_after_unsubscribe() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        c.connect_v5("u-fly", true, 60, session_expiry(300)).await;
        c.subscribe(&[("fly/#", QoS::ExactlyOnce)]).await;
        let mut p =
            RawClient::connected_v5(broker.addr(), "u-fly-pub", Properties::default()).await;
        p.publish("fly/1", QoS::AtLeastOnce, false, b"one").await;
        p.publish("fly/2", QoS::ExactlyOnce, false, b"two").await;
        let q1 = c.expect_publish().await;
        let q2 = c.expect_publish().await;
        assert_eq!((q1.qos(), q2.qos()), (QoS::AtLeastOnce, QoS::ExactlyOnce));
        let (id1, id2) = (q1.packet_id().expect("id"), q2.packet_id().expect("id"));
        let ack = unsubscribe_id(&mut c, 100, &["fly/#"]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::SUCCESS]);
        c.send(Packet::PubRec(PubResponse::new(id2))).await;
        match c.expect_packet("PUBREL").await {
            Packet::PubRel(r) => assert_eq!((r.packet_id, r.reason), (id2, ReasonCode::SUCCESS)),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        drop(c); // no PUBACK, no PUBCOMP
        let mut c = RawClient::open(broker.addr()).await;
        let connack = c.connect_v5("u-fly", false, 60, session_expiry(300)).await;
        assert!(connack.session_present);
        let mut resent_publish = None;
        let mut resent_pubrel = None;
        for _ in 0..2 {
            match c.expect_packet("re-sent PUBLISH or PUBREL").await {
                Packet::Publish(p) => resent_publish = Some(p),
                Packet::PubRel(r) => resent_pubrel = Some(r),
                other => panic!("expected PUBLISH/PUBREL, got {other:?}"),
            }
        }
        let again = resent_publish.expect("the QoS 1 PUBLISH is re-sent");
        assert_eq!((again.packet_id(), again.dup), (Some(id1), true));
        assert_eq!(again.payload.as_ref(), b"one");
        assert_eq!(resent_pubrel.expect("the PUBREL is re-sent").packet_id, id2);
        c.send(Packet::PubAck(PubResponse::new(id1))).await;
        c.send(Packet::PubComp(PubResponse::new(id2))).await;
        c.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-3.10.4-4], [MQTT-3.10.4-5]: every UNSUBSCRIBE gets an UNSUBACK with its packet
/// id, also when nothing was removed (reason 0x11 No subscription existed, one of the
/// UNSUBACK codes [MQTT-3.11.3-2]).
#[tokio::test]
async fn unsuback_with_the_same_id_even_when_nothing_was_removed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "u-none", Properties::default()).await;
        for id in [1, 0x1234, 0xFFFF] {
            let ack = unsubscribe_id(&mut c, id, &["never/subscribed"]).await;
            assert_eq!(ack.packet_id.get(), id);
            assert_eq!(ack.reasons, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
        }
        c.subscribe(&[("once", QoS::AtMostOnce)]).await;
        let ack = unsubscribe_id(&mut c, 0x4242, &["once"]).await;
        assert_eq!(
            (ack.packet_id.get(), ack.reasons.clone()),
            (0x4242, vec![ReasonCode::SUCCESS])
        );
        let ack = unsubscribe_id(&mut c, 0x4243, &["once"]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]);
    })
    .await;
}

/// [MQTT-3.10.4-6], [MQTT-3.11.3-1]: several filters are handled as a sequence of
/// UNSUBSCRIBEs answered by one UNSUBACK whose codes follow the filter order; the same
/// filter twice is removed once, then reported absent. Nothing else follows.
#[tokio::test]
async fn several_filters_get_one_unsuback_in_filter_order() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "u-many", Properties::default()).await;
        c.subscribe(&[
            ("m/a", QoS::AtLeastOnce),
            ("m/c", QoS::AtLeastOnce),
            ("m/#", QoS::AtMostOnce),
        ])
        .await;
        let ack = unsubscribe_id(&mut c, 21, &["m/x", "m/a", "m/b", "m/c", "m/a", "m/#"]).await;
        let (ok, none) = (ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED);
        assert_eq!(ack.packet_id.get(), 21);
        assert_eq!(ack.reasons, vec![none, ok, none, ok, none, ok]);
        match c.next_event(QUIET).await {
            Event::Timeout => {}
            other => panic!("one UNSUBACK only, then got {other:?}"),
        }
        let mut p =
            RawClient::connected_v5(broker.addr(), "u-many-pub", Properties::default()).await;
        for t in ["m/a", "m/c", "m/z"] {
            assert_eq!(
                puback_reason(&mut p, t, b"x").await,
                ReasonCode::NO_MATCHING_SUBSCRIBERS
            );
        }
    })
    .await;
}
