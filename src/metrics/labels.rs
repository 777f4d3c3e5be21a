//! The label sets of the broker's series, and the reasons a message is dropped.

use prometheus_client::encoding::EncodeLabelSet;

use crate::protocol::{ProtocolVersion, QoS};

/// Why a message did not reach a client (`starling_messages_dropped_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A session's queue was full (`max_queued_messages`/`max_queued_bytes`).
    QueueFull = 0,
    /// Its Message Expiry Interval ran out while queued.
    Expired,
    /// Larger than the client's Maximum Packet Size.
    TooLarge,
    /// A publish the authorizer refused.
    NotAuthorized,
    /// A publish no subscription matched.
    NoSubscribers,
    /// A QoS 0 message for a session whose client is away (QoS 0 is not kept for it).
    ClientOffline,
    /// A publish a hook's interceptor dropped ([`crate::hooks::Intercept::Drop`]).
    Hook,
}

impl DropReason {
    /// Every reason, in index order.
    pub const ALL: [DropReason; 7] = [
        DropReason::QueueFull,
        DropReason::Expired,
        DropReason::TooLarge,
        DropReason::NotAuthorized,
        DropReason::NoSubscribers,
        DropReason::ClientOffline,
        DropReason::Hook,
    ];

    /// The `reason` label's value.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
            DropReason::NotAuthorized => "not_authorized",
            DropReason::NoSubscribers => "no_subscribers",
            DropReason::ClientOffline => "client_offline",
            DropReason::Hook => "hook",
        }
    }
}

/// `{reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    reason: &'static str,
}

impl DropLabels {
    pub fn new(reason: DropReason) -> DropLabels {
        DropLabels {
            reason: reason.label(),
        }
    }
}

/// `{qos}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QosLabels {
    qos: &'static str,
}

impl QosLabels {
    pub fn new(qos: QoS) -> QosLabels {
        let qos = match qos {
            QoS::AtMostOnce => "0",
            QoS::AtLeastOnce => "1",
            QoS::ExactlyOnce => "2",
        };
        QosLabels { qos }
    }
}

/// `{listener, protocol}`: the port the client connected to (`local` for an
/// in-process persistent client) and its MQTT version.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    listener: String,
    protocol: &'static str,
}

impl ConnectionLabels {
    pub fn new(listener: Option<std::net::SocketAddr>, protocol: ProtocolVersion) -> Self {
        let listener = match listener {
            Some(addr) => addr.port().to_string(),
            None => "local".to_owned(),
        };
        let protocol = match protocol {
            ProtocolVersion::V31 => "3.1",
            ProtocolVersion::V311 => "3.1.1",
            ProtocolVersion::V5 => "5.0",
        };
        ConnectionLabels { listener, protocol }
    }
}

/// `{state}`: `online` or `offline`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionLabels {
    pub state: &'static str,
}

/// `{actor}`: `router`, `persistence` or `session`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabels {
    pub actor: &'static str,
}
