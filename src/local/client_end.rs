//! The client end of a [`PersistentClient`](super::PersistentClient)'s connection: one
//! task speaking MQTT 5.0, with the crate's own codec, over an in-memory pipe
//! (`tokio::io::duplex`) to a session that `session::serve` runs as it runs a network
//! client's. It hands the client's commands to [`Requests`] (the client state without
//! I/O) and writes what that encodes, feeds it the acknowledgements it reads, and
//! queues what the session delivers ([`Deliveries`]). It never waits for the
//! application, so the acknowledgements of the client's own requests always get read.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval};
use tracing::debug;

use super::deliveries::Deliveries;
use super::requests::{Command, Requests};
use super::{refused, Refused};
use crate::protocol::{decode_packet, ConnAck, Connect, Packet, ProtocolVersion, QoS, ReasonCode};

/// The longest wait for CONNACK: a session taking its state over from another
/// connection may wait 5 s for it (25 s in cluster mode).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait, after DISCONNECT, for the session to close the connection.
const LINGER: Duration = Duration::from_secs(5);
/// The read buffer grows by this much when nearly full.
const READ_CHUNK: usize = 8 * 1024;

/// What the broker's CONNACK said that the client must follow.
#[derive(Debug, Clone, Copy)]
pub(super) struct Agreed {
    pub session_present: bool,
    pub max_qos: QoS,
    pub retain_available: bool,
}

/// The connection task's state.
pub(super) struct ClientEnd {
    reader: ReadHalf<DuplexStream>,
    writer: WriteHalf<DuplexStream>,
    rbuf: BytesMut,
    commands: mpsc::UnboundedReceiver<Command>,
    deliveries: Arc<Deliveries>,
    /// What is being asked and answered; its `out` is what to write.
    requests: Requests,
    /// PINGREQ interval, when the broker set a keep alive.
    keep_alive: Option<Duration>,
    /// The reason of the broker's DISCONNECT, once it sent one.
    broker_reason: Option<ReasonCode>,
    /// The client's DISCONNECT is sent: waiting for the close, until the deadline.
    closing: Option<(oneshot::Sender<()>, Instant)>,
}

impl ClientEnd {
    pub fn new(
        io: DuplexStream,
        commands: mpsc::UnboundedReceiver<Command>,
        deliveries: Arc<Deliveries>,
    ) -> ClientEnd {
        let (reader, writer) = tokio::io::split(io);
        ClientEnd {
            reader,
            writer,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            commands,
            deliveries,
            requests: Requests::new(),
            keep_alive: None,
            broker_reason: None,
            closing: None,
        }
    }

