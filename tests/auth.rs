//! Authentication over raw sockets: `[auth] allow_anonymous`, the password file (plain
//! username/password, 3.1.1 and 5.0) and SCRAM-SHA-256 enhanced authentication (5.0
//! AUTH exchange). The test computes hashes and SCRAM proofs itself, independently of
//! the broker's auth module.

mod common;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use common::{bounded, connect_packet, BrokerProcess, Event, RawClient, RECV_TIMEOUT};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use starling::protocol::{
    Auth, ConnAck, Packet, Properties, PropertyFields, ProtocolVersion, ReasonCode,
};

const SALT: &[u8] = b"0123456789abcdef";
const ITERATIONS: u32 = 4096;

fn salted(password: &str) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), SALT, ITERATIONS)
}

/// A broker whose password file holds alice/wonderland and bob/builder.
struct Fixture {
    broker: BrokerProcess,
    _dir: tempfile::TempDir,
}

fn start(allow_anonymous: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("passwd");
    let line = |user: &str, pw: &str| {
        let (s, h) = (B64.encode(SALT), B64.encode(salted(pw)));
        format!("{user}:pbkdf2-sha256${ITERATIONS}${s}${h}\n")
    };
    let text = format!(
        "# test users\n{}{}",
        line("alice", "wonderland"),
        line("bob", "builder")
    );
    std::fs::write(&path, text).expect("write password file");
    let toml = format!(
        "[auth]\nallow_anonymous = {allow_anonymous}\npassword_file = {:?}\n",
        path.display().to_string()
    );
    Fixture {
        broker: BrokerProcess::start_with_config(Some(&toml)),
        _dir: dir,
    }
}

async fn connect(
    f: &Fixture,
    version: ProtocolVersion,
    user: Option<&str>,
    password: Option<&str>,
) -> (RawClient, ConnAck) {
    let mut c = RawClient::open(f.broker.addr()).await;
    let mut p = connect_packet(version, "authtest", true, 30);
    p.username = user.map(Into::into);
    p.password = password.map(|s| Bytes::copy_from_slice(s.as_bytes()));
    let ack = c.connect(p).await;
    (c, ack)
}

async fn assert_refused(
    f: &Fixture,
    v: ProtocolVersion,
    user: Option<&str>,
    pw: Option<&str>,
    want: ReasonCode,
) {
    let (mut c, ack) = connect(f, v, user, pw).await;
    assert_eq!(ack.reason, want, "{v:?} user {user:?}");
    assert!(!ack.session_present);
    c.expect_closed().await;
}

