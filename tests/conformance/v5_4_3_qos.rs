//! MQTT 5.0 section 4.3, the QoS delivery protocols, with Starling on both sides: as
//! sender to a subscriber (DUP on first delivery, PUBREL instead of PUBLISH once
//! released, no expiry once sent, error acknowledgements ending the exchange) and as
//! receiver of a publisher (when a packet id starts a new message).

use std::time::Duration;

use bytes::Bytes;
use starling::protocol::{
    Packet, PacketId, Properties, PropertyFields, PubResponse, Publish, QoS, ReasonCode,
};

use crate::common::{bounded, publish_packet, BrokerProcess, RawClient};

const QUIET: Duration = Duration::from_millis(300);

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero id")
}

/// A client PUBLISH with a chosen id and DUP flag.
fn publish(topic: &str, qos: QoS, id: Option<u16>, dup: bool, payload: &[u8]) -> Packet {
    let mut p = publish_packet(topic, qos, payload, id.map(pid));
    p.dup = dup;
    Packet::Publish(p)
}

fn ack(reason: ReasonCode, id: PacketId) -> PubResponse {
    PubResponse {
        reason,
        ..PubResponse::new(id)
    }
}

/// The next packet must be this acknowledgement kind (4 PUBACK, 5 PUBREC, 6 PUBREL,
/// 7 PUBCOMP) for `id`; returns its reason code.
async fn expect_ack(c: &mut RawClient, kind: u8, id: PacketId) -> ReasonCode {
    let packet = c.expect_packet("acknowledgement").await;
    assert_eq!(packet.packet_type(), kind, "{packet:?}");
    match packet {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            assert_eq!(r.packet_id, id, "{r:?}");
            r.reason
        }
        _ => unreachable!(),
    }
}

/// A 5.0 client with a session that outlives the connection.
async fn persistent(broker: &BrokerProcess, id: &str, clean: bool, props: Properties) -> RawClient {
    let mut c = RawClient::open(broker.addr()).await;
    let props = Properties::from(PropertyFields {
        session_expiry_interval: Some(300),
        ..(*props).clone()
    });
    let connack = c.connect_v5(id, clean, 60, props).await;
    assert_eq!(connack.reason, ReasonCode::SUCCESS);
    assert_eq!(connack.session_present, !clean);
    c
}

async fn payloads(c: &mut RawClient, n: usize) -> Vec<Publish> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(c.recv_publish_acked().await);
    }
    got
}

/// [MQTT-4.3.1-1], [MQTT-4.3.2-2], [MQTT-4.3.3-2]: a first delivery at QoS 0 has QoS 0,
/// DUP 0 and no packet id ([MQTT-3.3.1-2] on the server's side); at QoS 1 and 2 it has
/// that QoS, a packet id and DUP 0, although the publisher's copies had DUP 1
/// ([MQTT-3.3.1-3]: the outgoing DUP depends only on retransmission).
#[tokio::test]
async fn first_deliveries_have_dup_0_at_every_qos() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "q-sub", Properties::default()).await;
        sub.subscribe(&[
            ("d/0", QoS::AtMostOnce),
            ("d/1", QoS::AtLeastOnce),
            ("d/2", QoS::ExactlyOnce),
        ])
        .await;
        let mut p = RawClient::connected_v5(broker.addr(), "q-pub", Properties::default()).await;
        p.send(publish("d/0", QoS::AtLeastOnce, Some(1), true, b"zero"))
            .await;
        assert_eq!(expect_ack(&mut p, 4, pid(1)).await, ReasonCode::SUCCESS);
        p.send(publish("d/1", QoS::AtLeastOnce, Some(2), true, b"one"))
            .await;
        assert_eq!(expect_ack(&mut p, 4, pid(2)).await, ReasonCode::SUCCESS);
        p.send(publish("d/2", QoS::ExactlyOnce, Some(3), true, b"two"))
            .await;
        assert_eq!(expect_ack(&mut p, 5, pid(3)).await, ReasonCode::SUCCESS);
        p.send(Packet::PubRel(PubResponse::new(pid(3)))).await;
        assert_eq!(expect_ack(&mut p, 7, pid(3)).await, ReasonCode::SUCCESS);
        let got = payloads(&mut sub, 3).await;
        let seen: Vec<_> = got
            .iter()
            .map(|m| (m.payload.clone(), m.qos(), m.dup, m.packet_id().is_some()))
            .collect();
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert_eq!(
            seen,
            vec![
                (b("zero"), QoS::AtMostOnce, false, false),
                (b("one"), QoS::AtLeastOnce, false, true),
                (b("two"), QoS::ExactlyOnce, false, true),
            ]
        );
    })
    .await;
}

