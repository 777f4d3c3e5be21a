//! MQTT 3.1.1 section 4.3, QoS delivery protocols: what the server sends at QoS 0, and
//! how it treats a packet identifier it has acknowledged.

use starling::protocol::{Packet, PacketId, QoS};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient};

/// [MQTT-4.3.1-1]: at QoS 0 the server sends the PUBLISH with QoS 0 and DUP 0 (and no
/// packet identifier), whatever the QoS and DUP it was published with.
#[tokio::test]
async fn qos0_delivery_has_qos0_and_dup0() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "q0-sub", true).await;
        s.subscribe(&[("q0/#", QoS::AtMostOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "q0-pub", true).await;
        p.publish("q0/a", QoS::AtMostOnce, false, b"0").await;
        p.publish("q0/b", QoS::AtLeastOnce, false, b"1").await;
        let mut dup = publish_packet("q0/c", QoS::ExactlyOnce, b"2", PacketId::new(40));
        dup.dup = true;
        p.send(Packet::Publish(dup)).await;
        for payload in [b"0", b"1", b"2"] {
            let got = s.expect_publish().await;
            assert_eq!(got.payload.as_ref(), payload);
            assert_eq!(got.qos(), QoS::AtMostOnce, "{got:?}");
            assert!(!got.dup, "DUP 0 at QoS 0: {got:?}");
            assert_eq!(got.packet_id(), None);
        }
    })
    .await;
}

/// [MQTT-4.3.2-2]: the server answers a QoS 1 PUBLISH with a PUBACK carrying its packet
/// identifier, and once it has sent that PUBACK it treats a PUBLISH with the same
/// identifier as a new message, with DUP 0 or 1: all three are delivered.
#[tokio::test]
async fn acknowledged_qos1_packet_id_starts_a_new_message() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut s = RawClient::connected_v311(broker.addr(), "q1-sub", true).await;
        s.subscribe(&[("q1/t", QoS::AtLeastOnce)]).await;
        let mut p = RawClient::connected_v311(broker.addr(), "q1-pub", true).await;
        let id = PacketId::new(77);
        for (payload, dup) in [(&b"first"[..], false), (b"second", true), (b"third", false)] {
            let mut m = publish_packet("q1/t", QoS::AtLeastOnce, payload, id);
            m.dup = dup;
            p.send(Packet::Publish(m)).await;
            match p.expect_packet("PUBACK").await {
                Packet::PubAck(a) => assert_eq!(Some(a.packet_id), id),
                other => panic!("want PUBACK, got {other:?}"),
            }
        }
        for payload in [&b"first"[..], b"second", b"third"] {
            assert_eq!(s.recv_publish_acked().await.payload.as_ref(), payload);
        }
    })
    .await;
}
