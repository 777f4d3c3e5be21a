//! The session actor: one per client session. It owns the connection while one is live
//! and the session state for as long as the session lasts (section 4.1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::{debug, info};

use super::aliases::OutboundAliases;
use super::gate::Gated;
use super::handshake::{connack, Accepted};
use super::inbound::Inbound;
use super::lifecycle::{Lifecycle, Phase};
use super::messages::{Evict, Shutdown, Takeover};
use super::reader::PacketReader;
use super::state::{QueueLimits, SessionState, Stage};
use super::writer::{WriteLoop, Writer};
use super::Shared;
use crate::auth::AuthExchange;
use crate::config::QueueFull;
use crate::delivery::PressureSource;
use crate::hooks::{ClientInfo, Event};
use crate::metrics::{ConnectedGuard, QueuedShare, SentTally};
use crate::persistence::Persist;
use crate::protocol::{LastWill, Packet, PubResponse, ReasonCode};
use crate::router::messages::Register;
use crate::router::Router;
use crate::transport::{BoxedWriter, ConnectionPermit};

/// A longest wait for the previous session actor to hand its state over.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// The same in cluster mode, where it covers the claim (a JetStream write, seconds
/// during a leader election), the previous node's release (5 s at most) and the load.
const CLUSTER_HANDOVER_TIMEOUT: Duration = Duration::from_secs(25);

/// Everything a new session actor starts from.
pub struct SessionSetup {
    pub accepted: Accepted,
    pub will: Option<LastWill>,
    pub reader: PacketReader,
    pub writer: BoxedWriter,
    /// Who connected, for hooks (the peer address among it).
    pub client: Arc<ClientInfo>,
    pub permit: ConnectionPermit,
    pub shared: Arc<Shared>,
}

/// What `started` begins with.
pub(super) enum Start {
    /// The connection as the connect task hands it to a new session actor.
    Connection {
        reader: PacketReader,
        writer: BoxedWriter,
        permit: ConnectionPermit,
    },
    /// A session loaded from the store: its will and when its client went away.
    Restored {
        will: Option<Box<LastWill>>,
        offline_since_ms: Option<u64>,
    },
}

/// The live connection of a session.
pub(super) struct Link {
    pub writer: Writer,
    pub read: Option<SpawnHandle>,
    _permit: ConnectionPermit,
    _connected: ConnectedGuard,
}

/// The timers the lifecycle asked for.
#[derive(Default)]
pub(super) struct Timers {
    /// A will waiting out its delay (the will itself is in the lifecycle).
    pub will: Option<SpawnHandle>,
    pub expiry: Option<SpawnHandle>,
}

/// The session actor.
pub struct Session {
    pub(super) shared: Arc<Shared>,
    /// This session's own sender to the router: a parked sender (full mailbox) then
    /// only holds up this session.
    pub(super) router: Addr<Router>,
    pub(super) state: Box<SessionState>,
    pub(super) accepted: Accepted,
    pub(super) link: Option<Link>,
    /// Phase, pending close and will: decides, the actor carries out.
    pub(super) life: Lifecycle,
    /// Boxed: keeps the actor's task (128-byte aligned) within 1024 bytes, mimalloc's
    /// small aligned allocations (see the footprint test).
    pub(super) inbound: Box<Inbound>,
    pub(super) last_seen: Instant,
    /// What `started` begins with (boxed: used once).
    pub(super) setup: Option<Box<Start>>,
    /// Who the client is, as hooks see it.
    pub(super) client: Arc<ClientInfo>,
    /// The hooks were told this connection connected (and will hear it ended).
    pub(super) announced: bool,
    /// The store may hold this session's record (persistent when it registered, or
    /// restored from the store): going offline updates it.
    pub(super) stored: bool,
    pub(super) timers: Timers,
    /// The Reason String of the DISCONNECT the server is about to send (5.0).
    pub(super) close_text: Option<Box<str>>,
    /// Why the connection is ending, for the disconnect log line (the first reason).
    pub(super) close_reason: Option<Box<str>>,
    /// Topic aliases towards the client (5.0), per connection.
    pub(super) out_aliases: OutboundAliases,
    /// A re-authentication in progress (5.0, section 4.12.1).
    pub(super) reauth: Option<Box<dyn AuthExchange>>,
    /// This session's part of `starling_queued_messages`.
    pub(super) queued: QueuedShare,
    /// PUBLISH packets sent since the last pump ended (every send is followed by one).
    pub(super) sent: SentTally,
    /// When the current (or last) connection was accepted (CONNACK), for the admin API.
    pub(super) connected_at: Option<std::time::SystemTime>,
    /// `queue_full = "backpressure"`: the pressure this session's queue puts on its
    /// publishers while its client is connected.
    pub(super) pressure: Option<PressureSource>,
    /// Publishes routed on this thread (`session/fast.rs`; boxed, so the session task
    /// stays within 1,024 bytes: `footprint_tests.rs`).
    pub(super) fast: Box<super::fast::Fast>,
}

