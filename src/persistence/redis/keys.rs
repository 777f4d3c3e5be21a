//! The key layout of the redis store, under a prefix (`starling:` by default).
//!
//! | key | type | content |
//! |---|---|---|
//! | `{p}schema` | string | schema version (decimal) |
//! | `{p}next_seq` | string | 1 + the largest queued seq ever applied (decimal) |
//! | `{p}sessions` | hash | client id → postcard [`SessionRecord`](super::super::SessionRecord) |
//! | `{p}subs:{client id}` | hash | filter → postcard `SubscriptionRecord` |
//! | `{p}queue:{client id}` | hash | seq (decimal) → postcard `QueuedRecord` |
//! | `{p}qos2in:{client id}` | set | inbound QoS 2 packet ids (decimal) |
//! | `{p}retained` | hash | topic → postcard `MessageRecord` |
//!
//! Per-client keys end with the whole client id after a fixed `kind:` part, so two
//! clients (or two kinds) never share a key whatever their ids contain.

/// The prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "starling:";

/// Builds the keys of one store (one prefix).
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

/// The per-client keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientKey {
    /// `subs:`: subscriptions by filter.
    Subs,
    /// `queue:`: queued messages by seq.
    Queue,
    /// `qos2in:`: inbound QoS 2 packet ids.
    Qos2In,
}

impl ClientKey {
    /// Every per-client key, for deleting a session.
    pub(super) const ALL: [ClientKey; 3] = [ClientKey::Subs, ClientKey::Queue, ClientKey::Qos2In];

    /// The name used in the key and in corruption errors.
    pub(super) fn name(self) -> &'static str {
        match self {
            ClientKey::Subs => "subs",
            ClientKey::Queue => "queue",
            ClientKey::Qos2In => "qos2in",
        }
    }
}

impl Keys {
    /// Keys under `prefix`.
    pub(super) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix, for messages.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `{p}schema`.
    pub(super) fn schema(&self) -> String {
        self.key("schema")
    }

    /// `{p}next_seq`.
    pub(super) fn next_seq(&self) -> String {
        self.key("next_seq")
    }

    /// `{p}sessions`.
    pub(super) fn sessions(&self) -> String {
        self.key("sessions")
    }

    /// `{p}retained`.
    pub(super) fn retained(&self) -> String {
        self.key("retained")
    }

    /// `{p}{kind}:{client id}`.
    pub(super) fn client(&self, kind: ClientKey, client_id: &str) -> String {
        format!("{}{}:{client_id}", self.prefix, kind.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let k = Keys::new(DEFAULT_PREFIX);
        assert_eq!(k.schema(), "starling:schema");
        assert_eq!(k.sessions(), "starling:sessions");
        assert_eq!(k.client(ClientKey::Queue, "a:b"), "starling:queue:a:b");
        assert_eq!(k.client(ClientKey::Subs, ""), "starling:subs:");
    }
}
