//! Starling: an MQTT 3.1.1 and 5.0 broker built on actix actors.
//!
//! The public surface, for embedding the broker in an actix application:
//! - [`Broker`] (built from a [`Config`]) starts inside an actix `System` and gives a
//!   [`BrokerHandle`]: its addresses, a password reload, the [`Router`] actor (send it a
//!   [`Route`] to publish a [`Message`], [`GetStats`] for counters), in-process
//!   clients ([`BrokerHandle::client`] gives a [`LocalClient`], which publishes and
//!   subscribes; [`BrokerHandle::persistent_client`] a [`PersistentClient`], whose
//!   session is stored like a network client's) and `stop`.
//! - [`protocol`] — the wire format and the strict codec (pure).
//! - [`topic`] — topic names, filters, the subscription trie (pure).
//! - [`auth`] — the `Authenticator` trait, the password file, SCRAM-SHA-256.
//! - [`hooks`] — the `Authorizer` (who may publish, subscribe, receive what) and
//!   `Hook`s (client events, a publish interceptor), given to the [`Broker`] builder
//!   with [`Broker::store`] (any [`persistence::Store`]) and
//!   [`Broker::authenticator`].
//! - [`persistence`] — the `Store` trait and its records, with the sled and in-memory
//!   stores ([`JsStore`] keeps them in NATS JetStream in cluster mode).
//! - [`config`] — the configuration file.
//! - [`http`] — `/health`, `/ready` and `/metrics`, served on `[http] bind` or mounted
//!   in an application's actix-web `App` from [`BrokerHandle::ops`].
//!
//! Everything else is internal (ARCHITECTURE.md shows how it fits): the session and
//! router actors, the persistence actor, the cluster bridge, the listeners.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub(crate) mod broker;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod delivery;
pub(crate) mod guard;
pub mod hooks;
pub mod http;
pub(crate) mod local;
pub mod message;
pub(crate) mod metrics;
pub mod persistence;
pub mod protocol;
pub(crate) mod router;
pub(crate) mod session;
pub(crate) mod sys;
pub mod topic;
pub(crate) mod transport;

pub use broker::{Broker, BrokerError, BrokerHandle};
#[doc(hidden)]
pub use cluster::replay::LogProbe;
pub use cluster::JsStore;
pub use config::Config;
pub use local::{LocalClient, LocalMessage, PersistentClient, Published, Refused, Subscription};
pub use message::{ClientId, Message};
pub use router::messages::{GetStats, Route, Routed, RouterStats};
pub use router::Router;
pub use transport::TlsError;
