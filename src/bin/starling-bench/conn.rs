//! One MQTT client connection over a raw tokio `TcpStream` (or TLS over it, with
//! `--tls-ca`), using the crate's own codec.
//!
//! Writes are batched: callers [`Conn::queue`] any number of packets into one buffer and
//! [`Conn::flush`] it with a single `write_all`. Reads fill one buffer from which packets
//! are decoded in place ([`Conn::try_decode`]). Every await is bounded by a deadline.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::BytesMut;
use starling::protocol::{
    encode_packet, Connect, Disconnect, Packet, PacketId, Properties, ProtocolVersion, QoS,
    ReasonCode, Subscribe, SubscriptionOptions,
};
use starling::topic::TopicFilter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

/// Largest packet the generator accepts from a broker.
const MAX_PACKET: usize = 16 * 1024 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

pub struct Conn {
    stream: crate::tls::Stream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    version: ProtocolVersion,
    /// The broker's Receive Maximum (5.0 CONNACK): QoS 1/2 publishes it accepts in flight.
    pub receive_maximum: Option<u16>,
}

impl Conn {
    /// TCP connect (from `source` when given), CONNECT (clean, keep alive 0) and wait for
    /// a successful CONNACK.
    pub async fn open(
        addr: &str,
        source: Option<IpAddr>,
        version: ProtocolVersion,
        client_id: &str,
        deadline: Instant,
    ) -> Result<Conn> {
        Self::open_session(addr, source, version, client_id, false, deadline).await
    }

    /// Like [`Conn::open`]; `persistent` asks for a session that outlives the connection
    /// (clean session 0; 5.0: clean start 0 and a session expiry of one hour).
    pub async fn open_session(
        addr: &str,
        source: Option<IpAddr>,
        version: ProtocolVersion,
        client_id: &str,
        persistent: bool,
        deadline: Instant,
    ) -> Result<Conn> {
        let stream = timeout_at(deadline, tcp_connect(addr, source))
            .await
            .map_err(|_| anyhow!("TCP connect to {addr} timed out"))?
            .with_context(|| format!("TCP connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let stream = timeout_at(deadline, crate::tls::wrap(stream, addr))
            .await
            .map_err(|_| anyhow!("TLS handshake with {addr} timed out"))??;
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(4096),
            wbuf: BytesMut::with_capacity(4096),
            version,
            receive_maximum: None,
        };
        let mut properties = Properties::default();
        if persistent && version == ProtocolVersion::V5 {
            properties.session_expiry_interval = Some(3600);
        }
        let connect = Connect {
            protocol: version,
            clean_start: !persistent,
            // rumqttd refuses keep alive 0; 600 s outlasts any run (capped at 300 s), so
            // the generator never needs a PINGREQ.
            keep_alive: 600,
            properties,
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
        };
        conn.queue(&Packet::Connect(Box::new(connect)));
        conn.flush(deadline).await?;
        match conn.next_packet(deadline).await? {
            Packet::ConnAck(ack) if !ack.reason.is_error() => {
                conn.receive_maximum = ack.properties.receive_maximum;
                Ok(conn)
            }
            Packet::ConnAck(ack) => bail!("CONNACK refused with reason {}", ack.reason),
            other => bail!("expected CONNACK, got packet type {}", other.packet_type()),
        }
    }

    /// SUBSCRIBE to `filters` at `qos` and wait for a SUBACK granting every one.
    pub async fn subscribe(
        &mut self,
        filters: &[String],
        qos: QoS,
        deadline: Instant,
    ) -> Result<()> {
        let mut entries = Vec::with_capacity(filters.len());
        for f in filters {
            let filter = TopicFilter::new(f.as_str()).map_err(|e| anyhow!("filter {f}: {e}"))?;
            entries.push((filter, SubscriptionOptions::with_qos(qos)));
        }
        let packet_id = PacketId::new(1).expect("1 is a valid packet id");
        self.queue(&Packet::Subscribe(Subscribe {
            packet_id,
            properties: Properties::default(),
            filters: entries,
        }));
        self.flush(deadline).await?;
        loop {
            match self.next_packet(deadline).await? {
                Packet::SubAck(ack) if ack.packet_id == packet_id => {
                    if let Some(bad) = ack.reasons.iter().find(|r| r.is_error()) {
                        bail!("SUBACK refused with reason {bad}");
                    }
                    if ack.reasons.len() != filters.len() {
                        bail!(
                            "SUBACK has {} codes for {} filters",
                            ack.reasons.len(),
                            filters.len()
                        );
                    }
                    return Ok(());
                }
                Packet::Disconnect(d) => bail!("DISCONNECT {} while subscribing", d.reason),
                // A retained message could arrive first; the bench topics have none.
                _ => {}
            }
        }
    }

    /// Appends `packet` to the write buffer.
    pub fn queue(&mut self, packet: &Packet) {
        encode_packet(packet, self.version, &mut self.wbuf).expect("bench packets are encodable");
    }

    /// Nothing read and not yet decoded.
    pub fn read_buffer_empty(&self) -> bool {
        self.rbuf.is_empty()
    }

    pub fn has_queued(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Writes everything queued in one `write_all`, then flushes.
    pub async fn flush(&mut self, deadline: Instant) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        timeout_at(deadline, self.stream.write_all(&self.wbuf))
            .await
            .map_err(|_| anyhow!("write timed out (deadline)"))??;
        // TLS may keep the last records until flushed (a no-op on plain TCP).
        timeout_at(deadline, self.stream.flush())
            .await
            .map_err(|_| anyhow!("flush timed out (deadline)"))??;
        self.wbuf.clear();
        Ok(())
    }

    /// Decodes one packet from what was already read, if a whole one is buffered.
    pub fn try_decode(&mut self) -> Result<Option<Packet>> {
        Ok(starling::protocol::decode_packet(
            &mut self.rbuf,
            Some(self.version),
            MAX_PACKET,
        )?)
    }

    /// One read from the socket into the read buffer. Cancel safe. `Ok(false)` on EOF.
    pub async fn fill(&mut self) -> Result<bool> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        Ok(n > 0)
    }

