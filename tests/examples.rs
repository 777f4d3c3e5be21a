//! The embedding examples, run as their users would: `examples/web_bridge` bridges HTTP
//! and MQTT clients (an SSE stream over raw HTTP/1.1, `POST /publish`, mosquitto_pub and
//! mosquitto_sub), `examples/event_bus` plays its scenario to the end; the hook examples
//! (`tenant_authorizer`, `rewriting_hook`) are in examples/hooks.rs. The example
//! binaries must be built first: `cargo test` without target options builds them,
//! `cargo test --test examples` and `--all-targets` do not (`cargo build --examples`;
//! scripts/test.sh does it).

#[path = "examples/hooks.rs"]
mod hooks;
#[path = "examples/process.rs"]
mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use process::{example, field, mosquitto_pub, mosquitto_sub, run, Running, WAIT};

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    stream
}

/// `POST path` with `body` over HTTP/1.1: (status, JSON body).
fn post(http: SocketAddr, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = connect(http);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    (status.expect("a status code"), json)
}

/// An SSE stream read over raw HTTP/1.1 (chunked transfer encoding).
struct Sse {
    reader: BufReader<TcpStream>,
    /// Decoded body not yet split into events.
    pending: String,
}

impl Sse {
    /// `GET path`; panics unless the answer is 200 with `text/event-stream`.
    fn open(http: SocketAddr, path: &str) -> Sse {
        let mut stream = connect(http);
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {http}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("send request");
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            let read = reader.read_line(&mut head).expect("read the head");
            assert!(read > 0, "closed before the head ended: {head:?}");
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        Sse {
            reader,
            pending: String::new(),
        }
    }

    /// The next event as (name, JSON data); `None` at the end of the stream. Comments
    /// (keep-alives) are skipped.
    fn next(&mut self) -> Option<(String, serde_json::Value)> {
        loop {
            if let Some((event, rest)) = self.pending.split_once("\n\n") {
                let (event, rest) = (event.to_owned(), rest.to_owned());
                self.pending = rest;
                if let Some(parsed) = parse_event(&event) {
                    return Some(parsed);
                }
                continue;
            }
            let chunk = self.chunk()?;
            self.pending.push_str(&chunk);
        }
    }

    /// The next chunk of the body; `None` after the last (empty) one.
    fn chunk(&mut self) -> Option<String> {
        let mut size = String::new();
        self.reader.read_line(&mut size).expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16)
            .unwrap_or_else(|e| panic!("chunk size {size:?}: {e}"));
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).expect("a chunk");
        assert!(data.ends_with(b"\r\n"), "chunk without its CRLF");
        data.truncate(size);
        (size > 0).then(|| String::from_utf8(data).expect("UTF-8 events"))
    }
}

/// `event: NAME\ndata: JSON`; `None` for a comment.
fn parse_event(text: &str) -> Option<(String, serde_json::Value)> {
    let mut name = None;
    let mut data = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = Some(n.to_owned());
        } else if let Some(d) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(d).unwrap_or_else(|e| panic!("{d:?}: {e}")));
        }
    }
    Some((name?, data.expect("an event with data")))
}

/// MQTT to SSE, HTTP to MQTT, refusals as 4xx, a subscription that ends with its SSE
/// client, and a clean stop on SIGTERM.
#[test]
fn web_bridge_carries_messages_between_http_and_mqtt() {
    let mut cmd = Command::new(example("web_bridge"));
    cmd.args(["--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"])
        .env("RUST_LOG", "warn");
    let mut bridge = Running::spawn(cmd);
    let line = bridge.line();
    let (http, mqtt) = (field(&line, "http"), field(&line, "mqtt"));

    let sse = mqtt_reaches_sse(http, mqtt);
    http_reaches_mqtt(http, mqtt);
    refusals_are_4xx(http);
    subscription_ends_with_its_client(http, sse);

    // SIGTERM: open SSE streams end (the last chunk), then the example exits 0.
    let mut sse = Sse::open(http, "/subscribe/bridge/%23");
    assert_eq!(sse.next().expect("subscribed").0, "subscribed");
    bridge.signal("TERM");
    assert_eq!(sse.next(), None, "the stream ends at shutdown");
    assert!(bridge.wait().success(), "web_bridge exit status");
}

