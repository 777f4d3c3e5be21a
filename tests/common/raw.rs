//! The raw MQTT test client: the crate's own codec over one TCP connection, nothing
//! automatic, every read bounded; plus the [`Witness`] client of the bad-input tests.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use starling::protocol::{
    ConnAck, Connect, DecodeError, Disconnect, Flow, MqttCodec, Packet, PacketId, Properties,
    PropertyFields, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe,
    SubscriptionOptions,
};
use starling::topic::{TopicFilter, TopicName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::RECV_TIMEOUT;

/// What the next read from a raw client produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Packet(Packet),
    /// EOF or connection reset.
    Closed,
    Timeout,
    /// Bytes the codec could not decode.
    Error(String),
}

/// A raw MQTT client: the crate's codec over one TCP connection, nothing automatic.
pub struct RawClient {
    framed: Framed<TcpStream, MqttCodec>,
    pending: VecDeque<Packet>,
    next_id: u16,
}

impl RawClient {
    /// Opens the TCP connection (bounded); the codec speaks 3.1.1 until told otherwise.
    pub async fn open(addr: SocketAddr) -> RawClient {
        let stream = tokio::time::timeout(RECV_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("TCP connect to {addr} timed out"))
            .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        let mut codec = MqttCodec::new(256 * 1024 * 1024);
        codec.set_version(ProtocolVersion::V311);
        RawClient {
            framed: Framed::new(stream, codec),
            pending: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The client's own address (what the broker sees as its peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.framed.get_ref().local_addr().expect("local address")
    }

    /// Opens and connects with 3.1.1, asserting CONNACK success.
    pub async fn connected_v311(addr: SocketAddr, client_id: &str, clean: bool) -> RawClient {
        let mut c = RawClient::open(addr).await;
        let ack = c.connect_v311(client_id, clean, 60).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK of {client_id}");
        c
    }

    /// Opens and connects with 5.0, asserting CONNACK success.
    pub async fn connected_v5(addr: SocketAddr, client_id: &str, props: Properties) -> RawClient {
        let mut c = RawClient::open(addr).await;
        let ack = c.connect_v5(client_id, true, 60, props).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK of {client_id}");
        c
    }

    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.framed.codec_mut().set_version(version);
    }

    pub async fn connect_v311(&mut self, client_id: &str, clean: bool, keepalive: u16) -> ConnAck {
        self.connect(connect_packet(
            ProtocolVersion::V311,
            client_id,
            clean,
            keepalive,
        ))
        .await
    }

    pub async fn connect_v5(
        &mut self,
        client_id: &str,
        clean_start: bool,
        keepalive: u16,
        properties: Properties,
    ) -> ConnAck {
        let mut connect = connect_packet(ProtocolVersion::V5, client_id, clean_start, keepalive);
        connect.properties = properties;
        self.connect(connect).await
    }

    /// Sends this CONNECT and returns the CONNACK (panics on anything else).
    pub async fn connect(&mut self, connect: Connect) -> ConnAck {
        self.set_version(connect.protocol);
        let id = connect.client_id.clone();
        self.send(Packet::Connect(Box::new(connect))).await;
        match self.next_event(RECV_TIMEOUT).await {
            Event::Packet(Packet::ConnAck(ack)) => ack,
            other => panic!("CONNECT of {id:?}: expected CONNACK, got {other:?}"),
        }
    }

    pub fn next_packet_id(&mut self) -> PacketId {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        PacketId::new(self.next_id).expect("non-zero")
    }

    pub async fn send(&mut self, packet: Packet) {
        let what = format!("{packet:?}");
        if let Err(e) = self.framed.send(packet).await {
            panic!("sending {what}: {e}");
        }
    }

    /// Sends `packets` in one write, so that the broker reads them together.
    pub async fn send_together(&mut self, packets: Vec<Packet>) {
        for p in packets {
            self.framed.feed(p).await.expect("buffer a packet");
        }
        self.framed.flush().await.expect("write the packets");
    }

    /// Sends without panicking (the broker may have closed already).
    pub async fn try_send(&mut self, packet: Packet) -> Result<(), String> {
        self.framed.send(packet).await.map_err(|e| e.to_string())
    }

