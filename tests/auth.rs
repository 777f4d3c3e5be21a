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
use starling::protocol::{Auth, ConnAck, Packet, Properties, ProtocolVersion, QoS, ReasonCode};

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

/// A password file line for `user` with `pw`.
fn line(user: &str, pw: &str) -> String {
    let (s, h) = (B64.encode(SALT), B64.encode(salted(pw)));
    format!("{user}:pbkdf2-sha256${ITERATIONS}${s}${h}\n")
}

fn start(allow_anonymous: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("passwd");
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
    Properties {
        authentication_method: Some("SCRAM-SHA-256".into()),
        authentication_data: Some(Bytes::copy_from_slice(data)),
        ..Properties::default()
    }
}

/// The client side of one SCRAM-SHA-256 exchange (RFC 5802, no channel binding).
struct ScramClient {
    password: String,
    first_bare: String,
    client_nonce: &'static str,
}

impl ScramClient {
    fn new(user: &str, password: &str, client_nonce: &'static str) -> ScramClient {
        ScramClient {
            password: password.to_owned(),
            first_bare: format!("n={user},r={client_nonce}"),
            client_nonce,
        }
    }

    /// client-first-message, for CONNECT or AUTH 0x19.
    fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Checks the server's AUTH 0x18 and returns (client-final-message, the server
    /// signature the server must answer with).
    fn answer(&self, auth: Auth) -> (Vec<u8>, String) {
        assert_eq!(auth.reason, ReasonCode::CONTINUE_AUTHENTICATION);
        assert_eq!(
            auth.properties.authentication_method.as_deref(),
            Some("SCRAM-SHA-256")
        );
        let data = auth.properties.authentication_data.expect("server-first");
        let server_first = String::from_utf8(data.to_vec()).unwrap();
        let nonce = attr(&server_first, "r=");
        assert!(nonce.starts_with(self.client_nonce) && nonce.len() > self.client_nonce.len());
        let salt = B64.decode(attr(&server_first, "s=")).unwrap();
        let iterations: u32 = attr(&server_first, "i=").parse().unwrap();
        let salted =
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
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
        (
            client_final.into_bytes(),
            format!("v={}", B64.encode(server_sig)),
        )
    }
}

fn auth_packet(reason: ReasonCode, data: &[u8]) -> Packet {
    Packet::Auth(Auth {
        reason,
        properties: scram_props(data),
    })
}

async fn expect_auth(c: &mut RawClient) -> Auth {
    match c.next_event(RECV_TIMEOUT).await {
        Event::Packet(Packet::Auth(a)) => a,
        other => panic!("expected AUTH, got {other:?}"),
    }
}

