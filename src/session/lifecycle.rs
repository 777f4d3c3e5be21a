//! The life of a session as plain state: its phase, a server-side close waiting for
//! pending acknowledgements, the will (sent now, after its delay, or never) and the
//! session expiry. Events go in, [`Action`]s come out; the actor carries them out with
//! its context (timers, the writer, the router), so every sequence is unit-tested here
//! without a `System`, the way quinn-proto is driven by quinn.

use std::time::Duration;

use super::handshake::NEVER_EXPIRES;
use crate::protocol::{LastWill, ReasonCode};

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

/// The connection as the lifecycle sees it (the actor's `Link` mirrors it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Absent,
    Open,
    /// The writer flushes and shuts down; nothing more is written or read.
    Closing,
}

/// What the lifecycle needs to know of the rest of the session at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Facts {
    /// Acknowledgements of inbound publishes still wait for the router.
    pub acks_pending: bool,
    /// Routed publishes still wait for the router's answer.
    pub routing: bool,
    pub v5: bool,
    /// The session expiry interval now (a 5.0 DISCONNECT may have changed it).
    pub expiry: u32,
}

/// What the actor must do, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Stop reading the socket (the close waits for acknowledgements).
    StopReading,
    /// Send a 5.0 DISCONNECT with this reason.
    SendDisconnect(ReasonCode),
    /// Flush what is buffered and shut the socket down; stop reading.
    CloseWriter,
    /// Route the will now.
    PublishWill(Box<LastWill>),
    /// Start the will timer; when it fires, call [`Lifecycle::will_due`].
    DelayWill(Duration),
    /// Cancel the will timer.
    CancelWillTimer,
    /// The session lost its connection: store the offline record, tell the router,
    /// hand unacknowledged shared-subscription messages on.
    GoneOffline,
    /// QoS 0 messages are not kept for an absent client.
    DropQueuedQos0,
    /// Start the expiry timer; when it fires, call [`Lifecycle::end`].
    ScheduleExpiry(Duration),
    /// Tell the router the session is over.
    EndSession,
    /// Send the session state to the actor taking over.
    HandOverState,
    /// Tell the actor taking over that this session had ended.
    AnswerEnded,
    /// Forget the connection (its writer has finished).
    DropLink,
    /// Stop the actor after a longest wait for the connection to flush.
    Linger,
    Stop,
}

/// The actions of one event.
pub(super) type Actions = Vec<Action>;

/// A session's phase, pending close and will.
#[derive(Debug)]
pub(super) struct Lifecycle {
    phase: Phase,
    conn: Conn,
    /// A server-side close waiting for pending acknowledgements.
    deferred: Option<Close>,
    /// The will of the live connection.
    will: Option<Box<LastWill>>,
    /// A will waiting out its delay (5.0), published at the latest when the session ends.
    pending_will: Option<Box<LastWill>>,
}

impl Lifecycle {
    /// A new connection's session, registering with the router.
    pub fn connecting(will: Option<Box<LastWill>>) -> Lifecycle {
        Lifecycle {
            phase: Phase::Connecting,
            conn: Conn::Absent,
            deferred: None,
            will,
            pending_will: None,
        }
    }

