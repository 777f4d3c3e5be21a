//! Cluster mode: several Starling nodes over NATS look like one broker to clients.
//!
//! - [`subject`] — MQTT topics and filters as NATS subjects (pure).
//! - [`interest`] — which filters this node subscribes to on NATS (pure).
//! - [`envelope`] — the wire format between nodes and the duplicate filter (pure).
//! - [`bridge`] — the NATS connection: publishes local messages, subscribes per filter,
//!   feeds what arrives to the router; [`retained`] keeps retained messages in JetStream;
//!   [`ownership`] claims client ids cluster-wide (takeover across nodes);
//!   [`js_store`] keeps session state in JetStream for whichever node resumes it.
//! - [`isolation`] — the node cut off from NATS refuses and closes connections.
pub mod bridge;
pub mod envelope;
mod handle;
pub mod interest;
pub mod isolation;
mod jetstream;
pub mod js_store;
pub mod ownership;
mod publish;
pub mod replay;
pub mod retained;
pub mod subject;

pub use bridge::{start, ClusterError};
pub use js_store::JsStore;