    /// Connects with `connect`, tells `connected` the outcome, then serves the client
    /// until the connection ends or the client is dropped.
    pub async fn run(
        mut self,
        connect: Connect,
        connected: oneshot::Sender<Result<Agreed, Refused>>,
    ) {
        let ack = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.handshake(connect)).await;
        let ack = match ack {
            Ok(Ok(ack)) => ack,
            Ok(Err(why)) => {
                let _ = connected.send(Err(why));
                return;
            }
            Err(_) => {
                let why = "no CONNACK from the broker in time";
                let _ = connected.send(Err(refused(ReasonCode::SERVER_UNAVAILABLE, why)));
                return;
            }
        };
        let agreed = self.adopt(&ack);
        if connected.send(Ok(agreed)).is_err() {
            // The caller stopped waiting: dropping the pipe closes the connection.
            return;
        }
        let reason = self.serve().await;
        self.finish(reason);
    }

    /// CONNECT, then the CONNACK: the session's answer, or why there is none.
    async fn handshake(&mut self, connect: Connect) -> Result<ConnAck, Refused> {
        let gone = || {
            refused(
                ReasonCode::SERVER_UNAVAILABLE,
                "the broker closed the connection",
            )
        };
        self.requests.encode(&Packet::Connect(Box::new(connect)))?;
        self.writer
            .write_all(&self.requests.out)
            .await
            .map_err(|_| gone())?;
        self.requests.out.clear();
        loop {
            match self.decode() {
                Ok(Some(Packet::ConnAck(ack))) if !ack.reason.is_error() => return Ok(ack),
                Ok(Some(Packet::ConnAck(ack))) => {
                    return Err(refused(ack.reason, "the broker refused the connection"))
                }
                Ok(Some(_)) => {
                    let why = "the broker sent something else than CONNACK";
                    return Err(refused(ReasonCode::PROTOCOL_ERROR, why));
                }
                Ok(None) => {}
                Err(reason) => return Err(refused(reason, "the broker's CONNACK did not decode")),
            }
            self.rbuf.reserve(READ_CHUNK);
            match self.reader.read_buf(&mut self.rbuf).await {
                Ok(0) | Err(_) => return Err(gone()),
                Ok(_) => {}
            }
        }
    }

    /// Takes the broker's limits from its CONNACK.
    fn adopt(&mut self, ack: &ConnAck) -> Agreed {
        let p = &ack.properties;
        self.requests
            .set_limits(p.receive_maximum, p.maximum_packet_size);
        // A keep alive the broker imposes ([limits] max_keepalive_secs): PINGREQ at half
        // of it, so the session never times the connection out.
        self.keep_alive = p
            .server_keep_alive
            .filter(|&ka| ka > 0)
            .map(|ka| Duration::from_millis(u64::from(ka) * 500));
        Agreed {
            session_present: ack.session_present,
            max_qos: p
                .maximum_qos
                .and_then(QoS::from_u8)
                .unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available != Some(0),
        }
    }

    /// Reads, writes and handles requests until the connection ends; returns why.
    async fn serve(&mut self) -> ReasonCode {
        let mut ping = self
            .keep_alive
            .map(|every| tokio::time::interval_at(Instant::now() + every, every));
        // What came with the CONNACK (the session's first messages) is read already.
        if let Err(reason) = self.on_readable() {
            return reason;
        }
        loop {
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK);
            }
            let linger = self.closing.as_ref().map(|(_, until)| *until);
            let writing = !self.requests.out.is_empty();
            tokio::select! {
                read = self.reader.read_buf(&mut self.rbuf) => match read {
                    Ok(0) | Err(_) => return self.end_reason(),
                    Ok(_) => {
                        if let Err(reason) = self.on_readable() {
                            return reason;
                        }
                    }
                },
                written = self.writer.write_buf(&mut self.requests.out), if writing => {
                    if written.is_err() {
                        return self.end_reason();
                    }
                }
                command = self.commands.recv(), if self.closing.is_none() => match command {
                    Some(command) => {
                        if let Some(done) = self.requests.handle(command) {
                            self.closing = Some((done, Instant::now() + LINGER));
                        }
                    }
                    // The client was dropped: so is the pipe, as a network client's
                    // socket closes without DISCONNECT.
                    None => return ReasonCode::UNSPECIFIED_ERROR,
                },
                _ = tick(&mut ping) => self.requests.send(&Packet::PingReq),
                _ = deadline(linger) => return self.end_reason(),
            }
        }
    }

    /// Why the connection ended: the broker's DISCONNECT reason, else a normal
    /// disconnection when the client asked for it, else an unspecified error.
    fn end_reason(&self) -> ReasonCode {
        match (self.broker_reason, &self.closing) {
            (Some(reason), _) => reason,
            (None, Some(_)) => ReasonCode::NORMAL_DISCONNECTION,
            (None, None) => ReasonCode::UNSPECIFIED_ERROR,
        }
    }

    /// The connection ended: the queue ends, every request waiting fails.
    fn finish(&mut self, reason: ReasonCode) {
        self.deliveries.end(reason);
        let code = match reason.is_error() {
            true => reason,
            false => ReasonCode::UNSPECIFIED_ERROR,
        };
        let why = refused(code, "the connection to the broker ended");
        self.requests.fail_all(&why);
        if let Some((done, _)) = self.closing.take() {
            let _ = done.send(());
        }
    }

    /// One packet from what was read, if a whole one is there; an error is the reason
    /// code of what the broker got wrong.
    fn decode(&mut self) -> Result<Option<Packet>, ReasonCode> {
        // The broker bounds what it sends; no limit of the client's own here.
        decode_packet(&mut self.rbuf, Some(ProtocolVersion::V5), usize::MAX).map_err(|error| {
            debug!(%error, "a packet from the broker did not decode");
            error.reason_code()
        })
    }

    /// Handles every whole packet read.
    fn on_readable(&mut self) -> Result<(), ReasonCode> {
        while let Some(packet) = self.decode()? {
            self.on_packet(packet)?;
        }
        Ok(())
    }

    fn on_packet(&mut self, packet: Packet) -> Result<(), ReasonCode> {
        match packet {
            Packet::Publish(p) => {
                if let Some(delivery) = self.requests.on_publish(p) {
                    self.deliveries.push(delivery);
                }
            }
            Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_) => self.requests.on_ack(packet),
            Packet::PingResp => {}
            // The broker closes next; its reason is the connection's end.
            Packet::Disconnect(d) => self.broker_reason = Some(d.reason),
            other => {
                let packet_type = other.packet_type();
                debug!(packet_type, "unexpected packet from the broker");
                return Err(ReasonCode::PROTOCOL_ERROR);
            }
        }
        Ok(())
    }
}

impl Drop for ClientEnd {
    /// Also when the task is dropped unfinished (its arbiter stopped with the broker):
    /// the client's stream ends.
    fn drop(&mut self) {
        self.deliveries.end(ReasonCode::UNSPECIFIED_ERROR);
    }
}

/// The next keep-alive tick; never without a keep alive.
async fn tick(ping: &mut Option<Interval>) {
    match ping {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves at `until`; never without one.
async fn deadline(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}
