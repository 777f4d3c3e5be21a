//! Topic names, topic filters and the subscription trie. Pure: no actix, no tokio.
//!
//! [`TopicName`] and [`TopicFilter`] are validated once, when built; [`matches()`] checks
//! one filter against one name, and [`SubscriptionTrie`] finds every matching filter
//! among many.

mod filter;
mod matching;
#[cfg(test)]
mod model_tests;
mod name;
mod tree;
mod trie;

#[cfg(test)]
pub(crate) use filter::assemble_filter;
pub use filter::{Share, TopicFilter};
pub use matching::matches;
pub use name::TopicName;
pub use tree::TopicTree;
pub use trie::{Match, SubscriptionTrie};

/// Why a string is not a valid topic name or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The string is empty [MQTT-4.7.3-1].
    #[error("[MQTT-4.7.3-1] topic names and filters must be at least one character long")]
    Empty,
    /// The string is longer than 65,535 bytes [MQTT-4.7.3-3].
    #[error("[MQTT-4.7.3-3] topic longer than 65,535 bytes")]
    TooLong,
    /// The string contains U+0000 [MQTT-4.7.3-2].
    #[error("[MQTT-4.7.3-2] topic contains U+0000")]
    NullCharacter,
    /// A topic name contains `+` or `#` [MQTT-3.3.2-2].
    #[error("[MQTT-3.3.2-2] topic name contains a wildcard character")]
    WildcardInName,
    /// A filter has `#` other than alone in its last level [MQTT-4.7.1-2].
    #[error("[MQTT-4.7.1-2] '#' must be the last character and alone in its level")]
    InvalidMultiLevelWildcard,
    /// A filter has `+` other than alone in its level [MQTT-4.7.1-3].
    #[error("[MQTT-4.7.1-3] '+' must occupy an entire level")]
    InvalidSingleLevelWildcard,
    /// A `$share/` filter lacks a group or an inner filter, or its group contains a
    /// wildcard [MQTT-4.8.2-1].
    #[error("[MQTT-4.8.2-1] shared subscription must be $share/{{group}}/{{filter}} with a group free of wildcards")]
    InvalidShare,
}
