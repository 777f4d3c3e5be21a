//! The router: owns the subscription trie, the retained messages and the registry of
//! session actors; routes each published message to the sessions that subscribed.

mod actor;
mod cluster;
mod dispatch;
mod interest;
pub mod messages;
mod outbox;
mod plan;
#[cfg(test)]
mod plan_tests;
mod port;
mod replay;
mod reshare;
mod restore;
mod route;
mod share;
mod state;

pub use actor::{Router, MAILBOX_CAPACITY};
pub use interest::InterestChange;
pub use port::ClusterPort;
pub use state::RouterState;