/// [MQTT-4.3.2-5]: once the server has sent PUBACK, a PUBLISH with the same packet id
/// is a new message, whatever its DUP flag: both reach the subscriber.
#[tokio::test]
async fn qos1_same_id_after_puback_is_a_new_message() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "q1-sub", Properties::default()).await;
        sub.subscribe(&[("q1/t", QoS::AtLeastOnce)]).await;
        let mut p = RawClient::connected_v5(broker.addr(), "q1-pub", Properties::default()).await;
        for (dup, text) in [(false, "first"), (true, "second"), (false, "third")] {
            p.send(publish(
                "q1/t",
                QoS::AtLeastOnce,
                Some(3),
                dup,
                text.as_bytes(),
            ))
            .await;
            assert_eq!(expect_ack(&mut p, 4, pid(3)).await, ReasonCode::SUCCESS);
        }
        let got: Vec<_> = payloads(&mut sub, 3)
            .await
            .into_iter()
            .map(|m| m.payload)
            .collect();
        assert_eq!(got, vec!["first", "second", "third"]);
        sub.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-4.3.3-8], [MQTT-4.3.3-10]: until the PUBREL, every PUBLISH with the same id is
/// answered with PUBREC (same id) and the message goes on once. [MQTT-4.3.3-11],
/// [MQTT-4.3.3-12]: PUBREL gets PUBCOMP with its id, and after that the same id starts
/// a new message, delivered again.
#[tokio::test]
async fn qos2_receiver_delivers_once_per_exchange_and_reuses_ids_after_pubcomp() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "q2-sub", Properties::default()).await;
        sub.subscribe(&[("q2/t", QoS::ExactlyOnce)]).await;
        let mut p = RawClient::connected_v5(broker.addr(), "q2-pub", Properties::default()).await;
        for text in ["first", "second"] {
            for dup in [false, true, true] {
                p.send(publish(
                    "q2/t",
                    QoS::ExactlyOnce,
                    Some(4),
                    dup,
                    text.as_bytes(),
                ))
                .await;
                assert_eq!(expect_ack(&mut p, 5, pid(4)).await, ReasonCode::SUCCESS);
            }
            p.send(Packet::PubRel(PubResponse::new(pid(4)))).await;
            assert_eq!(expect_ack(&mut p, 7, pid(4)).await, ReasonCode::SUCCESS);
            let got = sub.recv_publish_acked().await;
            assert_eq!(got.payload, text);
            sub.expect_nothing(QUIET).await;
        }
    })
    .await;
}

/// [MQTT-4.3.3-9]: after a PUBREC with a code of 0x80 or more (0x99: payload marked
/// UTF-8 but not), a PUBLISH with the same id is a new message: PUBREC 0x00, delivered
/// once, PUBREL answered by PUBCOMP 0x00.
#[tokio::test]
async fn qos2_same_id_after_error_pubrec_is_a_new_message() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "q9-sub", Properties::default()).await;
        sub.subscribe(&[("q9/t", QoS::ExactlyOnce)]).await;
        let mut p = RawClient::connected_v5(broker.addr(), "q9-pub", Properties::default()).await;
        let Packet::Publish(mut bad) = publish("q9/t", QoS::ExactlyOnce, Some(7), false, b"\xff")
        else {
            unreachable!()
        };
        bad.properties.payload_format_indicator = Some(1);
        p.send(Packet::Publish(bad)).await;
        assert_eq!(
            expect_ack(&mut p, 5, pid(7)).await,
            ReasonCode::PAYLOAD_FORMAT_INVALID
        );
        p.send(publish("q9/t", QoS::ExactlyOnce, Some(7), false, b"good"))
            .await;
        assert_eq!(expect_ack(&mut p, 5, pid(7)).await, ReasonCode::SUCCESS);
        let got = sub.recv_publish_acked().await;
        assert_eq!(got.payload, "good");
        p.send(Packet::PubRel(PubResponse::new(pid(7)))).await;
        assert_eq!(expect_ack(&mut p, 7, pid(7)).await, ReasonCode::SUCCESS);
        sub.expect_nothing(QUIET).await;
    })
    .await;
}

/// [MQTT-4.3.3-13]: the server as receiver finishes the QoS 2 exchange after the
/// message has expired: PUBREL 1.5 s after a PUBLISH with Message Expiry Interval 1
/// still gets PUBCOMP 0x00.
#[tokio::test]
async fn qos2_receiver_completes_after_message_expiry() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut p = RawClient::connected_v5(broker.addr(), "q13", Properties::default()).await;
        let mut m = publish_packet("q13/t", QoS::ExactlyOnce, b"x", Some(pid(8)));
        m.properties.message_expiry_interval = Some(1);
        p.send(Packet::Publish(m)).await;
        expect_ack(&mut p, 5, pid(8)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        p.send(Packet::PubRel(PubResponse::new(pid(8)))).await;
        assert_eq!(expect_ack(&mut p, 7, pid(8)).await, ReasonCode::SUCCESS);
    })
    .await;
}

