//! Authentication of a CONNECT before its session starts: the plain username/password
//! check, or the enhanced authentication exchange of MQTT 5.0 (section 4.12): AUTH 0x18
//! packets back and forth until the [`Authenticator`] succeeds or fails, all within the
//! connect timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::handshake::Accepted;
use crate::auth::{AuthStep, Authenticator};
use crate::hooks::ClientInfo;
use crate::protocol::{
    encode_packet, Auth, Connect, DecodeError, Packet, Properties, PropertyFields, ProtocolVersion,
    ReasonCode,
};
use crate::transport::BoxedWriter;

/// How an authentication that did not succeed ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Send a refusing CONNACK with this reason, then close.
    Connack(ReasonCode),
    /// Close without a word (timeout, the client left or sent garbage).
    Close,
}

/// Authenticates `connect`; on success a 5.0 exchange's method and final data are put
/// into `accepted` for the CONNACK.
pub async fn authenticate<R>(
    connect: &Connect,
    client: &Arc<ClientInfo>,
    accepted: &mut Accepted,
    reader: &mut R,
    writer: &mut BoxedWriter,
    auth: &Arc<dyn Authenticator>,
    timeout: Duration,
) -> Result<(), Refused>
where
    R: Stream<Item = Result<Packet, DecodeError>> + Unpin,
{
    let Some(method) = connect.properties.authentication_method.clone() else {
        if !auth.plain_check_is_slow(client.username.as_deref()) {
            // Nothing to hash (anonymous, or no password file): no thread hop.
            return auth
                .check_client(client, connect.password.as_deref())
                .map_err(Refused::Connack);
        }
        // Password hashing is slow on purpose: keep it off the arbiter's thread, and
        // bound how many run at once (an Argon2id check holds 19 MiB).
        let turn = tokio::time::timeout(timeout, password_checks().acquire()).await;
        let Ok(Ok(_turn)) = turn else {
            return Err(Refused::Connack(ReasonCode::SERVER_BUSY));
        };
        let (auth, client) = (Arc::clone(auth), Arc::clone(client));
        let password = connect.password.clone();
        let checked =
            tokio::task::spawn_blocking(move || auth.check_client(&client, password.as_deref()))
                .await;
        return match checked {
            Ok(result) => result.map_err(Refused::Connack),
            Err(_) => Err(Refused::Connack(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR)),
        };
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let data = connect.properties.authentication_data.as_deref();
    let (mut step, exchange) = auth.start(&method, client, data);
    let Some(mut exchange) = exchange else {
        return Err(to_refusal(step));
    };
    loop {
        match step {
            AuthStep::Success { server_data } => {
                accepted.auth_method = Some(method);
                accepted.auth_data = server_data;
                return Ok(());
            }
            AuthStep::Failure(reason) => return Err(Refused::Connack(reason)),
            AuthStep::Continue { server_data } => {
                let properties = Properties::from(PropertyFields {
                    authentication_method: Some(method.clone()),
                    authentication_data: Some(server_data),
                    ..PropertyFields::default()
                });
                let packet = Packet::Auth(Auth {
                    reason: ReasonCode::CONTINUE_AUTHENTICATION,
                    properties,
                });
                let mut buf = BytesMut::new();
                encode_packet(&packet, ProtocolVersion::V5, &mut buf)
                    .map_err(|_| Refused::Connack(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR))?;
                writer.write_all(&buf).await.map_err(|_| Refused::Close)?;
                let reply = tokio::time::timeout_at(deadline, reader.next()).await;
                let data = match reply {
                    Ok(Some(Ok(Packet::Auth(a)))) => client_auth_data(a, &method)?,
                    Ok(Some(Ok(other))) => {
                        debug!(
                            packet_type = other.packet_type(),
                            "not AUTH during authentication"
                        );
                        return Err(Refused::Connack(ReasonCode::PROTOCOL_ERROR));
                    }
                    Ok(Some(Err(error))) => return Err(Refused::Connack(error.reason_code())),
                    Ok(None) | Err(_) => return Err(Refused::Close),
                };
                step = exchange.step(&data);
            }
        }
    }
}

/// The password checks that may run at once: twice the cores, at least 4. Others wait
/// their turn (within the connect timeout).
fn password_checks() -> &'static tokio::sync::Semaphore {
    static CHECKS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    CHECKS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new((2 * cores).max(4))
    })
}

/// The data of the client's AUTH: it must continue the exchange with the same method
/// [MQTT-4.12.0-4] [MQTT-4.12.0-5] (otherwise: Protocol Error).
fn client_auth_data(a: Auth, method: &str) -> Result<bytes::Bytes, Refused> {
    if a.reason != ReasonCode::CONTINUE_AUTHENTICATION
        || a.properties.authentication_method.as_deref() != Some(method)
    {
        return Err(Refused::Connack(ReasonCode::PROTOCOL_ERROR));
    }
    Ok(a.properties.authentication_data.clone().unwrap_or_default())
}

fn to_refusal(step: AuthStep) -> Refused {
    match step {
        AuthStep::Failure(reason) => Refused::Connack(reason),
        _ => Refused::Connack(ReasonCode::BAD_AUTHENTICATION_METHOD),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(reason: ReasonCode, method: Option<&str>, data: &'static [u8]) -> Auth {
        Auth {
            reason,
            properties: Properties::from(PropertyFields {
                authentication_method: method.map(Into::into),
                authentication_data: Some(bytes::Bytes::from_static(data)),
                ..PropertyFields::default()
            }),
        }
    }

    #[test]
    fn client_auth_must_continue_with_the_same_method() {
        let ok = auth(ReasonCode::CONTINUE_AUTHENTICATION, Some("M"), b"d");
        assert_eq!(client_auth_data(ok, "M").unwrap(), &b"d"[..]);
        let protocol_error = Err(Refused::Connack(ReasonCode::PROTOCOL_ERROR));
        let other = auth(ReasonCode::CONTINUE_AUTHENTICATION, Some("N"), b"d");
        assert_eq!(client_auth_data(other, "M"), protocol_error);
        let none = auth(ReasonCode::CONTINUE_AUTHENTICATION, None, b"d");
        assert_eq!(client_auth_data(none, "M"), protocol_error);
        let reauth = auth(ReasonCode::REAUTHENTICATE, Some("M"), b"d");
        assert_eq!(client_auth_data(reauth, "M"), protocol_error);
    }
}
