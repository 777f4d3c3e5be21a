//! Closing a connection so the client hears why: when the broker gives up on a client
//! that is still sending (Receive Maximum exceeded, a refused CONNECT followed by
//! PUBLISHes), its last packet must reach the client, not a TCP reset. The broker shuts
//! its write side down and reads and discards the client's input for a short, bounded
//! time before it closes (`src/session/drain.rs`). Raw clients that write without
//! reading, and paho-mqtt flooding past the Receive Maximum.

mod common;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{bounded, connect_packet, publish_packet, wait_child, BrokerProcess, RECV_TIMEOUT};
use starling::protocol::{
    encode_packet, MqttCodec, Packet, PacketId, ProtocolVersion, QoS, ReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

/// Writes after the broker's last packet: 50 QoS 0 PUBLISHes of 1 KiB, 10 ms apart, as
/// a client that has not read yet would. Well within the broker's drain (2 s, 1 MiB).
const LATE_WRITES: usize = 50;
const LATE_PACE: Duration = Duration::from_millis(10);

/// A client that writes without reading, then reads whatever came until the broker
/// closed, telling a clean end (FIN) from a reset.
struct Pipelining {
    stream: TcpStream,
    codec: MqttCodec,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Pipelining {
    async fn open(addr: SocketAddr, version: ProtocolVersion) -> Pipelining {
        let stream = tokio::time::timeout(RECV_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("TCP connect timed out")
            .expect("TCP connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut codec = MqttCodec::new(1024 * 1024);
        codec.set_version(version);
        Pipelining {
            stream,
            codec,
            buf: BytesMut::new(),
            version,
        }
    }

    async fn write(&mut self, packets: &[Packet]) -> io::Result<()> {
        let mut out = BytesMut::new();
        for p in packets {
            encode_packet(p, self.version, &mut out).expect("encodable");
        }
        self.stream.write_all(&out).await
    }

    /// The next packet (5 s at most).
    async fn read_packet(&mut self) -> Packet {
        loop {
            if let Some(p) = self.codec.decode(&mut self.buf).expect("decodable") {
                return p;
            }
            let read = tokio::time::timeout(RECV_TIMEOUT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("a packet within 5 s")
                .expect("read");
            assert!(read > 0, "closed while a packet was expected");
        }
    }

    /// What a client does before it reads: goes on publishing. Every write must succeed.
    async fn keep_writing(&mut self) {
        let late = publish_packet("late/t", QoS::AtMostOnce, &[b'z'; 1024], None);
        for i in 0..LATE_WRITES {
            if let Err(e) = self.write(&[Packet::Publish(late.clone())]).await {
                panic!("write {i} after the broker's last packet failed: {e} (reset, not drained)");
            }
            tokio::time::sleep(LATE_PACE).await;
        }
    }

    /// Every packet until the broker closes (5 s at most), and how it closed: `Ok` for
    /// its FIN, `Err` for a reset.
    async fn read_to_end(&mut self) -> (Vec<Packet>, io::Result<()>) {
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        let mut packets = Vec::new();
        let end = loop {
            while let Some(p) = self.codec.decode(&mut self.buf).expect("decodable") {
                packets.push(p);
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => panic!("still open after 5 s; read {packets:?}"),
                Ok(Ok(0)) => break Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => break Err(e),
            }
        };
        (packets, end)
    }
}

/// 5.0 [MQTT-3.3.4-7]: three QoS 2 PUBLISHes against Receive Maximum 2, then more
/// writes before the client reads: it reads both PUBRECs, DISCONNECT 0x93 and a clean
/// end, and none of its writes fails.
#[tokio::test]
async fn receive_maximum_exceeded_reaches_a_client_still_sending() {
    let mut broker = BrokerProcess::start_with_limits(&[("receive_maximum", 2)]);
    bounded(async {
        let mut c = Pipelining::open(broker.addr(), ProtocolVersion::V5).await;
        let connect = connect_packet(ProtocolVersion::V5, "flood", true, 60);
        c.write(&[Packet::Connect(Box::new(connect))])
            .await
            .unwrap();
        match c.read_packet().await {
            Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::SUCCESS),
            other => panic!("want CONNACK, got {other:?}"),
        }
        let publishes: Vec<Packet> = (1..=3)
            .map(|id| {
                let p = publish_packet("flood/t", QoS::ExactlyOnce, b"x", PacketId::new(id));
                Packet::Publish(p)
            })
            .collect();
        c.write(&publishes).await.unwrap();
        c.keep_writing().await;
        let (packets, end) = c.read_to_end().await;
        let disconnect = packets.iter().find_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        });
        assert_eq!(
            disconnect,
            Some(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED),
            "{packets:?}"
        );
        assert!(
            matches!(packets.last(), Some(Packet::Disconnect(_))),
            "DISCONNECT last: {packets:?}"
        );
        end.expect("a clean end after the DISCONNECT, not a reset");
        broker.assert_alive();
    })
    .await;
}

/// A client that sends CONNECT with a wrong password and goes on publishing before it
/// reads (both versions): it reads the refusing CONNACK and a clean end.
#[tokio::test]
async fn refused_connack_reaches_a_client_still_sending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    // bob/builder, written by `mosquitto_passwd -H sha512`.
    std::fs::write(&path, "bob:$6$uIH21A7icU6j1mnc$opRo8FQ/K0pnycG3ddIUucopnYy6mHBdvAUOMnrdHxDzlEqAJJqiFNignfLWwF1PHOzYdFw0uJAA/Z3XGwOPWw==\n").unwrap();
    let toml = format!("[auth]\npassword_file = {:?}\n", path.display().to_string());
    let mut broker = BrokerProcess::start_with_config(Some(&toml));
    bounded(async {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let mut c = Pipelining::open(broker.addr(), version).await;
            let mut connect = connect_packet(version, "wrong", true, 60);
            connect.username = Some("bob".into());
            connect.password = Some(Bytes::from_static(b"bulldozer"));
            c.write(&[Packet::Connect(Box::new(connect))])
                .await
                .unwrap();
            c.keep_writing().await;
            let (packets, end) = c.read_to_end().await;
            match &packets[..] {
                [Packet::ConnAck(a)] => {
                    assert_eq!(
                        a.reason,
                        ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                        "{version:?}"
                    )
                }
                other => panic!("{version:?}: want the refusing CONNACK alone, got {other:?}"),
            }
            end.unwrap_or_else(|e| panic!("{version:?}: a clean end, not {e}"));
        }
        broker.assert_alive();
    })
    .await;
}

/// paho-mqtt publishes QoS 2 messages past Receive Maximum 2 without reading in
/// between (tests/py/flow_control.py), then reads: `on_disconnect` must get DISCONNECT
/// 0x93, not "unspecified error" from a broken pipe.
#[test]
fn paho_hears_receive_maximum_exceeded() {
    let broker = BrokerProcess::start_with_config(Some(
        "[limits]\nreceive_maximum = 2\n[server]\nworkers = 1\n",
    ));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/flow_control.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new("python3")
        .arg(&script)
        .arg("127.0.0.1")
        .arg(broker.port().to_string())
        .arg("5")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn python3 (paho-mqtt 2.x: run scripts/test.sh)");
    let status = wait_child(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "flow_control.py failed ({status:?}).\nstdout:\n{}\nstderr:\n{}",
        read(&out),
        read(&err)
    );
}
