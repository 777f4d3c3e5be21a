//! MQTT 5.0 section 3.1, CONNECT: the format rules on the CONNECT a server must
//! validate (flags against payload fields, UTF-8 strings, field order) and what a
//! refused CONNECT leads to: an optional CONNACK >= 0x80, the close, and nothing of
//! what followed the CONNECT processed.

use std::time::Duration;

use starling::protocol::{Packet, Properties, QoS, ReasonCode};

use crate::common::{bounded, mqtt_str, raw_connect, raw_packet, varint, BrokerProcess, RawClient};

/// A 5.0 CONNECT built from its parts: protocol name, flags, empty CONNECT properties
/// and the payload as given (so fields can be missing, extra or broken).
fn connect_v5_raw(name: &[u8], flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = mqtt_str(name);
    body.push(5);
    body.push(flags);
    body.extend_from_slice(&60u16.to_be_bytes());
    body.push(0);
    body.extend_from_slice(payload);
    raw_packet(0x10, &body)
}

/// Sends `bytes` on a new connection and asserts the broker closes it, with at most a
/// CONNACK >= 0x80 before; returns that CONNACK's reason.
async fn refused(broker: &BrokerProcess, bytes: &[u8]) -> Option<ReasonCode> {
    let mut c = RawClient::open(broker.addr()).await;
    c.set_version(starling::protocol::ProtocolVersion::V5);
    c.send_raw(bytes).await;
    c.expect_connect_refused().await.map(|ack| {
        assert!(!ack.session_present, "[MQTT-3.2.2-6]");
        ack.reason
    })
}

/// Like [`refused`] for a CONNECT the broker must find malformed: if it answers, the
/// code is 0x81 (Malformed Packet).
async fn refused_as_malformed(broker: &BrokerProcess, what: &str, bytes: &[u8]) {
    let reason = refused(broker, bytes).await;
    assert!(
        matches!(reason, None | Some(ReasonCode::MALFORMED_PACKET)),
        "{what}: {reason:?}"
    );
}

/// [MQTT-3.1.2-1]: a protocol name other than "MQTT" is refused and the connection
/// closed; Starling tells a client that declared level 5 so with a 5.0 CONNACK 0x84
/// (the MAY of the statement).
#[tokio::test]
async fn wrong_protocol_name_is_refused() {
    let broker = BrokerProcess::start();
    bounded(async {
        let reason = refused(&broker, &connect_v5_raw(b"MQTX", 0x02, &mqtt_str(b"pn"))).await;
        assert_eq!(reason, Some(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION));
    })
    .await;
}

/// [MQTT-3.1.2-11], [MQTT-3.1.2-12], [MQTT-3.1.2-13]: Will QoS must be 0 and Will
/// Retain 0 when the Will Flag is 0, and Will QoS 3 is never valid: each is refused
/// as malformed and the connection closed.
#[tokio::test]
async fn will_qos_and_retain_are_checked_against_the_will_flag() {
    let broker = BrokerProcess::start();
    bounded(async {
        let id = mqtt_str(b"wf");
        refused_as_malformed(
            &broker,
            "will QoS 1, flag 0",
            &connect_v5_raw(b"MQTT", 0x0A, &id),
        )
        .await;
        refused_as_malformed(
            &broker,
            "will retain, flag 0",
            &connect_v5_raw(b"MQTT", 0x22, &id),
        )
        .await;
        let mut will = id.clone();
        will.push(0);
        will.extend(mqtt_str(b"w/t"));
        will.extend(mqtt_str(b"x"));
        refused_as_malformed(&broker, "will QoS 3", &connect_v5_raw(b"MQTT", 0x1E, &will)).await;
        // The same will with QoS 2 is fine.
        let mut ok = RawClient::open(broker.addr()).await;
        ok.set_version(starling::protocol::ProtocolVersion::V5);
        ok.send_raw(&connect_v5_raw(b"MQTT", 0x16, &will)).await;
        match ok.expect_packet("CONNACK").await {
            Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::SUCCESS),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    })
    .await;
}