/// Runs the exchange as `user` with `password`; returns the CONNACK and the expected
/// server signature.
async fn scram(f: &Fixture, user: &str, password: &str) -> (RawClient, ConnAck, String) {
    let mut c = RawClient::open(f.broker.addr()).await;
    let client = ScramClient::new(user, password, "fyko+d2lbbFgONRv9qkxdawL");
    let mut p = connect_packet(ProtocolVersion::V5, "scram", true, 30);
    p.properties = scram_props(&client.first());
    c.set_version(ProtocolVersion::V5);
    c.send(Packet::Connect(Box::new(p))).await;
    let (client_final, verifier) = client.answer(expect_auth(&mut c).await);
    c.send(auth_packet(
        ReasonCode::CONTINUE_AUTHENTICATION,
        &client_final,
    ))
    .await;
    let ack = match c.next_event(RECV_TIMEOUT).await {
        Event::Packet(Packet::ConnAck(a)) => a,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    (c, ack, verifier)
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
        let data = ack.properties.authentication_data.expect("server-final");
        assert_eq!(&data[..], verifier.as_bytes());
        c.send(Packet::PingReq).await;
        assert!(matches!(
            c.expect_packet("PINGRESP").await,
            Packet::PingResp
        ));
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

// ---- re-authentication (5.0 section 4.12.1) ----

/// [MQTT-4.12.1-1]: AUTH 0x19 with the CONNECT's method starts the exchange again; the
/// server answers AUTH 0x18, then AUTH 0x00 carrying server-final; the session keeps
/// serving throughout and afterwards.
#[tokio::test]
async fn reauthentication_succeeds_and_the_session_goes_on() {
    let f = start(false);
    bounded(async {
        let (mut c, ack, _) = scram(&f, "bob", "builder").await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.subscribe(&[("re/auth", QoS::AtLeastOnce)]).await;
        for round in 0..2 {
            let client = ScramClient::new("bob", "builder", "rOprNGfwEbeRWgbNEkqO");
            c.send(auth_packet(ReasonCode::REAUTHENTICATE, &client.first()))
                .await;
            let (client_final, verifier) = client.answer(expect_auth(&mut c).await);
            c.send(auth_packet(
                ReasonCode::CONTINUE_AUTHENTICATION,
                &client_final,
            ))
            .await;
            let done = expect_auth(&mut c).await;
            assert_eq!(done.reason, ReasonCode::SUCCESS, "round {round}");
            assert_eq!(
                done.properties.authentication_method.as_deref(),
                Some("SCRAM-SHA-256")
            );
            let data = done.properties.authentication_data.expect("server-final");
            assert_eq!(&data[..], verifier.as_bytes(), "round {round}");
        }
        c.publish("re/auth", QoS::AtMostOnce, false, b"still here")
            .await;
        match c.expect_packet("PUBLISH").await {
            Packet::Publish(p) => assert_eq!(&p.payload[..], b"still here"),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    })
    .await;
}

/// [MQTT-4.12.1-2]: a failed re-authentication closes the connection, after a
/// DISCONNECT Not Authorized (0x86 is a CONNACK-only code).
#[tokio::test]
async fn failed_reauthentication_disconnects() {
    let f = start(false);
    bounded(async {
        let (mut c, ack, _) = scram(&f, "bob", "builder").await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        let client = ScramClient::new("bob", "not-the-password", "3rfcNHYJY1ZVvWVs7j");
        c.send(auth_packet(ReasonCode::REAUTHENTICATE, &client.first()))
            .await;
        let (client_final, _) = client.answer(expect_auth(&mut c).await);
        c.send(auth_packet(
            ReasonCode::CONTINUE_AUTHENTICATION,
            &client_final,
        ))
        .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::NOT_AUTHORIZED);
    })
    .await;
}

/// AUTH out of place after CONNACK is a Protocol Error (DISCONNECT 0x82): another
/// method [MQTT-4.12.1-1], 0x18 with no exchange in progress, and any AUTH from a
/// client that connected without a method [MQTT-4.12.0-7].
#[tokio::test]
async fn misplaced_auth_is_a_protocol_error() {
    let f = start(true);
    bounded(async {
        let (mut c, _, _) = scram(&f, "bob", "builder").await;
        let mut props = scram_props(b"n,,n=bob,r=abc");
        props.authentication_method = Some("OTHER".into());
        c.send(Packet::Auth(Auth {
            reason: ReasonCode::REAUTHENTICATE,
            properties: props,
        }))
        .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);

        let (mut c, _, _) = scram(&f, "bob", "builder").await;
        c.send(auth_packet(ReasonCode::CONTINUE_AUTHENTICATION, b"c=biws"))
            .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);

        let (mut c, ack) = connect(&f, ProtocolVersion::V5, None, None).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.send(auth_packet(ReasonCode::REAUTHENTICATE, b"n,,n=bob,r=abc"))
            .await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
    })
    .await;
}

/// SIGHUP re-reads the password file: a changed password works at once for new
/// connections and the old one is refused; a broken file leaves the users in force.
#[tokio::test]
async fn sighup_reloads_the_password_file() {
    let f = start(false);
    bounded(async {
        let path = f._dir.path().join("passwd");
        let v = ProtocolVersion::V5;
        let (_, ack) = connect(&f, v, Some("bob"), Some("builder")).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        std::fs::write(&path, line("bob", "rebuilt")).expect("rewrite password file");
        let hup = |pid: u32| {
            // SAFETY: kill(2) on our own child's pid with a valid signal number.
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
        };
        hup(f.broker.pid());
        let mut reloaded = false;
        for _ in 0..50 {
            let (_, ack) = connect(&f, v, Some("bob"), Some("rebuilt")).await;
            if ack.reason == ReasonCode::SUCCESS {
                reloaded = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(reloaded, "the new password never worked after SIGHUP");
        assert_refused(
            &f,
            v,
            Some("bob"),
            Some("builder"),
            ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        )
        .await;
        std::fs::write(&path, "garbage without a colon\n").expect("break password file");
        hup(f.broker.pid());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (_, ack) = connect(&f, v, Some("bob"), Some("rebuilt")).await;
        assert_eq!(
            ack.reason,
            ReasonCode::SUCCESS,
            "a broken file must not lock users out"
        );
    })
    .await;
}
