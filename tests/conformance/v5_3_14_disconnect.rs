//! MQTT 5.0 section 3.14, DISCONNECT: when the server may send one, what it may carry,
//! that nothing follows it, and what a client's DISCONNECT does to its will.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use starling::protocol::{
    decode_packet, Disconnect, LastWill, Packet, Properties, ProtocolVersion, QoS, ReasonCode,
};

use crate::common::{
    bounded, connect_packet, mqtt_str, raw_connect, raw_packet, session_expiry, topic,
    BrokerProcess, Event, RawClient,
};

/// The Disconnect Reason Code values of the 5.0 table (section 3.14.2.1).
const DISCONNECT_REASON_CODES: [u8; 29] = [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

/// The packets in `bytes` as (first byte, body), split by their fixed headers.
fn split_packets(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let first = bytes[i];
        let (mut len, mut shift, mut j) = (0usize, 0, i + 1);
        loop {
            let b = bytes[j];
            len |= usize::from(b & 0x7F) << shift;
            shift += 7;
            j += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        out.push((first, bytes[j..j + len].to_vec()));
        i = j + len;
    }
    out
}

/// [MQTT-3.14.0-1]: no DISCONNECT before a CONNACK with a reason below 0x80. Five
/// connections end before any successful CONNACK (a first packet that is not CONNECT,
/// a malformed CONNECT, a refused Client Identifier, a wrong protocol name); all the
/// broker sends is at most a refusing CONNACK, then it closes.
#[tokio::test]
async fn no_disconnect_before_a_successful_connack() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut publish = mqtt_str(b"t");
        publish.push(0);
        let mut bad_name = raw_connect(5, 0x02, "nd", Some(&[]));
        bad_name[7] = b'X';
        let cases = [
            ("PINGREQ first", vec![0xC0, 0x00]),
            ("PUBLISH first", raw_packet(0x30, &publish)),
            ("reserved flag", raw_connect(5, 0x03, "nd", Some(&[]))),
            (
                "client id",
                raw_connect(5, 0x02, &"n".repeat(300), Some(&[])),
            ),
            ("protocol name", bad_name),
        ];
        for (what, bytes) in cases {
            let mut c = RawClient::open(broker.addr()).await;
            c.send_raw(&bytes).await;
            let reply = c.read_raw_until_closed(Duration::from_secs(5)).await;
            for (first, body) in split_packets(&reply) {
                assert_eq!(first, 0x20, "{what}: only a CONNACK may come: {reply:02x?}");
                assert!(body[1] >= 0x80, "{what}: a refusing CONNACK: {reply:02x?}");
            }
        }
    })
    .await;
}

/// [MQTT-3.14.1-1]: a DISCONNECT with a reserved flag bit set is malformed: the server
/// answers DISCONNECT 0x81 (Malformed Packet) and closes.
#[tokio::test]
async fn disconnect_reserved_bits_get_0x81() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "dflags", Properties::default()).await;
        c.send_raw(&[0xE1, 0x00]).await;
        let d = c
            .expect_closed()
            .await
            .expect("DISCONNECT before the close");
        assert_eq!(d.reason, ReasonCode::MALFORMED_PACKET);
    })
    .await;
}

/// Connects `id` with Session Expiry 300 and the given keep alive.
async fn persistent(broker: &BrokerProcess, id: &str, keep_alive: u16) -> RawClient {
    let mut c = RawClient::open(broker.addr()).await;
    let ack = c
        .connect_v5(id, true, keep_alive, session_expiry(300))
        .await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    c
}

/// [MQTT-3.14.2-1], [MQTT-3.14.2-2], [MQTT-3.14.4-2]: every DISCONNECT the server
/// sends (session taken over 0x8E, protocol error 0x82, malformed packet 0x81, keep
/// alive timeout 0x8D), to clients with a Session Expiry Interval, uses a Disconnect
/// Reason Code, carries no Session Expiry Interval, and is followed by the close.
#[tokio::test]
async fn server_disconnects_carry_no_session_expiry() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut seen: Vec<Disconnect> = Vec::new();
        let mut old = persistent(&broker, "sd-take", 60).await;
        let _new = persistent(&broker, "sd-take", 60).await;
        seen.extend(old.expect_closed().await);

        let mut c = persistent(&broker, "sd-proto", 60).await;
        let again = connect_packet(ProtocolVersion::V5, "sd-proto", true, 60);
        c.send(Packet::Connect(Box::new(again))).await;
        seen.extend(c.expect_closed().await);

        let mut c = persistent(&broker, "sd-malformed", 60).await;
        c.send_raw(&[0xE1, 0x00]).await; // DISCONNECT with a reserved bit set
        seen.extend(c.expect_closed().await);

        let mut c = persistent(&broker, "sd-keepalive", 1).await;
        seen.extend(c.expect_closed_within(Duration::from_secs(4)).await);

        let reasons: Vec<u8> = seen.iter().map(|d| d.reason.0).collect();
        assert_eq!(reasons, vec![0x8E, 0x82, 0x81, 0x8D]);
        for d in &seen {
            assert!(DISCONNECT_REASON_CODES.contains(&d.reason.0));
            assert_eq!(d.properties.session_expiry_interval, None, "{d:?}");
        }
    })
    .await;
}

