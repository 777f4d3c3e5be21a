//! Node liveness: the key-value bucket `STARLING_NODES` (`replicas` copies, file
//! storage, one revision kept, entries expire after `[cluster] node_ttl_ms`) holds one
//! entry per running node incarnation, refreshed every third of the TTL. A node is alive
//! while its entry exists; one that stopped refreshing it (killed, cut off from NATS)
//! drops out once the entry expires.
//!
//! The key names the incarnation, `n<hex node id>.<origin as 16 hex digits>`, so one
//! listing of the keys tells both the live incarnations (whose sessions are not
//! orphaned, [`super::orphans`]) and the live node ids (`$SYS/cluster/nodes`,
//! [`super::sys`]); the value is a JSON [`NodeInfo`] for operators. Each incarnation
//! also answers on `starling.live.<origin>` ([`live_subject`]): before expiring a
//! session, a sweeper asks its owner there, so that a node whose heartbeat lapsed but
//! which is still connected keeps its sessions.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream::{self, kv, stream::StorageType};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::bridge::ClusterError;
use super::orphans::{self, expiry_identity, Sweeper};
use super::ownership::Owner;
use super::sys::ClusterSys;
use crate::config::ClusterConfig;
use crate::persistence::convert::unix_ms_now;
use crate::router::Router;

/// The bucket's name.
pub const BUCKET: &str = "STARLING_NODES";
/// How long one listing of the live nodes may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one heartbeat write may take.
const BEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at the first heartbeat (the new bucket may still be electing its leader).
const FIRST_BEAT_ATTEMPTS: u32 = 5;
/// How long start-up waits for the bucket.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The value of a node's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `[cluster] node_id`.
    pub node_id: String,
    /// The incarnation (a random number per start of the node).
    pub origin: u64,
    /// When this incarnation started, Unix milliseconds.
    pub started_ms: u64,
}

/// The live incarnations and node ids, from one listing of the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alive {
    pub origins: HashSet<u64>,
    pub node_ids: BTreeSet<String>,
}

/// The subject an incarnation answers on while it is connected to NATS: a request
/// there gets "no responders" at once when the incarnation is gone.
pub fn live_subject(origin: u64) -> String {
    format!("starling.live.{origin:016x}")
}

/// True unless NATS says nobody listens on `origin`'s [`live_subject`] (an answer, or
/// no verdict within `within`, counts as alive).
pub(super) async fn answers(client: &async_nats::Client, origin: u64, within: Duration) -> bool {
    let ask = client.request(live_subject(origin), Bytes::new());
    match tokio::time::timeout(within, ask).await {
        Ok(Err(e)) => e.kind() != async_nats::RequestErrorKind::NoResponders,
        _ => true,
    }
}

/// Answers on this incarnation's [`live_subject`] for the node's life.
async fn answer_live(client: async_nats::Client, origin: u64) {
    let mut sub = match client.subscribe(live_subject(origin)).await {
        Ok(sub) => sub,
        Err(e) => {
            warn!(error = %e, "cannot subscribe the liveness subject");
            return;
        }
    };
    while let Some(m) = futures::StreamExt::next(&mut sub).await {
        if let Some(reply) = m.reply {
            let _ = client.publish(reply, Bytes::from_static(b"alive")).await;
        }
    }
}

/// The key of one incarnation: valid KV key characters for any node id.
pub fn key(node_id: &str, origin: u64) -> String {
    let mut k = String::with_capacity(2 + node_id.len() * 2 + 17);
    k.push('n');
    for b in node_id.bytes() {
        k.push_str(&format!("{b:02x}"));
    }
    k.push_str(&format!(".{origin:016x}"));
    k
}

/// The node id and incarnation of a key (`None` for a key of another shape).
pub fn parse_key(key: &str) -> Option<(String, u64)> {
    let (node, origin) = key.strip_prefix('n')?.split_once('.')?;
    let origin = u64::from_str_radix(origin, 16).ok()?;
    Some((String::from_utf8(unhex(node)?).ok()?, origin))
}

