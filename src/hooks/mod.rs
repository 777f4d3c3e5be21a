//! Hooks for embedding applications: an [`Authorizer`] deciding who may publish,
//! subscribe and receive what, and [`Hook`]s that see client events and may rewrite or
//! drop publishes. Both are given to the [`Broker`](crate::Broker) builder.
//!
//! # The hook budget
//!
//! Every hook may answer at once ([`Answer::ready`]) or later ([`Answer::later`]). A
//! later answer is awaited by the client's own session (or in-process client), never by
//! the router, for at most the hook budget ([`Broker::hook_budget`], 1 s by default);
//! while it waits, that client's session handles nothing else, so its packets and
//! deliveries keep their order. When the budget runs out:
//! - an authorization is denied (fail closed), with a warning in the log;
//! - an interception refuses the publish as not authorized, with a warning;
//! - an event handler is abandoned, with a warning (events run on their own thread).
//!
//! A synchronous hook that blocks cannot be interrupted: it holds up the session that
//! called it (events: the event thread). Do slow work in [`Answer::later`].
//!
//! [`Broker::hook_budget`]: crate::Broker::hook_budget

mod answer;
mod authorizer;
mod bundle;
mod events;
mod hook;

use std::fmt;
use std::net::SocketAddr;

pub use answer::Answer;
pub use authorizer::{Access, Authorizer, Decision};
pub(crate) use bundle::{Hooks, Pending, Vetted};
pub(crate) use events::EventQueue;
pub use hook::{Event, Hook, Intercept, Publication};

use crate::message::ClientId;
use crate::protocol::ProtocolVersion;

/// Who a client is, as hooks and the [`Authenticator`](crate::auth::Authenticator)
/// see it. In-process clients have no listener, address or protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client identifier (the one the broker assigned, for an empty one).
    pub client_id: ClientId,
    /// The CONNECT's User Name (or the one authentication settled on).
    pub username: Option<String>,
    /// The address of the listener the client connected to.
    pub listener: Option<SocketAddr>,
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The MQTT version the client speaks.
    pub protocol: Option<ProtocolVersion>,
}

impl ClientInfo {
    /// An in-process client's information (and a start for tests of hooks).
    pub fn new(client_id: ClientId) -> ClientInfo {
        ClientInfo {
            client_id,
            username: None,
            listener: None,
            remote_addr: None,
            protocol: None,
        }
    }

    /// With this username.
    pub fn with_username(mut self, username: Option<String>) -> ClientInfo {
        self.username = username;
        self
    }

    /// With a network connection's details.
    pub fn with_connection(
        mut self,
        listener: SocketAddr,
        remote_addr: SocketAddr,
        protocol: ProtocolVersion,
    ) -> ClientInfo {
        self.listener = Some(listener);
        self.remote_addr = Some(remote_addr);
        self.protocol = Some(protocol);
        self
    }

    /// True for an in-process client (no connection).
    pub fn is_local(&self) -> bool {
        self.remote_addr.is_none()
    }
}

impl fmt::Display for ClientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.remote_addr {
            Some(addr) => write!(f, "{} ({addr})", self.client_id),
            None => write!(f, "{} (in-process)", self.client_id),
        }
    }
}

#[cfg(test)]
mod tests;
