//! MQTT 5.0 section 3.2, CONNACK: sent first and once, its reserved flag bits, its
//! reason codes and its size against the client's Maximum Packet Size. The CONNACK
//! statements about sessions and refusals are checked with the CONNECT that causes
//! them, in `v5_3_1_connect.rs` and `v5_3_1_connect_refused.rs`.

use std::time::Duration;

use bytes::BytesMut;
use starling::protocol::{
    decode_packet, ConnAck, Packet, Properties, ProtocolVersion, QoS, ReasonCode,
};

use crate::common::{bounded, raw_connect, session_expiry, BrokerProcess, Event, RawClient};

/// The Connect Reason Code values of the 5.0 table (section 3.2.2.2).
const CONNECT_REASON_CODES: [u8; 22] = [
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];

/// Writes `connect` followed by a DISCONNECT in one go and returns every byte the
/// broker sends before it closes: the CONNACK as it is on the wire.
async fn raw_reply(broker: &BrokerProcess, connect: Vec<u8>) -> Vec<u8> {
    let mut bytes = connect;
    bytes.extend_from_slice(&[0xE0, 0x00]);
    let mut c = RawClient::open(broker.addr()).await;
    c.send_raw(&bytes).await;
    c.read_raw_until_closed(Duration::from_secs(5)).await
}

/// Decodes the one 5.0 CONNACK in `bytes`, asserting nothing follows it.
fn decode_connack(bytes: &[u8]) -> ConnAck {
    let mut buf = BytesMut::from(bytes);
    let packet = decode_packet(&mut buf, Some(ProtocolVersion::V5), usize::MAX)
        .unwrap_or_else(|e| panic!("undecodable reply {bytes:02x?}: {e}"));
    assert!(buf.is_empty(), "more than one packet: {bytes:02x?}");
    match packet {
        Some(Packet::ConnAck(ack)) => ack,
        other => panic!("expected CONNACK, got {other:?} from {bytes:02x?}"),
    }
}

/// [MQTT-3.2.0-1]: the CONNACK 0x00 is the first packet the server sends, even when a
/// resumed session has messages waiting that go out right after it.
#[tokio::test]
async fn connack_precedes_the_queued_messages() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        c.connect_v5("first", false, 60, session_expiry(300)).await;
        c.subscribe(&[("first/t", QoS::AtLeastOnce)]).await;
        c.disconnect().await;
        let mut p =
            RawClient::connected_v5(broker.addr(), "first-pub", Properties::default()).await;
        for i in 0..5 {
            p.publish(
                "first/t",
                QoS::AtLeastOnce,
                false,
                format!("m{i}").as_bytes(),
            )
            .await;
        }
        let mut c = RawClient::open(broker.addr()).await;
        c.set_version(ProtocolVersion::V5);
        let mut connect = crate::common::connect_packet(ProtocolVersion::V5, "first", false, 60);
        connect.properties = session_expiry(300);
        c.send(Packet::Connect(Box::new(connect))).await;
        match c.next_event(Duration::from_secs(5)).await {
            Event::Packet(Packet::ConnAck(ack)) => {
                assert_eq!(ack.reason, ReasonCode::SUCCESS);
                assert!(ack.session_present);
            }
            other => panic!("expected CONNACK first, got {other:?}"),
        }
        for i in 0..5 {
            let m = c.recv_publish_acked().await;
            assert_eq!(m.payload.as_ref(), format!("m{i}").as_bytes());
        }
    })
    .await;
}