/// [MQTT-3.14.2-3], [MQTT-3.14.2-4]: Starling explains a DISCONNECT with a Reason
/// String, but not when that would make the packet larger than the client's Maximum
/// Packet Size: with 16 bytes allowed, the DISCONNECT for a second CONNECT arrives
/// without Reason String or User Property and within 16 bytes on the wire.
#[tokio::test]
async fn disconnect_reason_string_only_within_maximum_packet_size() {
    let broker = BrokerProcess::start();
    bounded(async {
        let again = raw_connect(5, 0x02, "again", Some(&[]));
        let mut roomy =
            RawClient::connected_v5(broker.addr(), "ds-roomy", Properties::default()).await;
        roomy.send_raw(&again).await;
        let d = roomy.expect_closed().await.expect("DISCONNECT");
        assert!(
            d.properties.reason_string.is_some(),
            "the control case has one"
        );

        let small = Properties {
            maximum_packet_size: Some(16),
            ..Properties::default()
        };
        let mut tight = RawClient::connected_v5(broker.addr(), "ds-tight", small).await;
        tight.send_raw(&again).await;
        let reply = tight.read_raw_until_closed(Duration::from_secs(5)).await;
        assert!(
            reply.len() <= 16,
            "DISCONNECT of {} bytes: {reply:02x?}",
            reply.len()
        );
        let mut buf = BytesMut::from(&reply[..]);
        match decode_packet(&mut buf, Some(ProtocolVersion::V5), usize::MAX) {
            Ok(Some(Packet::Disconnect(d))) => {
                assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
                assert_eq!(d.properties.reason_string, None);
                assert!(d.properties.user_properties.is_empty());
            }
            other => panic!("expected DISCONNECT, got {other:?} from {reply:02x?}"),
        }
        assert!(buf.is_empty(), "nothing after the DISCONNECT: {reply:02x?}");
    })
    .await;
}

/// [MQTT-3.14.4-1], [MQTT-3.14.4-2]: after its DISCONNECT the server sends nothing
/// more, even to a client that was receiving a stream of messages when its session
/// was taken over, and closes the connection.
#[tokio::test]
async fn nothing_follows_the_servers_disconnect() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = RawClient::connected_v5(broker.addr(), "df-sub", Properties::default()).await;
        sub.subscribe(&[("df/t", QoS::AtMostOnce)]).await;
        let addr = broker.addr();
        let flood = tokio::spawn(async move {
            let mut p = RawClient::connected_v5(addr, "df-pub", Properties::default()).await;
            for i in 0..2000u32 {
                p.publish("df/t", QoS::AtMostOnce, false, &i.to_be_bytes())
                    .await;
            }
            p
        });
        sub.expect_publish().await;
        let _new = RawClient::connected_v5(broker.addr(), "df-sub", Properties::default()).await;
        let mut disconnect = None;
        loop {
            match sub.next_event(Duration::from_secs(5)).await {
                Event::Packet(Packet::Publish(_)) if disconnect.is_none() => {}
                Event::Packet(Packet::Disconnect(d)) if disconnect.is_none() => {
                    disconnect = Some(d)
                }
                Event::Closed => break,
                other => panic!("after DISCONNECT {disconnect:?}: {other:?}"),
            }
        }
        assert_eq!(
            disconnect.map(|d| d.reason),
            Some(ReasonCode::SESSION_TAKEN_OVER)
        );
        flood.await.expect("publisher task");
    })
    .await;
}

/// A 5.0 client `id` with a will on `will/{id}` (Will Delay as given).
async fn will_client(broker: &BrokerProcess, id: &str, props: Properties, delay: u32) -> RawClient {
    let mut c = RawClient::open(broker.addr()).await;
    let mut connect = connect_packet(ProtocolVersion::V5, id, true, 60);
    connect.properties = props;
    connect.will = Some(LastWill {
        topic: topic(&format!("will/{id}")),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(delay),
            ..Properties::default()
        },
    });
    assert_eq!(c.connect(connect).await.reason, ReasonCode::SUCCESS);
    c
}

/// [MQTT-3.14.4-3], [MQTT-3.1.2-10]: a DISCONNECT 0x00 discards the will, a
/// DISCONNECT 0x04 (Disconnect with Will Message) has it published. The discarded will
/// is also not published later: with a Will Delay longer than the Session Expiry,
/// the session's end would otherwise send it.
#[tokio::test]
async fn normal_disconnect_discards_the_will() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = RawClient::connected_v5(broker.addr(), "wd-obs", Properties::default()).await;
        obs.subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
        for (id, reason) in [
            ("wd-normal", ReasonCode::NORMAL_DISCONNECTION),
            ("wd-with-will", ReasonCode::DISCONNECT_WITH_WILL),
        ] {
            let mut c = will_client(&broker, id, Properties::default(), 0).await;
            c.send(Packet::Disconnect(Disconnect::new(reason))).await;
            assert!(matches!(
                c.next_event(Duration::from_secs(5)).await,
                Event::Closed
            ));
        }
        let will = obs.recv_publish_acked().await;
        assert_eq!(will.topic.as_str(), "will/wd-with-will");

        let mut c = will_client(&broker, "wd-delayed", session_expiry(1), 10).await;
        c.send(Packet::Disconnect(Disconnect::new(
            ReasonCode::NORMAL_DISCONNECTION,
        )))
        .await;
        obs.expect_nothing(Duration::from_millis(2000)).await;
    })
    .await;
}
