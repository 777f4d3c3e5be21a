//! MQTT 3.1.1 section 3.1, CONNECT: the format of the connect flags and the payload
//! (which fields must and must not be there, in which order, as UTF-8), client
//! identifiers, and what the server does with a CONNECT it refuses.

use std::time::Duration;

use starling::protocol::{Packet, QoS};

use crate::common::{bounded, mqtt_str, raw_packet, BrokerProcess, RawClient, Witness};

/// Clean Session alone.
const CLEAN: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS1: u8 = 0x08;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USER: u8 = 0x80;

/// A 3.1.1 CONNECT with this protocol name and flags, keep alive 60, and `payload`
/// (already encoded fields, so that a test can put broken ones in).
fn connect_named(name: &[u8], flags: u8, payload: &[&[u8]]) -> Vec<u8> {
    let mut body = mqtt_str(name);
    body.push(4);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    for field in payload {
        body.extend_from_slice(field);
    }
    raw_packet(0x10, &body)
}

fn connect(flags: u8, payload: &[&[u8]]) -> Vec<u8> {
    connect_named(b"MQTT", flags, payload)
}

/// Sends `bytes` on a new connection and asserts the broker closes it without sending
/// a single byte (no CONNACK) [MQTT-3.1.4-1].
async fn assert_closed_silently(broker: &BrokerProcess, what: &str, bytes: &[u8]) {
    let mut c = RawClient::open(broker.addr()).await;
    c.send_raw(bytes).await;
    let reply = c.read_raw_until_closed(Duration::from_secs(5)).await;
    assert!(
        reply.is_empty(),
        "{what}: want close without CONNACK, got {reply:02x?}"
    );
}

/// Bytes that are not valid UTF-8 (an overlong encoding of '/').
const NOT_UTF8: &[u8] = &[0xC0, 0xAF];

/// [MQTT-3.1.4-1] with the payload rules it enforces: a CONNECT whose flags and payload
/// disagree is closed without CONNACK. Will Flag 1 without Will Topic/Message
/// [MQTT-3.1.2-9]; Will Flag 0 with will fields, Will QoS or Will Retain
/// [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]; Will QoS 3 [MQTT-3.1.2-14];
/// User Name/Password Flag 0 with the field present [MQTT-3.1.2-18], [MQTT-3.1.2-20],
/// Flag 1 without it [MQTT-3.1.2-19], [MQTT-3.1.2-21]; Password without User Name
/// [MQTT-3.1.2-22]; no Client Identifier at all [MQTT-3.1.3-3].
#[tokio::test]
async fn connect_flags_and_payload_must_agree() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        let id = mqtt_str(b"flags");
        let (wt, wm) = (mqtt_str(b"will/t"), mqtt_str(b"bye"));
        let (user, pass) = (mqtt_str(b"user"), mqtt_str(b"pass"));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("3.1.2-9 no will fields", connect(CLEAN | WILL, &[&id])),
            (
                "3.1.2-9 no will message",
                connect(CLEAN | WILL, &[&id, &wt]),
            ),
            ("3.1.2-11 will fields", connect(CLEAN, &[&id, &wt, &wm])),
            ("3.1.2-13 will qos", connect(CLEAN | WILL_QOS1, &[&id])),
            ("3.1.2-15 will retain", connect(CLEAN | WILL_RETAIN, &[&id])),
            (
                "3.1.2-14 will qos 3",
                connect(CLEAN | WILL | 0x18, &[&id, &wt, &wm]),
            ),
            ("3.1.2-18 user name", connect(CLEAN, &[&id, &user])),
            ("3.1.2-19 no user name", connect(CLEAN | USER, &[&id])),
            (
                "3.1.2-20 password",
                connect(CLEAN | USER, &[&id, &user, &pass]),
            ),
            (
                "3.1.2-21 no password",
                connect(CLEAN | USER | PASSWORD, &[&id, &user]),
            ),
            (
                "3.1.2-22 password only",
                connect(CLEAN | PASSWORD, &[&id, &pass]),
            ),
            ("3.1.3-3 no client id", connect(CLEAN, &[])),
        ];
        for (what, bytes) in &cases {
            assert_closed_silently(&broker, what, bytes).await;
        }
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

/// [MQTT-3.1.3-4] Client Identifier, [MQTT-3.1.3-10] Will Topic and [MQTT-3.1.3-11]
/// User Name must be UTF-8: ill-formed UTF-8 in any of them closes the connection
/// without CONNACK [MQTT-3.1.4-1].
#[tokio::test]
async fn connect_strings_must_be_utf8() {
    let broker = BrokerProcess::start();
    bounded(async {
        let (id, bad) = (mqtt_str(b"utf8"), mqtt_str(NOT_UTF8));
        let (wm, pass) = (mqtt_str(b"bye"), mqtt_str(b"pass"));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("3.1.3-4 client id", connect(CLEAN, &[&bad])),
            (
                "3.1.3-10 will topic",
                connect(CLEAN | WILL, &[&id, &bad, &wm]),
            ),
            (
                "3.1.3-11 user name",
                connect(CLEAN | USER | PASSWORD, &[&id, &bad, &pass]),
            ),
        ];
        for (what, bytes) in &cases {
            assert_closed_silently(&broker, what, bytes).await;
        }
    })
    .await;
}

