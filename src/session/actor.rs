//! The session actor: one per client session. It owns the connection while one is live
//! and the session state for as long as the session lasts (section 4.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio_util::codec::FramedRead;
use tracing::debug;

use super::aliases::OutboundAliases;
use super::gate::Gated;
use super::handshake::{connack, Accepted, NEVER_EXPIRES};
use super::inbound::Inbound;
use super::messages::{Evict, Handover, Shutdown, Takeover};
use super::state::{QueueLimits, SessionState, Stage};
use super::writer::{WriteLoop, Writer};
use super::Shared;
use crate::auth::AuthExchange;
use crate::persistence::Persist;
use crate::protocol::{
    encoded_len, Disconnect, LastWill, MqttCodec, Packet, PubResponse, ReasonCode,
};
use crate::router::messages::{Register, SessionEnded, WentOffline};
use crate::router::Router;
use crate::sys::ConnectedGuard;
use crate::transport::{BoxedReader, BoxedWriter, ConnectionPermit};

/// A longest wait for the previous session actor to hand its state over.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// The same in cluster mode, where it covers the claim (a JetStream write, seconds
/// during a leader election), the previous node's release (5 s at most) and the load.
const CLUSTER_HANDOVER_TIMEOUT: Duration = Duration::from_secs(25);
/// A longest wait for a closing connection to flush before the actor stops anyway.
const LINGER: Duration = Duration::from_secs(5);

/// Everything a new session actor starts from.
pub struct SessionSetup {
    pub accepted: Accepted,
    pub will: Option<LastWill>,
    pub reader: FramedRead<BoxedReader, MqttCodec>,
    pub writer: BoxedWriter,
    pub peer: SocketAddr,
    pub permit: ConnectionPermit,
    pub shared: Arc<Shared>,
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Close {
    /// The client sent DISCONNECT; `send_will` for 5.0 reason 0x04.
    ClientDisconnect { send_will: bool },
    /// The connection failed or ended without DISCONNECT.
    Lost,
    /// The broker closes it; 5.0 clients get a DISCONNECT with this reason first.
    Server(ReasonCode),
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Registered with the router, waiting for a previous session's state.
    Connecting,
    Live,
    /// No connection; the session waits for its client or its expiry.
    Offline,
    /// Ended or handed over; the actor stops once its connection has flushed.
    Gone,
}

/// The connection as the connect task hands it to a new session actor.
struct Handoff {
    reader: FramedRead<BoxedReader, MqttCodec>,
    writer: BoxedWriter,
    permit: ConnectionPermit,
}

/// The live connection of a session.
pub(super) struct Link {
    pub writer: Writer,
    read: Option<SpawnHandle>,
    _permit: ConnectionPermit,
    _connected: ConnectedGuard,
}

/// The session actor.
pub struct Session {
    pub(super) shared: Arc<Shared>,
    /// This session's own sender to the router: a parked sender (full mailbox) then
    /// only holds up this session.
    pub(super) router: Addr<Router>,
    pub(super) state: Box<SessionState>,
    pub(super) accepted: Accepted,
    pub(super) will: Option<Box<LastWill>>,
    pub(super) link: Option<Link>,
    pub(super) phase: Phase,
    pub(super) inbound: Inbound,
    pub(super) last_seen: Instant,
    /// What `started` needs to take over the connection (boxed: used once).
    setup: Option<Box<Handoff>>,
    peer: SocketAddr,
    /// A will waiting out its delay (5.0), published at the latest when the session ends.
    pub(super) pending_will: Option<(SpawnHandle, Box<LastWill>)>,
    pub(super) expiry: Option<SpawnHandle>,
    /// A server-side close waiting for pending acknowledgements.
    pub(super) deferred_close: Option<Close>,
    /// A restored session's will and when its client went away.
    pub(super) restored_will: Option<Box<LastWill>>,
    pub(super) offline_since_ms: Option<u64>,
    /// The Reason String of the DISCONNECT the server is about to send (5.0).
    pub(super) close_text: Option<String>,
    /// Topic aliases towards the client (5.0), per connection.
    pub(super) out_aliases: OutboundAliases,
    /// A re-authentication in progress (5.0, section 4.12.1).
    pub(super) reauth: Option<Box<dyn AuthExchange>>,
}

impl Session {
    pub fn new(setup: SessionSetup) -> Session {
        let state = SessionState::new(
            setup.accepted.client_id.clone(),
            setup.accepted.protocol,
            queue_limits(&setup.shared),
        );
        let client_aliases = setup.accepted.client_topic_alias_maximum;
        let mut session = Session::offline(setup.accepted, state, setup.shared);
        session.phase = Phase::Connecting;
        session.will = setup.will.map(Box::new);
        session.peer = setup.peer;
        session.out_aliases = OutboundAliases::new(client_aliases);
        session.setup = Some(Box::new(Handoff {
            reader: setup.reader,
            writer: setup.writer,
            permit: setup.permit,
        }));
        session
    }

