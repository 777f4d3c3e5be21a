//! Message flow over the raw client: offline queue bounds, QoS 2 duplicates, the
//! outbound window, slow subscribers and wills on protocol errors. The 5.0 session
//! expiry, will delay and retain handling cases are in tests/flow_v5.rs.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    bounded, connect_packet, mqtt_str, publish_packet, raw_connect, raw_packet, topic,
    BrokerProcess, Event, RawClient,
};
use starling::protocol::{
    Disconnect, LastWill, Packet, PacketId, Properties, PropertyFields, ProtocolVersion,
    PubResponse, QoS, ReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SETTLE: Duration = Duration::from_secs(1);

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

/// Receives PUBLISHes (acknowledging them) until nothing arrives for [`SETTLE`]; returns
/// their payloads as text.
async fn drain_payloads(c: &mut RawClient) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        match c.next_event(SETTLE).await {
            Event::Timeout => return got,
            Event::Packet(Packet::Publish(p)) => {
                c.ack(&p).await;
                got.push(String::from_utf8_lossy(&p.payload).into_owned());
            }
            other => panic!("expected PUBLISH or silence, got {other:?}"),
        }
    }
}

/// A normal DISCONNECT, then waits until the broker closed the connection: from then
/// on the session is offline, so what is published next is queued, not sent.
async fn go_offline(mut c: RawClient) {
    c.send(Packet::Disconnect(Disconnect::new(
        ReasonCode::NORMAL_DISCONNECTION,
    )))
    .await;
    assert_eq!(c.expect_closed_within(Duration::from_secs(5)).await, None);
}

// README `[limits] max_queued_messages`: "messages queued per session; when full, QoS 0
// messages are dropped first, then the new message is dropped". With a bound of 5 and
// ten QoS 1 messages for an offline session, the first five are kept, in order.
#[tokio::test]
async fn offline_queue_is_bounded_by_max_queued_messages() {
    let broker = BrokerProcess::start_with_limits(&[("max_queued_messages", 5)]);
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v311(addr, "bounded-q", false).await;
        sub.subscribe(&[("q/t", QoS::AtLeastOnce)]).await;
        go_offline(sub).await;

        let mut publ = RawClient::connected_v311(addr, "bounded-q-pub", true).await;
        for i in 0..10 {
            publ.publish("q/t", QoS::AtLeastOnce, false, i.to_string().as_bytes())
                .await;
        }

        let mut sub = RawClient::open(addr).await;
        let ack = sub.connect_v311("bounded-q", false, 60).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(ack.session_present, "CONNACK session present must be 1");
        assert_eq!(
            drain_payloads(&mut sub).await,
            ["0", "1", "2", "3", "4"],
            "a full queue keeps the oldest 5 and drops the new messages"
        );
    })
    .await;
}

// README "QoS 0 messages are not queued for offline clients" (3.1.1 [MQTT-3.1.2-5]: QoS 0
// messages MAY be stored, Starling says it does not): only the QoS 1 ones come back.
#[tokio::test]
async fn queued_qos0_not_kept_for_offline_client() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v311(addr, "no-q0", false).await;
        sub.subscribe(&[("q0/t", QoS::AtLeastOnce)]).await;
        go_offline(sub).await;

        let mut publ = RawClient::connected_v311(addr, "no-q0-pub", true).await;
        for (qos, payload) in [
            (QoS::AtMostOnce, "a0"),
            (QoS::AtLeastOnce, "b1"),
            (QoS::AtMostOnce, "c0"),
            (QoS::AtLeastOnce, "d1"),
        ] {
            publ.publish("q0/t", qos, false, payload.as_bytes()).await;
        }

        let mut sub = RawClient::open(addr).await;
        let ack = sub.connect_v311("no-q0", false, 60).await;
        assert!(ack.session_present, "CONNACK session present must be 1");
        assert_eq!(drain_payloads(&mut sub).await, ["b1", "d1"]);
    })
    .await;
}

