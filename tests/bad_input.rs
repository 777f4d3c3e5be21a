//! Malformed and abusive input over raw sockets. Each case checks the reaction the specs
//! require, then that an already-connected [`Witness`] client still gets its messages
//! through and that the broker process is alive.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{
    bounded, mqtt_str, publish_packet, raw_connect, raw_packet, varint, BrokerProcess, Event,
    RawClient, Witness,
};
use starling::protocol::{Packet, PacketId, Properties, ProtocolVersion, QoS, ReasonCode};

async fn client(addr: SocketAddr, v5: bool, id: &str) -> RawClient {
    if v5 {
        RawClient::connected_v5(addr, id, Properties::default()).await
    } else {
        RawClient::connected_v311(addr, id, true).await
    }
}

/// What a 5.0 client must see before the close.
#[derive(Clone, Copy)]
enum V5Reply {
    /// A DISCONNECT with one of these reason codes.
    Disconnect(&'static [u8]),
    /// Section 4.13: a DISCONNECT SHOULD come; if it does, with one of these codes.
    MaybeDisconnect(&'static [u8]),
}

/// A connected client sends `bytes`; the broker must close it (for 5.0, `v5` tells what
/// may precede the close); the witness still works and the broker lives.
async fn assert_rejected(broker: &mut BrokerProcess, v5: Option<V5Reply>, bytes: &[u8]) {
    let mut witness = Witness::new(broker.addr(), "w").await;
    let mut c = client(broker.addr(), v5.is_some(), "offender").await;
    c.send_raw(bytes).await;
    let got = c.expect_closed().await.map(|d| d.reason.0);
    match v5 {
        Some(V5Reply::Disconnect(codes)) => assert!(
            got.is_some_and(|r| codes.contains(&r)),
            "for {bytes:02x?}: DISCONNECT reason {got:x?}, want one of {codes:x?}"
        ),
        Some(V5Reply::MaybeDisconnect(codes)) => assert!(
            got.is_none_or(|r| codes.contains(&r)),
            "for {bytes:02x?}: DISCONNECT reason {got:x?}, want none or one of {codes:x?}"
        ),
        None => assert_eq!(got, None, "3.1.1 has no server DISCONNECT"),
    }
    witness.check().await;
    broker.assert_alive();
}

/// PUBLISH bytes with a raw topic; `v5` adds an empty property block.
fn raw_publish(first_byte: u8, topic: &[u8], packet_id: Option<u16>, v5: bool) -> Vec<u8> {
    let mut body = mqtt_str(topic);
    if let Some(id) = packet_id {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if v5 {
        body.push(0);
    }
    body.extend_from_slice(b"x");
    raw_packet(first_byte, &body)
}

// [MQTT-3.1.0-1]: the first packet must be CONNECT, else the connection is closed.
#[tokio::test]
async fn first_packet_not_connect_is_closed() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        for bytes in [vec![0xC0, 0x00], raw_publish(0x30, b"a/b", None, false)] {
            let mut c = RawClient::open(broker.addr()).await;
            c.send_raw(&bytes).await;
            c.expect_closed().await;
        }
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

// [MQTT-3.1.0-2]: a second CONNECT is a protocol violation -> close.
#[tokio::test]
async fn second_connect_closes_v311() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let again = raw_connect(4, 0x02, "offender", None);
        assert_rejected(&mut broker, None, &again).await;
    })
    .await;
}

// 5.0 [MQTT-3.1.0-2]: second CONNECT -> DISCONNECT 0x82 (Protocol Error), close.
#[tokio::test]
async fn second_connect_v5_gets_disconnect_0x82() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let again = raw_connect(5, 0x02, "offender", Some(&[]));
        assert_rejected(&mut broker, Some(V5Reply::Disconnect(&[0x82])), &again).await;
    })
    .await;
}