    /// The next packet, reading as needed, until `deadline`.
    pub async fn next_packet(&mut self, deadline: Instant) -> Result<Packet> {
        loop {
            if let Some(p) = self.try_decode()? {
                return Ok(p);
            }
            match timeout_at(deadline, self.fill()).await {
                Err(_) => bail!("timed out waiting for a packet"),
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => bail!("connection closed by the broker"),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Sends DISCONNECT and waits (until `deadline`) for the broker to close first, so
    /// that TIME_WAIT lands on the broker's side and not on the generator's ephemeral
    /// ports (thousands of those slow down every later connect()).
    pub async fn disconnect(mut self, deadline: Instant) {
        self.queue(&Packet::Disconnect(Disconnect::new(
            ReasonCode::NORMAL_DISCONNECTION,
        )));
        if self.flush(deadline).await.is_err() {
            return;
        }
        loop {
            self.rbuf.clear();
            match timeout_at(deadline, self.fill()).await {
                Ok(Ok(true)) => {}
                _ => return,
            }
        }
    }
}

pub async fn tcp_connect(addr: &str, source: Option<IpAddr>) -> Result<TcpStream> {
    let Some(ip) = source else {
        return Ok(TcpStream::connect(addr).await?);
    };
    let target: SocketAddr = addr.parse().context("--source-ips needs a numeric host")?;
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Pick the port at connect() time, per 4-tuple, instead of a port unique to bind().
    crate::sys::bind_address_no_port(socket.as_raw_fd());
    socket.bind(SocketAddr::new(ip, 0))?;
    Ok(socket.connect(target).await?)
}

/// The protocol level for `--mqtt`.
pub fn version_from_flag(v: u8) -> Result<ProtocolVersion> {
    match v {
        3 | 4 => Ok(ProtocolVersion::V311),
        5 => Ok(ProtocolVersion::V5),
        _ => bail!("--mqtt must be 3 (3.1.1) or 5"),
    }
}

pub fn qos_from_flag(q: u8) -> Result<QoS> {
    QoS::from_u8(q).ok_or_else(|| anyhow!("--qos must be 0, 1 or 2"))
}
