//! What a session tells the store: its record (through the router, which owns session
//! lifecycle in the store), and the fate of its stored deliveries (straight to the
//! persistence actor). Also the constructor of sessions restored at start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::warn;

use super::actor::{Session, Start};
use super::handshake::Accepted;
use super::state::{QueueLimits, SessionState};
use super::Shared;
use crate::delivery::Outgoing;
use crate::hooks::ClientInfo;
use crate::message::ClientId;
use crate::persistence::convert::{
    outgoing_from_record, queued_record, session_record, unix_ms_now, will_from_record,
};
use crate::persistence::{Durable, Loaded, Op, Persist, SessionRecord, StoredSession};
use crate::protocol::{LastWill, PacketId, ProtocolVersion};
use crate::router::messages::{ForgetClient, Prior, Register, RestoreSession, UpdateSession};
use crate::router::Router;
use crate::session::Handover;

impl Session {
    /// A persistent session outlives its connection, so its state is stored.
    pub(super) fn persistent(&self) -> bool {
        self.accepted.session_expiry > 0
    }

    /// The session's record, when it is persistent.
    pub(super) fn record(&self, disconnected_at_ms: Option<u64>) -> Option<SessionRecord> {
        if !self.persistent() {
            return None;
        }
        let will = self.life.stored_will();
        Some(session_record(
            &self.state.client_id,
            self.accepted.protocol.level(),
            self.accepted.session_expiry,
            will,
            disconnected_at_ms,
        ))
    }

    /// Stores the going-offline time (expiry counts from it after a restart), or drops
    /// the record of a session no longer persistent. A session that never was has no
    /// record: nothing to tell the router.
    pub(super) fn store_session_offline(&self, ctx: &mut Context<Self>) {
        if !self.stored && !self.persistent() {
            return;
        }
        self.router.do_send(UpdateSession {
            client_id: self.state.client_id.clone(),
            addr: super::link::link(ctx.address()),
            record: self.record(Some(unix_ms_now())),
        });
    }

    /// Sends ops to the persistence actor, with a durability ticket when asked.
    pub(super) fn store(&self, ops: Vec<Op>, durable: bool) -> Option<Durable> {
        let (ticket, done) = match durable {
            true => crate::persistence::ticket(self.shared.config.storage.durability),
            false => (None, None),
        };
        self.shared.persistence.do_send(Persist { ops, done });
        ticket
    }

    /// A stored delivery was acknowledged by the client: it leaves the store.
    #[inline]
    pub(super) fn forget_stored(&self, seq: Option<u64>) {
        if let Some(seq) = seq {
            self.forget_stored_seq(seq);
        }
    }

    fn forget_stored_seq(&self, seq: u64) {
        let client_id = self.state.client_id.clone();
        self.store(vec![Op::DeleteQueued { client_id, seq }], false);
    }

    /// A stored QoS 2 delivery got its PUBREC: remember that PUBREL was sent, durably
    /// before sending it, so a restart re-sends PUBREL and never the PUBLISH again.
    pub(super) fn store_released(&self, seq: u64, packet_id: PacketId) -> Option<Durable> {
        let inflight = self.state.inflight_get(packet_id)?;
        let rec = queued_record(&inflight.out, Some(packet_id.get()), true);
        let client_id = self.state.client_id.clone();
        self.store(
            vec![Op::PutQueued {
                client_id,
                seq,
                rec,
            }],
            true,
        )
    }

    /// An inbound QoS 2 message was released by the client.
    pub(super) fn forget_inbound_qos2(&self, packet_id: PacketId) {
        if self.persistent() {
            let client_id = self.state.client_id.clone();
            self.store(
                vec![Op::DeleteInboundQos2 {
                    client_id,
                    packet_id: packet_id.get(),
                }],
                false,
            );
        }
    }

    /// A session loaded from the store at start: offline until its client returns.
    pub fn restored(stored: StoredSession, shared: Arc<Shared>) -> Session {
        let rec = &stored.record;
        let state = state_from_stored(&stored, super::actor::queue_limits(&shared));
        let accepted = Accepted {
            client_id: state.client_id.clone(),
            assigned_id: false,
            protocol: state.protocol,
            clean_start: false,
            keep_alive: 0,
            keep_alive_changed: false,
            // A cap lowered since the session was stored applies to it too.
            session_expiry: rec
                .expiry_secs
                .min(shared.config.limits.max_session_expiry_secs),
            session_expiry_changed: false,
            outbound_window: shared.config.limits.max_inflight,
            client_max_packet_size: None,
            request_problem_information: true,
            request_response_information: false,
            client_topic_alias_maximum: 0,
            auth_method: None,
            auth_data: None,
            username: None,
        };
        let will = rec.will.as_ref().and_then(will_from_record);
        let offline_since_ms = rec.disconnected_at_ms;
        let client = ClientInfo::new(accepted.client_id.clone());
        let mut session = Session::offline(accepted, state, shared, Arc::new(client));
        session.setup = Some(Box::new(Start::Restored {
            will: will.map(Box::new),
            offline_since_ms,
        }));
        session
    }