/// mosquitto_pub's messages as SSE events: text as it is, binary in base64. Returns
/// the stream, still subscribed to `bridge/#`.
fn mqtt_reaches_sse(http: SocketAddr, mqtt: SocketAddr) -> Sse {
    let mut sse = Sse::open(http, "/subscribe/bridge/%23?qos=1");
    let (name, data) = sse.next().expect("the subscribed event");
    assert_eq!(name, "subscribed");
    assert_eq!(data, serde_json::json!({"filter": "bridge/#", "qos": 1}));
    mosquitto_pub(mqtt, "bridge/from-mqtt", b"hello");
    mosquitto_pub(mqtt, "bridge/binary", &[0xff, 0xfe]);
    let expected = [
        ("bridge/from-mqtt", "hello", "utf8"),
        ("bridge/binary", "//4=", "base64"),
    ];
    for (topic, payload, encoding) in expected {
        let (name, data) = sse.next().expect("a message event");
        assert_eq!(name, "message");
        let want = serde_json::json!({"topic": topic, "payload": payload,
            "encoding": encoding, "qos": 1, "retain": false});
        assert_eq!(data, want);
    }
    sse
}

/// `POST /publish` reaches mosquitto_sub, subscribed first.
fn http_reaches_mqtt(http: SocketAddr, mqtt: SocketAddr) {
    let mut sub = mosquitto_sub(mqtt, "http/out");
    let (status, body) = post(http, "/publish/http/out?qos=1", b"from http");
    assert_eq!((status, body), (200, serde_json::json!({"matched": 1})));
    assert_eq!(sub.message(), "http/out from http");
    assert!(sub.wait().success(), "mosquitto_sub -C 1");
}

/// Refusals carry the reason code an MQTT client would get.
fn refusals_are_4xx(http: SocketAddr) {
    let refused = [
        ("/publish/bridge/+/x", 400, 0x90),
        ("/publish/?qos=1", 400, 0x90),
        ("/publish/bridge/x?qos=3", 400, 0x9B),
    ];
    for (path, want_status, reason) in refused {
        let (status, body) = post(http, path, b"x");
        assert_eq!(
            (status, &body["reason"]),
            (want_status, &reason.into()),
            "{path}"
        );
    }
    let mut stream = connect(http);
    let request = format!("GET /subscribe/a/%23/b HTTP/1.1\r\nHost: {http}\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut status = String::new();
    BufReader::new(stream)
        .read_line(&mut status)
        .expect("status line");
    assert!(status.starts_with("HTTP/1.1 400"), "bad filter: {status}");
}

/// The SSE client goes away: the bridge's subscription for it ends (publishes to
/// `bridge/#` then reach nobody).
fn subscription_ends_with_its_client(http: SocketAddr, sse: Sse) {
    drop(sse);
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = post(http, "/publish/bridge/after", b"x");
        assert_eq!(status, 200);
        if body["matched"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "still subscribed after {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The event bus scenario runs to its end and agrees with itself.
#[test]
fn event_bus_scenario_succeeds() {
    let out = run(Command::new(example("event_bus")));
    let summary = out.lines().last().unwrap_or_default();
    assert!(summary.starts_with("event_bus ok "), "{out}");
    let count = |key: &str| -> u32 {
        summary
            .split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {summary:?}"))
    };
    assert_eq!((count("orders"), count("shipped")), (6, 3));
    assert_eq!(count("billing-a") + count("billing-b"), 6);
    assert_eq!(count("audited"), 9);
}