/// A 3.1.1 subscriber to `t` at QoS 0 on a socket with a small receive buffer that reads
/// its CONNACK and SUBACK and then nothing more.
async fn stalled_subscriber(addr: std::net::SocketAddr, t: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut s = socket.connect(addr).await.expect("connect");
    s.write_all(&raw_connect(4, 0x02, "stalled", None))
        .await
        .expect("write CONNECT");
    let mut body = 1u16.to_be_bytes().to_vec();
    body.extend(mqtt_str(t.as_bytes()));
    body.push(0);
    s.write_all(&raw_packet(0x82, &body))
        .await
        .expect("write SUBSCRIBE");
    let mut acks = [0u8; 9];
    tokio::time::timeout(common::RECV_TIMEOUT, s.read_exact(&mut acks))
        .await
        .expect("CONNACK + SUBACK in time")
        .expect("read CONNACK + SUBACK");
    assert_eq!(acks, [0x20, 2, 0, 0, 0x90, 3, 0, 1, 0], "CONNACK, SUBACK");
    s
}

// ARCHITECTURE "The path of one PUBLISH" steps 6-7: each subscriber has its own bounded
// queue and write loop, so one subscriber that stops reading must not hold up delivery
// to the others nor the broker (3.1.1 section 4.6 ordering is per subscriber).
#[tokio::test]
async fn slow_subscriber_does_not_block_fanout() {
    const N: usize = 20_000;
    let mut broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let _stalled = stalled_subscriber(addr, "f/t").await;
        let mut b = RawClient::connected_v311(addr, "fan-b", true).await;
        b.subscribe(&[("f/t", QoS::AtMostOnce)]).await;
        let mut publ = RawClient::connected_v311(addr, "fan-pub", true).await;

        let mut flood = Vec::with_capacity(N * 1040);
        for i in 0..N {
            let mut payload = format!("{i:05}").into_bytes();
            payload.resize(1024, b'.');
            let mut body = mqtt_str(b"f/t");
            body.extend_from_slice(&payload);
            flood.extend(raw_packet(0x30, &body));
        }
        let send = async {
            publ.send_raw(&flood).await;
        };
        let receive = async {
            let mut count = 0usize;
            loop {
                match b.next_event(Duration::from_secs(10)).await {
                    Event::Packet(Packet::Publish(p)) => {
                        count += 1;
                        let index: usize = std::str::from_utf8(&p.payload[..5])
                            .expect("ascii index")
                            .parse()
                            .expect("index");
                        if index == N - 1 {
                            return count;
                        }
                    }
                    other => panic!("B after {count} messages: {other:?}"),
                }
            }
        };
        let ((), count) = tokio::join!(send, receive);
        eprintln!("B received {count} of {N} messages, the last one included");

        let mut pinger = RawClient::connected_v311(addr, "fan-ping", true).await;
        pinger.send(Packet::PingReq).await;
        match pinger.next_event(Duration::from_secs(2)).await {
            Event::Packet(Packet::PingResp) => {}
            other => panic!("PINGREQ while a subscriber is stalled: {other:?}"),
        }
        broker.assert_alive();
    })
    .await;
}

// 3.1.1 [MQTT-4.3.3-2] (5.0 numbers it [MQTT-4.3.3-10]; this test runs over 3.1.1):
// until it has received the PUBREL, the receiver MUST NOT cause a re-sent PUBLISH with
// the same packet id to be delivered again.
#[tokio::test]
async fn qos2_resent_publish_with_dup_is_delivered_once() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v311(addr, "q2-sub", true).await;
        sub.subscribe(&[("q2/t", QoS::ExactlyOnce)]).await;
        let mut publ = RawClient::connected_v311(addr, "q2-pub", true).await;

        let mut p = publish_packet("q2/t", QoS::ExactlyOnce, b"once", Some(pid(7)));
        let is_rec7 = |p: &Packet| matches!(p, Packet::PubRec(r) if r.packet_id == pid(7));
        publ.send(Packet::Publish(p.clone())).await;
        publ.wait_for("first PUBREC", is_rec7).await;
        p.dup = true;
        publ.send(Packet::Publish(p)).await;
        publ.wait_for("PUBREC of the DUP copy", is_rec7).await;
        publ.send(Packet::PubRel(PubResponse::new(pid(7)))).await;
        publ.wait_for(
            "PUBCOMP",
            |p| matches!(p, Packet::PubComp(r) if r.packet_id == pid(7)),
        )
        .await;

        assert_eq!(drain_payloads(&mut sub).await, ["once"], "exactly once");
    })
    .await;
}