/// [MQTT-3.1.2-1]: a protocol name other than "MQTT". The server may disconnect, or
/// handle the CONNECT under another specification but not under this one. Starling
/// answers as to an unknown protocol: CONNACK 0x01 (unacceptable protocol version),
/// then close; a PUBLISH sent right behind the CONNECT is not acted on.
#[tokio::test]
async fn wrong_protocol_name_is_refused_and_closed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut bytes = connect_named(b"ABCD", CLEAN, &[&mqtt_str(b"named")]);
        let mut publish = mqtt_str(b"named/r");
        publish.extend_from_slice(b"x");
        bytes.extend(raw_packet(0x31, &publish));
        let mut c = RawClient::open(broker.addr()).await;
        c.send_raw(&bytes).await;
        let reply = c.read_raw_until_closed(Duration::from_secs(5)).await;
        assert_eq!(reply, [0x20, 0x02, 0x00, 0x01], "CONNACK 0x01, then close");
        let mut check = RawClient::connected_v311(broker.addr(), "named-check", true).await;
        check.subscribe(&[("named/#", QoS::AtMostOnce)]).await;
        check.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.1.3-1], [MQTT-3.1.2-19], [MQTT-3.1.2-21]: a payload with every field, in the
/// order Client Identifier, Will Topic, Will Message, User Name, Password, is accepted
/// and read in that order: the will published later has the topic and message given.
#[tokio::test]
async fn full_payload_in_order_is_accepted() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = RawClient::connected_v311(broker.addr(), "order-obs", true).await;
        obs.subscribe(&[("order/#", QoS::AtLeastOnce)]).await;
        let fields = [
            mqtt_str(b"order"),
            mqtt_str(b"order/will"),
            mqtt_str(b"will message"),
            mqtt_str(b"someone"),
            mqtt_str(b"secret"),
        ];
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        let mut c = RawClient::open(broker.addr()).await;
        c.send_raw(&connect(USER | PASSWORD | WILL_QOS1 | WILL | CLEAN, &refs))
            .await;
        match c.expect_packet("CONNACK").await {
            Packet::ConnAck(a) => assert!(!a.reason.is_error(), "{a:?}"),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        drop(c);
        let will = obs.recv_publish_acked().await;
        assert_eq!(will.topic.as_str(), "order/will");
        assert_eq!(will.payload.as_ref(), b"will message");
        assert_eq!(will.qos(), QoS::AtLeastOnce);
    })
    .await;
}

/// [MQTT-3.1.3-5]: Client Identifiers of 1 to 23 bytes of 0-9a-zA-Z are allowed (every
/// such character, at both lengths).
#[tokio::test]
async fn short_alphanumeric_client_ids_are_allowed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut ids: Vec<String> = chars
            .as_bytes()
            .chunks(23)
            .map(|c| String::from_utf8(c.to_vec()).expect("ascii"))
            .collect();
        ids.extend(["a", "Z", "7"].map(String::from));
        for id in &ids {
            let mut c = RawClient::open(broker.addr()).await;
            let ack = c.connect_v311(id, true, 60).await;
            assert!(!ack.reason.is_error(), "client id {id:?}: {ack:?}");
            c.disconnect().await;
        }
    })
    .await;
}

/// [MQTT-3.1.3-9]: a Client Identifier the server rejects (Starling: longer than
/// `max_client_id_len`, 256 bytes by default) gets CONNACK return code 0x02 and the
/// connection is closed; [MQTT-3.1.4-5]: a PUBLISH sent behind the refused CONNECT is
/// not processed.
#[tokio::test]
async fn rejected_client_id_gets_0x02_and_nothing_after_is_processed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let long = "x".repeat(300);
        let mut bytes = connect(CLEAN, &[&mqtt_str(long.as_bytes())]);
        let mut publish = mqtt_str(b"refused/r");
        publish.extend_from_slice(b"after refusal");
        bytes.extend(raw_packet(0x31, &publish));
        let mut c = RawClient::open(broker.addr()).await;
        c.send_raw(&bytes).await;
        let reply = c.read_raw_until_closed(Duration::from_secs(5)).await;
        assert_eq!(reply, [0x20, 0x02, 0x00, 0x02], "CONNACK 0x02, then close");
        let mut check = RawClient::connected_v311(broker.addr(), "refused-check", true).await;
        check.subscribe(&[("refused/#", QoS::AtMostOnce)]).await;
        check.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.1.3-2]: the Client Identifier names the session: messages queued for one
/// persistent session go to the client with that identifier, not to another one.
#[tokio::test]
async fn client_id_identifies_the_session() {
    let broker = BrokerProcess::start();
    bounded(async {
        for id in ["ident-a", "ident-b"] {
            let mut c = RawClient::connected_v311(broker.addr(), id, false).await;
            let ack = c
                .subscribe(&[(&format!("ident/{id}"), QoS::AtLeastOnce)])
                .await;
            assert!(!ack.reasons[0].is_error());
            c.disconnect().await;
        }
        let mut p = RawClient::connected_v311(broker.addr(), "ident-pub", true).await;
        p.publish("ident/ident-a", QoS::AtLeastOnce, false, b"for a")
            .await;
        p.publish("ident/ident-b", QoS::AtLeastOnce, false, b"for b")
            .await;
        for id in ["ident-b", "ident-a"] {
            let mut c = RawClient::open(broker.addr()).await;
            let ack = c.connect_v311(id, false, 60).await;
            assert!(ack.session_present, "{id}: session present");
            let got = c.recv_publish_acked().await;
            assert_eq!(got.topic.as_str(), format!("ident/{id}"));
            c.expect_nothing(Duration::from_millis(300)).await;
        }
    })
    .await;
}