    /// A session with no connection (restored from the store).
    pub(super) fn offline(accepted: Accepted, state: SessionState, shared: Arc<Shared>) -> Session {
        Session {
            inbound: Inbound::new(shared.config.limits.topic_alias_maximum),
            state: Box::new(state),
            accepted,
            will: None,
            link: None,
            phase: Phase::Offline,
            last_seen: Instant::now(),
            setup: None,
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            pending_will: None,
            expiry: None,
            deferred_close: None,
            restored_will: None,
            offline_since_ms: None,
            close_text: None,
            out_aliases: OutboundAliases::new(0),
            reauth: None,
            router: shared.router.clone(),
            shared,
        }
    }

    pub(super) fn writer_mut(&mut self) -> Option<&mut Writer> {
        self.link.as_mut().map(|l| &mut l.writer)
    }

    /// Sends a packet on the live connection, if any.
    pub(super) fn send(&mut self, packet: &Packet) {
        if let Some(w) = self.writer_mut() {
            w.send(packet);
        }
    }

    pub(super) fn is_v5(&self) -> bool {
        self.accepted.protocol.is_v5()
    }

    /// After the router answered (and any previous state arrived): CONNACK, then the
    /// in-flight messages again with DUP set, in order [MQTT-4.4.0-1], then the queue.
    fn resume(&mut self, prior: Option<Box<SessionState>>, ctx: &mut Context<Self>) {
        let session_present = match prior {
            Some(mut prior) if !self.accepted.clean_start => {
                prior.protocol = self.accepted.protocol;
                prior.set_limits(queue_limits(&self.shared));
                self.state = prior;
                true
            }
            _ => false,
        };
        let ack = connack(&self.accepted, session_present, &self.shared.config);
        self.send(&Packet::ConnAck(ack));
        let resend: Vec<Packet> = self
            .state
            .inflight()
            .map(|i| match i.stage {
                Stage::Published => self.publish_packet(&i.out, Some(i.packet_id), true),
                Stage::Released => Packet::PubRel(PubResponse::new(i.packet_id)),
            })
            .collect();
        for mut p in resend {
            let alias = self.apply_alias(&mut p);
            self.send_publish(&p, alias);
        }
        self.phase = Phase::Live;
        self.start_keep_alive(ctx);
        self.pump(ctx);
    }

    fn start_keep_alive(&mut self, ctx: &mut Context<Self>) {
        let ka = self.accepted.keep_alive;
        if ka == 0 {
            return;
        }
        // [MQTT-3.1.2-24]: one and a half times the keep alive without a packet.
        let limit = Duration::from_millis(u64::from(ka) * 1500);
        let every = Duration::from_millis((u64::from(ka) * 500).max(250));
        ctx.run_interval(every, move |act, ctx| {
            if act.phase == Phase::Live && act.last_seen.elapsed() > limit {
                debug!(client_id = %act.state.client_id, "keep alive expired");
                act.fail(ctx, ReasonCode::KEEP_ALIVE_TIMEOUT, "keep alive expired");
            }
        });
    }