    /// A session with no connection (restored from the store).
    pub fn offline() -> Lifecycle {
        Lifecycle {
            phase: Phase::Offline,
            ..Lifecycle::connecting(None)
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True while the actor holds a connection (open or closing).
    pub fn has_connection(&self) -> bool {
        self.conn != Conn::Absent
    }

    /// The will a stored session record carries.
    pub fn stored_will(&self) -> Option<&LastWill> {
        self.will.as_deref().or(self.pending_will.as_deref())
    }

    /// The actor took the connection over from the connect task.
    pub fn opened(&mut self) {
        self.conn = Conn::Open;
    }

    /// CONNACK sent: packets are handled from now on.
    pub fn resumed(&mut self) {
        self.phase = Phase::Live;
    }

    /// Started from the store, `elapsed` after its client went away: the rest of the
    /// will delay and of the expiry.
    pub fn restore(
        &mut self,
        will: Option<Box<LastWill>>,
        expiry: u32,
        elapsed: Duration,
    ) -> Actions {
        let mut out = Actions::new();
        if let Some(will) = will {
            let delay = secs(will.properties.will_delay_interval.unwrap_or(0));
            self.pending_will = Some(will);
            out.push(Action::DelayWill(delay.saturating_sub(elapsed)));
        }
        if expiry != NEVER_EXPIRES {
            out.push(Action::ScheduleExpiry(secs(expiry).saturating_sub(elapsed)));
        }
        self.phase = Phase::Offline;
        out
    }

    /// Ends the connection (not necessarily the session).
    pub fn close(&mut self, how: Close, f: Facts) -> Actions {
        let mut out = Actions::new();
        self.close_into(how, f, &mut out);
        out
    }

    fn close_into(&mut self, how: Close, f: Facts, out: &mut Actions) {
        if self.conn != Conn::Open {
            return;
        }
        if let (Close::Server(_), true) = (how, f.acks_pending) {
            // Publishes already accepted are acknowledged first: nothing may follow a
            // DISCONNECT [MQTT-3.14.4-1]. Reading stops now; the close resumes once the
            // router has answered (see `Lifecycle::acks_settled`).
            out.push(Action::StopReading);
            self.deferred.get_or_insert(how);
            return;
        }
        if let (Close::Server(reason), true) = (how, f.v5) {
            out.push(Action::SendDisconnect(reason));
        }
        out.push(Action::CloseWriter);
        self.conn = Conn::Closing;
        if self.phase == Phase::Gone {
            return;
        }
        self.phase = Phase::Offline;
        let will = self.will.take();
        if how != (Close::ClientDisconnect { send_will: false }) {
            self.schedule_will(will, f.expiry, out);
        }
        out.push(Action::GoneOffline);
        if f.expiry == 0 {
            self.end_into(f, out);
            return;
        }
        out.push(Action::DropQueuedQos0);
        if f.expiry != NEVER_EXPIRES {
            out.push(Action::ScheduleExpiry(secs(f.expiry)));
        }
    }

    /// Publishes the will now, or after the will delay (5.0) unless the session is
    /// resumed first [MQTT-3.1.3-9]; never after the session has expired.
    fn schedule_will(&mut self, will: Option<Box<LastWill>>, expiry: u32, out: &mut Actions) {
        let Some(will) = will else {
            return;
        };
        let delay = will.properties.will_delay_interval.unwrap_or(0);
        if delay == 0 || expiry == 0 {
            out.push(Action::PublishWill(will));
            return;
        }
        self.pending_will = Some(will);
        out.push(Action::DelayWill(secs(delay.min(expiry))));
    }

    /// The session is over (expired, or closed with no expiry): a delayed will goes now.
    pub fn end(&mut self, f: Facts) -> Actions {
        let mut out = Actions::new();
        self.end_into(f, &mut out);
        out
    }

    fn end_into(&mut self, f: Facts, out: &mut Actions) {
        if self.phase == Phase::Gone {
            return;
        }
        self.phase = Phase::Gone;
        self.fire_pending_will(out);
        out.push(Action::EndSession);
        self.stop_when_flushed(f, out);
    }

    /// The will timer fired.
    pub fn will_due(&mut self) -> Actions {
        let mut out = Actions::new();
        self.fire_pending_will(&mut out);
        out
    }

    fn fire_pending_will(&mut self, out: &mut Actions) {
        if let Some(will) = self.pending_will.take() {
            out.push(Action::CancelWillTimer);
            out.push(Action::PublishWill(will));
        }
    }

    /// The session could not be resumed (the refusing CONNACK went out first): the
    /// connection closes with no will, nothing stored and no DISCONNECT, and the actor
    /// stops. The router then holds a dead address for the id, so the client's next
    /// CONNECT loads the session from the store again.
    pub fn refuse(&mut self, f: Facts) -> Actions {
        let mut out = Actions::new();
        self.will = None;
        self.phase = Phase::Gone;
        self.close_into(Close::Lost, f, &mut out);
        self.stop_when_flushed(f, &mut out);
        out
    }

    /// A handler failed: this actor goes (5.0: DISCONNECT 0x83). A persistent session
    /// stays in the store for its client's next CONNECT; a clean one ends. The actor
    /// forgets its pending acknowledgements first (`f.acks_pending` is false).
    pub fn crash(&mut self, f: Facts) -> Actions {
        let mut out = Actions::new();
        let will = self.will.take();
        if f.expiry == 0 {
            self.end_into(f, &mut out);
        }
        self.phase = Phase::Gone;
        let reason = ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR;
        self.close_into(Close::Server(reason), f, &mut out);
        if let Some(will) = will {
            out.push(Action::PublishWill(will));
        }
        self.stop_when_flushed(f, &mut out);
        out
    }

    /// Another connection claims the session: its state goes there (`handover`) or is
    /// discarded (clean start). 5.0: DISCONNECT 0x8E.
    pub fn take_over(&mut self, handover: bool, f: Facts) -> Actions {
        let mut out = Actions::new();
        if handover && self.phase == Phase::Gone {
            out.push(Action::AnswerEnded);
            return out;
        }
        let will = self.will.take();
        let reason = ReasonCode::SESSION_TAKEN_OVER;
        if handover {
            // The session continues elsewhere: a delayed will is cancelled
            // [MQTT-3.1.3-9]; a will without delay goes out as the connection closes.
            if let Some(will) = will.filter(|w| w.properties.will_delay_interval.unwrap_or(0) == 0)
            {
                out.push(Action::PublishWill(will));
            }
            if self.pending_will.take().is_some() {
                out.push(Action::CancelWillTimer);
            }
            self.phase = Phase::Gone;
            self.close_into(Close::Server(reason), f, &mut out);
            out.push(Action::HandOverState);
        } else {
            self.phase = Phase::Gone;
            self.close_into(Close::Server(reason), f, &mut out);
            if let Some(will) = will {
                out.push(Action::PublishWill(will));
            }
        }
        self.stop_when_flushed(f, &mut out);
        out
    }

    /// The broker shuts down: no will (the session may resume after the restart).
    pub fn shutdown(&mut self, f: Facts) -> Actions {
        self.will = None;
        self.close(Close::Server(ReasonCode::SERVER_SHUTTING_DOWN), f)
    }

    /// The router answered a routed publish: a close that waited for the
    /// acknowledgements goes on once they are all sent.
    pub fn acks_settled(&mut self, f: Facts) -> Actions {
        let mut out = Actions::new();
        if let (Some(how), false) = (self.deferred, f.acks_pending) {
            self.deferred = None;
            self.close_into(how, f, &mut out);
        }
        self.stop_if_idle(f, &mut out);
        out
    }

    /// The write side finished (flushed and shut down, or failed).
    pub fn writer_closed(&mut self, f: Facts) -> Actions {
        let mut out = Actions::new();
        if self.conn == Conn::Open {
            // The socket failed while the connection was live.
            self.close_into(Close::Lost, f, &mut out);
        }
        if self.conn != Conn::Absent {
            self.conn = Conn::Absent;
            out.push(Action::DropLink);
        }
        self.stop_if_idle(f, &mut out);
        out
    }

    /// Stops a gone session once nothing it sent to the router is still on its way: a
    /// `send` to a full mailbox holds its message until polled, and stopping would drop it.
    pub fn idle(&mut self, f: Facts) -> Actions {
        let mut out = Actions::new();
        self.stop_if_idle(f, &mut out);
        out
    }

    fn stop_if_idle(&self, f: Facts, out: &mut Actions) {
        if self.phase == Phase::Gone && self.conn == Conn::Absent && !f.routing {
            out.push(Action::Stop);
        }
    }

    fn stop_when_flushed(&self, f: Facts, out: &mut Actions) {
        match self.conn {
            Conn::Absent => self.stop_if_idle(f, out),
            Conn::Open | Conn::Closing => out.push(Action::Linger),
        }
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
