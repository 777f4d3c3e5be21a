//! PROXY protocol v1 and v2 on listeners with `proxy_protocol = true`: the header's
//! source address becomes the client's address in the log and in `ClientInfo` (what
//! hooks, authentication and authorization see), a v2 LOCAL keeps the socket's, on a
//! `ws` listener too; a listener without it takes a PROXY header as a malformed
//! CONNECT. The broker runs in this process (its log captured, a hook recording who
//! connects), and once as the binary with its log file.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use common::{bounded, connect_packet, BrokerProcess, RawClient, Witness, RECV_TIMEOUT};
use futures::{SinkExt, StreamExt};
use starling::config::{Durability, ListenerConfig, ListenerKind};
use starling::hooks::{Answer, ClientInfo, Event, Hook};
use starling::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use starling::{Broker, BrokerHandle, Config};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const V1: &[u8] = b"PROXY TCP4 198.51.100.7 203.0.113.9 40001 1883\r\n";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 header: PROXY (or LOCAL) command, TCP over IPv6 from [2001:db8::7]:40002.
fn v2(proxy: bool) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[if proxy { 0x21 } else { 0x20 }, 0x21, 0, 36]);
    out.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    out.extend_from_slice(
        &"2001:db8::9"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    out.extend_from_slice(&40002u16.to_be_bytes());
    out.extend_from_slice(&1883u16.to_be_bytes());
    out
}

// ---- the broker's log, captured (all tests of this binary share it) ----

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("starling=debug")
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

/// Waits (bounded) for a log line holding every one of `parts`.
async fn log_line(parts: &[&str]) -> String {
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        let text =
            String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
        if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- the broker in this process ----

/// Sends every Connected event's client into a channel.
struct Recorder(mpsc::UnboundedSender<ClientInfo>);

impl Hook for Recorder {
    fn on_event(&self, event: &Event) -> Answer<()> {
        if let Event::Connected { client, .. } = event {
            let _ = self.0.send((**client).clone());
        }
        Answer::ready(())
    }
}

/// Listeners: 0 tcp with PROXY, 1 ws with PROXY, 2 plain tcp.
async fn start() -> (BrokerHandle, mpsc::UnboundedReceiver<ClientInfo>) {
    capture_logs();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let proxied_tcp = ListenerConfig {
        proxy_protocol: true,
        ..ListenerConfig::tcp(any)
    };
    let proxied_ws = ListenerConfig {
        kind: ListenerKind::Ws,
        ..proxied_tcp.clone()
    };
    let mut config = Config {
        listeners: vec![proxied_tcp, proxied_ws, ListenerConfig::tcp(any)],
        ..Config::default()
    };
    config.storage.durability = Durability::Memory;
    config.limits.connect_timeout_secs = 2;
    let (tx, rx) = mpsc::unbounded_channel();
    let broker = Broker::new(config).workers(1).hook(Recorder(tx)).start();
    (broker.await.expect("broker starts"), rx)
}

async fn connected(rx: &mut mpsc::UnboundedReceiver<ClientInfo>, id: &str) -> ClientInfo {
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let client = tokio::time::timeout(left, rx.recv()).await;
        let client = client
            .expect("a Connected event in time")
            .expect("hook alive");
        if client.client_id.as_str() == id {
            return client;
        }
    }
}

// v1 (header alone, then CONNECT) and v2 (header and CONNECT in one write): the client's
// address is the header's in ClientInfo and the log; the streams go on after the header.
#[actix_rt::test]
async fn v1_and_v2_headers_give_the_client_address() {
    let (broker, mut events) = start().await;
    bounded(async {
        let addr = broker.local_addrs()[0];
        let mut one = RawClient::open(addr).await;
        one.send_raw(V1).await;
        one.connect_v311("pp-v1", true, 30).await;
        let info = connected(&mut events, "pp-v1").await;
        assert_eq!(
            info.remote_addr,
            Some("198.51.100.7:40001".parse().unwrap())
        );
        assert_eq!(info.listener, Some(addr));
        log_line(&["PROXY header", "client=198.51.100.7:40001"]).await;
        log_line(&["client connected", "addr=198.51.100.7:40001", "pp-v1"]).await;

        let mut two = RawClient::open(addr).await;
        let mut bytes = v2(true);
        bytes.extend(common::raw_connect(4, 0x02, "pp-v2", None));
        two.send_raw(&bytes).await;
        let ack = two.expect_packet("CONNACK").await;
        assert!(matches!(ack, Packet::ConnAck(a) if a.reason == ReasonCode::SUCCESS));
        let info = connected(&mut events, "pp-v2").await;
        assert_eq!(
            info.remote_addr,
            Some("[2001:db8::7]:40002".parse().unwrap())
        );

        one.subscribe(&[("pp/t", QoS::AtLeastOnce)]).await;
        two.publish("pp/t", QoS::AtLeastOnce, false, b"through")
            .await;
        assert_eq!(one.expect_publish().await.payload.as_ref(), b"through");
    })
    .await;
    broker.stop().await;
}

// A v2 LOCAL command (a load balancer's health check) keeps the socket's address.
#[actix_rt::test]
async fn v2_local_keeps_the_socket_address() {
    let (broker, mut events) = start().await;
    bounded(async {
        let mut c = RawClient::open(broker.local_addrs()[0]).await;
        c.send_raw(&v2(false)).await;
        c.connect_v311("pp-local", true, 30).await;
        let info = connected(&mut events, "pp-local").await;
        assert_eq!(info.remote_addr, Some(c.local_addr()));
    })
    .await;
    broker.stop().await;
}