impl Session {
    pub fn new(setup: SessionSetup) -> Session {
        let state = SessionState::new(
            setup.accepted.client_id.clone(),
            setup.accepted.protocol,
            queue_limits(&setup.shared),
        );
        let client_aliases = setup.accepted.client_topic_alias_maximum;
        let mut session = Session::offline(setup.accepted, state, setup.shared, setup.client);
        session.life = Lifecycle::connecting(setup.will.map(Box::new));
        // Session expiry can only go down to 0 later, never up from it [MQTT-3.14.2-2].
        session.stored = session.persistent();
        session.out_aliases = OutboundAliases::new(client_aliases);
        let backpressure = session.shared.config.limits.queue_full == QueueFull::Backpressure;
        session.pressure = backpressure.then(PressureSource::new);
        session.setup = Some(Box::new(Start::Connection {
            reader: setup.reader,
            writer: setup.writer,
            permit: setup.permit,
        }));
        session
    }

    /// A session with no connection (restored from the store), for `client`.
    pub(super) fn offline(
        accepted: Accepted,
        state: SessionState,
        shared: Arc<Shared>,
        client: Arc<ClientInfo>,
    ) -> Session {
        Session {
            client,
            announced: false,
            stored: true,
            inbound: Box::new(Inbound::new(&shared.config.limits)),
            state: Box::new(state),
            accepted,
            link: None,
            life: Lifecycle::offline(),
            last_seen: Instant::now(),
            setup: None,
            timers: Timers::default(),
            close_text: None,
            close_reason: None,
            out_aliases: OutboundAliases::new(0),
            reauth: None,
            queued: shared.metrics.queued_share(),
            sent: SentTally::default(),
            connected_at: None,
            pressure: None,
            fast: Default::default(),
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
        self.announced = true;
        self.connected_at = Some(std::time::SystemTime::now());
        let client = &self.client;
        info!(
            client_id = %client.client_id,
            addr = %super::perform::addr_text(client.remote_addr),
            listener = %super::perform::addr_text(client.listener),
            protocol = ?self.accepted.protocol,
            session_present,
            "client connected"
        );
        self.shared.hooks.event(|| Event::Connected {
            client: Arc::clone(client),
            session_present,
        });
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
        self.life.resumed();
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
            if act.inbound.holds.is_held() {
                // Not read by the broker's choice: the client is not to blame.
                act.last_seen = Instant::now();
            }
            if act.life.phase() == Phase::Live && act.last_seen.elapsed() > limit {
                debug!(client_id = %act.state.client_id, "keep alive expired");
                act.fail(ctx, ReasonCode::KEEP_ALIVE_TIMEOUT, "keep alive expired");
            }
        });
    }
}

pub(super) fn queue_limits(shared: &Shared) -> QueueLimits {
    QueueLimits {
        max_messages: shared.config.limits.max_queued_messages,
        max_bytes: shared.config.limits.max_queued_bytes,
        drop_oldest: shared.config.limits.queue_full == QueueFull::DropOldest,
        backpressure: shared.config.limits.queue_full == QueueFull::Backpressure,
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (reader, writer, permit) = match self.setup.take().map(|b| *b) {
            Some(Start::Connection {
                reader,
                writer,
                permit,
            }) => (reader, writer, permit),
            Some(Start::Restored {
                will,
                offline_since_ms,
            }) => {
                self.start_restored(will, offline_since_ms, ctx);
                return;
            }
            None => {
                ctx.stop();
                return;
            }
        };
        // The routing window, the publish rate and the holds share one gate set.
        let read = ctx.add_stream(Gated::new(reader, self.inbound.gate.clone()));
        self.link = Some(Link {
            writer: Writer::new(writer, self.accepted.protocol),
            read: Some(read),
            _permit: permit,
            _connected: self
                .shared
                .metrics
                .connection(self.client.listener, self.accepted.protocol),
        });
        self.life.opened();
        ctx.spawn(WriteLoop);
        let pressure = self.pressure.as_ref().map(|p| Arc::clone(p.handle()));
        let register = Register {
            client_id: self.accepted.client_id.clone(),
            clean_start: self.accepted.clean_start,
            addr: super::link::link_pressured(ctx.address(), pressure),
            persist: self.record(None),
        };
        // Nothing else is handled until the session is resumed: CONNACK goes first.
        let in_cluster = self.shared.config.session_state_in_cluster();
        let joining = super::persist::Joining {
            router: self.router.clone(),
            client_id: self.accepted.client_id.clone(),
            addr: in_cluster.then(|| ctx.address()),
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
                    None => act.refuse(ctx),
                });
        ctx.wait(fut);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let peer = super::perform::addr_text(self.client.remote_addr);
        debug!(client_id = %self.state.client_id, %peer, "session actor stopped");
    }
}

impl Handler<Takeover> for Session {
    type Result = ();

    fn handle(&mut self, msg: Takeover, ctx: &mut Self::Context) {
        debug!(client_id = %self.state.client_id, "session taken over");
        self.note_close(|| "server 0x8E: session taken over".into());
        let actions = self.life.take_over(msg.handover.is_some(), self.facts());
        self.perform_with(actions, msg.handover, ctx);
        if let Some(done) = msg.flushed {
            // Behind every store op this actor sent before: the final state.
            self.shared.persistence.do_send(Persist {
                ops: Vec::new(),
                done: Some(done),
            });
        }
    }
}

impl Handler<Shutdown> for Session {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        self.note_close(|| "server 0x8B: shutting down".into());
        let actions = self.life.shutdown(self.facts());
        self.perform(actions, ctx);
    }
}

impl Handler<Evict> for Session {
    type Result = ();

    fn handle(&mut self, msg: Evict, ctx: &mut Self::Context) {
        // An offline session has nothing to close (and no Reason String to keep).
        if self.life.has_connection() {
            self.fail(ctx, msg.reason, msg.why);
        }
    }
}