    /// Ends the connection (not necessarily the session).
    pub(super) fn close(&mut self, ctx: &mut Context<Self>, how: Close) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if link.writer.is_closing() {
            return;
        }
        if let (Close::Server(_), true) = (how, self.inbound.flow.acks_pending()) {
            // Publishes already accepted are acknowledged first: nothing may follow a
            // DISCONNECT [MQTT-3.14.4-1]. Reading stops now; the close resumes once the
            // router has answered (see `Session::on_routed`).
            if let Some(read) = link.read.take() {
                ctx.cancel_future(read);
            }
            self.deferred_close.get_or_insert(how);
            return;
        }
        if let Close::Server(reason) = how {
            if self.accepted.protocol.is_v5() {
                let disconnect = self.disconnect_packet(reason);
                if let Some(link) = self.link.as_mut() {
                    link.writer.send(&disconnect);
                }
            }
        }
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.writer.close();
        if let Some(read) = link.read.take() {
            ctx.cancel_future(read);
        }
        if self.phase == Phase::Gone {
            return;
        }
        self.phase = Phase::Offline;
        let expiry = self.accepted.session_expiry;
        if how != (Close::ClientDisconnect { send_will: false }) {
            self.schedule_will(ctx, expiry);
        }
        self.will = None;
        self.store_session_offline(ctx);
        self.router.do_send(WentOffline {
            client_id: self.state.client_id.clone(),
            addr: ctx.address(),
        });
        self.hand_over_shared(ctx);
        if expiry == 0 {
            self.end(ctx);
            return;
        }
        self.state.drop_queued_qos0();
        if expiry != NEVER_EXPIRES {
            let after = Duration::from_secs(u64::from(expiry));
            self.expiry = Some(ctx.run_later(after, |act, ctx| act.end(ctx)));
        }
    }

    /// Closes the connection for a client's error; a 5.0 client's DISCONNECT carries
    /// `why` as its Reason String (see [`Session::disconnect_packet`]).
    pub(super) fn fail(&mut self, ctx: &mut Context<Self>, reason: ReasonCode, why: &str) {
        debug!(client_id = %self.state.client_id, %reason, why, "closing the connection");
        self.close_text.get_or_insert_with(|| why.to_owned());
        self.close(ctx, Close::Server(reason));
    }

    /// The server's DISCONNECT: with the Reason String of [`Session::fail`], unless the
    /// client asked for no problem information (the spec allows it on DISCONNECT
    /// [MQTT-3.1.2-29]; Starling honours the wish) or it would make the packet larger
    /// than the client accepts [MQTT-3.14.2-3].
    fn disconnect_packet(&mut self, reason: ReasonCode) -> Packet {
        let mut disconnect = Disconnect::new(reason);
        if self.accepted.request_problem_information {
            disconnect.properties.reason_string = self.close_text.take().map(Into::into);
        }
        let packet = Packet::Disconnect(disconnect);
        let max = self.accepted.client_max_packet_size.unwrap_or(u32::MAX) as usize;
        if encoded_len(&packet, self.accepted.protocol) > max {
            return Packet::Disconnect(Disconnect::new(reason));
        }
        packet
    }

    /// A handler failed: the state may be inconsistent, so this actor goes. Only this
    /// client is disconnected (5.0: 0x83). A persistent session keeps its subscriptions
    /// and stored state, which its client's next CONNECT reloads from the store; a
    /// clean one ends.
    pub(super) fn crash(&mut self, ctx: &mut Context<Self>) {
        tracing::error!(client_id = %self.state.client_id, "session failed; closing its connection");
        self.inbound.flow.clear_acks();
        let will = self.will.take();
        let persistent = self.persistent();
        if !persistent {
            self.end(ctx);
        }
        self.phase = Phase::Gone;
        self.close(
            ctx,
            Close::Server(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR),
        );
        if let Some(will) = will {
            self.publish_will(&will);
        }
        self.stop_when_flushed(ctx);
    }

    /// The session is over: its subscriptions go and a delayed will is sent now.
    pub(super) fn end(&mut self, ctx: &mut Context<Self>) {
        if self.phase == Phase::Gone {
            return;
        }
        self.phase = Phase::Gone;
        self.fire_pending_will(ctx);
        self.router.do_send(SessionEnded {
            client_id: self.state.client_id.clone(),
            addr: ctx.address(),
        });
        self.stop_when_flushed(ctx);
    }

    fn stop_when_flushed(&mut self, ctx: &mut Context<Self>) {
        if self.link.is_none() {
            self.stop_if_idle(ctx);
        } else {
            ctx.run_later(LINGER, |_, ctx| ctx.stop());
        }
    }

    /// Stops a gone session once nothing it sent to the router is still on its way: a
    /// `send` to a full mailbox holds its message until polled, and stopping would drop it.
    pub(super) fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        if self.phase == Phase::Gone && self.link.is_none() && !self.inbound.flow.routing() {
            ctx.stop();
        }
    }

    /// The write side finished (flushed and shut down, or failed).
    pub(super) fn on_writer_closed(&mut self, ctx: &mut Context<Self>) {
        if self.link.as_ref().is_some_and(|l| !l.writer.is_closing()) {
            // The socket failed while the connection was live.
            self.close(ctx, Close::Lost);
        }
        if let Some(link) = self.link.take() {
            if let Some(read) = link.read {
                ctx.cancel_future(read);
            }
        }
        self.stop_if_idle(ctx);
    }
}

