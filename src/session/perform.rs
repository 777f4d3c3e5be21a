//! The actor's half of the lifecycle: closes, crashes, expiry and the end of the write
//! side go through [`Lifecycle`], and the [`Action`]s it returns are carried out here
//! with the actor's context (timers, the writer, the router, the store).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use tracing::{debug, info};

use super::actor::Session;
use super::lifecycle::{Action, Actions, Close, Facts};
use super::messages::Handover;
use super::state::SessionState;
use crate::hooks::Event;
use crate::metrics::DropReason;
use crate::protocol::{encoded_len, Disconnect, Packet, ReasonCode};
use crate::router::link::Handoff;
use crate::router::messages::{SessionEnded, WentOffline};

/// A longest wait for a closing connection to flush before the actor stops anyway.
const LINGER: Duration = Duration::from_secs(5);

impl Session {
    /// What the lifecycle needs to know of the rest of the session now.
    pub(super) fn facts(&self) -> Facts {
        // The lifecycle's view of the connection follows the actions it returned.
        debug_assert_eq!(self.link.is_some(), self.life.has_connection());
        Facts {
            acks_pending: self.inbound.flow.acks_pending(),
            routing: self.inbound.flow.routing(),
            v5: self.is_v5(),
            expiry: self.accepted.session_expiry,
        }
    }

    /// Ends the connection (not necessarily the session).
    pub(super) fn close(&mut self, ctx: &mut Context<Self>, how: Close) {
        // What this session routed itself in this turn is handed over first.
        self.flush_fast();
        self.note_close(|| match how {
            Close::ClientDisconnect { send_will: false } => "client DISCONNECT 0x00".into(),
            Close::ClientDisconnect { send_will: true } => "client DISCONNECT 0x04".into(),
            Close::Lost => "connection lost".into(),
            Close::Server(reason) => format!("server {reason}"),
        });
        let actions = self.life.close(how, self.facts());
        self.perform(actions, ctx);
    }

    /// Keeps why the connection ends for its disconnect log line (the first reason wins).
    pub(super) fn note_close(&mut self, why: impl FnOnce() -> String) {
        if self.close_reason.is_none() {
            self.close_reason = Some(why().into_boxed_str());
        }
    }

    /// Closes the connection for a client's error; a 5.0 client's DISCONNECT carries
    /// `why` as its Reason String (see [`Session::disconnect_packet`]).
    pub(super) fn fail(&mut self, ctx: &mut Context<Self>, reason: ReasonCode, why: &str) {
        debug!(client_id = %self.state.client_id, %reason, why, "closing the connection");
        self.close_text.get_or_insert_with(|| why.into());
        self.close(ctx, Close::Server(reason));
    }

    /// The session could not be resumed now (the router or the store failed, or the
    /// stored state did not arrive in time): CONNACK 0x88 (3.1.1: 3, server
    /// unavailable), then the connection closes; the session stays as stored.
    pub(super) fn refuse(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(client_id = %self.state.client_id, "session not resumed; connection refused");
        let ack = super::handshake::refusal(ReasonCode::SERVER_UNAVAILABLE);
        self.send(&Packet::ConnAck(ack));
        self.note_close(|| "server 0x88: session not resumed".into());
        let actions = self.life.refuse(self.facts());
        self.perform(actions, ctx);
    }

    /// A handler failed: the state may be inconsistent, so this actor goes. Only this
    /// client is disconnected (5.0: 0x83). A persistent session keeps its subscriptions
    /// and stored state, which its client's next CONNECT reloads from the store; a
    /// clean one ends.
    pub(super) fn crash(&mut self, ctx: &mut Context<Self>) {
        tracing::error!(client_id = %self.state.client_id, "session failed; closing its connection");
        self.shared.metrics.session_failed();
        self.flush_fast();
        self.inbound.flow.clear_acks();
        self.note_close(|| "server 0x83: session failed".into());
        let actions = self.life.crash(self.facts());
        self.perform(actions, ctx);
    }

    /// The session is over: its subscriptions go and a delayed will is sent now.
    pub(super) fn end(&mut self, ctx: &mut Context<Self>) {
        self.flush_fast();
        let actions = self.life.end(self.facts());
        self.perform(actions, ctx);
    }

