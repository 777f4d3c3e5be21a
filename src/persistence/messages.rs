//! The messages the persistence actor handles.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{Op, StoredSession};
use crate::delivery::Origin;
use crate::message::{ClientId, Message};
use crate::protocol::QoS;

/// Apply `ops`; `done` fires once they are durable (sync mode).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persist {
    pub ops: Vec<Op>,
    pub done: Option<oneshot::Sender<()>>,
}

/// One delivery of a routed message to a persistent session.
#[derive(Debug, Clone)]
pub struct QueuedDelivery {
    pub client: ClientId,
    pub seq: u64,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
}

/// Queue `msg` for each of `targets`, plus `extra` ops (retained message, inbound QoS 2
/// id), all in one batch. The records are built here, off the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PersistDeliveries {
    pub msg: Arc<Message>,
    pub targets: Vec<QueuedDelivery>,
    pub extra: Vec<Op>,
    pub done: Option<oneshot::Sender<()>>,
    /// Cluster mode: the message's (origin, seq), recorded for each target.
    pub origin: Option<Origin>,
}

/// Load one stored session for a client whose session actor died (or, in cluster mode,
/// that another node held); the answer goes to the new session actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LoadSession {
    pub client_id: ClientId,
    pub reply: oneshot::Sender<Loaded>,
    /// Ops for the same client applied once the load has read what it needs (the load
    /// does not see them).
    pub then: Vec<Op>,
}

/// The answer to [`LoadSession`]. A dropped sender means [`Loaded::Failed`] too.
#[derive(Debug)]
pub enum Loaded {
    /// The session as stored.
    Found(Box<StoredSession>),
    /// Nothing is stored for the client id: the session had ended.
    Nothing,
    /// The store could not be read: the connection is refused (the client retries),
    /// never resumed as a fresh session.
    Failed,
}

/// A load that ran off the actor's thread is done; `then` is `None` when it failed.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct LoadDone {
    pub client_id: ClientId,
    pub then: Option<Vec<Op>>,
}

/// Commit and flush everything now (shutdown).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct FlushNow;

#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Commit;

/// The flush timer (`periodic`: every `flush_interval_ms`; `sync`: a lazy flush).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct FlushTick;

/// The compaction timer.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct CompactCheck;
