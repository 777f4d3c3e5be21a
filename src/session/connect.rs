//! The first moments of a connection: read CONNECT within the connect timeout,
//! authenticate it (`auth_flow.rs`), refuse it with the right CONNACK, or start the session actor that owns the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

use super::actor::{Session, SessionSetup};
use super::auth_flow::{authenticate, Refused};
use super::drain::DrainOnDrop;
use super::handshake::{admit, refusal, Accepted};
use super::reader::PacketReader;
use super::Shared;
use crate::hooks::ClientInfo;
use crate::metrics::Limit;
use crate::protocol::{
    encode_packet, Connect, DecodeError, MqttCodec, Packet, ProtocolVersion, ReasonCode,
};
use crate::transport::{BoxedReader, BoxedWriter, Connection};

/// Serves one accepted connection until its session actor takes it over.
pub async fn serve(conn: Connection, shared: Arc<Shared>) {
    let limits = &shared.config.limits;
    let codec = MqttCodec::new(limits.max_packet_size as usize);
    // Whoever drops the read half (this task after a refusal, the session actor as it
    // closes) leaves it to drain, so the client reads the broker's last packet instead
    // of a reset (see `drain.rs`). In-process connections need no such care.
    let raw = match conn.trusted {
        true => conn.reader,
        false => Box::new(DrainOnDrop::new(conn.reader)) as BoxedReader,
    };
    // Idle connections should cost little: no read buffer between packets.
    let mut reader = PacketReader::new(raw, codec);
    let mut writer = conn.writer;
    let peer = conn.peer;
    let Some(connect) = read_connect(&mut reader, &mut writer, &shared, peer).await else {
        return;
    };
    let version = connect.protocol;
    let Some(permit) = conn.permit else {
        debug!(%peer, "connection limit reached; refusing");
        shared.metrics.limits.hit(Limit::Connections);
        let ack = refusal(ReasonCode::SERVER_BUSY);
        refuse(&mut writer, Packet::ConnAck(ack), version).await;
        return;
    };
    if conn.over_rate {
        info!(%peer, listener = %conn.listener, "listener connect rate exceeded; refusing");
        shared.metrics.limits.hit(Limit::ConnectionRate);
        let ack = refusal(ReasonCode::CONNECTION_RATE_EXCEEDED);
        refuse(&mut writer, Packet::ConnAck(ack), version).await;
        return;
    }
    if shared
        .memory
        .as_ref()
        .is_some_and(|m| m.refuses_connections())
    {
        // Over the memory budget's refuse watermark (3.1.1: code 3).
        debug!(%peer, "memory over the refuse watermark; refusing");
        shared.metrics.limits.hit(Limit::MemoryRefuse);
        let ack = refusal(ReasonCode::QUOTA_EXCEEDED);
        refuse(&mut writer, Packet::ConnAck(ack), version).await;
        return;
    }
    if shared.isolation.is_isolated() {
        // Clients should go to a node that reaches the cluster (3.1.1: code 3).
        debug!(%peer, "cut off from the cluster; refusing");
        let ack = refusal(ReasonCode::SERVER_UNAVAILABLE);
        refuse(&mut writer, Packet::ConnAck(ack), version).await;
        return;
    }
    let mut accepted = match admit(&connect, &shared.config, fresh_client_id) {
        Ok(a) => a,
        Err(ack) => {
            debug!(%peer, reason = %ack.reason, "CONNECT refused");
            refuse(&mut writer, Packet::ConnAck(*ack), version).await;
            return;
        }
    };
    // An in-process persistent client (trusted) is not authenticated and has no
    // network address; its session is authorized and hooked like any other.
    // A TLS client certificate's name (identity_as_username) replaces the username.
    let identity = conn.identity;
    let client = match conn.trusted {
        true => ClientInfo::new(accepted.client_id.clone()),
        false => ClientInfo::new(accepted.client_id.clone())
            .with_username(
                identity
                    .clone()
                    .or_else(|| connect.username.as_deref().map(str::to_owned)),
            )
            .with_connection(conn.listener, peer, version),
    };
    let client = Arc::new(client);
    let login = Login {
        connect: &connect,
        client: &client,
        peer,
        shared: &shared,
        identity: identity.is_some(),
    };
    if !conn.trusted && !login.run(&mut accepted, &mut reader, &mut writer).await {
        return;
    }
    let setup = SessionSetup {
        client,
        accepted,
        will: connect.will,
        reader,
        writer,
        permit,
        shared,
    };
    Session::create(move |_| Session::new(setup));
}

/// A network client's CONNECT on its way through authentication.
struct Login<'a> {
    connect: &'a Connect,
    client: &'a Arc<ClientInfo>,
    peer: SocketAddr,
    shared: &'a Shared,
    /// Identified by its TLS client certificate: no password is checked.
    identity: bool,
}

