//! TLS listeners over the wire (the broker binary, certificates made by rcgen, Debian's
//! mosquitto_pub/mosquitto_sub): server authentication, mutual TLS, the certificate's
//! name as the username (checked by an ACL file), failed handshakes that leave the
//! broker serving, and a SIGHUP that swaps the certificate under connected clients.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::mosquitto::{assert_failed, assert_ok, mosquitto_pub, tls_args, Sub};
use common::pki::{Pair, Pki};
use common::{bounded, free_port, without_colours, BrokerProcess, RawClient};

/// A `[[listeners]]` table of kind `tls` on `port`, with `extra` settings.
fn tls_listener(port: u16, server: &Pair, extra: &str) -> String {
    format!(
        "[[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:{port}\"\ncert = {:?}\nkey = {:?}\n{extra}\n",
        server.cert.display().to_string(),
        server.key.display().to_string(),
    )
}

/// `ca = ...` for a listener.
fn ca_setting(ca: &Path) -> String {
    format!("ca = {:?}\n", ca.display().to_string())
}

const FAILED: &str = "TLS handshake failed";

/// A publish over TLS reaches a subscriber over TLS; `what` names the step.
async fn round_trip(port: u16, sub_args: &[String], pub_args: &[String], what: &str) {
    let topic = format!("tls/{what}");
    let sub = Sub::start(port, &[&topic], 1, sub_args).await;
    assert_ok(&mosquitto_pub(port, &topic, what, pub_args).await, what);
    assert_eq!(sub.finish().await, vec![what.to_owned()], "{what}");
}