// [MQTT-3.1.2-2]: unsupported protocol level -> CONNACK return code 1 (5.0: 0x84), close.
#[tokio::test]
async fn unsupported_protocol_level_refused_with_connack() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        let mut c = RawClient::open(broker.addr()).await;
        c.send_raw(&raw_connect(6, 0x02, "level6", None)).await;
        let reply = c.read_raw_until_closed(Duration::from_secs(5)).await;
        let v3 = reply.starts_with(&[0x20, 0x02, 0x00, 0x01]);
        let v5 = reply.len() >= 4 && reply[0] == 0x20 && reply[2] == 0x00 && reply[3] == 0x84;
        assert!(
            v3 || v5,
            "want CONNACK 0x01/0x84 then close, got {reply:02x?}"
        );
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

// [MQTT-3.1.2-3]: the reserved CONNECT flag (bit 0) must be 0, else disconnect.
#[tokio::test]
async fn reserved_connect_flag_closes() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        for (level, props) in [(4u8, None), (5u8, Some(&[][..]))] {
            let mut c = RawClient::open(broker.addr()).await;
            if level == 5 {
                c.set_version(ProtocolVersion::V5);
            }
            c.send_raw(&raw_connect(level, 0x03, "reserved", props))
                .await;
            if let Some(ack) = c.expect_connect_refused().await {
                assert!(ack.reason.is_error(), "{ack:?}");
            }
        }
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

// [MQTT-3.3.1-4]: a PUBLISH with both QoS bits set -> close (5.0: DISCONNECT 0x81).
#[tokio::test]
async fn publish_with_qos_3_closes() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let v3 = raw_publish(0x36, b"a/b", Some(1), false);
        assert_rejected(&mut broker, None, &v3).await;
        let v5 = raw_publish(0x36, b"a/b", Some(1), true);
        assert_rejected(&mut broker, Some(V5Reply::Disconnect(&[0x81])), &v5).await;
    })
    .await;
}

// [MQTT-3.3.2-2]: a PUBLISH topic name must not contain wildcards -> close.
#[tokio::test]
async fn publish_topic_with_wildcard_closes() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        for t in [&b"a/+"[..], b"a/#", b"#"] {
            assert_rejected(&mut broker, None, &raw_publish(0x30, t, None, false)).await;
        }
        let bytes = raw_publish(0x30, b"a/+", None, true);
        let reply = V5Reply::MaybeDisconnect(&[0x81, 0x82, 0x90]);
        assert_rejected(&mut broker, Some(reply), &bytes).await;
    })
    .await;
}

// [MQTT-1.5.3-1] ill-formed UTF-8 (incl. a surrogate, U+D800) and [MQTT-1.5.3-2] U+0000
// in a topic name -> close.
#[tokio::test]
async fn malformed_utf8_and_null_in_topic_close() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        for t in [
            &[b'a', 0xC3, 0x28][..],
            &[0xED, 0xA0, 0x80],
            &[b'a', 0x00, b'b'],
            &[0xFF],
        ] {
            assert_rejected(&mut broker, None, &raw_publish(0x30, t, None, false)).await;
        }
        let bytes = raw_publish(0x30, &[b'a', 0x00, b'b'], None, true);
        let reply = V5Reply::MaybeDisconnect(&[0x81, 0x82]);
        assert_rejected(&mut broker, Some(reply), &bytes).await;
    })
    .await;
}

// Section 2.2.3 (3.1.1) / 1.5.5 (5.0): the remaining length has at most 4 bytes; a fifth
// continuation byte is malformed -> close.
#[tokio::test]
async fn remaining_length_with_five_bytes_closes() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let bytes = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        assert_rejected(&mut broker, None, &bytes).await;
        let reply = V5Reply::MaybeDisconnect(&[0x81]);
        assert_rejected(&mut broker, Some(reply), &bytes).await;
    })
    .await;
}

