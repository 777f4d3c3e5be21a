//! The naive reference matcher of MQTT section 4.7: one filter against one topic name.

/// True when the topic name `topic` matches the topic filter `filter` (MQTT section 4.7).
///
/// `filter` is the filter that is matched: for a shared subscription pass the inner
/// filter ([`TopicFilter::match_filter`](super::TopicFilter::match_filter)), not
/// `$share/{group}/{filter}`. Both arguments are assumed to be valid; this function does
/// not validate them.
///
/// - `+` matches exactly one level, which may be empty.
/// - `#` matches the parent level and any number of child levels: `sport/#` matches
///   `sport`, `sport/` and `sport/a/b`.
/// - A filter starting with a wildcard never matches a topic starting with `$`
///   [MQTT-4.7.2-1].
/// - Empty levels are real levels: `a//b` has three levels.
///
/// It costs one pass over both strings and allocates nothing. Routing uses
/// [`SubscriptionTrie`](super::SubscriptionTrie) instead of calling this per filter.
///
/// ```
/// use starling::topic::matches;
///
/// assert!(matches("sport/+/player1", "sport/tennis/player1"));
/// assert!(matches("sport/#", "sport"));
/// assert!(!matches("sport/+", "sport/tennis/player1"));
/// assert!(!matches("#", "$SYS/broker/uptime"));
/// assert!(matches("$SYS/#", "$SYS/broker/uptime"));
/// ```
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            // `#` is last; it matches whatever is left, including nothing (the parent).
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    /// (filter, topic, expected)
    const TABLE: &[(&str, &str, bool)] = &[
        // Exact levels.
        ("a/b", "a/b", true),
        ("a/b", "a/b/", false),
        ("a/b", "a", false),
        ("a/b", "a//b", false),
        ("a//b", "a//b", true),
        ("ACCOUNTS", "Accounts", false),
        ("/", "/", true),
        ("/a", "a", false),
        // Examples of section 4.7.1.2: `#`.
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/tennis/player1/#", "sport/tennis/player2", false),
        ("sport/#", "sport", true),
        ("sport/#", "sport/", true),
        ("sport/#", "sport/a/b", true),
        ("sport/#", "sports", false),
        ("sport/#", "sportx/a", false),
        ("#", "a", true),
        ("#", "/", true),
        ("#", "a/b/c", true),
        ("/#", "/", true),
        ("/#", "/a/b", true),
        ("/#", "a", false),
        ("a/#", "ab", false),
        // Examples of section 4.7.1.3: `+`.
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+", "/", false),
        ("+/+", "/", true),
        ("a/+/b", "a//b", true),
        ("a/+/b", "a/x/y/b", false),
        ("+/#", "a", true),
        ("+/#", "a/b/c", true),
        ("+/b/#", "a/b", true),
        ("+/b/#", "a/c", false),
        // `$` topics [MQTT-4.7.2-1].
        ("#", "$SYS/x", false),
        ("#", "$SYS", false),
        ("+", "$x", false),
        ("+/#", "$SYS", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/#", "$SYS", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("$x", "$x", true),
        ("$x/+", "$x/a", true),
        ("a/$x", "a/$x", true),
        ("a/+", "a/$x", true),
        ("a/#", "a/$x/b", true),
    ];

    #[test]
    fn table() {
        for &(filter, topic, expected) in TABLE {
            assert_eq!(
                matches(filter, topic),
                expected,
                "filter {filter:?} topic {topic:?}"
            );
        }
    }
}
