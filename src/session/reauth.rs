//! Re-authentication (MQTT 5.0, section 4.12.1): a client that connected with an
//! Authentication Method may run the exchange again at any time after CONNACK, with
//! AUTH 0x19 and then AUTH 0x18 packets, while its session goes on serving. Success is
//! an AUTH 0x00; failure is a DISCONNECT and the connection closes [MQTT-4.12.1-2].

use actix::prelude::*;
use bytestring::ByteString;
use tracing::debug;

use super::actor::Session;
use crate::auth::AuthStep;
use crate::protocol::{Auth, Packet, Properties, PropertyFields, ReasonCode};

/// What a client's AUTH packet means for the session.
#[derive(Debug, PartialEq, Eq)]
enum AuthRequest {
    /// AUTH 0x19: begin a re-authentication.
    Start,
    /// AUTH 0x18: the next step of the one in progress.
    Continue,
}

/// Checks a client's AUTH against the session's method and exchange; the error is the
/// reason the server's DISCONNECT gives.
fn classify(
    auth: &Auth,
    method: Option<&ByteString>,
    in_progress: bool,
) -> Result<AuthRequest, &'static str> {
    // [MQTT-3.15.0-1] / [MQTT-4.12.0-7]: no AUTH without a method in CONNECT.
    let Some(method) = method else {
        return Err("AUTH without an Authentication Method in CONNECT");
    };
    // [MQTT-4.12.1-1] the same method as the CONNECT's [MQTT-4.12.0-5].
    if auth.properties.authentication_method.as_ref() != Some(method) {
        return Err("AUTH with another Authentication Method");
    }
    match (auth.reason, in_progress) {
        (ReasonCode::REAUTHENTICATE, false) => Ok(AuthRequest::Start),
        (ReasonCode::CONTINUE_AUTHENTICATION, true) => Ok(AuthRequest::Continue),
        (ReasonCode::REAUTHENTICATE, true) => Err("re-authentication already in progress"),
        _ => Err("AUTH out of sequence"),
    }
}

/// The DISCONNECT reason for a failed re-authentication: the authenticator's reason
/// when DISCONNECT may carry it, else Not Authorized (0x86 and 0x8C are CONNACK-only).
fn failure_reason(reason: ReasonCode) -> ReasonCode {
    match reason {
        ReasonCode::UNSPECIFIED_ERROR
        | ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR
        | ReasonCode::NOT_AUTHORIZED
        | ReasonCode::SERVER_BUSY => reason,
        _ => ReasonCode::NOT_AUTHORIZED,
    }
}

impl Session {
    /// A client's AUTH packet after CONNACK.
    pub(super) fn on_auth(&mut self, auth: Auth, ctx: &mut Context<Self>) {
        let method = self.accepted.auth_method.clone();
        let request = match classify(&auth, method.as_ref(), self.reauth.is_some()) {
            Ok(request) => request,
            Err(why) => {
                self.reauth = None;
                return self.fail(ctx, ReasonCode::PROTOCOL_ERROR, why);
            }
        };
        let Some(method) = method else { return };
        let data = auth
            .properties
            .authentication_data
            .clone()
            .unwrap_or_default();
        let step = match request {
            AuthRequest::Start => {
                let (step, exchange) = self.shared.auth.start(&method, &self.client, Some(&data));
                self.reauth = exchange;
                step
            }
            AuthRequest::Continue => match self.reauth.as_mut() {
                Some(exchange) => exchange.step(&data),
                None => return,
            },
        };
        let (reason, server_data) = match step {
            AuthStep::Success { server_data } => {
                self.reauth = None;
                debug!(client_id = %self.state.client_id, "re-authenticated");
                (ReasonCode::SUCCESS, server_data)
            }
            AuthStep::Continue { server_data } => {
                (ReasonCode::CONTINUE_AUTHENTICATION, Some(server_data))
            }
            AuthStep::Failure(reason) => {
                self.reauth = None;
                return self.fail(ctx, failure_reason(reason), "re-authentication failed");
            }
        };
        let properties = Properties::from(PropertyFields {
            authentication_method: Some(method),
            authentication_data: server_data,
            ..PropertyFields::default()
        });
        self.send(&Packet::Auth(Auth { reason, properties }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(reason: ReasonCode, method: Option<&str>) -> Auth {
        Auth {
            reason,
            properties: Properties::from(PropertyFields {
                authentication_method: method.map(Into::into),
                ..PropertyFields::default()
            }),
        }
    }

    #[test]
    fn auth_is_checked_against_the_connect_method_and_the_exchange() {
        let m = ByteString::from("M");
        let start = auth(ReasonCode::REAUTHENTICATE, Some("M"));
        let cont = auth(ReasonCode::CONTINUE_AUTHENTICATION, Some("M"));
        assert_eq!(classify(&start, Some(&m), false), Ok(AuthRequest::Start));
        assert_eq!(classify(&cont, Some(&m), true), Ok(AuthRequest::Continue));
        assert!(classify(&start, None, false).is_err());
        assert!(classify(&start, Some(&m), true).is_err());
        assert!(classify(&cont, Some(&m), false).is_err());
        let other = auth(ReasonCode::REAUTHENTICATE, Some("N"));
        assert!(classify(&other, Some(&m), false).is_err());
        let no_method = auth(ReasonCode::REAUTHENTICATE, None);
        assert!(classify(&no_method, Some(&m), false).is_err());
        let success = auth(ReasonCode::SUCCESS, Some("M"));
        assert!(classify(&success, Some(&m), true).is_err());
    }

    #[test]
    fn failures_map_to_disconnect_reasons() {
        assert_eq!(
            failure_reason(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            ReasonCode::NOT_AUTHORIZED
        );
        assert_eq!(
            failure_reason(ReasonCode::BAD_AUTHENTICATION_METHOD),
            ReasonCode::NOT_AUTHORIZED
        );
        assert_eq!(
            failure_reason(ReasonCode::SERVER_BUSY),
            ReasonCode::SERVER_BUSY
        );
    }
}
