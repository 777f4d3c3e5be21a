//! Messages a session actor handles.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::state::SessionState;
use crate::delivery::Outgoing;
use crate::router::link::Handoff;

/// One routed message for this session's client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Outgoing);

/// Several routed messages for this session's client, in routing order: what the
/// router delivered to it in one turn.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverBatch(pub Vec<Outgoing>);

/// Another connection claimed this client id: close this one (5.0: DISCONNECT 0x8E) and
/// hand the session over, or discard it when `handover` is `None` (clean start, or a
/// node elsewhere in the cluster took it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Takeover {
    pub handover: Option<oneshot::Sender<Handoff>>,
    /// Cluster mode: fires once the store holds the session's final state (everything
    /// this actor sent the persistence actor before closing is acknowledged).
    pub flushed: Option<oneshot::Sender<()>>,
}

/// What the previous session actor hands to the new one (inside a [`Handoff`]).
#[derive(Debug)]
pub enum Handover {
    /// The session continues: here is its state.
    State(Box<SessionState>),
    /// The session had already ended (its subscriptions are stale).
    Ended,
}

/// Close the live connection, if any, with `reason` (5.0: DISCONNECT with `why` as its
/// Reason String). Unlike [`Shutdown`], the will is published and a persistent session
/// stays, as for any server-side close.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Evict {
    pub reason: crate::protocol::ReasonCode,
    pub why: &'static str,
}

/// The authorizer's rules changed: drop whichever of these subscriptions the client
/// may no longer hold.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Recheck(pub Vec<crate::topic::TopicFilter>);

/// The broker is shutting down: close the connection (5.0: DISCONNECT 0x8B).
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;
