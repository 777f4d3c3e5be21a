//! Messages the router actor handles.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::state::{SubEntry, SubscribeOutcome};
use crate::message::{ClientId, Message};
use crate::session::{Handover, Session};
use crate::topic::TopicFilter;

/// A session actor with a new connection claims its client id. If another actor holds
/// the id, the router points the id at the new actor at once and tells the old one to
/// hand its state over (or to discard it on clean start).
#[derive(Message)]
#[rtype(result = "RegisterReply")]
pub struct Register {
    pub client_id: ClientId,
    pub clean_start: bool,
    pub addr: Addr<Session>,
}

/// The answer to [`Register`].
#[derive(MessageResponse)]
pub struct RegisterReply {
    /// Where the previous session's state will arrive, when one exists and the new
    /// connection did not ask for a clean start.
    pub handover: Option<oneshot::Receiver<Handover>>,
}

/// A session actor's connection closed; shared subscriptions skip it while offline.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WentOffline {
    pub client_id: ClientId,
    pub addr: Addr<Session>,
}

/// A session ended (clean disconnect or expiry): its subscriptions go.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionEnded {
    pub client_id: ClientId,
    pub addr: Addr<Session>,
}

/// Route one published message to every matching session.
#[derive(Message)]
#[rtype(result = "Routed")]
pub struct Route {
    pub msg: Arc<Message>,
}

/// The answer to [`Route`]: how many sessions it was handed to.
#[derive(Debug, Clone, Copy, MessageResponse)]
pub struct Routed {
    pub matched: usize,
}

/// Add or replace subscriptions of one client.
#[derive(Message)]
#[rtype(result = "Vec<SubscribeOutcome>")]
pub struct Subscribe {
    pub client_id: ClientId,
    pub filters: Vec<(TopicFilter, SubEntry)>,
}

/// Remove subscriptions of one client; the answer says which existed.
#[derive(Message)]
#[rtype(result = "Vec<bool>")]
pub struct Unsubscribe {
    pub client_id: ClientId,
    pub filters: Vec<TopicFilter>,
}

/// Counters for `$SYS` and tests.
#[derive(Message)]
#[rtype(result = "RouterStats")]
pub struct GetStats;

/// Router counters.
#[derive(Debug, Clone, Copy, Default, MessageResponse)]
pub struct RouterStats {
    pub sessions: usize,
    pub subscriptions: usize,
    pub retained: usize,
    pub routed: u64,
}

/// Close every session's connection (broker shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownSessions;

/// Forget every subscription of a client whose previous session turned out to have
/// ended (or vanished) while a new connection was resuming it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetClient {
    pub client_id: ClientId,
}
