//! Client sessions: one actor per session, owning the connection while it is live and
//! the session state (queue, in-flight messages, QoS 2 ids) for as long as it lasts.

//!
//! # Takeover
//!
//!
//! 1. New connection's actor sends `Register` inside `ctx.wait`: it handles nothing else
//!    (no packets, no deliveries) until resumed, so CONNACK is the first packet it sends.
//! 2. Router points the client id at the new actor at once (new deliveries queue in the new
//!    actor's mailbox) and sends `Takeover` with a oneshot sender to the old actor.
//! 3. Old actor sends DISCONNECT 0x8E (5.0), closes, sends its `SessionState` through the
//!    oneshot, and stops once its socket has flushed.
//! 4. New actor takes the state (its queue and in-flight messages come before what waited
//!    in its mailbox), sends CONNACK with session present = 1, re-sends in-flight messages
//!    with DUP, then the queue.
//!
//! # Start-up and replay
//!
//!
//! `Broker::start` opens the store (`data_dir/store`, finishing an interrupted compaction
//! first), drops what expired while the broker was down, restores the router's state
//! (subscriptions, retained messages, persistent clients and their next sequence numbers)
//! from the snapshot, starts one offline `Session` actor per stored session on the worker
//! arbiters (its queue and in-flight messages with their packet ids and PUBREL state, its
//! inbound QoS 2 ids, its expiry and delayed will timers) and registers them (`Adopt`).
//! Only then do the listeners open. A returning client takes its session over as usual:
//! session present = 1, in-flight messages re-sent with DUP in order, then the queue.

mod actor;
mod admin;
mod aliases;
mod auth_flow;
mod authorize;
mod connect;
mod drain;
mod fast;
mod gate;
pub mod handshake;
mod hold;
mod inbound;
mod inflight;
mod inflow;
mod lifecycle;
mod link;
mod messages;
mod outbound;
mod perform;
mod persist;
pub(crate) mod policy;
mod rate;
mod reader;
mod reauth;
mod shared;
pub mod state;
mod subscribe;
mod vet;
mod will;
mod writer;

pub use actor::Session;
pub use connect::serve;
pub use link::link;
pub(crate) use messages::Handover;
pub use shared::{Isolation, Shared};

#[cfg(test)]
#[path = "footprint_tests.rs"]
mod footprint_tests;