/// [MQTT-3.1.2-9], [MQTT-3.1.2-16]..[MQTT-3.1.2-19], [MQTT-3.1.3-3]: the payload holds
/// exactly the fields the flags announce. A Will Flag, User Name Flag or Password
/// Flag without its field, a User Name or Password without its flag, and a payload
/// without a Client Identifier are malformed: refused and closed.
#[tokio::test]
async fn payload_fields_must_match_the_flags() {
    let broker = BrokerProcess::start();
    bounded(async {
        let id = mqtt_str(b"pf");
        let with = |extra: &[&[u8]]| {
            let mut p = id.clone();
            for e in extra {
                p.extend(mqtt_str(e));
            }
            p
        };
        let cases: [(&str, u8, Vec<u8>); 6] = [
            ("will flag without will fields", 0x06, id.clone()),
            ("user name flag without user name", 0x82, id.clone()),
            ("password flag without password", 0x42, id.clone()),
            ("user name without its flag", 0x02, with(&[b"user"])),
            ("password without its flag", 0x82, with(&[b"user", b"pw"])),
            ("no client identifier", 0x02, Vec::new()),
        ];
        for (what, flags, payload) in cases {
            refused_as_malformed(&broker, what, &connect_v5_raw(b"MQTT", flags, &payload)).await;
        }
    })
    .await;
}

/// [MQTT-3.1.3-4], [MQTT-3.1.3-11], [MQTT-3.1.3-12]: the Client Identifier, Will Topic
/// and User Name are UTF-8 Encoded Strings; ill-formed UTF-8 in any of them makes the
/// CONNECT malformed: refused and closed.
#[tokio::test]
async fn client_id_will_topic_and_user_name_must_be_utf8() {
    let broker = BrokerProcess::start();
    bounded(async {
        let bad: &[u8] = &[b'a', 0xC3, 0x28];
        refused_as_malformed(
            &broker,
            "client id",
            &connect_v5_raw(b"MQTT", 0x02, &mqtt_str(bad)),
        )
        .await;
        let mut will = mqtt_str(b"u8");
        will.push(0);
        will.extend(mqtt_str(bad));
        will.extend(mqtt_str(b"x"));
        refused_as_malformed(&broker, "will topic", &connect_v5_raw(b"MQTT", 0x06, &will)).await;
        let mut user = mqtt_str(b"u8");
        user.extend(mqtt_str(bad));
        refused_as_malformed(&broker, "user name", &connect_v5_raw(b"MQTT", 0x82, &user)).await;
    })
    .await;
}

/// [MQTT-3.1.3-1]: the payload fields in the order Client Identifier, Will Properties,
/// Will Topic, Will Payload, User Name, Password: a CONNECT with all of them (built by
/// hand) is accepted by a broker that checks the password, and the will it publishes
/// has the topic, payload and Will Properties given.
#[tokio::test]
async fn payload_fields_in_order_are_all_read() {
    let auth = crate::auth_fixture::PasswordBroker::start();
    let broker = &auth.broker;
    bounded(async {
        let mut obs = RawClient::open(broker.addr()).await;
        obs.set_version(starling::protocol::ProtocolVersion::V5);
        let ack = obs
            .connect(crate::auth_fixture::login("fo-obs", "alice", "wonderland"))
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        obs.subscribe(&[("fo/#", QoS::AtLeastOnce)]).await;

        let mut payload = mqtt_str(b"fo-client");
        let will_props = [0x03u8, 0x00, 0x04, b't', b'e', b'x', b't']; // Content Type
        payload.extend(varint(will_props.len()));
        payload.extend_from_slice(&will_props);
        payload.extend(mqtt_str(b"fo/will"));
        payload.extend(mqtt_str(b"will payload"));
        payload.extend(mqtt_str(b"alice"));
        payload.extend(mqtt_str(b"wonderland"));
        // User Name, Password, Will QoS 1, Will Flag, Clean Start.
        let flags = 0x80 | 0x40 | 0x08 | 0x04 | 0x02;
        let mut c = RawClient::open(broker.addr()).await;
        c.set_version(starling::protocol::ProtocolVersion::V5);
        c.send_raw(&connect_v5_raw(b"MQTT", flags, &payload)).await;
        match c.expect_packet("CONNACK").await {
            Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::SUCCESS),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        drop(c);
        let will = obs.recv_publish_acked().await;
        assert_eq!(will.topic.as_str(), "fo/will");
        assert_eq!(will.payload.as_ref(), b"will payload");
        assert_eq!(will.properties.content_type.as_deref(), Some("text"));
    })
    .await;
}

