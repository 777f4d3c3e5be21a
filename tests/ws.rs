//! MQTT over WebSocket (`kind = "ws"` listeners, MQTT 5.0 section 6) against the broker
//! binary: paho-mqtt's websockets transport and MQTT.js under node, a raw WebSocket
//! client splitting and batching packets, a text message, and the HTTP answers to
//! requests that are not MQTT over WebSocket. tests/ws_browser.rs has the browser.
//! Missing python3/paho or node/MQTT.js fail the tests: run scripts/test.sh.

mod common;

use bytes::BytesMut;
use common::{
    bounded, free_port, mqttjs_round_trip, paho_round_trip, BrokerProcess, RawClient, Witness,
    RECV_TIMEOUT,
};
use futures::{SinkExt, StreamExt};
use starling::protocol::{encode_packet, MqttCodec, Packet, ProtocolVersion, QoS, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::codec::Decoder;

/// A broker with a `ws` listener on its own port (beside the TCP one of `--listen`).
fn ws_broker() -> (BrokerProcess, u16) {
    let port = free_port();
    let toml = format!(
        "[server]\nworkers = 1\n\n[[listeners]]\nkind = \"ws\"\nbind = \"127.0.0.1:{port}\"\n"
    );
    (BrokerProcess::start_with_config(Some(&toml)), port)
}

/// tests/py/roundtrip.py (QoS 0/1/2 with paho) with paho's websockets transport.
fn paho_over_ws(version: &str) {
    let (broker, port) = ws_broker();
    let env = [
        ("MQTT_TRANSPORT", "websockets".as_ref()),
        ("MQTT_WS_PATH", "/mqtt".as_ref()),
    ];
    paho_round_trip(port, version, &env, "over ws");
    assert!(broker.log_text().contains("listening"));
}

#[test]
fn paho_over_websocket_v311() {
    paho_over_ws("311");
}

#[test]
fn paho_over_websocket_v5() {
    paho_over_ws("5");
}

/// tests/js/ws_roundtrip.mjs: MQTT.js under node, QoS 0/1/2 and a retained message.
fn mqttjs_over_ws(version: &str) {
    let (_broker, port) = ws_broker();
    mqttjs_round_trip(&format!("ws://127.0.0.1:{port}/mqtt"), version, &[]);
}

#[test]
fn mqttjs_over_websocket_v311() {
    mqttjs_over_ws("4");
}

#[test]
fn mqttjs_over_websocket_v5() {
    mqttjs_over_ws("5");
}

/// A raw WebSocket client offering `mqtt`; asserts the broker selected it [MQTT-6.0.0-4].
async fn ws_connect(port: u16) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let url = format!("ws://127.0.0.1:{port}/mqtt");
    let mut request = url.into_client_request().expect("request");
    let offer = "mqtt".parse().expect("header value");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offer);
    let (ws, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("WebSocket handshake");
    let selected = response.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(selected.and_then(|v| v.to_str().ok()), Some("mqtt"));
    ws
}

fn encode(packets: &[Packet]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for p in packets {
        encode_packet(p, ProtocolVersion::V311, &mut buf).expect("encodable");
    }
    buf.to_vec()
}

