//! `$SYS/cluster`: the cluster-wide part of `$SYS` (with `[server] sys_interval_secs`
//! > 0).
//!
//! - `$SYS/cluster/nodes`: the ids of the live nodes ([`super::nodes`]) as a sorted
//!   JSON array of strings, e.g. `["node0","node1","node2"]`, retained. Each node
//!   computes it from the liveness bucket and publishes it to its own clients when it
//!   changes (node-local: every node's copy says the same, within a sweep interval).
//! - `$SYS/cluster/<node_id>/...`: each node's own `$SYS/broker/...` values, published
//!   by its [`crate::sys::Sys`] actor under this prefix too ([`crate::sys::mirror_topic`]),
//!   routed and retained cluster-wide like any retained message. When a node dies, the
//!   live node with the lowest id deletes the departed node's subtree (empty retained
//!   messages) once it sees the node gone.
//!
//! The rest of `$SYS` stays on its node ([`super::interest`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tracing::{debug, warn};

use super::nodes::Alive;
use crate::config::ClusterConfig;
use crate::router::messages::Route;
use crate::router::Router;
use crate::sys::{mirror_topic, sys_message, topics};

/// The live node ids.
pub const NODES_TOPIC: &str = "$SYS/cluster/nodes";

/// The node id to mirror `$SYS` under, in cluster mode; `None` (logged) for an id that
/// cannot be one topic level.
pub fn mirror_node(config: &ClusterConfig) -> Option<String> {
    if !config.enabled {
        return None;
    }
    let id = &config.node_id;
    let usable = !id.is_empty() && id != "nodes" && !id.contains(['/', '+', '#', '\0']);
    if !usable {
        warn!(node_id = %id, "node id not usable as a topic level; no $SYS/cluster/<node_id> subtree");
        return None;
    }
    Some(id.clone())
}

/// The JSON payload of [`NODES_TOPIC`].
pub fn nodes_payload(node_ids: &BTreeSet<String>) -> String {
    serde_json::to_string(node_ids).unwrap_or_else(|_| "[]".into())
}

/// Publishes `$SYS/cluster/nodes` on changes and removes departed nodes' subtrees.
pub(super) struct ClusterSys {
    pub router: Addr<Router>,
    pub node_id: String,
    /// The node ids last published.
    pub last: Option<BTreeSet<String>>,
}

impl ClusterSys {
    /// One round's view of the live nodes.
    pub fn update(&mut self, alive: &Alive) {
        if self.last.as_ref() == Some(&alive.node_ids) {
            return;
        }
        let cleaner = alive.node_ids.first() == Some(&self.node_id);
        if let (Some(last), true) = (&self.last, cleaner) {
            for gone in last.difference(&alive.node_ids) {
                debug!(node_id = %gone, "node gone; deleting its $SYS/cluster subtree");
                for topic in topics().iter().filter_map(|t| mirror_topic(gone, t)) {
                    self.publish(&topic, Bytes::new());
                }
            }
        }
        self.publish(NODES_TOPIC, nodes_payload(&alive.node_ids).into());
        self.last = Some(alive.node_ids.clone());
    }

    fn publish(&self, topic: &str, payload: Bytes) {
        if let Some(msg) = sys_message(topic, payload) {
            self.router.do_send(Route {
                msg: Arc::new(msg),
                inbound_qos2: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_as_json() {
        let ids: BTreeSet<String> = ["n2", "n1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(nodes_payload(&ids), r#"["n1","n2"]"#);
        let mut c = ClusterConfig {
            enabled: true,
            node_id: "a/b".into(),
            ..ClusterConfig::default()
        };
        assert_eq!(mirror_node(&c), None);
        c.node_id = "node0".into();
        assert_eq!(mirror_node(&c).as_deref(), Some("node0"));
    }
}
