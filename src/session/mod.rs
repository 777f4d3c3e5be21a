//! Client sessions: one actor per session, owning the connection while it is live and
//! the session state (queue, in-flight messages, QoS 2 ids) for as long as it lasts.

mod actor;
mod aliases;
mod auth_flow;
mod connect;
mod gate;
pub mod handshake;
mod inbound;
mod inflight;
mod inflow;
mod lifecycle;
mod messages;
mod outbound;
mod perform;
mod persist;
mod policy;
mod reauth;
mod shared;
pub mod state;
mod subscribe;
mod will;
mod writer;

pub use actor::Session;
pub use connect::serve;
pub use messages::{Deliver, DeliverBatch, Evict, Handover, Shutdown, Takeover};
pub use shared::{Isolation, Shared};