#[tokio::test]
async fn mosquitto_clients_over_tls_and_handshakes_that_fail() {
    let pki = Pki::new();
    let (port, expired_port) = (free_port(), free_port());
    let toml =
        tls_listener(port, &pki.server, "") + &tls_listener(expired_port, &pki.server_expired, "");
    let mut broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        let ca = tls_args(&pki.ca.file, None);
        // A 5.0 subscriber over TLS 1.3 with ALPN mqtt, a 3.1.1 publisher over TLS 1.2.
        let v5_alpn = ["-V", "mqttv5", "--tls-alpn", "mqtt"].map(String::from);
        let v311_tls12 = ["-V", "mqttv311", "--tls-version", "tlsv1.2"].map(String::from);
        let sub = [ca.clone(), v5_alpn.into()].concat();
        let publisher = [ca.clone(), v311_tls12.into()].concat();
        round_trip(port, &sub, &publisher, "v5-sub-v311-pub").await;
        // Plain MQTT on the TLS port: no CONNACK, and the log says why.
        let mut plain = RawClient::open(([127, 0, 0, 1], port).into()).await;
        plain
            .send_raw(&common::raw_connect(4, 2, "plain", None))
            .await;
        let answer = plain.read_raw_until_closed(Duration::from_secs(5)).await;
        assert_ne!(answer.first(), Some(&0x20), "no CONNACK in clear");
        broker.logged(FAILED, 1).await;
        // The client does not trust the server's CA.
        let wrong_ca = tls_args(&pki.other_ca.file, None);
        assert_failed(&mosquitto_pub(port, "t", "x", &wrong_ca).await, "wrong CA");
        broker.logged(FAILED, 2).await;
        // The server's certificate expired.
        let out = mosquitto_pub(expired_port, "t", "x", &ca).await;
        assert_failed(&out, "expired server certificate");
        broker.logged(FAILED, 3).await;
        let log = without_colours(&broker.log_text());
        let reasons: Vec<&str> = log.lines().filter(|l| l.contains(FAILED)).collect();
        assert!(reasons[0].contains("peer=127.0.0.1:"), "{reasons:?}");
        assert!(reasons[1].contains("UnknownCA"), "{reasons:?}");
        assert!(reasons[2].contains("CertificateExpired"), "{reasons:?}");
        broker.assert_alive();
        round_trip(port, &ca, &ca, "still-serving").await;
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_admits_only_certificates_the_ca_signed() {
    let pki = Pki::new();
    let port = free_port();
    let extra = ca_setting(&pki.ca.file) + "require_client_cert = true\n";
    let mut broker =
        BrokerProcess::start_with_config(Some(&tls_listener(port, &pki.server, &extra)));
    bounded(async {
        let alice = tls_args(&pki.ca.file, Some(&pki.alice));
        let bob = tls_args(&pki.ca.file, Some(&pki.bob));
        round_trip(port, &alice, &bob, "mutual").await;
        let refused = [
            (
                "no client certificate",
                tls_args(&pki.ca.file, None),
                "peer sent no certificates",
            ),
            (
                "another CA's",
                tls_args(&pki.ca.file, Some(&pki.alice_other_ca)),
                "UnknownIssuer",
            ),
            (
                "expired",
                tls_args(&pki.ca.file, Some(&pki.alice_expired)),
                "certificate expired",
            ),
        ];
        for (n, (what, args, reason)) in refused.into_iter().enumerate() {
            assert_failed(&mosquitto_pub(port, "t", "x", &args).await, what);
            broker.logged(FAILED, n + 1).await;
            let log = without_colours(&broker.log_text());
            let line = log.lines().filter(|l| l.contains(FAILED)).nth(n);
            let line = line.expect("a handshake failure line");
            assert!(line.contains(reason), "{what}: {line}");
            assert!(line.contains("peer=127.0.0.1:"), "{what}: {line}");
        }
        broker.assert_alive();
        round_trip(port, &bob, &alice, "still-mutual").await;
    })
    .await;
}

#[tokio::test]
async fn identity_as_username_makes_the_certificate_name_the_username() {
    let pki = Pki::new();
    let acl = pki.dir().join("acl");
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite alice/#\nuser bob\ntopic readwrite bob/#\n",
    )
    .expect("write acl");
    let port = free_port();
    let extra = ca_setting(&pki.ca.file) + "identity_as_username = true\n";
    let toml = tls_listener(port, &pki.server, &extra)
        + &format!(
            "[auth]\nallow_anonymous = false\nacl_file = {:?}\n",
            acl.display().to_string()
        );
    let broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        // alice's certificate; the CONNECT claims bob, with no password: the
        // certificate is the credential, and its name the one the ACL sees.
        let claims_bob: Vec<String> = ["-u", "bob", "-V", "mqttv311"].map(String::from).into();
        let alice = [tls_args(&pki.ca.file, Some(&pki.alice)), claims_bob].concat();
        let sub = Sub::start(port, &["alice/#", "bob/#"], 1, &alice).await;
        assert_eq!(
            sub.granted(),
            vec![1, 128],
            "alice/# granted, bob/# refused"
        );
        // bob may not write under alice/: acknowledged (3.1.1) and dropped.
        let bob = tls_args(&pki.ca.file, Some(&pki.bob));
        assert_ok(
            &mosquitto_pub(port, "alice/x", "from-bob", &bob).await,
            "bob",
        );
        let alice_pub = tls_args(&pki.ca.file, Some(&pki.alice));
        let out = mosquitto_pub(port, "alice/x", "from-alice", &alice_pub).await;
        assert_ok(&out, "alice");
        assert_eq!(sub.finish().await, vec!["from-alice".to_owned()]);
        // Without a certificate the CONNECT's credentials are checked as usual.
        let no_cert = [
            tls_args(&pki.ca.file, None),
            ["-u", "alice"].map(String::from).into(),
        ];
        let out = mosquitto_pub(port, "alice/x", "x", &no_cert.concat()).await;
        assert_failed(&out, "no certificate, no password");
        assert!(
            broker.log_text().contains("authentication failed"),
            "{}",
            broker.log_text()
        );
    })
    .await;
}