// On a ws listener the PROXY header comes before the HTTP upgrade.
#[actix_rt::test]
async fn a_header_before_the_websocket_handshake() {
    let (broker, mut events) = start().await;
    bounded(async {
        let addr = broker.local_addrs()[1];
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(V1).await.expect("write");
        let url = format!("ws://{addr}/mqtt");
        let (mut ws, _) = tokio_tungstenite::client_async(url, tcp)
            .await
            .expect("upgrade");
        let mut connect = bytes::BytesMut::new();
        let packet = Packet::Connect(Box::new(connect_packet(
            ProtocolVersion::V5,
            "pp-ws",
            true,
            30,
        )));
        starling::protocol::encode_packet(&packet, ProtocolVersion::V5, &mut connect)
            .expect("encode");
        ws.send(Message::binary(connect.freeze()))
            .await
            .expect("send");
        let reply = tokio::time::timeout(RECV_TIMEOUT, ws.next())
            .await
            .expect("CONNACK in time");
        assert!(
            matches!(reply, Some(Ok(Message::Binary(b))) if b[0] == 0x20),
            "CONNACK"
        );
        let info = connected(&mut events, "pp-ws").await;
        assert_eq!(
            info.remote_addr,
            Some("198.51.100.7:40001".parse().unwrap())
        );
    })
    .await;
    broker.stop().await;
}

// A PROXY listener closes a connection without a header (logged), and one that sends
// nothing within the connect timeout; the broker goes on.
#[actix_rt::test]
async fn a_missing_or_late_header_closes_the_connection() {
    let (broker, _events) = start().await;
    bounded(async {
        let addr = broker.local_addrs()[0];
        let mut plain = RawClient::open(addr).await;
        let peer = plain.local_addr().to_string();
        plain
            .send_raw(&common::raw_connect(4, 0x02, "no-header", None))
            .await;
        assert_eq!(
            plain.expect_connect_refused().await,
            None,
            "closed, no CONNACK"
        );
        log_line(&[
            "PROXY protocol header refused",
            &peer,
            "no PROXY protocol header",
        ])
        .await;

        let mut silent = RawClient::open(addr).await;
        let peer = silent.local_addr().to_string();
        silent.expect_closed_within(Duration::from_secs(4)).await;
        log_line(&["not done within the connect timeout", &peer]).await;
        Witness::new(broker.local_addrs()[2], "pp-missing")
            .await
            .check()
            .await;
    })
    .await;
    broker.stop().await;
}

// A listener without proxy_protocol takes a PROXY header as a malformed CONNECT: the
// connection closes without a session, the broker logs it and goes on.
#[actix_rt::test]
async fn a_spoofed_header_on_a_plain_listener_is_a_bad_connect() {
    let (broker, mut events) = start().await;
    bounded(async {
        let addr = broker.local_addrs()[2];
        for (i, header) in [V1.to_vec(), v2(true)].into_iter().enumerate() {
            let mut c = RawClient::open(addr).await;
            let peer = c.local_addr().to_string();
            let mut bytes = header;
            bytes.extend(common::raw_connect(4, 0x02, &format!("spoof-{i}"), None));
            c.send_raw(&bytes).await;
            let refused = c.expect_connect_refused().await;
            assert!(
                refused.as_ref().is_none_or(|a| a.reason.is_error()),
                "{refused:?}"
            );
            log_line(&["CONNECT", &peer]).await;
        }
        Witness::new(addr, "pp-spoof").await.check().await;
        let witness = connected(&mut events, "witness-pp-spoof").await;
        assert_eq!(
            witness.remote_addr.map(|a| a.ip()),
            Some([127, 0, 0, 1].into())
        );
    })
    .await;
    broker.stop().await;
}

// The binary: the proxied address in the log line of a refused login (what an operator
// reads at the default level), on a listener that `--listen` leaves in place.
#[actix_rt::test]
async fn the_binary_logs_the_proxied_address_of_a_failed_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "# nobody yet\n").expect("password file");
    let port = common::free_port();
    let toml = format!(
        "[auth]\npassword_file = {:?}\n\n[[listeners]]\nbind = \"127.0.0.1:{port}\"\nproxy_protocol = true\n",
        passwd.display().to_string()
    );
    let mut broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        let mut c = RawClient::open(SocketAddr::from(([127, 0, 0, 1], port))).await;
        c.send_raw(V1).await;
        let mut connect = connect_packet(ProtocolVersion::V311, "pp-login", true, 30);
        connect.username = Some("mallory".into());
        connect.password = Some(bytes::Bytes::from_static(b"guess"));
        c.send(Packet::Connect(Box::new(connect))).await;
        let refused = c.expect_connect_refused().await;
        assert!(refused.is_some(), "a refusing CONNACK");
    })
    .await;
    broker.assert_alive();
    let log = broker.log_text();
    let line = log.lines().find(|l| l.contains("authentication failed"));
    let line = line.unwrap_or_else(|| panic!("no failed login logged:\n{log}"));
    assert!(line.contains("198.51.100.7:40001"), "{line}");
}
