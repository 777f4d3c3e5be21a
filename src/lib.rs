//! Starling: an MQTT 3.1.1 and 5.0 broker built on actix actors.
//!
//! - [`protocol`] — the wire format (pure).
//! - [`topic`] — topic names, filters, the subscription trie (pure).
//! - [`auth`] — password file, SCRAM-SHA-256, the `Authenticator` trait (pure).
//! - [`session`] — one actor per client session.
//! - [`router`] — the actor owning subscriptions and retained messages.
//! - [`transport`] — listeners.
//! - [`sys`] — broker counters and the `$SYS` topics.
//! - [`cluster`] — several nodes over NATS as one broker.
//! - [`broker`] — puts them together; start a [`Broker`] inside an actix `System`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod delivery;
pub(crate) mod guard;
pub mod message;
pub mod persistence;
pub mod protocol;
pub mod router;
pub mod session;
pub mod sys;
pub mod topic;
pub mod transport;

pub use broker::{Broker, BrokerError, BrokerHandle};
pub use config::Config;