    /// Stops a gone session once nothing it sent to the router is still on its way.
    pub(super) fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        self.flush_fast();
        let actions = self.life.idle(self.facts());
        self.perform(actions, ctx);
    }

    /// The write side finished (flushed and shut down, or failed).
    pub(super) fn on_writer_closed(&mut self, ctx: &mut Context<Self>) {
        self.flush_fast();
        let actions = self.life.writer_closed(self.facts());
        self.perform(actions, ctx);
    }

    /// Carries out the lifecycle's actions, in order.
    pub(super) fn perform(&mut self, actions: Actions, ctx: &mut Context<Self>) {
        self.perform_with(actions, None, ctx);
    }

    /// The same, with the channel to a session taking this one over.
    pub(super) fn perform_with(
        &mut self,
        actions: Actions,
        mut handover: Option<oneshot::Sender<Handoff>>,
        ctx: &mut Context<Self>,
    ) {
        for action in actions {
            match action {
                Action::HandOverState => {
                    let state = self.take_state();
                    if let Some(tx) = handover.take() {
                        let _ = tx.send(Handoff::new(Handover::State(state)));
                    }
                }
                Action::AnswerEnded => {
                    if let Some(tx) = handover.take() {
                        let _ = tx.send(Handoff::new(Handover::Ended));
                    }
                }
                other => self.perform_one(other, ctx),
            }
        }
    }

    fn perform_one(&mut self, action: Action, ctx: &mut Context<Self>) {
        match action {
            Action::StopReading => self.stop_reading(ctx),
            Action::SendDisconnect(reason) => {
                let disconnect = self.disconnect_packet(reason);
                self.send(&disconnect);
            }
            Action::CloseWriter => {
                if let Some(w) = self.writer_mut() {
                    w.close();
                }
                self.stop_reading(ctx);
            }
            Action::PublishWill(will) => self.publish_will(&will),
            Action::DelayWill(after) => {
                let handle = ctx.run_later(after, |act, ctx| {
                    let actions = act.life.will_due();
                    act.perform(actions, ctx);
                });
                self.timers.will = Some(handle);
            }
            Action::CancelWillTimer => {
                if let Some(handle) = self.timers.will.take() {
                    ctx.cancel_future(handle);
                }
            }
            Action::GoneOffline => self.gone_offline(ctx),
            Action::DropQueuedQos0 => {
                let before = self.state.dropped;
                self.state.drop_queued_qos0();
                let gone = self.state.dropped - before;
                self.shared
                    .metrics
                    .add_dropped(DropReason::ClientOffline, gone);
                self.queued.sync(self.state.queue_len());
            }
            Action::ScheduleExpiry(after) => {
                self.timers.expiry = Some(ctx.run_later(after, |act, ctx| act.end(ctx)));
            }
            Action::EndSession => self.router.do_send(SessionEnded {
                client_id: self.state.client_id.clone(),
                addr: super::link::link(ctx.address()),
            }),
            Action::DropLink => {
                if let Some(read) = self.link.take().and_then(|l| l.read) {
                    ctx.cancel_future(read);
                }
                // An absent client's queue holds no publisher back.
                if let Some(pressure) = &self.pressure {
                    pressure.release();
                }
                if std::mem::take(&mut self.announced) {
                    let client = &self.client;
                    info!(
                        client_id = %client.client_id,
                        addr = %addr_text(client.remote_addr),
                        listener = %addr_text(client.listener),
                        protocol = ?self.accepted.protocol,
                        reason = self.close_reason.take().as_deref().unwrap_or("ended"),
                        "client disconnected"
                    );
                    self.shared.hooks.event(|| Event::Disconnected {
                        client: Arc::clone(client),
                    });
                }
            }
            Action::Linger => {
                ctx.run_later(LINGER, |_, ctx| ctx.stop());
            }
            Action::Stop => ctx.stop(),
            // Only with a handover channel (see `perform_with`).
            Action::HandOverState | Action::AnswerEnded => {}
        }
    }

    fn stop_reading(&mut self, ctx: &mut Context<Self>) {
        if let Some(read) = self.link.as_mut().and_then(|l| l.read.take()) {
            ctx.cancel_future(read);
        }
    }

    /// The connection is gone and the session stays: the stored record says since
    /// when, shared subscriptions skip it, and its shared messages go to others.
    fn gone_offline(&mut self, ctx: &mut Context<Self>) {
        self.store_session_offline(ctx);
        self.router.do_send(WentOffline {
            client_id: self.state.client_id.clone(),
            addr: super::link::link(ctx.address()),
        });
        self.hand_over_shared(ctx);
    }

    /// The state for the session taking over; an empty one stays here.
    fn take_state(&mut self) -> Box<SessionState> {
        let limits = super::actor::queue_limits(&self.shared);
        let empty = SessionState::new(self.state.client_id.clone(), self.state.protocol, limits);
        std::mem::replace(&mut self.state, Box::new(empty))
    }

    /// The server's DISCONNECT: with the Reason String of [`Session::fail`], unless the
    /// client asked for no problem information (the spec allows it on DISCONNECT
    /// [MQTT-3.1.2-29]; Starling honours the wish) or it would make the packet larger
    /// than the client accepts [MQTT-3.14.2-3].
    fn disconnect_packet(&mut self, reason: ReasonCode) -> Packet {
        let mut disconnect = Disconnect::new(reason);
        if self.accepted.request_problem_information {
            disconnect.properties.reason_string =
                self.close_text.take().map(|t| String::from(t).into());
        }
        let packet = Packet::Disconnect(disconnect);
        let max = self.accepted.client_max_packet_size.unwrap_or(u32::MAX) as usize;
        if encoded_len(&packet, self.accepted.protocol) > max {
            return Packet::Disconnect(Disconnect::new(reason));
        }
        packet
    }
}

/// An address for a log line; empty for an in-process client.
pub(super) fn addr_text(addr: Option<std::net::SocketAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_default()
}