/// Bytes from lowercase or uppercase hex (`None` if it is not hex).
pub(super) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Opens the bucket, creating it unless it exists; an existing bucket whose TTL differs
/// from `ttl` gets `ttl` (the last node started with a new value sets it).
pub(super) async fn ensure_bucket(
    js: &jetstream::Context,
    replicas: usize,
    ttl: Duration,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = js.get_key_value(BUCKET).await {
        let info = store.stream.get_info().await?;
        if info.config.max_age != ttl {
            info!(ttl_ms = ttl.as_millis() as u64, "node liveness TTL changed");
            let mut config = info.config;
            config.max_age = ttl;
            config.duplicate_window = config.duplicate_window.min(ttl);
            js.update_stream(config).await?;
        }
        return Ok(store);
    }
    Ok(js
        .create_key_value(kv::Config {
            bucket: BUCKET.to_owned(),
            history: 1,
            max_age: ttl,
            storage: StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await?)
}

/// One incarnation's heartbeat.
pub(super) struct Heartbeat {
    pub store: kv::Store,
    pub key: String,
    pub value: Bytes,
}

impl Heartbeat {
    /// The heartbeat of `node_id`'s incarnation `origin`, started now.
    pub fn new(store: kv::Store, node_id: &str, origin: u64) -> Heartbeat {
        let info = NodeInfo {
            node_id: node_id.to_owned(),
            origin,
            started_ms: unix_ms_now(),
        };
        Heartbeat {
            store,
            key: key(node_id, origin),
            value: serde_json::to_vec(&info).unwrap_or_default().into(),
        }
    }

    /// Writes the entry once (refreshing its age).
    pub async fn beat(&self) -> Result<(), String> {
        let put = self.store.put(&self.key, self.value.clone());
        match tokio::time::timeout(BEAT_TIMEOUT, put).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// Beats every `every` for the node's life; a missed beat is logged (once until the
    /// next success): past the TTL the other nodes count this incarnation as dead.
    pub async fn run(self, every: Duration) {
        let mut failing = false;
        loop {
            tokio::time::sleep(every).await;
            match self.beat().await {
                Ok(()) if failing => {
                    info!("node heartbeat written again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    warn!(
                        error = e,
                        "node heartbeat not written; other nodes may count this node as dead"
                    );
                    failing = true;
                }
                Err(e) => debug!(error = e, "node heartbeat not written"),
            }
        }
    }
}

/// The live incarnations: one listing of the bucket's keys (bounded in time).
pub(super) async fn alive(store: &kv::Store) -> Result<Alive, String> {
    let list = async {
        let keys: Vec<String> = store
            .keys()
            .await
            .map_err(|e| e.to_string())?
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(keys)
    };
    let keys = tokio::time::timeout(LIST_TIMEOUT, list)
        .await
        .map_err(|_| "timed out listing the live nodes".to_owned())??;
    let mut alive = Alive::default();
    for (node_id, origin) in keys.iter().filter_map(|k| parse_key(k)) {
        alive.origins.insert(origin);
        alive.node_ids.insert(node_id);
    }
    Ok(alive)
}

/// What [`start`] needs from the bridge.
pub(super) struct Start<'a> {
    pub js: &'a jetstream::Context,
    pub client: async_nats::Client,
    pub config: &'a ClusterConfig,
    pub origin: u64,
    /// The ownership bucket ([`super::ownership`]).
    pub sessions: kv::Store,
    pub router: Addr<Router>,
}

/// Joins the liveness bucket, with this incarnation's first heartbeat written before it
/// returns (before the node claims any session, so that no sweeper takes its sessions
/// for orphans); then beats, and sweeps orphaned sessions ([`super::orphans`]) and
/// keeps `$SYS/cluster/nodes` ([`super::sys`]), for the node's life.
pub(super) async fn start(s: Start<'_>) -> Result<(), ClusterError> {
    let ttl = s.config.node_ttl();
    let bucket = ensure_bucket(s.js, s.config.replicas, ttl);
    let store = tokio::time::timeout(START_TIMEOUT, bucket)
        .await
        .map_err(|_| ClusterError::JetStream("timed out creating the nodes bucket".into()))?
        .map_err(|e| ClusterError::JetStream(format!("nodes bucket: {e}")))?;
    let heartbeat = Heartbeat::new(store.clone(), &s.config.node_id, s.origin);
    let mut attempt = 0;
    while let Err(e) = heartbeat.beat().await {
        attempt += 1;
        if attempt >= FIRST_BEAT_ATTEMPTS {
            return Err(ClusterError::JetStream(format!("node heartbeat: {e}")));
        }
        debug!(attempt, error = e, "first node heartbeat failed; retrying");
        tokio::time::sleep(Duration::from_secs(1) * attempt).await;
    }
    tokio::spawn(heartbeat.run(ttl / 3));
    tokio::spawn(answer_live(s.client.clone(), s.origin));
    let mut view = s.config.sys.then(|| ClusterSys {
        router: s.router,
        node_id: s.config.node_id.clone(),
        last: None,
    });
    let sweeper = Sweeper {
        js: s.js.clone(),
        client: s.client,
        sessions: s.sessions,
        nodes: store,
        origin: s.origin,
        me: Owner {
            node: expiry_identity(&s.config.node_id, s.origin),
            origin: s.origin,
            epoch: 0,
            persistent: true,
        },
        interval: s.config.sweep_interval(),
        on_nodes: Box::new(move |alive| {
            if let Some(view) = view.as_mut() {
                view.update(alive);
            }
        }),
        session_state: s.config.session_state,
    };
    tokio::spawn(orphans::run(sweeper));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for (node, origin) in [("node1", 7u64), ("a.b c/é", u64::MAX), ("", 0)] {
            let k = key(node, origin);
            assert!(
                k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'),
                "{k}"
            );
            assert_eq!(parse_key(&k), Some((node.to_owned(), origin)));
        }
        assert_eq!(parse_key("c6e31"), None);
        assert_eq!(parse_key("n6e3.0"), None, "odd hex");
        assert_eq!(parse_key("n6e31.zz"), None);
    }
}
