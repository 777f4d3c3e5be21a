//! The session's side of the admin API (see `crate::router::admin`): it tells what the
//! router does not know of it (address, protocol, queue depth, messages in flight), and
//! an administrator's disconnect closes its connection (5.0: DISCONNECT 0x98
//! Administrative action), ending the session too when asked.

use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::info;

use super::actor::Session;
use super::lifecycle::Phase;
use crate::protocol::ReasonCode;
use crate::router::admin::SessionDetails;

/// Answer what the admin API shows of this session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Describe(pub oneshot::Sender<SessionDetails>);

/// An administrator disconnects this session's client; with `discard` the session
/// ends as well.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Kick {
    pub discard: bool,
}

impl Session {
    fn details(&self) -> SessionDetails {
        let live = self.life.phase() == Phase::Live && self.link.is_some();
        SessionDetails {
            address: self.client.remote_addr.filter(|_| live),
            protocol: Some(self.accepted.protocol),
            username: self.client.username.clone(),
            connected_since: self.connected_at.filter(|_| live),
            queued: self.state.queue_len(),
            inflight: self.state.inflight().count(),
        }
    }
}

impl Handler<Describe> for Session {
    type Result = ();

    fn handle(&mut self, msg: Describe, _: &mut Self::Context) {
        let _ = msg.0.send(self.details());
    }
}

impl Handler<Kick> for Session {
    type Result = ();

    fn handle(&mut self, msg: Kick, ctx: &mut Self::Context) {
        let client_id = &self.state.client_id;
        info!(%client_id, discard = msg.discard, "disconnected by an administrator");
        if self.life.has_connection() {
            self.fail(
                ctx,
                ReasonCode::ADMINISTRATIVE_ACTION,
                "administrative action",
            );
        }
        if msg.discard {
            self.end(ctx);
        }
    }
}
