//! Topic names: the concrete topic a PUBLISH is sent to (section 4.7).

use std::fmt;

use bytestring::ByteString;

use super::TopicError;

/// A validated topic name: no wildcard characters [MQTT-3.3.2-2], no U+0000
/// [MQTT-4.7.3-2], at most 65,535 bytes [MQTT-4.7.3-3].
///
/// It may be empty only when built with [`TopicName::empty`]: MQTT 5.0 sends an empty
/// name with a topic alias, which the session resolves before routing.
///
/// ```
/// use starling::topic::{TopicError, TopicName};
///
/// let name = TopicName::new("sensors/1/temp")?;
/// assert_eq!(name.levels().collect::<Vec<_>>(), ["sensors", "1", "temp"]);
/// assert!(TopicName::new("$SYS/broker/uptime")?.is_dollar());
///
/// assert_eq!(TopicName::new("sensors/+"), Err(TopicError::WildcardInName));
/// assert_eq!(TopicName::new(""), Err(TopicError::Empty));
/// # Ok::<(), TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(ByteString);

impl TopicName {
    /// Validates a non-empty topic name [MQTT-4.7.3-1].
    pub fn new(s: impl Into<ByteString>) -> Result<TopicName, TopicError> {
        let s = s.into();
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        Self::new_allow_empty(s)
    }

    /// Validates a topic name that may be empty (5.0 PUBLISH with a topic alias).
    pub fn new_allow_empty(s: impl Into<ByteString>) -> Result<TopicName, TopicError> {
        let s = s.into();
        if s.len() > usize::from(u16::MAX) {
            return Err(TopicError::TooLong);
        }
        if s.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(TopicError::WildcardInName);
        }
        if s.contains('\0') {
            return Err(TopicError::NullCharacter);
        }
        Ok(TopicName(s))
    }

    /// The empty name that stands in for a topic alias.
    pub fn empty() -> TopicName {
        TopicName(ByteString::new())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string, cheap to clone.
    pub fn as_bytestring(&self) -> &ByteString {
        &self.0
    }

    /// True for the empty name that stands in for a topic alias.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Topics starting with `$` are not matched by filters starting with a wildcard
    /// [MQTT-4.7.2-1].
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }

    /// The levels of the name, split on `/`.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicName({:?})", &*self.0)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wildcards_null_and_empty() {
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a\0b"), Err(TopicError::NullCharacter));
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert!(TopicName::new_allow_empty("").is_ok());
        assert!(TopicName::new("/").is_ok());
        assert!(TopicName::new("$SYS/x").unwrap().is_dollar());
    }
}