pub(super) fn queue_limits(shared: &Shared) -> QueueLimits {
    QueueLimits {
        max_messages: shared.config.limits.max_queued_messages,
        max_bytes: shared.config.limits.max_queued_bytes,
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(Handoff {
            reader,
            writer,
            permit,
        }) = self.setup.take().map(|b| *b)
        else {
            if self.phase == Phase::Offline {
                self.start_restored(ctx);
            } else {
                ctx.stop();
            }
            return;
        };
        let read = ctx.add_stream(Gated::new(reader, self.inbound.gate.clone()));
        self.link = Some(Link {
            writer: Writer::new(writer, self.accepted.protocol),
            read: Some(read),
            _permit: permit,
            _connected: self.shared.metrics.connection(),
        });
        ctx.spawn(WriteLoop);
        let register = Register {
            client_id: self.accepted.client_id.clone(),
            clean_start: self.accepted.clean_start,
            addr: ctx.address(),
            persist: self.record(None),
        };
        // Nothing else is handled until the session is resumed: CONNACK goes first.
        let in_cluster = self.shared.config.session_state_in_cluster();
        let joining = super::persist::Joining {
            router: self.router.clone(),
            client_id: self.accepted.client_id.clone(),
            addr: ctx.address(),
            limits: queue_limits(&self.shared),
            in_cluster,
            wait: match in_cluster {
                true => CLUSTER_HANDOVER_TIMEOUT,
                false => HANDOVER_TIMEOUT,
            },
        };
        let fut =
            joining
                .register(register)
                .into_actor(self)
                .map(|outcome, act, ctx| match outcome {
                    Some(prior) => act.resume(prior, ctx),
                    None => act.fail(ctx, ReasonCode::SERVER_UNAVAILABLE, "session not resumed"),
                });
        ctx.wait(fut);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        debug!(client_id = %self.state.client_id, peer = %self.peer, "session actor stopped");
    }
}

impl Handler<Takeover> for Session {
    type Result = ();

    fn handle(&mut self, msg: Takeover, ctx: &mut Self::Context) {
        debug!(client_id = %self.state.client_id, "session taken over");
        self.take_over(msg.handover, ctx);
        if let Some(done) = msg.flushed {
            // Behind every store op this actor sent before: the final state.
            self.shared.persistence.do_send(Persist {
                ops: Vec::new(),
                done: Some(done),
            });
        }
    }
}

impl Session {
    fn take_over(&mut self, handover: Option<oneshot::Sender<Handover>>, ctx: &mut Context<Self>) {
        match handover {
            Some(tx) if self.phase == Phase::Gone => {
                let _ = tx.send(Handover::Ended);
            }
            Some(tx) => {
                // The session continues elsewhere: a delayed will is cancelled
                // [MQTT-3.1.3-9]; a will without delay goes out as the connection closes.
                if let Some(will) = self.will.take() {
                    if will.properties.will_delay_interval.unwrap_or(0) == 0 {
                        self.publish_will(&will);
                    }
                }
                self.cancel_pending_will(ctx);
                self.phase = Phase::Gone;
                self.close(ctx, Close::Server(ReasonCode::SESSION_TAKEN_OVER));
                let limits = queue_limits(&self.shared);
                let empty =
                    SessionState::new(self.state.client_id.clone(), self.state.protocol, limits);
                let state = std::mem::replace(&mut self.state, Box::new(empty));
                let _ = tx.send(Handover::State(state));
                self.stop_when_flushed(ctx);
            }
            None => {
                let will = self.will.take();
                self.phase = Phase::Gone;
                self.close(ctx, Close::Server(ReasonCode::SESSION_TAKEN_OVER));
                if let Some(will) = will {
                    self.publish_will(&will);
                }
                self.stop_when_flushed(ctx);
            }
        }
    }
}

impl Handler<Shutdown> for Session {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        self.will = None;
        self.close(ctx, Close::Server(ReasonCode::SERVER_SHUTTING_DOWN));
    }
}

impl Handler<Evict> for Session {
    type Result = ();

    fn handle(&mut self, msg: Evict, ctx: &mut Self::Context) {
        // An offline session has nothing to close (and no Reason String to keep).
        if self.link.is_some() {
            self.fail(ctx, msg.reason, msg.why);
        }
    }
}