// 5.0 [MQTT-3.3.4-9]: the server MUST NOT send more than Receive Maximum QoS 1/2 PUBLISHes
// for which it has not received PUBACK (README: window = min(max_inflight, Receive Max)).
#[tokio::test]
async fn outbound_window_respects_client_receive_maximum() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let props = Properties::from(PropertyFields {
            receive_maximum: Some(2),
            ..PropertyFields::default()
        });
        let mut sub = RawClient::connected_v5(addr, "window", props).await;
        sub.subscribe(&[("win/t", QoS::AtLeastOnce)]).await;
        let mut publ = RawClient::connected_v311(addr, "window-pub", true).await;
        for i in 0..5 {
            publ.publish("win/t", QoS::AtLeastOnce, false, i.to_string().as_bytes())
                .await;
        }

        let mut held = vec![sub.expect_publish().await, sub.expect_publish().await];
        sub.expect_nothing(SETTLE).await;
        let first = held.remove(0);
        sub.ack(&first).await;
        held.push(sub.expect_publish().await);
        sub.expect_nothing(SETTLE).await;

        let mut got = vec![first];
        while got.len() < 5 {
            let p = if held.is_empty() {
                sub.expect_publish().await
            } else {
                held.remove(0)
            };
            sub.ack(&p).await;
            got.push(p);
        }
        let payloads: Vec<&[u8]> = got.iter().map(|p| p.payload.as_ref()).collect();
        assert_eq!(payloads, [b"0", b"1", b"2", b"3", b"4"], "in order");
        sub.expect_nothing(SETTLE).await;
    })
    .await;
}

// 3.1.1 [MQTT-3.1.2-8] (5.0 section 3.1.2.5): the will is published when the server closes
// the connection because of a protocol error; a PUBLISH with QoS 3 is malformed
// [MQTT-3.3.1-4].
#[tokio::test]
async fn will_published_on_protocol_error() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut obs = RawClient::connected_v311(addr, "perr-obs", true).await;
        obs.subscribe(&[("perr/will", QoS::AtLeastOnce)]).await;

        let mut w = RawClient::open(addr).await;
        let mut connect = connect_packet(ProtocolVersion::V311, "perr", true, 60);
        connect.will = Some(LastWill {
            topic: topic("perr/will"),
            payload: Bytes::from_static(b"perr gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        });
        assert_eq!(w.connect(connect).await.reason, ReasonCode::SUCCESS);
        let mut body = mqtt_str(b"perr/x");
        body.extend_from_slice(&[0, 1, b'x']);
        w.send_raw(&raw_packet(0x36, &body)).await;
        w.expect_closed().await;

        let p = obs.recv_publish_acked().await;
        assert_eq!(p.topic.as_str(), "perr/will");
        assert_eq!(p.payload.as_ref(), b"perr gone");
    })
    .await;
}

/// Publishes `x` at QoS 1 to `nms/t` with this packet id and returns the PUBACK reason.
async fn puback_reason(c: &mut RawClient, id: u16) -> ReasonCode {
    let p = publish_packet("nms/t", QoS::AtLeastOnce, b"x", Some(pid(id)));
    c.send(Packet::Publish(p)).await;
    match c
        .wait_for(
            "PUBACK",
            |p| matches!(p, Packet::PubAck(r) if r.packet_id == pid(id)),
        )
        .await
    {
        Packet::PubAck(r) => r.reason,
        _ => unreachable!(),
    }
}

// 5.0 section 3.4.2.1: a QoS 1 PUBLISH that matched no subscriber gets
// PUBACK 0x10 (No matching subscribers); one that matched gets 0x00 (ARCHITECTURE: `Routed
// { matched }` feeds this code).
#[tokio::test]
async fn no_matching_subscribers_reason_v5() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut publ = RawClient::connected_v5(addr, "nms-pub", Properties::default()).await;
        assert_eq!(
            puback_reason(&mut publ, 1).await,
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        );
        let mut sub = RawClient::connected_v5(addr, "nms-sub", Properties::default()).await;
        sub.subscribe(&[("nms/#", QoS::AtLeastOnce)]).await;
        assert_eq!(puback_reason(&mut publ, 2).await, ReasonCode::SUCCESS);
        assert_eq!(sub.recv_publish_acked().await.payload.as_ref(), b"x");
    })
    .await;
}