// [MQTT-3.8.1-1] SUBSCRIBE and [MQTT-3.10.1-1] UNSUBSCRIBE fixed-header flags must be
// 0010 -> anything else closes.
#[tokio::test]
async fn subscribe_with_wrong_fixed_header_flags_closes() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut sub = vec![0x00, 0x01];
        sub.extend(mqtt_str(b"a/b"));
        sub.push(0x01);
        let mut unsub = vec![0x00, 0x01];
        unsub.extend(mqtt_str(b"a/b"));
        for bytes in [
            raw_packet(0x80, &sub),
            raw_packet(0x83, &sub),
            raw_packet(0xA0, &unsub),
        ] {
            assert_rejected(&mut broker, None, &bytes).await;
        }
    })
    .await;
}

// [MQTT-3.8.3-3]: a SUBSCRIBE must carry at least one filter -> close (5.0: 0x81/0x82).
#[tokio::test]
async fn subscribe_without_filters_closes() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        assert_rejected(&mut broker, None, &[0x82, 0x02, 0x00, 0x01]).await;
        let v5 = [0x82, 0x03, 0x00, 0x01, 0x00];
        let reply = V5Reply::MaybeDisconnect(&[0x81, 0x82]);
        assert_rejected(&mut broker, Some(reply), &v5).await;
    })
    .await;
}

// 5.0 [MQTT-3.2.2-15], section 4.13: a packet over the server's maximum packet size
// (config 1024) -> DISCONNECT 0x95 and close, decided from the header alone: a header
// announcing 200 MB is refused without the broker reading or allocating the body.
#[tokio::test]
async fn oversized_packet_refused_from_header_without_allocation() {
    let mut broker = BrokerProcess::start_with_limits(&[("max_packet_size", 1024)]);
    bounded(async {
        let mut header = vec![0x30];
        header.extend(varint(200 * 1024 * 1024));
        for v5 in [true, false] {
            let mut witness = Witness::new(broker.addr(), "w").await;
            let mut c = client(broker.addr(), v5, "huge").await;
            c.send_raw(&header).await;
            let d = c.expect_closed_within(Duration::from_secs(3)).await;
            if v5 {
                assert_eq!(d.map(|d| d.reason), Some(ReasonCode::PACKET_TOO_LARGE));
            }
            witness.check().await;
            broker.assert_alive();
            let rss = broker.rss_kib();
            assert!(
                rss < 100 * 1024,
                "broker RSS {rss} KiB after a 200 MB header"
            );
        }
        // A real 2,000-byte PUBLISH is refused the same way.
        let mut c = client(broker.addr(), true, "big").await;
        c.try_send_raw(&raw_packet(
            0x30,
            &[&mqtt_str(b"big/t")[..], &[0], &[b'x'; 2000]].concat(),
        ))
        .await
        .ok();
        let d = c.expect_closed_within(Duration::from_secs(3)).await;
        assert_eq!(d.map(|d| d.reason), Some(ReasonCode::PACKET_TOO_LARGE));
        // An oversized CONNECT gets CONNACK 0x95.
        let mut c = RawClient::open(broker.addr()).await;
        c.set_version(ProtocolVersion::V5);
        c.send_raw(&raw_connect(5, 0x02, &"x".repeat(2000), Some(&[])))
            .await;
        let ack = c.expect_connect_refused().await;
        assert_eq!(ack.map(|a| a.reason), Some(ReasonCode::PACKET_TOO_LARGE));
        broker.assert_alive();
    })
    .await;
}

// Section 3.1 (non-normative) / config connect_timeout_secs = 1: a socket that sends
// nothing, or only half a CONNECT, is closed within ~3 s.
#[tokio::test]
async fn connect_timeout_closes_silent_and_half_connect_sockets() {
    let mut broker = BrokerProcess::start_with_limits(&[("connect_timeout_secs", 1)]);
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        let start = Instant::now();
        let mut silent = RawClient::open(broker.addr()).await;
        let mut half = RawClient::open(broker.addr()).await;
        let connect = raw_connect(4, 0x02, "halfway", None);
        half.send_raw(&connect[..connect.len() / 2]).await;
        silent.expect_closed_within(Duration::from_secs(3)).await;
        half.expect_closed_within(Duration::from_secs(3).saturating_sub(start.elapsed()))
            .await;
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "took {:?}",
            start.elapsed()
        );
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

