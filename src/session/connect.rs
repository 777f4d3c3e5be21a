//! The first moments of a connection: read CONNECT within the connect timeout,
//! authenticate it (`auth_flow.rs`), refuse it with the right CONNACK, or start the session actor that owns the connection.

use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;
use tracing::{debug, info};

use super::actor::{Session, SessionSetup};
use super::auth_flow::{authenticate, Refused};
use super::handshake::{admit, refusal};
use super::Shared;
use crate::hooks::ClientInfo;
use crate::protocol::{
    encode_packet, Connect, DecodeError, MqttCodec, Packet, ProtocolVersion, ReasonCode,
};
use crate::transport::{BoxedReader, BoxedWriter, Connection};

/// Initial read buffer of a connection.
const READ_BUFFER_START: usize = 256;

/// Serves one accepted connection until its session actor takes it over.
pub async fn serve(conn: Connection, shared: Arc<Shared>) {
    let limits = &shared.config.limits;
    let codec = MqttCodec::new(limits.max_packet_size as usize);
    // Idle connections should cost little: start the read buffer small (tokio-util's
    // default is 8 KiB); the codec reserves room for each packet as it arrives.
    let mut reader = FramedRead::with_capacity(conn.reader, codec, READ_BUFFER_START);
    let mut writer = conn.writer;
    let peer = conn.peer;
    let Some(connect) = read_connect(&mut reader, &mut writer, &shared, peer).await else {
        return;
    };
    let version = connect.protocol;
    let Some(permit) = conn.permit else {
        debug!(%peer, "connection limit reached; refusing");
        let ack = refusal(ReasonCode::SERVER_BUSY);
        refuse(&mut writer, Packet::ConnAck(ack), version).await;
        return;
    };
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
    let timeout = limits.connect_timeout();
    let auth = &shared.auth;
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
    let authenticated = match (conn.trusted, &identity) {
        (true, _) => Ok(()),
        (false, Some(_)) => certificate_is_credential(&connect),
        (false, None) => {
            authenticate(
                &connect,
                &client,
                &mut accepted,
                &mut reader,
                &mut writer,
                auth,
                timeout,
            )
            .await
        }
    };
    match authenticated {
        Ok(()) => {}
        Err(Refused::Connack(reason)) => {
            info!(%peer, client_id = %accepted.client_id, %reason, "authentication failed");
            refuse(&mut writer, Packet::ConnAck(refusal(reason)), version).await;
            return;
        }
        Err(Refused::Close) => {
            debug!(%peer, "connection closed during authentication");
            return;
        }
    }
    debug!(%peer, client_id = %accepted.client_id, ?version, "connected");
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
    reader: &mut FramedRead<BoxedReader, MqttCodec>,
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

/// Sends a refusal and closes; errors are moot, the connection is going anyway.
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
