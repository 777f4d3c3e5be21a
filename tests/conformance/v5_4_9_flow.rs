//! MQTT 5.0 section 4.9, flow control: with its send quota towards a client at zero
//! (the client's Receive Maximum reached), the server stops sending QoS > 0 PUBLISHes
//! but goes on processing and answering everything else.

use std::time::Duration;

use starling::protocol::{Packet, Properties, PropertyFields, QoS, ReasonCode, Unsubscribe};

use crate::common::{bounded, filter, BrokerProcess, RawClient};

/// [MQTT-4.9.0-3] (with [MQTT-4.9.0-2] as the setting): a client with Receive Maximum 1
/// holds one unacknowledged QoS 1 message, so the server's quota is zero and the
/// second message waits. Meanwhile the client's PINGREQ, SUBSCRIBE, UNSUBSCRIBE and
/// its own QoS 1 and QoS 2 PUBLISHes are all answered. The PUBACK then releases the
/// waiting message. (Starling holds QoS 0 messages behind it too, as section 4.9
/// allows.)
#[tokio::test]
async fn other_packets_are_answered_at_zero_quota() {
    let broker = BrokerProcess::start();
    bounded(async {
        let window = Properties::from(PropertyFields {
            receive_maximum: Some(1),
            ..PropertyFields::default()
        });
        let mut c = RawClient::connected_v5(broker.addr(), "fq", window).await;
        c.subscribe(&[("fq/q1", QoS::AtLeastOnce), ("fq/q0", QoS::AtMostOnce)])
            .await;
        let mut p = RawClient::connected_v5(broker.addr(), "fq-src", Properties::default()).await;
        p.publish("fq/q1", QoS::AtLeastOnce, false, b"held").await;
        p.publish("fq/q1", QoS::AtLeastOnce, false, b"waiting")
            .await;
        let held = c.expect_publish().await;
        assert_eq!(held.payload.as_ref(), b"held");
        c.expect_nothing(Duration::from_millis(300)).await;

        c.send(Packet::PingReq).await;
        assert!(matches!(
            c.expect_packet("PINGRESP").await,
            Packet::PingResp
        ));
        let ack = c.subscribe(&[("fq/other", QoS::AtLeastOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
        let packet_id = c.next_packet_id();
        c.send(Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties: Properties::default(),
            filters: vec![filter("fq/other")],
        }))
        .await;
        match c.expect_packet("UNSUBACK").await {
            Packet::UnsubAck(a) => {
                assert_eq!(a.packet_id, packet_id);
                assert_eq!(a.reasons, vec![ReasonCode::SUCCESS]);
            }
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
        // `publish` waits for the PUBACK, or PUBREC and PUBCOMP.
        c.publish("fq/elsewhere", QoS::AtLeastOnce, false, b"mine")
            .await;
        c.publish("fq/elsewhere", QoS::ExactlyOnce, false, b"mine2")
            .await;
        // A QoS 0 message waits too: the server MAY suspend QoS 0 at zero quota
        // (section 4.9), and Starling keeps the order of its queue.
        p.publish("fq/q0", QoS::AtMostOnce, false, b"q0").await;
        c.expect_nothing(Duration::from_millis(300)).await;

        c.ack(&held).await;
        let waiting = c.expect_publish().await;
        assert_eq!(waiting.payload.as_ref(), b"waiting");
        let q0 = c.expect_publish().await;
        assert_eq!(
            (q0.payload.as_ref(), q0.qos()),
            (&b"q0"[..], QoS::AtMostOnce)
        );
    })
    .await;
}
