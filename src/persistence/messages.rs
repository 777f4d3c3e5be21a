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
    /// The changes, applied in order in one batch.
    pub ops: Vec<Op>,
    /// Fired once they are durable; dropped unfired when the write failed.
    pub done: Option<oneshot::Sender<()>>,
}

/// One delivery of a routed message to a persistent session.
#[derive(Debug, Clone)]
pub struct QueuedDelivery {
    /// The persistent session it is queued for.
    pub client: ClientId,
    /// Its place in that session's queue.
    pub seq: u64,
    /// The QoS it is delivered at.
    pub qos: QoS,
    /// The RETAIN flag it is delivered with.
    pub retain: bool,
    /// The subscription identifiers of the matching subscriptions (5.0).
    pub sub_ids: Vec<u32>,
}

/// Queue `msg` for each of `targets`, plus `extra` ops (retained message, inbound QoS 2
/// id), all in one batch. The records are built here, off the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PersistDeliveries {
    /// The message, stored once for every target.
    pub msg: Arc<Message>,
    /// The persistent sessions that receive it.
    pub targets: Vec<QueuedDelivery>,
    /// More ops for the same batch.
    pub extra: Vec<Op>,
    /// Fired once the batch is durable; dropped unfired when the write failed.
    pub done: Option<oneshot::Sender<()>>,
    /// Cluster mode: the message's (origin, seq), recorded for each target.
    pub origin: Option<Origin>,
}

/// Load one stored session for a client whose session actor died (or, in cluster mode,
/// that another node held); the answer goes to the new session actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LoadSession {
    /// The client whose session is loaded.
    pub client_id: ClientId,
    /// Where the answer goes.
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