/// [MQTT-4.3.3-7]: once the server has sent a QoS 2 PUBLISH it does not apply message
/// expiry to it: a message with Message Expiry Interval 1, sent and not acknowledged,
/// is re-sent (same id, DUP 1) when the client returns 1.5 s later, and its exchange
/// completes.
#[tokio::test]
async fn qos2_sent_publish_is_not_expired() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = persistent(&broker, "q7-sub", true, Properties::default()).await;
        sub.subscribe(&[("q7/t", QoS::ExactlyOnce)]).await;
        let mut p = RawClient::connected_v5(broker.addr(), "q7-pub", Properties::default()).await;
        let mut m = publish_packet("q7/t", QoS::ExactlyOnce, b"short-lived", Some(pid(1)));
        m.properties.message_expiry_interval = Some(1);
        p.send(Packet::Publish(m)).await;
        expect_ack(&mut p, 5, pid(1)).await;
        let first = sub.expect_publish().await;
        let id = first.packet_id().expect("id");
        drop(sub);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut sub = persistent(&broker, "q7-sub", false, Properties::default()).await;
        let again = sub.expect_publish().await;
        assert_eq!((again.packet_id(), again.dup), (Some(id), true));
        assert_eq!(again.payload, "short-lived");
        sub.send(Packet::PubRec(PubResponse::new(id))).await;
        assert_eq!(expect_ack(&mut sub, 6, id).await, ReasonCode::SUCCESS);
        sub.send(Packet::PubComp(PubResponse::new(id))).await;
    })
    .await;
}

/// [MQTT-4.3.3-4], [MQTT-4.3.3-5], [MQTT-4.3.3-6]: after PUBREC the server sends PUBREL
/// with the same id and keeps it unacknowledged until PUBCOMP: a client that left
/// before PUBCOMP gets the PUBREL again on return ([MQTT-4.4.0-1]), never the PUBLISH.
#[tokio::test]
async fn qos2_sender_resends_pubrel_not_publish() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = persistent(&broker, "q6-sub", true, Properties::default()).await;
        sub.subscribe(&[("q6/t", QoS::ExactlyOnce)]).await;
        let mut p = RawClient::connected_v5(broker.addr(), "q6-pub", Properties::default()).await;
        p.publish("q6/t", QoS::ExactlyOnce, false, b"x").await;
        let m = sub.expect_publish().await;
        let id = m.packet_id().expect("id");
        sub.send(Packet::PubRec(PubResponse::new(id))).await;
        assert_eq!(expect_ack(&mut sub, 6, id).await, ReasonCode::SUCCESS);
        drop(sub);
        let mut sub = persistent(&broker, "q6-sub", false, Properties::default()).await;
        assert_eq!(expect_ack(&mut sub, 6, id).await, ReasonCode::SUCCESS);
        sub.send(Packet::PubComp(PubResponse::new(id))).await;
        sub.expect_nothing(QUIET).await;
        drop(sub);
        let mut sub = persistent(&broker, "q6-sub", false, Properties::default()).await;
        sub.expect_nothing(QUIET).await;
    })
    .await;
}

/// An error acknowledgement ends the exchange ([MQTT-4.4.0-2], [MQTT-4.3.3-4]): with
/// Receive Maximum 1, PUBACK 0x80 and PUBREC 0x80 each free the window for the next
/// message ([MQTT-3.3.4-9]), no PUBREL follows the error PUBREC, and neither refused
/// message is re-sent when the client returns to its session.
#[tokio::test]
async fn error_acknowledgements_end_the_exchange() {
    let broker = BrokerProcess::start();
    bounded(async {
        let window = Properties::from(PropertyFields {
            receive_maximum: Some(1),
            ..PropertyFields::default()
        });
        let mut sub = persistent(&broker, "qe-sub", true, window.clone()).await;
        sub.subscribe(&[("qe/#", QoS::ExactlyOnce)]).await;
        let mut p = RawClient::connected_v5(broker.addr(), "qe-pub", Properties::default()).await;
        p.publish("qe/1", QoS::AtLeastOnce, false, b"a").await;
        p.publish("qe/1", QoS::AtLeastOnce, false, b"b").await;
        p.publish("qe/2", QoS::ExactlyOnce, false, b"c").await;
        p.publish("qe/2", QoS::ExactlyOnce, false, b"d").await;
        let err = ReasonCode::UNSPECIFIED_ERROR;
        let a = sub.expect_publish().await;
        assert_eq!(a.payload, "a");
        sub.send(Packet::PubAck(ack(err, a.packet_id().expect("id"))))
            .await;
        let b = sub.expect_publish().await;
        assert_eq!(b.payload, "b");
        sub.send(Packet::PubAck(PubResponse::new(b.packet_id().expect("id"))))
            .await;
        let c = sub.expect_publish().await;
        assert_eq!(c.payload, "c");
        sub.send(Packet::PubRec(ack(err, c.packet_id().expect("id"))))
            .await;
        let d = sub.expect_publish().await; // not a PUBREL for c
        assert_eq!((d.payload.as_ref(), d.dup), (&b"d"[..], false));
        let d_id = d.packet_id().expect("id");
        sub.send(Packet::PubRec(PubResponse::new(d_id))).await;
        assert_eq!(expect_ack(&mut sub, 6, d_id).await, ReasonCode::SUCCESS);
        sub.send(Packet::PubComp(PubResponse::new(d_id))).await;
        sub.expect_nothing(QUIET).await;
        drop(sub);
        let mut sub = persistent(&broker, "qe-sub", false, window).await;
        sub.expect_nothing(QUIET).await;
    })
    .await;
}
