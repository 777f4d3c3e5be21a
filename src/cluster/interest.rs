//! What stays on one node: `$SYS` topics and the filters that only match them are
//! neither sent to nor subscribed for in the cluster.

use crate::topic::TopicFilter;

/// `$SYS` topics describe one node; they are neither sent to nor taken from the cluster.
pub fn is_node_local_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// A filter that can only match node-local topics.
pub fn is_node_local_filter(filter: &TopicFilter) -> bool {
    is_node_local_topic(filter.match_filter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_topics_and_filters_are_node_local() {
        assert!(is_node_local_topic("$SYS/broker/uptime"));
        assert!(!is_node_local_topic("a/$SYS"));
        assert!(is_node_local_filter(&TopicFilter::new("$SYS/#").unwrap()));
        assert!(!is_node_local_filter(&TopicFilter::new("#").unwrap()));
    }
}
