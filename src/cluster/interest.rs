//! What stays on one node: `$SYS` topics (except the cluster-wide subtrees
//! `$SYS/cluster/<node_id>/...`, [`super::sys`]) and the filters that only match them
//! are neither sent to nor subscribed for in the cluster.

use crate::topic::TopicFilter;

use super::sys::NODES_TOPIC;

/// `$SYS` topics describe one node; they are neither sent to nor taken from the cluster.
/// The nodes' subtrees under `$SYS/cluster/` are cluster-wide; `$SYS/cluster/nodes`,
/// which every node computes for itself, is not.
pub fn is_node_local_topic(topic: &str) -> bool {
    let sys = topic == "$SYS" || topic.starts_with("$SYS/");
    sys && (!topic.starts_with("$SYS/cluster/") || topic == NODES_TOPIC)
}

/// A filter that can only match node-local topics: it starts with `$SYS` and cannot
/// match a topic of three or more levels whose second is `cluster`.
pub fn is_node_local_filter(filter: &TopicFilter) -> bool {
    let f = filter.match_filter();
    if !is_node_local_topic(f) && !f.starts_with("$SYS/cluster/") {
        return false;
    }
    let levels: Vec<&str> = f.split('/').collect();
    let cluster_wide = match levels.get(1) {
        Some(&"#") => true,
        Some(&"cluster") | Some(&"+") => levels.len() >= 3,
        _ => false,
    };
    !cluster_wide
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(f: &str) -> bool {
        is_node_local_filter(&TopicFilter::new(f).unwrap())
    }

    #[test]
    fn sys_topics_and_filters_are_node_local() {
        assert!(is_node_local_topic("$SYS/broker/uptime"));
        assert!(!is_node_local_topic("a/$SYS"));
        assert!(local("$SYS/broker/#"));
        assert!(local("$SYS/+"));
        assert!(local("$SYS"));
        assert!(!local("#"));
        assert!(!local("a/b"));
    }

    #[test]
    fn cluster_subtrees_are_cluster_wide() {
        assert!(!is_node_local_topic("$SYS/cluster/n1/uptime"));
        assert!(is_node_local_topic("$SYS/cluster/nodes"));
        assert!(is_node_local_topic("$SYS/cluster"));
        for f in ["$SYS/#", "$SYS/cluster/#", "$SYS/+/#", "$SYS/+/n1/uptime"] {
            assert!(!local(f), "{f}");
        }
    }
}
