//! The router: owns the subscription trie, the retained messages and the registry of
//! session actors; routes each published message to the sessions that subscribed.

mod actor;
mod cluster;
mod dispatch;
mod interest;
pub mod messages;
mod outbox;
mod port;
mod replay;
mod reshare;
mod restore;
mod share;
mod state;

pub use actor::{Router, MAILBOX_CAPACITY};
pub use interest::InterestChange;
pub use messages::{Register, RegisterReply, Route, Routed, RouterStats, SessionEnded};
pub use port::{ClusterPort, Standalone};
pub use state::{Delivery, RouterState, Shares, SubscribeOutcome};