/// [MQTT-3.2.0-2]: one CONNACK per connection: after the CONNACK, traffic and finally
/// a second CONNECT (a Protocol Error, closed with DISCONNECT 0x82) bring no other
/// CONNACK.
#[tokio::test]
async fn no_second_connack_on_a_connection() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "once", Properties::default()).await;
        c.subscribe(&[("once/t", QoS::AtLeastOnce)]).await;
        c.publish("once/t", QoS::AtLeastOnce, false, b"x").await;
        c.recv_publish_acked().await;
        c.send(Packet::PingReq).await;
        assert!(matches!(
            c.expect_packet("PINGRESP").await,
            Packet::PingResp
        ));
        let again = crate::common::connect_packet(ProtocolVersion::V5, "once", true, 60);
        c.send(Packet::Connect(Box::new(again))).await;
        // Only a DISCONNECT may precede the close; a CONNACK would fail here.
        let d = c
            .expect_closed()
            .await
            .expect("DISCONNECT before the close");
        assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
    })
    .await;
}

/// [MQTT-3.2.2-1]: bits 7-1 of the Connect Acknowledge Flags are 0, read from the
/// wire, with Session Present 0 and with Session Present 1.
#[tokio::test]
async fn connack_reserved_flag_bits_are_zero() {
    let broker = BrokerProcess::start();
    bounded(async {
        let expiry = [0x11, 0x00, 0x00, 0x01, 0x2C]; // Session Expiry Interval 300
        for present in [false, true] {
            let reply = raw_reply(&broker, raw_connect(5, 0x00, "flags", Some(&expiry))).await;
            assert_eq!(reply[0], 0x20, "CONNACK: {reply:02x?}");
            assert_eq!(reply[2], u8::from(present), "flags byte: {reply:02x?}");
            assert_eq!(reply[3], 0x00);
        }
    })
    .await;
}

/// [MQTT-3.2.2-8]: the reason code byte of CONNACK, accepted or refused (unsupported
/// protocol, Client Identifier not valid, malformed CONNECT), is one of the Connect
/// Reason Codes. Read from the wire: the test client's decoder would refuse others.
#[tokio::test]
async fn connack_reason_codes_are_connect_reason_codes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut bad_name = raw_connect(5, 0x02, "rc", Some(&[]));
        bad_name[7] = b'X'; // "MQTX"
        let cases = [
            (
                "accepted",
                raw_connect(5, 0x02, "rc", Some(&[])),
                Some(0x00),
            ),
            ("protocol name", bad_name, Some(0x84)),
            (
                "client id",
                raw_connect(5, 0x02, &"z".repeat(300), Some(&[])),
                Some(0x85),
            ),
            ("reserved flag", raw_connect(5, 0x03, "rc", Some(&[])), None),
        ];
        for (what, connect, want) in cases {
            let reply = raw_reply(&broker, connect).await;
            if reply.is_empty() && want.is_none() {
                continue;
            }
            assert_eq!(reply[0], 0x20, "{what}: {reply:02x?}");
            let code = reply[3];
            assert!(
                CONNECT_REASON_CODES.contains(&code),
                "{what}: code {code:#04x}"
            );
            if let Some(want) = want {
                assert_eq!(code, want, "{what}");
            }
        }
    })
    .await;
}

/// [MQTT-3.2.2-19], [MQTT-3.2.2-20]: a CONNACK never carries a Reason String or User
/// Property that takes it beyond the client's Maximum Packet Size. Starling puts
/// neither in any CONNACK; the check is on the wire size and the decoded properties,
/// for a success and a refusal, with a Maximum Packet Size just large enough for the
/// CONNACK's required properties.
#[tokio::test]
async fn connack_fits_the_clients_maximum_packet_size() {
    let broker = BrokerProcess::start();
    bounded(async {
        let plain = raw_reply(&broker, raw_connect(5, 0x02, "mps", Some(&[]))).await;
        let max = plain.len() as u32;
        let mut props = vec![0x27];
        props.extend_from_slice(&max.to_be_bytes());
        for id in ["mps".to_string(), "q".repeat(300)] {
            let reply = raw_reply(&broker, raw_connect(5, 0x02, &id, Some(&props))).await;
            assert!(reply.len() as u32 <= max, "{} > {max}", reply.len());
            let ack = decode_connack(&reply);
            assert_eq!(ack.properties.reason_string, None);
            assert!(ack.properties.user_properties.is_empty());
        }
    })
    .await;
}