#[tokio::test]
async fn sighup_reloads_the_server_certificate_and_connected_clients_stay() {
    let pki = Pki::new();
    let live = Pair {
        cert: pki.dir().join("live.pem"),
        key: pki.dir().join("live.key"),
    };
    let install = |from: &Pair| {
        std::fs::copy(&from.cert, &live.cert).expect("copy cert");
        std::fs::copy(&from.key, &live.key).expect("copy key");
    };
    install(&pki.server);
    let port = free_port();
    let broker = BrokerProcess::start_with_config(Some(&tls_listener(port, &live, "")));
    bounded(async {
        let (first, second) = (
            tls_args(&pki.ca.file, None),
            tls_args(&pki.other_ca.file, None),
        );
        let sub = Sub::start(port, &["reload/#"], 2, &first).await;
        assert_failed(
            &mosquitto_pub(port, "reload/x", "x", &second).await,
            "before",
        );
        install(&pki.server_other);
        hup(broker.pid());
        broker.logged("TLS certificate reloaded", 1).await;
        let out = mosquitto_pub(port, "reload/x", "after", &second).await;
        assert_ok(&out, "the second CA after the reload");
        assert_failed(
            &mosquitto_pub(port, "reload/x", "x", &first).await,
            "old CA",
        );
        // A file that does not load keeps the certificate in force.
        std::fs::write(&live.cert, "not a certificate").expect("spoil");
        hup(broker.pid());
        broker.logged("TLS files not reloaded", 1).await;
        assert_ok(
            &mosquitto_pub(port, "reload/x", "kept", &second).await,
            "kept",
        );
        let (payloads, connacks) = sub.finish_counting_connacks().await;
        assert_eq!(payloads, vec!["after".to_owned(), "kept".to_owned()]);
        assert_eq!(connacks, 1, "the subscriber kept its first connection");
    })
    .await;
}

/// rumqttc (3.1.1) over TLS to 127.0.0.1 (an IP SAN of the server certificate),
/// offering ALPN `mqtt`.
fn rumqttc_tls(id: &str, port: u16, ca: &Path) -> rumqttc::MqttOptions {
    let ca = std::fs::read(ca).expect("read CA");
    let tls = rumqttc::TlsConfiguration::Simple {
        ca,
        alpn: Some(vec![b"mqtt".to_vec()]),
        client_auth: None,
    };
    let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    opts.set_transport(rumqttc::Transport::tls_with_config(tls));
    opts
}

/// Polls until the CONNACK (or the error that replaced it), within 5 s.
async fn connack(
    events: &mut rumqttc::EventLoop,
) -> Result<rumqttc::ConnAck, rumqttc::ConnectionError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout_at(deadline, events.poll()).await;
        match event.expect("a CONNACK within 5 s")? {
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) => return Ok(ack),
            _ => continue,
        }
    }
}

/// Polls until an incoming packet `pick` accepts, within 5 s.
async fn incoming<T>(
    events: &mut rumqttc::EventLoop,
    pick: impl Fn(rumqttc::Packet) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout_at(deadline, events.poll()).await;
        let event = event.expect("a packet within 5 s").expect("connection");
        if let Some(found) = match event {
            rumqttc::Event::Incoming(p) => pick(p),
            rumqttc::Event::Outgoing(_) => None,
        } {
            return found;
        }
    }
}

