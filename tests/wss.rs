//! MQTT over WebSocket over TLS (`kind = "wss"` listeners) against the broker binary:
//! paho-mqtt's websockets transport with TLS and MQTT.js under node verifying the
//! broker against the test's CA, and a raw client that sends a PROXY header, shakes
//! hands over TLS with a client certificate, upgrades, and is known by the certificate's
//! name. Missing python3/paho or node/MQTT.js fail the tests: run scripts/test.sh.

mod common;

use std::sync::Arc;

use bytes::BytesMut;
use common::pki::{Pair, Pki};
use common::{bounded, free_port, mqttjs_round_trip, paho_round_trip, BrokerProcess, RECV_TIMEOUT};
use futures::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use starling::protocol::{MqttCodec, Packet, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::codec::Decoder;

/// A `wss` listener on `port` with the server certificate and `extra` settings.
fn wss_listener(port: u16, server: &Pair, extra: &str) -> String {
    format!(
        "[[listeners]]\nkind = \"wss\"\nbind = \"127.0.0.1:{port}\"\ncert = {:?}\nkey = {:?}\n{extra}\n",
        server.cert.display().to_string(),
        server.key.display().to_string(),
    )
}

/// A broker (one worker) with a plain `wss` listener; returns it and the wss port.
fn wss_broker(pki: &Pki) -> (BrokerProcess, u16) {
    let port = free_port();
    let toml = format!(
        "[server]\nworkers = 1\n\n{}",
        wss_listener(port, &pki.server, "")
    );
    (BrokerProcess::start_with_config(Some(&toml)), port)
}

/// tests/py/roundtrip.py (QoS 0/1/2 with paho) over wss, verifying the broker's
/// certificate against the test CA.
fn paho_over_wss(version: &str) {
    let pki = Pki::new();
    let (_broker, port) = wss_broker(&pki);
    let env = [
        ("MQTT_TRANSPORT", "websockets".as_ref()),
        ("MQTT_CAFILE", pki.ca.file.as_os_str()),
    ];
    paho_round_trip(port, version, &env, "over wss");
}

#[test]
fn paho_over_wss_v311() {
    paho_over_wss("311");
}

#[test]
fn paho_over_wss_v5() {
    paho_over_wss("5");
}

/// tests/js/ws_roundtrip.mjs over wss: QoS 0/1/2 and a retained message.
fn mqttjs_over_wss(version: &str) {
    let pki = Pki::new();
    let (_broker, port) = wss_broker(&pki);
    let url = format!("wss://127.0.0.1:{port}/mqtt");
    mqttjs_round_trip(&url, version, &[("MQTT_CA", pki.ca.file.as_os_str())]);
}

#[test]
fn mqttjs_over_wss_v311() {
    mqttjs_over_wss("4");
}

#[test]
fn mqttjs_over_wss_v5() {
    mqttjs_over_wss("5");
}

/// A TLS connector trusting the test CA and presenting `client`'s certificate.
fn connector(pki: &Pki, client: &Pair) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki.ca.file).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&client.cert)
        .expect("client cert file")
        .map(|c| c.expect("client cert PEM"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&client.key).expect("client key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client certificate");
    TlsConnector::from(Arc::new(config))
}

/// A WebSocket (subprotocol `mqtt`) over `stream`.
async fn upgrade<S>(stream: S, port: u16) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let url = format!("wss://127.0.0.1:{port}/mqtt");
    let mut request = url.into_client_request().expect("request");
    let offer = "mqtt".parse().expect("header value");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offer);
    let (ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("WebSocket handshake");
    let selected = response.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(selected.and_then(|v| v.to_str().ok()), Some("mqtt"));
    ws
}

/// The next packet from binary messages (3.1.1).
async fn next_packet<S>(ws: &mut WebSocketStream<S>, buf: &mut BytesMut) -> Packet
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut codec = MqttCodec::new(1 << 20);
    codec.set_version(ProtocolVersion::V311);
    for _ in 0..100 {
        if let Some(p) = codec.decode(buf).expect("decodes") {
            return p;
        }
        let next = tokio::time::timeout(RECV_TIMEOUT, ws.next()).await;
        match next.expect("a message in time") {
            Some(Ok(Message::Binary(data))) => buf.extend_from_slice(&data),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
    panic!("no whole packet in 100 messages");
}

// PROXY header, then TLS with a client certificate, then the WebSocket upgrade: the
// certificate's CN (alice) is the username, so without any password the client is in
// (anonymous clients are not) and the ACL gives it alice/# but not bob/#. A connection
// without the PROXY header is refused and logged; the first one is still served.
#[actix_rt::test]
async fn proxy_then_tls_client_certificate_then_websocket() {
    let pki = Pki::new();
    let port = free_port();
    let acl = pki.dir().join("acl");
    std::fs::write(&acl, "user alice\ntopic readwrite alice/#\n").expect("write acl");
    let extra = format!(
        "ca = {:?}\nrequire_client_cert = true\nidentity_as_username = true\nproxy_protocol = true\n",
        pki.ca.file.display().to_string()
    );
    let toml = format!(
        "[server]\nworkers = 1\n\n[auth]\nallow_anonymous = false\nacl_file = {:?}\n\n{}",
        acl.display().to_string(),
        wss_listener(port, &pki.server, &extra)
    );
    let mut broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tcp.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 8883\r\n")
            .await
            .expect("PROXY header");
        let name = ServerName::try_from("localhost").expect("server name");
        let tls = connector(&pki, &pki.alice).connect(name, tcp).await;
        let mut ws = upgrade(tls.expect("TLS handshake"), port).await;
        let mut buf = BytesMut::new();
        let connect = common::raw_connect(4, 0x02, "wss-alice", None);
        ws.send(Message::binary(connect)).await.expect("send");
        let ack = next_packet(&mut ws, &mut buf).await;
        assert!(
            matches!(&ack, Packet::ConnAck(a) if a.reason.0 == 0),
            "{ack:?}"
        );
        for (id, filter, granted) in [(1u8, "alice/#", 0x00u8), (2, "bob/#", 0x80)] {
            let mut body = vec![0, id];
            body.extend(common::mqtt_str(filter.as_bytes()));
            body.push(0);
            ws.send(Message::binary(common::raw_packet(0x82, &body)))
                .await
                .expect("send");
            match next_packet(&mut ws, &mut buf).await {
                Packet::SubAck(s) => {
                    assert_eq!(s.reasons.iter().map(|r| r.0).collect::<Vec<_>>(), [granted])
                }
                other => panic!("expected SUBACK for {filter}, got {other:?}"),
            }
        }
        // Without the header, TLS bytes are not a PROXY header: refused, logged.
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("server name");
        let refused = connector(&pki, &pki.alice).connect(name, tcp).await;
        assert!(refused.is_err(), "a TLS handshake without the PROXY header");
        broker.logged("PROXY protocol header refused", 1).await;
        // The first connection is still served: its own publish comes back.
        let publish = common::raw_packet(0x30, b"\x00\x07alice/xstill here");
        ws.send(Message::binary(publish)).await.expect("send");
        match next_packet(&mut ws, &mut buf).await {
            Packet::Publish(p) => assert_eq!(p.payload.as_ref(), b"still here"),
            other => panic!("expected the PUBLISH back, got {other:?}"),
        }
    })
    .await;
    broker.assert_alive();
}