/// The next `n` packets from binary messages, whatever their boundaries.
async fn read_packets(ws: &mut WebSocketStream<TcpStream>, n: usize) -> Vec<Packet> {
    let mut codec = MqttCodec::new(1 << 20);
    codec.set_version(ProtocolVersion::V311);
    let (mut buf, mut out) = (BytesMut::new(), Vec::new());
    while out.len() < n {
        while let Some(p) = codec.decode(&mut buf).expect("decodes") {
            out.push(p);
        }
        if out.len() >= n {
            break;
        }
        let next = tokio::time::timeout(RECV_TIMEOUT, ws.next()).await;
        match next.expect("a message in time") {
            Some(Ok(Message::Binary(data))) => buf.extend_from_slice(&data),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
    out
}

// [MQTT-6.0.0-2]: a CONNECT split over three messages, then SUBSCRIBE and PUBLISH in one
// message; a TCP client's publish reaches the WebSocket subscriber and back.
#[actix_rt::test]
async fn packets_split_across_messages_and_batched_in_one() {
    let (broker, port) = ws_broker();
    bounded(async {
        let mut ws = ws_connect(port).await;
        let connect = common::connect_packet(ProtocolVersion::V311, "ws-raw", true, 30);
        let bytes = encode(&[Packet::Connect(Box::new(connect))]);
        for part in [&bytes[..1], &bytes[1..5], &bytes[5..]] {
            ws.send(Message::binary(part.to_vec())).await.expect("send");
        }
        let acks = read_packets(&mut ws, 1).await;
        assert!(matches!(&acks[0], Packet::ConnAck(a) if a.reason == ReasonCode::SUCCESS));
        let subscribe = common::raw_packet(0x82, b"\x00\x01\x00\x04ws/t\x00");
        let mut batch = subscribe.clone();
        batch.extend(common::raw_packet(0x30, b"\x00\x04ws/tfrom-ws"));
        ws.send(Message::binary(batch)).await.expect("send");
        let got = read_packets(&mut ws, 2).await;
        assert!(matches!(&got[0], Packet::SubAck(_)), "{got:?}");
        assert!(matches!(&got[1], Packet::Publish(p) if p.payload.as_ref() == b"from-ws"));
        let mut tcp = RawClient::connected_v311(broker.addr(), "tcp-pub", true).await;
        tcp.publish("ws/t", QoS::AtMostOnce, false, b"from-tcp")
            .await;
        let got = read_packets(&mut ws, 1).await;
        assert!(matches!(&got[0], Packet::Publish(p) if p.payload.as_ref() == b"from-tcp"));
    })
    .await;
}

// [MQTT-6.0.0-1]: a text message closes the network connection; the broker goes on.
#[actix_rt::test]
async fn a_text_message_closes_the_connection() {
    let (mut broker, port) = ws_broker();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "ws-text").await;
        let mut ws = ws_connect(port).await;
        let connect = common::connect_packet(ProtocolVersion::V311, "ws-text", true, 30);
        let bytes = encode(&[Packet::Connect(Box::new(connect))]);
        ws.send(Message::binary(bytes)).await.expect("send");
        read_packets(&mut ws, 1).await;
        ws.send(Message::text("\u{c0}\u{0}")).await.expect("send");
        // The connection ends: a Close, then the end, or an error, within 5 s.
        for _ in 0..4 {
            let next = tokio::time::timeout(RECV_TIMEOUT, ws.next()).await;
            match next.expect("closed in time") {
                None | Some(Err(_)) => break,
                Some(Ok(Message::Close(_))) => {}
                Some(Ok(other)) => panic!("expected the close, got {other:?}"),
            }
        }
        witness.check().await;
    })
    .await;
    broker.assert_alive();
}

/// Sends `request` on a new connection; returns everything answered until the close.
async fn http_exchange(port: u16, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(RECV_TIMEOUT, tcp.read_to_end(&mut answer)).await;
    read.expect("closed in time").expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

// Another path gets 404, a plain HTTP request or raw MQTT 400, a subprotocol list
// without mqtt 400 [MQTT-6.0.0-3]; each is logged and the broker goes on.
#[actix_rt::test]
async fn http_errors_for_requests_that_are_not_mqtt_over_websocket() {
    let (mut broker, port) = ws_broker();
    bounded(async {
        let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        let cases = [
            (
                format!("GET /other HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n"),
                "404 Not Found",
            ),
            (
                "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n".into(),
                "400 Bad Request",
            ),
            (
                format!("GET /mqtt HTTP/1.1\r\n{upgrade}Sec-WebSocket-Protocol: chat\r\n\r\n"),
                "400 Bad Request",
            ),
        ];
        for (request, status) in &cases {
            let answer = http_exchange(port, request.as_bytes()).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{answer}"
            );
        }
        let connect = common::raw_connect(4, 0x02, "raw-on-ws", None);
        let answer = http_exchange(port, &connect).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        Witness::new(broker.addr(), "ws-http").await.check().await;
    })
    .await;
    broker.assert_alive();
    let log = broker.log_text();
    let refused = log
        .lines()
        .filter(|l| l.contains("WebSocket handshake refused"));
    let refused: Vec<&str> = refused.collect();
    assert_eq!(refused.len(), 4, "{log}");
    assert!(
        refused[0].contains("HTTP 404") && refused[0].contains("/other"),
        "{log}"
    );
    assert!(refused[3].contains("not an HTTP request"), "{log}");
}