/// [MQTT-3.1.3-8]: a Client Identifier the server does not allow (longer than
/// `max_client_id_len`, 256 by default) gets CONNACK 0x85 and the connection closes.
#[tokio::test]
async fn rejected_client_identifier_gets_0x85_and_close() {
    let broker = BrokerProcess::start();
    bounded(async {
        let long = "x".repeat(300);
        let reason = refused(&broker, &raw_connect(5, 0x02, &long, Some(&[]))).await;
        assert_eq!(reason, Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID));
    })
    .await;
}

/// [MQTT-3.1.4-2], [MQTT-3.2.2-6]: a CONNECT that fails authentication is refused
/// (CONNACK 0x86, Session Present 0 even though a session exists for the Client
/// Identifier and Clean Start is 0) and the connection is closed; the session is
/// untouched.
#[tokio::test]
async fn failed_authentication_closes_without_session_present() {
    let auth = crate::auth_fixture::PasswordBroker::start();
    let broker = &auth.broker;
    bounded(async {
        let mut login = crate::auth_fixture::login("auth-s", "alice", "wonderland");
        login.clean_start = false;
        login.properties = crate::common::session_expiry(300);
        let mut c = RawClient::open(broker.addr()).await;
        assert_eq!(c.connect(login.clone()).await.reason, ReasonCode::SUCCESS);
        c.disconnect().await;

        let mut bad = login.clone();
        bad.password = Some(bytes::Bytes::from_static(b"wrong"));
        let mut c = RawClient::open(broker.addr()).await;
        c.set_version(starling::protocol::ProtocolVersion::V5);
        c.send(Packet::Connect(Box::new(bad))).await;
        let ack = c
            .expect_connect_refused()
            .await
            .expect("a refusing CONNACK");
        assert_eq!(ack.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        assert!(!ack.session_present);

        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect(login).await;
        assert!(
            ack.session_present,
            "the refused CONNECT left the session alone"
        );
    })
    .await;
}

/// [MQTT-3.1.4-6]: after a refused CONNECT nothing the client sent is processed: a
/// retained PUBLISH and a SUBSCRIBE written right behind the CONNECT (same write)
/// leave no retained message and no subscription behind.
#[tokio::test]
async fn nothing_after_a_refused_connect_is_processed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut bytes = raw_connect(5, 0x02, &"y".repeat(300), Some(&[]));
        let mut publish = mqtt_str(b"rj/t");
        publish.push(0); // no properties
        publish.extend_from_slice(b"sneaked");
        bytes.extend(raw_packet(0x31, &publish)); // QoS 0, RETAIN 1
        let mut subscribe = vec![0x00, 0x01, 0x00];
        subscribe.extend(mqtt_str(b"rj/#"));
        subscribe.push(0x00);
        bytes.extend(raw_packet(0x82, &subscribe));
        let reason = refused(&broker, &bytes).await;
        assert_eq!(reason, Some(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID));

        let mut c = RawClient::connected_v5(broker.addr(), "rj-check", Properties::default()).await;
        c.subscribe(&[("rj/#", QoS::AtMostOnce)]).await;
        c.expect_nothing(Duration::from_millis(500)).await;
        // The subscription works: the silence above was no retained message.
        c.publish("rj/t", QoS::AtMostOnce, false, b"now").await;
        assert_eq!(c.expect_publish().await.payload.as_ref(), b"now");
    })
    .await;
}