    /// Started from the store: join the registry, then wait for expiry (counted from
    /// when the client went away) and for a delayed will.
    pub(super) fn start_restored(
        &mut self,
        will: Option<Box<LastWill>>,
        offline_since_ms: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let now_ms = unix_ms_now();
        let since = offline_since_ms.unwrap_or(now_ms);
        let elapsed = Duration::from_millis(now_ms.saturating_sub(since));
        let actions = self
            .life
            .restore(will, self.accepted.session_expiry, elapsed);
        self.perform(actions, ctx);
        self.queued.sync(self.state.queue_len());
        self.last_seen = Instant::now();
    }
}

/// What a new connection's actor needs to join: `Register`, then the previous
/// session's state, if any, before its CONNACK.
pub(super) struct Joining {
    pub router: Addr<Router>,
    pub client_id: ClientId,
    /// The new actor's address, for the cluster's restore only (each address made costs
    /// two allocations).
    pub addr: Option<Addr<Session>>,
    pub limits: QueueLimits,
    /// Session state lives in JetStream (`Config::session_state_in_cluster`).
    pub in_cluster: bool,
    /// The longest wait for the previous state.
    pub wait: Duration,
}

impl Joining {
    /// The state to resume (`Some(None)`: a fresh session), or `None` when the session
    /// cannot be resumed now (the router or the store failed, or the stored state did
    /// not arrive in time): the connection is then refused and the client retries.
    pub async fn register(self, register: Register) -> Option<Option<Box<SessionState>>> {
        let router = self.router.clone();
        let reply = router.send(register).await.ok()??;
        match reply.prior {
            None => Some(None),
            Some(Prior::Live(rx)) => match tokio::time::timeout(self.wait, rx).await {
                Ok(Ok(handoff)) => match handoff.take::<Handover>() {
                    Some(Handover::State(state)) => Some(Some(state)),
                    _ => self.forget().await,
                },
                // The previous session ended or vanished: its subscriptions are stale.
                _ => self.forget().await,
            },
            Some(Prior::Stored(rx)) => match tokio::time::timeout(self.wait, rx).await {
                Ok(Ok(Loaded::Found(stored))) => self.resume_stored(*stored).await,
                Ok(Ok(Loaded::Nothing)) => self.forget().await,
                Ok(Ok(Loaded::Failed)) | Ok(Err(_)) | Err(_) => {
                    warn!(client_id = %self.client_id, "stored session not loaded; connection refused");
                    None
                }
            },
        }
    }

    /// The session as stored. Cluster mode: its subscriptions join this node's router
    /// before the CONNACK.
    async fn resume_stored(self, stored: StoredSession) -> Option<Option<Box<SessionState>>> {
        if let (true, Some(addr)) = (self.in_cluster, self.addr) {
            let restore = restore_message(&stored, self.client_id, addr);
            let restored = self.router.send(restore).await.ok()??;
            if let Some(durable) = restored.durable {
                durable.wait().await;
            }
        }
        Some(Some(Box::new(state_from_stored(&stored, self.limits))))
    }

    /// No previous session: whatever subscriptions the router still has are stale.
    async fn forget(self) -> Option<Option<Box<SessionState>>> {
        let forget = ForgetClient {
            client_id: self.client_id,
        };
        self.router.send(forget).await.ok()?;
        Some(None)
    }
}

/// Cluster mode: what the router needs of a session loaded from JetStream.
fn restore_message(
    stored: &StoredSession,
    client_id: ClientId,
    addr: Addr<Session>,
) -> RestoreSession {
    RestoreSession {
        client_id,
        addr: super::link::link(addr),
        subscriptions: stored.subscriptions.clone(),
        next_seq: stored.queue.last().map_or(1, |(seq, _)| seq + 1),
        replay: stored.replay.clone(),
    }
}

/// A session's state as stored: in-flight messages keep their packet ids, the rest are
/// queued in stored order.
pub fn state_from_stored(stored: &StoredSession, limits: QueueLimits) -> SessionState {
    let rec = &stored.record;
    let protocol = match rec.protocol {
        3 => ProtocolVersion::V31,
        4 => ProtocolVersion::V311,
        _ => ProtocolVersion::V5,
    };
    let client_id = ClientId::new(rec.client_id.clone());
    let entries = stored
        .queue
        .iter()
        .filter_map(|(seq, q)| {
            let out = outgoing_from_record(*seq, q);
            if out.is_none() {
                warn!(client_id = %client_id, seq, "stored message is not valid; skipped");
            }
            Some((out?, q.packet_id.and_then(PacketId::new), q.released))
        })
        .collect::<Vec<(Outgoing, _, _)>>();
    let awaiting = stored
        .inbound_qos2
        .iter()
        .filter_map(|id| PacketId::new(*id))
        .collect();
    SessionState::restore(client_id, protocol, limits, entries, awaiting)
}
