//! The HTTP handshake from byte literals; the byte-stream adapter over an in-memory pipe
//! with tungstenite as the client.

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::handshake::{check, head_len, refusal_response, switching_protocols, HttpStatus};
use super::*;

/// The RFC 6455 section 1.3 example request, with the `mqtt` subprotocol.
const GOOD: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn status(head: &[u8]) -> Result<(), u16> {
    check(head, "/mqtt")
        .map(|_| ())
        .map_err(|r| r.status.code())
}

#[test]
fn an_upgrade_with_mqtt_gets_101_selecting_mqtt() {
    let upgrade = check(GOOD, "/mqtt").expect("accepted");
    let answer = switching_protocols(&upgrade);
    assert!(
        answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{answer}"
    );
    // RFC 6455's worked example of the accept key.
    assert!(answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(
        answer.contains("Sec-WebSocket-Protocol: mqtt\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\n"));
}

#[test]
fn requests_that_are_refused() {
    let text = std::str::from_utf8(GOOD).expect("ascii");
    let variants: &[(&str, &str, u16)] = &[
        ("GET /mqtt ", "GET /other ", 404),
        ("GET /mqtt ", "GET / ", 404),
        ("GET /mqtt ", "POST /mqtt ", 400),
        ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", 400),
        ("Upgrade: websocket\r\n", "", 400),
        (
            "Connection: keep-alive, Upgrade\r\n",
            "Connection: keep-alive\r\n",
            400,
        ),
        ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 400),
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400),
        ("mqttv3.1, mqtt", "chat, superchat", 400),
    ];
    for (from, to, code) in variants {
        let head = text.replacen(from, to, 1);
        assert_eq!(status(head.as_bytes()), Err(*code), "{head}");
    }
}

#[test]
fn lenient_cases_are_accepted() {
    let text = std::str::from_utf8(GOOD).expect("ascii");
    // A query string, header names and tokens in any case, no subprotocol offered.
    let query = text.replacen("GET /mqtt ", "GET /mqtt?token=1 ", 1);
    let cases = [
        query,
        text.replacen("Upgrade: websocket", "upgrade: WebSocket", 1),
        text.replacen("Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n", "", 1),
    ];
    for head in &cases {
        assert_eq!(status(head.as_bytes()), Ok(()), "{head}");
    }
    let bare = text.replacen("Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\n", "", 1);
    let answer = switching_protocols(&check(bare.as_bytes(), "/mqtt").expect("accepted"));
    assert!(!answer.contains("Sec-WebSocket-Protocol"), "{answer}");
}

#[test]
fn head_len_waits_then_refuses_early() {
    assert_eq!(head_len(GOOD), Ok(Some(GOOD.len())));
    for cut in 0..GOOD.len() {
        assert_eq!(head_len(&GOOD[..cut]), Ok(None), "cut at {cut}");
    }
    // Raw MQTT (a CONNECT) and a TLS ClientHello are refused at once.
    for bytes in [
        &b"\x10\x0c\x00\x04MQTT\x04\x02"[..],
        b"\x16\x03\x01\x02\x00",
    ] {
        let refusal = head_len(bytes).expect_err("refused");
        assert_eq!(refusal.status, HttpStatus::BadRequest);
    }
    let mut long = b"GET /mqtt HTTP/1.1\r\nX: ".to_vec();
    long.resize(handshake::MAX_HEAD, b'a');
    assert!(head_len(&long).is_err(), "an 8 KiB head with no end");
}

#[test]
fn refusal_response_is_complete_http() {
    let refusal = check(b"GET /x HTTP/1.1\r\n\r\n", "/mqtt").expect_err("404");
    let answer = refusal_response(&refusal);
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert!(body.contains("\"/x\""), "{body}");
}

fn peer() -> SocketAddr {
    "127.0.0.1:1".parse().expect("addr")
}

/// A client connected to [`accept`] over a pipe, and the server's byte stream.
async fn pair() -> (
    WebSocketStream<DuplexStream>,
    (BoxedReader, BoxedWriter),
    Option<String>,
) {
    let (client, server) = tokio::io::duplex(4096);
    let settings = WsSettings::new("/mqtt", 1024);
    let server = tokio::spawn(async move { accept(server, &settings, peer()).await });
    let mut request = "ws://localhost/mqtt"
        .into_client_request()
        .expect("request");
    let offer = "mqtt".parse().expect("header value");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offer);
    let (ws, response) = tokio_tungstenite::client_async(request, client)
        .await
        .expect("handshake");
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let stream = server.await.expect("join").expect("accepted");
    (ws, stream, protocol)
}

#[tokio::test]
async fn messages_become_one_byte_stream_both_ways() {
    let (mut ws, (mut reader, mut writer), protocol) = pair().await;
    assert_eq!(protocol.as_deref(), Some("mqtt"));
    // One packet's bytes over three messages, then two packets' in one.
    for part in [
        &b"\x10\x0c\x00"[..],
        b"\x04MQTT",
        b"\x04\x02\x00\x3c\x00\x00",
    ] {
        ws.send(Message::binary(part.to_vec())).await.expect("send");
    }
    ws.send(Message::binary(b"\xc0\x00\xe0\x00".to_vec()))
        .await
        .expect("send");
    let mut got = [0u8; 18];
    reader.read_exact(&mut got).await.expect("read");
    assert_eq!(
        &got,
        b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\xc0\x00\xe0\x00"
    );
    writer.write_all(b"\x20\x02\x00\x00").await.expect("write");
    let answer = ws.next().await.expect("a message").expect("ok");
    assert_eq!(answer, Message::binary(b"\x20\x02\x00\x00".to_vec()));
    writer.shutdown().await.expect("close");
    let close = ws.next().await.expect("a message").expect("ok");
    assert!(matches!(close, Message::Close(_)), "{close:?}");
}

#[tokio::test]
async fn a_text_message_is_an_error_and_a_close_the_end() {
    let (mut ws, (mut reader, _writer), _) = pair().await;
    ws.send(Message::text("\u{10}")).await.expect("send");
    let mut byte = [0u8; 1];
    let err = reader.read(&mut byte).await.expect_err("text refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let (mut ws, (mut reader, _writer), _) = pair().await;
    ws.close(None).await.expect("close");
    assert_eq!(reader.read(&mut byte).await.expect("eof"), 0);
}

#[tokio::test]
async fn a_wrong_path_is_answered_404_and_closed() {
    let (mut client, server) = tokio::io::duplex(4096);
    let settings = WsSettings::new("/mqtt", 1024);
    let server = tokio::spawn(async move { accept(server, &settings, peer()).await });
    client
        .write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    let result = server.await.expect("join");
    assert!(
        matches!(result, Err(WsError::Refused(_))),
        "{:?}",
        result.err()
    );
}