#[tokio::test]
async fn anonymous_refused_when_disallowed() {
    let f = start(false);
    bounded(async {
        let v3 = ProtocolVersion::V311;
        let (mut c, ack) = connect(&f, v3, None, None).await;
        assert_eq!(ack.reason.to_v3_connack(), 5);
        c.expect_closed().await;
        assert_refused(
            &f,
            ProtocolVersion::V5,
            None,
            None,
            ReasonCode::NOT_AUTHORIZED,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn anonymous_allowed_by_default_alongside_passwords() {
    let f = start(true);
    bounded(async {
        let (_c, ack) = connect(&f, ProtocolVersion::V5, None, None).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        // A username given must still be right.
        let bad = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
        assert_refused(&f, ProtocolVersion::V5, Some("alice"), Some("x"), bad).await;
    })
    .await;
}

#[tokio::test]
async fn wrong_password_refused() {
    let f = start(false);
    bounded(async {
        let (mut c, ack) = connect(&f, ProtocolVersion::V311, Some("alice"), Some("builder")).await;
        assert_eq!(ack.reason.to_v3_connack(), 4);
        c.expect_closed().await;
        let bad = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
        let v5 = ProtocolVersion::V5;
        assert_refused(&f, v5, Some("alice"), Some("builder"), bad).await;
        assert_refused(&f, v5, Some("alice"), None, bad).await;
        assert_refused(&f, v5, Some("carol"), Some("wonderland"), bad).await;
    })
    .await;
}

#[tokio::test]
async fn right_password_accepted() {
    let f = start(false);
    bounded(async {
        for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let (mut c, ack) = connect(&f, v, Some("alice"), Some("wonderland")).await;
            assert_eq!(ack.reason, ReasonCode::SUCCESS, "{v:?}");
            c.send(Packet::PingReq).await;
            assert!(matches!(
                c.expect_packet("PINGRESP").await,
                Packet::PingResp
            ));
        }
    })
    .await;
}

// ---- SCRAM-SHA-256, client side written here from RFC 5802 ----

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac key");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn attr<'a>(msg: &'a str, key: &str) -> &'a str {
    msg.split(',')
        .find_map(|p| p.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {msg}"))
}

fn scram_props(data: &[u8]) -> Properties {
    Properties::from(PropertyFields {
        authentication_method: Some("SCRAM-SHA-256".into()),
        authentication_data: Some(Bytes::copy_from_slice(data)),
        ..PropertyFields::default()
    })
}

/// Runs the exchange as `user` with `password`; returns the CONNACK and the expected
/// server signature.
async fn scram(f: &Fixture, user: &str, password: &str) -> (RawClient, ConnAck, String) {
    let mut c = RawClient::open(f.broker.addr()).await;
    let client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
    let first_bare = format!("n={user},r={client_nonce}");
    let mut p = connect_packet(ProtocolVersion::V5, "scram", true, 30);
    p.properties = scram_props(format!("n,,{first_bare}").as_bytes());
    c.set_version(ProtocolVersion::V5);
    c.send(Packet::Connect(Box::new(p))).await;
    let auth = match c.next_event(RECV_TIMEOUT).await {
        Event::Packet(Packet::Auth(a)) => a,
        other => panic!("expected AUTH, got {other:?}"),
    };
    assert_eq!(auth.reason, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(
        auth.properties.authentication_method.as_deref(),
        Some("SCRAM-SHA-256")
    );
    let server_first = String::from_utf8(
        auth.properties
            .authentication_data
            .clone()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let nonce = attr(&server_first, "r=");
    assert!(nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len());
    let salt = B64.decode(attr(&server_first, "s=")).unwrap();
    let iterations: u32 = attr(&server_first, "i=").parse().unwrap();
    let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), &salt, iterations);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_sig = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());
    let client_final = format!("{without_proof},p={}", B64.encode(proof));
    c.send(Packet::Auth(Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: scram_props(client_final.as_bytes()),
    }))
    .await;
    let ack = match c.next_event(RECV_TIMEOUT).await {
        Event::Packet(Packet::ConnAck(a)) => a,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    (c, ack, format!("v={}", B64.encode(server_sig)))
}

#[tokio::test]
async fn scram_sha256_exchange_succeeds() {
    let f = start(false);
    bounded(async {
        let (mut c, ack, verifier) = scram(&f, "bob", "builder").await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert_eq!(
            ack.properties.authentication_method.as_deref(),
            Some("SCRAM-SHA-256")
        );
        let data = ack
            .properties
            .authentication_data
            .clone()
            .expect("server-final");
        assert_eq!(&data[..], verifier.as_bytes());
        c.send(Packet::PingReq).await;
        assert!(matches!(
            c.expect_packet("PINGRESP").await,
            Packet::PingResp
        ));
        // Re-authentication is not offered: AUTH after CONNACK is a protocol error.
        c.send(Packet::Auth(Auth {
            reason: ReasonCode::REAUTHENTICATE,
            properties: scram_props(b"n,,n=bob,r=abc"),
        }))
        .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
    })
    .await;
}

#[tokio::test]
async fn scram_wrong_password_refused() {
    let f = start(false);
    bounded(async {
        for (user, password) in [("bob", "wonderland"), ("carol", "builder")] {
            let (mut c, ack, _) = scram(&f, user, password).await;
            assert_eq!(ack.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD, "{user}");
            c.expect_closed().await;
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_method_refused() {
    let f = start(true);
    bounded(async {
        let mut c = RawClient::open(f.broker.addr()).await;
        let mut p = connect_packet(ProtocolVersion::V5, "m", true, 30);
        p.properties.authentication_method = Some("KERBEROS".into());
        let ack = c.connect(p).await;
        assert_eq!(ack.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
        c.expect_closed().await;
    })
    .await;
}

#[tokio::test]
async fn auth_with_another_method_is_a_protocol_error() {
    let f = start(false);
    bounded(async {
        let mut c = RawClient::open(f.broker.addr()).await;
        let mut p = connect_packet(ProtocolVersion::V5, "m", true, 30);
        p.properties = scram_props(b"n,,n=bob,r=abc");
        c.set_version(ProtocolVersion::V5);
        c.send(Packet::Connect(Box::new(p))).await;
        assert!(matches!(c.expect_packet("AUTH").await, Packet::Auth(_)));
        let mut props = scram_props(b"c=biws,r=abc,p=AAAA");
        props.authentication_method = Some("OTHER".into());
        c.send(Packet::Auth(Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            properties: props,
        }))
        .await;
        match c.expect_packet("CONNACK").await {
            Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::PROTOCOL_ERROR),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        c.expect_closed().await;
    })
    .await;
}