// Config max_connections = 3: a 4th connection gets CONNACK return code 3 (3.1.1) /
// 0x89 Server busy (5.0) and is closed; a freed slot can be used again.
#[tokio::test]
async fn max_connections_refuses_extra_clients() {
    let mut broker = BrokerProcess::start_with_limits(&[("max_connections", 3)]);
    bounded(async {
        let addr = broker.addr();
        let mut witness = Witness::new(addr, "w").await;
        let _c2 = client(addr, false, "c2").await;
        let c3 = client(addr, false, "c3").await;
        let mut c4 = RawClient::open(addr).await;
        let ack = c4.connect_v311("c4", true, 60).await;
        assert_eq!(ack.reason.to_v3_connack(), 3, "{ack:?}");
        c4.expect_closed().await;
        let mut c5 = RawClient::open(addr).await;
        let ack = c5.connect_v5("c5", true, 60, Properties::default()).await;
        assert_eq!(ack.reason, ReasonCode::SERVER_BUSY);
        c5.expect_closed().await;
        witness.check().await;

        c3.disconnect().await;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut c = RawClient::open(addr).await;
            if c.connect_v311("c6", true, 60).await.reason == ReasonCode::SUCCESS {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "freed connection slot never reusable"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        broker.assert_alive();
    })
    .await;
}

// 5.0 [MQTT-3.3.4-7], section 3.3.4: more unacknowledged QoS>0 PUBLISHes than the
// advertised Receive Maximum (config 2) -> DISCONNECT 0x93. QoS 2 without PUBREL keeps
// the quota used.
#[tokio::test]
async fn receive_maximum_exceeded_gets_disconnect_0x93() {
    let mut broker = BrokerProcess::start_with_limits(&[("receive_maximum", 2)]);
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("flood", true, 60, Properties::default()).await;
        assert_eq!(
            ack.properties.receive_maximum,
            Some(2),
            "advertised Receive Maximum"
        );
        for id in 1..=3u16 {
            let p = publish_packet("flood/t", QoS::ExactlyOnce, b"x", PacketId::new(id));
            if c.try_send(Packet::Publish(p)).await.is_err() {
                break;
            }
        }
        let mut pubrecs = Vec::new();
        let reason = loop {
            match c.next_event(Duration::from_secs(5)).await {
                Event::Packet(Packet::PubRec(r)) => pubrecs.push(r.packet_id.get()),
                Event::Packet(Packet::Disconnect(d)) => break d.reason,
                other => panic!("want PUBRECs then DISCONNECT, got {other:?}"),
            }
        };
        assert_eq!(reason, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
        assert_eq!(pubrecs, vec![1, 2]);
        c.expect_closed().await;
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

/// A 5.0 PUBLISH carrying only a Topic Alias property (0x23).
fn publish_with_alias(alias: u16) -> Vec<u8> {
    let mut body = mqtt_str(b"alias/t");
    body.extend(varint(3));
    body.push(0x23);
    body.extend_from_slice(&alias.to_be_bytes());
    body.extend_from_slice(b"payload");
    raw_packet(0x30, &body)
}

// 5.0 [MQTT-3.3.2-8] alias 0 and [MQTT-3.2.2-17] alias above the CONNACK Topic Alias
// Maximum -> DISCONNECT 0x94 (Topic Alias invalid).
#[tokio::test]
async fn invalid_topic_alias_gets_disconnect_0x94() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut probe = RawClient::open(broker.addr()).await;
        let ack = probe
            .connect_v5("alias-probe", true, 60, Properties::default())
            .await;
        let max = ack.properties.topic_alias_maximum.unwrap_or(0);
        probe.disconnect().await;
        for alias in [0, max.saturating_add(1)] {
            let reply = V5Reply::Disconnect(&[0x94]);
            assert_rejected(&mut broker, Some(reply), &publish_with_alias(alias)).await;
        }
    })
    .await;
}
