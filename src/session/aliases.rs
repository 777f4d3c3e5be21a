//! Topic aliases from the server to a 5.0 client (section 3.3.2.3.4), per connection.
//!
//! Policy: first come, first served. The first distinct topics delivered on a connection
//! take aliases 1, 2, ... up to the client's Topic Alias Maximum (capped at
//! [`OUTBOUND_ALIAS_CAP`] to bound memory); they keep them for the connection's life.
//! Later topics go out with their full name and no alias. A topic's first PUBLISH
//! carries the full name and the alias, the following ones an empty name and the alias.

use std::collections::HashMap;

use crate::topic::TopicName;

/// The most aliases one connection is given, whatever the client allows.
pub const OUTBOUND_ALIAS_CAP: u16 = 1024;

/// How one PUBLISH uses an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasUse {
    /// No alias: the full topic name only.
    None,
    /// A new alias: the full topic name with it (commit it once the packet is sent).
    Assign(u16),
    /// A known alias: an empty topic name with it.
    Known(u16),
}

/// The aliases of one connection.
#[derive(Debug, Default)]
pub struct OutboundAliases {
    max: u16,
    /// Allocated with the first alias: most connections never have one, and the session
    /// actor's size is every idle connection's cost.
    #[allow(clippy::box_collection)] // 8 bytes inline instead of a HashMap's 48
    assigned: Option<Box<HashMap<TopicName, u16>>>,
}

impl OutboundAliases {
    /// `client_max` is the Topic Alias Maximum of the client's CONNECT (0: none may be
    /// sent [MQTT-3.1.2-27]).
    pub fn new(client_max: u16) -> OutboundAliases {
        OutboundAliases {
            max: client_max.min(OUTBOUND_ALIAS_CAP),
            assigned: None,
        }
    }

    /// How a PUBLISH to `topic` would use an alias; nothing changes until
    /// [`OutboundAliases::commit`].
    pub fn lookup(&self, topic: &TopicName) -> AliasUse {
        let assigned = self.assigned.as_deref();
        if let Some(alias) = assigned.and_then(|a| a.get(topic)) {
            return AliasUse::Known(*alias);
        }
        let next = assigned.map_or(0, HashMap::len) + 1;
        // Never above the client's maximum [MQTT-3.3.2-11].
        if next <= usize::from(self.max) {
            AliasUse::Assign(next as u16)
        } else {
            AliasUse::None
        }
    }

    /// Records an alias the client has now been sent.
    pub fn commit(&mut self, topic: &TopicName, use_: AliasUse) {
        if let AliasUse::Assign(alias) = use_ {
            let assigned = self.assigned.get_or_insert_with(Box::default);
            debug_assert_eq!(usize::from(alias), assigned.len() + 1);
            assigned.insert(topic.clone(), alias);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    #[test]
    fn first_come_up_to_the_maximum() {
        let mut a = OutboundAliases::new(2);
        assert_eq!(a.lookup(&t("a")), AliasUse::Assign(1));
        // Not committed (e.g. dropped as too large): still to be assigned.
        assert_eq!(a.lookup(&t("a")), AliasUse::Assign(1));
        a.commit(&t("a"), AliasUse::Assign(1));
        assert_eq!(a.lookup(&t("a")), AliasUse::Known(1));
        let b = a.lookup(&t("b"));
        assert_eq!(b, AliasUse::Assign(2));
        a.commit(&t("b"), b);
        assert_eq!(a.lookup(&t("c")), AliasUse::None);
        assert_eq!(a.lookup(&t("b")), AliasUse::Known(2));
    }

    #[test]
    fn none_without_a_client_maximum() {
        assert_eq!(OutboundAliases::new(0).lookup(&t("a")), AliasUse::None);
        let a = OutboundAliases::new(u16::MAX);
        assert_eq!(a.max, OUTBOUND_ALIAS_CAP);
    }
}
