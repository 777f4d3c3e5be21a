//! Topic filters: what a SUBSCRIBE asks for, with `+`, `#` and `$share/` (section 4.7, 4.8.2).

use std::fmt;

use bytestring::ByteString;

use super::TopicError;

/// A validated topic filter [MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1].
///
/// A shared subscription `$share/{group}/{filter}` is a valid filter; [`TopicFilter::share`]
/// splits it into its group and the filter that is matched.
///
/// ```
/// use starling::topic::{Share, TopicError, TopicFilter};
///
/// let filter = TopicFilter::new("sensors/+/temp")?;
/// assert!(filter.has_wildcards());
/// assert_eq!(filter.share(), None);
///
/// let shared = TopicFilter::new("$share/workers/jobs/#")?;
/// assert_eq!(shared.share(), Some(Share { group: "workers", filter: "jobs/#" }));
/// assert_eq!(shared.match_filter(), "jobs/#");
///
/// assert_eq!(TopicFilter::new("a/#/b"), Err(TopicError::InvalidMultiLevelWildcard));
/// assert_eq!(TopicFilter::new("a/b+"), Err(TopicError::InvalidSingleLevelWildcard));
/// # Ok::<(), TopicError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(ByteString);

/// The parts of a shared subscription filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share<'a> {
    /// The share name: `g` in `$share/g/a/+`.
    pub group: &'a str,
    /// The filter matched against topic names: `a/+` in `$share/g/a/+`.
    pub filter: &'a str,
}

impl TopicFilter {
    /// Validates a topic filter: non-empty, at most 65,535 bytes, no U+0000, `+` and
    /// `#` each alone in their level and `#` last; a `$share/{group}/{filter}` has a
    /// group free of wildcards and a valid inner filter.
    pub fn new(s: impl Into<ByteString>) -> Result<TopicFilter, TopicError> {
        let s = s.into();
        if s.is_empty() {
            return Err(TopicError::Empty);
        }
        if s.len() > usize::from(u16::MAX) {
            return Err(TopicError::TooLong);
        }
        if s.contains('\0') {
            return Err(TopicError::NullCharacter);
        }
        if let Some(rest) = s.strip_prefix("$share/") {
            let (group, filter) = rest.split_once('/').ok_or(TopicError::InvalidShare)?;
            if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
                return Err(TopicError::InvalidShare);
            }
            validate_levels(filter)?;
        } else if s == "$share" {
            return Err(TopicError::InvalidShare);
        } else {
            validate_levels(&s)?;
        }
        Ok(TopicFilter(s))
    }

    /// The filter as sent, `$share/{group}/` prefix included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The group and inner filter of a `$share/{group}/{filter}` subscription.
    pub fn share(&self) -> Option<Share<'_>> {
        let rest = self.0.strip_prefix("$share/")?;
        let (group, filter) = rest.split_once('/')?;
        Some(Share { group, filter })
    }

    /// The filter that is matched against topic names (the inner one for shares).
    pub fn match_filter(&self) -> &str {
        self.share().map_or(&self.0, |s| s.filter)
    }

    /// True when the matched filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.match_filter().contains(['+', '#'])
    }
}

/// `#` must be last and alone in its level; `+` must be alone in its level.
fn validate_levels(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err(TopicError::InvalidMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::InvalidSingleLevelWildcard);
        }
    }
    Ok(())
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicFilter({:?})", &*self.0)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Test generators' assembly of a filter: `levels` joined by `/`, then `#` when
/// `hash`, under `$share/{group}/` when a group is given; `None` when that is not a
/// valid filter.
#[cfg(test)]
pub(crate) fn assemble_filter(
    group: Option<&str>,
    levels: &[&str],
    hash: bool,
) -> Option<TopicFilter> {
    let mut inner = levels.join("/");
    if hash {
        inner = if levels.is_empty() {
            "#".to_owned()
        } else {
            inner + "/#"
        };
    }
    let full = match group {
        Some(group) => format!("$share/{group}/{inner}"),
        None => inner,
    };
    TopicFilter::new(full).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_wildcards() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/",
            "a//b",
            "$SYS/#",
            "$share/g/a/#",
        ] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a#",
            "a/#/b",
            "a+",
            "a/b+/c",
            "#/a",
            "$share/g",
            "$share//a",
            "$share/g+/a",
            "$share",
        ] {
            assert!(TopicFilter::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn splits_shares() {
        let f = TopicFilter::new("$share/grp/a/+").unwrap();
        assert_eq!(
            f.share(),
            Some(Share {
                group: "grp",
                filter: "a/+"
            })
        );
        assert_eq!(f.match_filter(), "a/+");
        assert!(f.has_wildcards());
        assert_eq!(TopicFilter::new("a/b").unwrap().share(), None);
    }
}
