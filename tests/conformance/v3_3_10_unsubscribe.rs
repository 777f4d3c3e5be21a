//! MQTT 3.1.1 section 3.10, UNSUBSCRIBE: the payload's format, which subscriptions an
//! UNSUBSCRIBE removes, its UNSUBACK, and deliveries already under way.

use std::time::Duration;

use starling::protocol::{Packet, PacketId, Properties, PubResponse, QoS, Unsubscribe};

use crate::common::{
    bounded, filter, mqtt_str, raw_packet, BrokerProcess, Event, RawClient, Witness,
};

/// Sends UNSUBSCRIBE with this packet id and filters, and returns the next packet, which
/// must be its UNSUBACK.
async fn unsubscribe(c: &mut RawClient, id: u16, filters: &[&str]) {
    let packet_id = PacketId::new(id).expect("non-zero");
    c.send(Packet::Unsubscribe(Unsubscribe {
        packet_id,
        properties: Properties::default(),
        filters: filters.iter().map(|f| filter(f)).collect(),
    }))
    .await;
    match c.expect_packet("UNSUBACK").await {
        Packet::UnsubAck(a) => assert_eq!(a.packet_id, packet_id, "UNSUBACK packet id"),
        other => panic!("want UNSUBACK, got {other:?}"),
    }
}

/// Publishes QoS 1 messages from a fresh client, one per topic, payload = topic.
async fn publish_each(broker: &BrokerProcess, topics: &[&str]) {
    let mut p = RawClient::connected_v311(broker.addr(), "unsub-pub", true).await;
    for t in topics {
        p.publish(t, QoS::AtLeastOnce, false, t.as_bytes()).await;
    }
    p.disconnect().await;
}

/// [MQTT-3.10.3-1]: UNSUBSCRIBE filters are UTF-8 strings, and [MQTT-3.10.3-2]: an
/// UNSUBSCRIBE carries at least one. Otherwise the server closes the connection
/// without an UNSUBACK.
#[tokio::test]
async fn malformed_unsubscribe_payload_is_closed() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        let mut not_utf8 = vec![0x00, 0x01];
        not_utf8.extend(mqtt_str(&[b'a', 0xC0, 0xAF]));
        let cases = [
            ("3.10.3-1 not UTF-8", raw_packet(0xA2, &not_utf8)),
            ("3.10.3-2 no filter", raw_packet(0xA2, &[0x00, 0x01])),
        ];
        for (what, bytes) in &cases {
            let mut c = RawClient::connected_v311(broker.addr(), "bad-unsub", true).await;
            c.subscribe(&[("a/#", QoS::AtMostOnce)]).await;
            c.send_raw(bytes).await;
            assert_eq!(c.expect_closed().await, None, "{what}");
        }
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

/// [MQTT-3.10.4-1]: filters are compared character by character: filters that would
/// match the same topics but differ in text ("u/b", "u/#", "U/+", "u/+/") leave the
/// subscription "u/+" in place, and the same text removes it; [MQTT-3.10.4-5]: an
/// UNSUBACK comes even when nothing was removed; [MQTT-3.10.4-4]: with the
/// UNSUBSCRIBE's packet id (0x1234, 0xFFFF); [MQTT-3.10.4-2]: no new messages after.
#[tokio::test]
async fn only_the_identical_filter_is_removed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "exact", true).await;
        unsubscribe(&mut s, 0x0001, &["u/+"]).await;
        s.subscribe(&[("u/+", QoS::AtLeastOnce)]).await;
        unsubscribe(&mut s, 0x1234, &["u/b", "u/#", "U/+", "u/+/"]).await;
        publish_each(&broker, &["u/b"]).await;
        assert_eq!(s.recv_publish_acked().await.payload.as_ref(), b"u/b");
        unsubscribe(&mut s, 0xFFFF, &["u/+"]).await;
        publish_each(&broker, &["u/b", "u/c"]).await;
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.10.4-6]: an UNSUBSCRIBE with several filters is handled as that many
/// UNSUBSCRIBEs with a single UNSUBACK: both filters go, the third stays.
#[tokio::test]
async fn several_filters_one_unsuback() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "multi", true).await;
        s.subscribe(&[
            ("m/a", QoS::AtLeastOnce),
            ("m/b", QoS::AtLeastOnce),
            ("m/c", QoS::AtLeastOnce),
        ])
        .await;
        unsubscribe(&mut s, 7, &["m/a", "m/b"]).await;
        publish_each(&broker, &["m/a", "m/b", "m/c"]).await;
        let only = s.recv_publish_acked().await;
        assert_eq!(
            only.payload.as_ref(),
            b"m/c",
            "no second UNSUBACK, m/c only"
        );
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.10.4-3]: QoS 1 and 2 deliveries the server had started before the
/// UNSUBSCRIBE are completed: the PUBREL still follows the PUBREC, and after a
/// reconnect (Clean Session 0) the unacknowledged QoS 1 PUBLISH and the PUBREL are
/// re-sent with their packet ids ([MQTT-4.4.0-1]); nothing new arrives.
#[tokio::test]
async fn deliveries_under_way_are_completed_after_unsubscribe() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "finish", false).await;
        s.subscribe(&[("fin/t", QoS::ExactlyOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "finish-pub", true).await;
        p.publish("fin/t", QoS::AtLeastOnce, false, b"one").await;
        p.publish("fin/t", QoS::ExactlyOnce, false, b"two").await;
        let one = s.expect_publish().await;
        let two = s.expect_publish().await;
        assert_eq!(
            (one.payload.as_ref(), one.qos()),
            (&b"one"[..], QoS::AtLeastOnce)
        );
        assert_eq!(
            (two.payload.as_ref(), two.qos()),
            (&b"two"[..], QoS::ExactlyOnce)
        );
        let (one_id, two_id) = (one.packet_id().expect("id"), two.packet_id().expect("id"));

        unsubscribe(&mut s, 3, &["fin/t"]).await;
        s.send(Packet::PubRec(PubResponse::new(two_id))).await;
        match s.expect_packet("PUBREL").await {
            Packet::PubRel(r) => assert_eq!(r.packet_id, two_id),
            other => panic!("want PUBREL, got {other:?}"),
        }
        drop(s);

        let mut s = RawClient::open(broker.addr()).await;
        assert!(s.connect_v311("finish", false, 60).await.session_present);
        let mut resent = Vec::new();
        for _ in 0..2 {
            match s.next_event(Duration::from_secs(5)).await {
                Event::Packet(Packet::Publish(p)) => {
                    assert!(p.dup && p.packet_id() == Some(one_id), "{p:?}");
                    s.send(Packet::PubAck(PubResponse::new(one_id))).await;
                    resent.push("publish");
                }
                Event::Packet(Packet::PubRel(r)) => {
                    assert_eq!(r.packet_id, two_id);
                    s.send(Packet::PubComp(PubResponse::new(two_id))).await;
                    resent.push("pubrel");
                }
                other => panic!("want the re-sent PUBLISH and PUBREL, got {other:?}"),
            }
        }
        assert_eq!(resent, ["publish", "pubrel"], "in their original order");
        p.publish("fin/t", QoS::AtLeastOnce, false, b"three").await;
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}