    /// Writes bytes as they are, bypassing the codec.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.try_send_raw(bytes)
            .await
            .unwrap_or_else(|e| panic!("writing raw bytes {bytes:02x?}: {e}"));
    }

    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = self.framed.get_mut();
        stream.write_all(bytes).await?;
        stream.flush().await
    }

    /// The next packet, EOF, timeout or undecodable input, within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Event {
        if let Some(p) = self.pending.pop_front() {
            return Event::Packet(p);
        }
        match tokio::time::timeout(within, self.framed.next()).await {
            Err(_) => Event::Timeout,
            Ok(None) => Event::Closed,
            Ok(Some(Ok(p))) => Event::Packet(p),
            Ok(Some(Err(DecodeError::Io(e)))) => match e.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => Event::Closed,
                _ => Event::Error(e.to_string()),
            },
            Ok(Some(Err(e))) => Event::Error(e.to_string()),
        }
    }

    /// The next packet within 5 s, `None` on timeout or close.
    pub async fn recv(&mut self) -> Option<Packet> {
        match self.next_event(RECV_TIMEOUT).await {
            Event::Packet(p) => Some(p),
            _ => None,
        }
    }

    pub async fn expect_packet(&mut self, what: &str) -> Packet {
        match self.next_event(RECV_TIMEOUT).await {
            Event::Packet(p) => p,
            other => panic!("expected {what}, got {other:?}"),
        }
    }

    pub async fn expect_publish(&mut self) -> Publish {
        match self.expect_packet("PUBLISH").await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Reads until a packet matches, keeping the others (in order) for later reads.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Packet) -> bool) -> Packet {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut stash = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Event::Packet(p) if pred(&p) => {
                    for s in stash.into_iter().rev() {
                        self.pending.push_front(s);
                    }
                    return p;
                }
                Event::Packet(p) => stash.push(p),
                other => panic!("waiting for {what}: got {other:?}; other packets: {stash:?}"),
            }
        }
    }

    /// Asserts that nothing arrives for `within` (only for absence, where no event exists).
    pub async fn expect_nothing(&mut self, within: Duration) {
        match self.next_event(within).await {
            Event::Timeout => {}
            other => panic!("expected nothing for {within:?}, got {other:?}"),
        }
    }

    /// Asserts the broker closes the connection within 5 s.
    pub async fn expect_closed(&mut self) -> Option<Disconnect> {
        self.expect_closed_within(RECV_TIMEOUT).await
    }

    /// Reads until EOF/reset within `within`; only one DISCONNECT may come before it,
    /// which is returned.
    pub async fn expect_closed_within(&mut self, within: Duration) -> Option<Disconnect> {
        let deadline = Instant::now() + within;
        let mut disconnect = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Event::Closed => return disconnect,
                Event::Packet(Packet::Disconnect(d)) if disconnect.is_none() => {
                    disconnect = Some(d)
                }
                Event::Timeout => panic!(
                    "connection still open after {within:?} (DISCONNECT seen: {disconnect:?})"
                ),
                other => panic!("expected the connection to close, got {other:?}"),
            }
        }
    }

    /// Like [`expect_closed_within`](Self::expect_closed_within) for a refused CONNECT:
    /// an error CONNACK may come before the close and is returned.
    pub async fn expect_connect_refused(&mut self) -> Option<ConnAck> {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut connack = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Event::Closed => return connack,
                Event::Packet(Packet::ConnAck(a)) if connack.is_none() && a.reason.is_error() => {
                    connack = Some(a)
                }
                Event::Timeout => panic!("connection still open after a refused CONNECT"),
                other => panic!("expected the refused connection to close, got {other:?}"),
            }
        }
    }

    /// Raw bytes until the broker closes (bounded), for replies the codec must not judge.
    pub async fn read_raw_until_closed(&mut self, within: Duration) -> Vec<u8> {
        let mut out = self.framed.read_buffer_mut().split().to_vec();
        let deadline = Instant::now() + within;
        let stream = self.framed.get_mut();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Err(_) => panic!("connection still open after {within:?}; read {out:02x?}"),
                Ok(Ok(0)) | Ok(Err(_)) => return out,
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// SUBSCRIBE and wait for its SUBACK; PUBLISHes arriving meanwhile stay queued.
    pub async fn subscribe(&mut self, filters: &[(&str, QoS)]) -> SubAck {
        let filters = filters
            .iter()
            .map(|(f, q)| (filter(f), SubscriptionOptions::with_qos(*q)))
            .collect();
        self.subscribe_with(Properties::default(), filters).await
    }

    /// SUBSCRIBE with properties and full options, and wait for its SUBACK.
    pub async fn subscribe_with(
        &mut self,
        properties: Properties,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
    ) -> SubAck {
        let packet_id = self.next_packet_id();
        self.send(Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters,
        }))
        .await;
        match self
            .wait_for(
                "SUBACK",
                |p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id),
            )
            .await
        {
            Packet::SubAck(a) => a,
            _ => unreachable!(),
        }
    }

    /// Publishes and completes the QoS flow as sender (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    pub async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) {
        let packet_id = (qos != QoS::AtMostOnce).then(|| self.next_packet_id());
        let mut p = publish_packet(topic, qos, payload, packet_id);
        p.retain = retain;
        self.send(Packet::Publish(p)).await;
        let Some(id) = packet_id else { return };
        if qos == QoS::AtLeastOnce {
            self.wait_for(
                "PUBACK",
                |p| matches!(p, Packet::PubAck(r) if r.packet_id == id),
            )
            .await;
        } else {
            self.wait_for(
                "PUBREC",
                |p| matches!(p, Packet::PubRec(r) if r.packet_id == id),
            )
            .await;
            self.send(Packet::PubRel(PubResponse::new(id))).await;
            self.wait_for(
                "PUBCOMP",
                |p| matches!(p, Packet::PubComp(r) if r.packet_id == id),
            )
            .await;
        }
    }

    /// Completes the QoS flow as receiver of `p`.
    pub async fn ack(&mut self, p: &Publish) {
        let Some(id) = p.packet_id() else { return };
        match p.qos() {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(Packet::PubAck(PubResponse::new(id))).await,
            QoS::ExactlyOnce => {
                self.send(Packet::PubRec(PubResponse::new(id))).await;
                self.wait_for(
                    "PUBREL",
                    |p| matches!(p, Packet::PubRel(r) if r.packet_id == id),
                )
                .await;
                self.send(Packet::PubComp(PubResponse::new(id))).await;
            }
        }
    }

    /// Receives the next PUBLISH, acknowledges it and returns it.
    pub async fn recv_publish_acked(&mut self) -> Publish {
        let p = self.expect_publish().await;
        self.ack(&p).await;
        p
    }

    /// A normal DISCONNECT, then the socket is shut down.
    pub async fn disconnect(mut self) {
        self.send(Packet::Disconnect(Disconnect::new(
            ReasonCode::NORMAL_DISCONNECTION,
        )))
        .await;
        let _ = self.framed.get_mut().shutdown().await;
    }
}

pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap_or_else(|e| panic!("filter {s:?}: {e}"))
}

pub fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap_or_else(|e| panic!("topic {s:?}: {e}"))
}

pub fn connect_packet(version: ProtocolVersion, id: &str, clean: bool, keepalive: u16) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive: keepalive,
        properties: Properties::default(),
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
    }
}

pub fn publish_packet(t: &str, qos: QoS, payload: &[u8], packet_id: Option<PacketId>) -> Publish {
    Publish {
        dup: false,
        flow: Flow::new(qos, packet_id).expect("a packet id exactly at QoS 1/2"),
        retain: false,
        topic: topic(t),
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

/// Properties with a session expiry interval (5.0 persistent sessions).
pub fn session_expiry(secs: u32) -> Properties {
    Properties::from(PropertyFields {
        session_expiry_interval: Some(secs),
        ..PropertyFields::default()
    })
}

/// Properties carrying one Subscription Identifier (5.0 SUBSCRIBE).
pub fn subscription_id(id: u32) -> Properties {
    Properties::from(PropertyFields {
        subscription_identifiers: vec![id],
        ..PropertyFields::default()
    })
}

/// One connection that subscribes to its own topic and publishes to it: proves that the
/// broker still routes messages for well-behaved clients.
pub struct Witness {
    client: RawClient,
    topic: String,
    n: u32,
}

impl Witness {
    pub async fn new(addr: SocketAddr, name: &str) -> Witness {
        let mut client = RawClient::connected_v311(addr, &format!("witness-{name}"), true).await;
        let topic = format!("witness/{name}");
        let ack = client.subscribe(&[(&topic, QoS::AtLeastOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
        Witness {
            client,
            topic,
            n: 0,
        }
    }

    /// Publishes a QoS 1 message through the broker and receives it back.
    pub async fn check(&mut self) {
        self.n += 1;
        let payload = format!("alive-{}", self.n);
        self.client
            .publish(&self.topic, QoS::AtLeastOnce, false, payload.as_bytes())
            .await;
        let want = payload.clone();
        let got = self
            .client
            .wait_for(
                "the witness message",
                |p| matches!(p, Packet::Publish(m) if m.payload.as_ref() == want.as_bytes()),
            )
            .await;
        if let Packet::Publish(p) = got {
            self.client.ack(&p).await;
        }
    }
}