#[tokio::test]
async fn a_rust_client_over_tls_within_the_listener_connection_limit() {
    use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, QoS};
    let pki = Pki::new();
    let port = free_port();
    let toml = tls_listener(port, &pki.server, "max_connections = 2\n");
    let broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        let (sub, mut sub_events) = AsyncClient::new(rumqttc_tls("sub", port, &pki.ca.file), 10);
        assert_eq!(
            connack(&mut sub_events).await.expect("sub").code,
            ConnectReturnCode::Success
        );
        sub.subscribe("rust/#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let suback = |p| matches!(p, rumqttc::Packet::SubAck(_)).then_some(());
        incoming(&mut sub_events, suback).await;
        let (publisher, mut pub_events) =
            AsyncClient::new(rumqttc_tls("pub", port, &pki.ca.file), 10);
        assert!(connack(&mut pub_events).await.is_ok());
        publisher
            .publish("rust/x", QoS::AtLeastOnce, false, &b"over tls"[..])
            .await
            .expect("publish");
        let pumping = tokio::spawn(async move {
            // Drives the publisher's event loop (its PUBLISH and PUBACK).
            while pub_events.poll().await.is_ok() {}
        });
        let publish = |p| match p {
            rumqttc::Packet::Publish(p) => Some(p),
            _ => None,
        };
        assert_eq!(
            &incoming(&mut sub_events, publish).await.payload[..],
            b"over tls"
        );
        // A third connection on this listener is refused as past the global limit;
        // the plain listener still takes clients.
        let (_c, mut third) = AsyncClient::new(rumqttc_tls("third", port, &pki.ca.file), 10);
        match connack(&mut third).await {
            Err(ConnectionError::ConnectionRefused(code)) => {
                assert_eq!(code, ConnectReturnCode::ServiceUnavailable)
            }
            other => panic!("expected a refusal: {other:?}"),
        }
        RawClient::connected_v311(broker.addr(), "plain", true).await;
        // Once a connection closes, its slot is free again.
        pumping.abort();
        drop(publisher);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_c, mut again) = AsyncClient::new(rumqttc_tls("again", port, &pki.ca.file), 10);
            match connack(&mut again).await {
                Ok(ack) if ack.code == ConnectReturnCode::Success => break,
                other => assert!(Instant::now() < deadline, "never admitted: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// A TLS client on `port` trusting `ca`, with the server name 127.0.0.1.
async fn raw_tls(port: u16, ca: &Path) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA")).expect("root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    // A small receive buffer: a client that reads slowly soon leaves the broker's
    // socket full.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let tcp = socket.connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// Reads until `needle` has arrived (bounded), at most `chunk` bytes a read, pausing
/// `pause` after each.
async fn read_until(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    needle: &[u8],
    within: Duration,
    (chunk, pause): (usize, Duration),
) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; chunk];
    let deadline = tokio::time::Instant::now() + within;
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let read = tokio::time::timeout_at(deadline, tls.read(&mut chunk)).await;
        let n = read
            .unwrap_or_else(|_| panic!("{needle:?} not among the {} bytes read", seen.len()))
            .expect("read");
        assert!(n > 0, "closed before {needle:?}");
        // Only the tail can still hold the start of the needle.
        let keep = seen.len().saturating_sub(needle.len());
        seen.drain(..keep);
        seen.extend_from_slice(&chunk[..n]);
        tokio::time::sleep(pause).await;
    }
}

/// Reading at full speed.
const FAST: (usize, Duration) = (64 * 1024, Duration::ZERO);

#[tokio::test]
async fn a_slow_reader_gets_everything_once_it_reads() {
    use tokio::io::AsyncWriteExt;
    let pki = Pki::new();
    let port = free_port();
    let broker = BrokerProcess::start_with_config(Some(&tls_listener(port, &pki.server, "")));
    bounded(async {
        let mut sub = raw_tls(port, &pki.ca.file).await;
        sub.write_all(&common::raw_connect(4, 2, "slow", None))
            .await
            .expect("CONNECT");
        read_until(&mut sub, &[0x20, 2, 0, 0], Duration::from_secs(5), FAST).await;
        let mut body = vec![0, 1];
        body.extend(common::mqtt_str(b"slow/#"));
        body.push(0);
        sub.write_all(&common::raw_packet(0x82, &body))
            .await
            .expect("SUBSCRIBE");
        read_until(&mut sub, &[0x90, 3, 0, 1, 0], Duration::from_secs(5), FAST).await;
        // The subscriber reads slowly: the broker's socket stays full, so its last TLS
        // records are still waiting in rustls when the last message was handed over,
        // and must go out once the socket drains.
        let mut publisher = RawClient::connected_v311(broker.addr(), "fast", true).await;
        let payload = vec![b'x'; 1024];
        for _ in 0..3000 {
            publisher
                .publish(
                    "slow/x",
                    starling::protocol::QoS::AtMostOnce,
                    false,
                    &payload,
                )
                .await;
        }
        let last = starling::protocol::QoS::AtLeastOnce;
        publisher.publish("slow/x", last, false, b"the-end").await;
        let slowly = (4096, Duration::from_millis(1));
        read_until(&mut sub, b"the-end", Duration::from_secs(15), slowly).await;
    })
    .await;
}

fn hup(pid: u32) {
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
}