impl Login<'_> {
    /// Authenticates the CONNECT; false once it was refused (CONNACK sent, if any).
    /// An address with too many failed logins is refused before any password is
    /// checked (CONNACK 0x8A Banned, 3.1.1: code 5), and each failure is counted.
    async fn run(
        &self,
        accepted: &mut Accepted,
        reader: &mut PacketReader,
        writer: &mut BoxedWriter,
    ) -> bool {
        let (peer, shared, version) = (self.peer, self.shared, self.connect.protocol);
        if let Some(wait) = shared.logins.refused_for(peer.ip(), Instant::now()) {
            debug!(%peer, retry_after_secs = wait.as_secs(), "too many failed logins from this address; CONNECT refused");
            refuse(
                writer,
                Packet::ConnAck(refusal(ReasonCode::BANNED)),
                version,
            )
            .await;
            return false;
        }
        let timeout = shared.config.limits.connect_timeout();
        let checked = match self.identity {
            true => certificate_is_credential(self.connect),
            false => {
                let auth = &shared.auth;
                authenticate(
                    self.connect,
                    self.client,
                    accepted,
                    reader,
                    writer,
                    auth,
                    timeout,
                )
                .await
            }
        };
        match checked {
            Ok(()) => true,
            Err(Refused::Connack(reason)) => {
                self.failed(reason);
                refuse(writer, Packet::ConnAck(refusal(reason)), version).await;
                false
            }
            Err(Refused::Close) => {
                debug!(%peer, "connection closed during authentication");
                false
            }
        }
    }

    /// Logs a refused login with the address and reason, and counts it against the
    /// address unless the broker was at fault.
    fn failed(&self, reason: ReasonCode) {
        let (peer, client) = (self.peer, self.client);
        let user = client.username.as_deref().unwrap_or_default();
        let broker_at_fault = [
            ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
            ReasonCode::SERVER_BUSY,
            ReasonCode::SERVER_UNAVAILABLE,
        ];
        if broker_at_fault.contains(&reason) {
            warn!(%peer, client_id = %client.client_id, username = user, %reason, "authentication could not be done");
            return;
        }
        let counted = self.shared.logins.failed(peer.ip(), Instant::now());
        info!(%peer, client_id = %client.client_id, username = user, %reason, failures = counted.failures, "authentication failed");
        if let Some(refused) = counted.now_refused_for {
            warn!(%peer, failures = counted.failures, refused_for_secs = refused.as_secs(), "too many failed logins from this address; its CONNECTs are refused until the window ends");
        }
    }
}

/// A client identified by its TLS certificate (`identity_as_username`): the verified
/// certificate is its credential, so the password is not checked (as Mosquitto's
/// `use_identity_as_username`); enhanced authentication is not offered to it.
fn certificate_is_credential(connect: &Connect) -> Result<(), Refused> {
    match connect.properties.authentication_method {
        Some(_) => Err(Refused::Connack(ReasonCode::BAD_AUTHENTICATION_METHOD)),
        None => Ok(()),
    }
}

/// The first packet, which must be CONNECT, within the connect timeout
/// [MQTT-3.1.0-1]; `None` once the connection was answered (if at all) and closed.
async fn read_connect(
    reader: &mut PacketReader,
    writer: &mut BoxedWriter,
    shared: &Shared,
    peer: SocketAddr,
) -> Option<Connect> {
    let first = tokio::time::timeout(shared.config.limits.connect_timeout(), reader.next()).await;
    match first {
        Err(_) => {
            debug!(%peer, "no CONNECT within the connect timeout; closing");
            None
        }
        Ok(None) => None,
        Ok(Some(Err(error))) => {
            debug!(%peer, %error, "bad CONNECT; closing");
            let level = connect_level(reader.read_buffer());
            refuse_bad_connect(writer, &error, level).await;
            None
        }
        Ok(Some(Ok(Packet::Connect(connect)))) => Some(*connect),
        Ok(Some(Ok(_))) => None,
    }
}

/// Answers a CONNECT that did not decode, where the spec asks for a CONNACK.
async fn refuse_bad_connect(writer: &mut BoxedWriter, error: &DecodeError, level: Option<u8>) {
    if let DecodeError::UnsupportedProtocolVersion { level, .. } = error {
        // [MQTT-3.1.2-2]: CONNACK return code 1 (0x84 in 5.0 terms), 3.1.1 format;
        // a wrong protocol name at level 5 gets 0x84 in 5.0 form [MQTT-3.1.2-1].
        let form = match level {
            5 => ProtocolVersion::V5,
            _ => ProtocolVersion::V311,
        };
        let ack = refusal(ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
        refuse(writer, Packet::ConnAck(ack), form).await;
    } else if level == Some(5) {
        // [MQTT-3.1.4-1]: a 5.0 client may be told why before the close (4.13).
        let ack = refusal(error.reason_code());
        refuse(writer, Packet::ConnAck(ack), ProtocolVersion::V5).await;
    }
}

/// Sends a refusal and shuts the write side down (the read side drains as it is
/// dropped); errors are moot, the connection is going anyway.
async fn refuse(writer: &mut BoxedWriter, packet: Packet, version: ProtocolVersion) {
    let mut buf = BytesMut::new();
    if encode_packet(&packet, version, &mut buf).is_ok() {
        let _ = writer.write_all(&buf).await;
    }
    let _ = writer.shutdown().await;
}

/// The protocol level byte of a CONNECT still in the buffer, when enough of it arrived
/// (fixed header, then the length-prefixed protocol name, then the level).
fn connect_level(buf: &[u8]) -> Option<u8> {
    let mut i = 1;
    while *buf.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let name_len = usize::from(u16::from_be_bytes([*buf.get(i + 1)?, *buf.get(i + 2)?]));
    buf.get(i + 3 + name_len).copied()
}

/// A client id for a client that sent none [MQTT-3.1.3-6].
fn fresh_client_id() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("starling-{n:016x}")
}

#[cfg(test)]
mod tests {
    use super::connect_level;

    #[test]
    fn peeks_the_level_of_a_partial_connect() {
        assert_eq!(
            connect_level(&[0x10, 0x7F, 0, 4, b'M', b'Q', b'T', b'T', 5]),
            Some(5)
        );
        assert_eq!(
            connect_level(&[0x10, 0x80, 0x01, 0, 4, b'M', b'Q', b'T', b'T', 4]),
            Some(4)
        );
        assert_eq!(connect_level(&[0x10, 0x7F, 0, 4, b'M', b'Q']), None);
        assert_eq!(connect_level(&[0x10]), None);
    }
}
