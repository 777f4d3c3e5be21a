//! The bridge between the router and NATS. It runs as tasks on its own arbiter:
//!
//! - the publish task ([`super::publish`]) takes local messages from the router (bounded
//!   queue), writes QoS 1/2 ones to the message log ([`super::replay`]), publishes each
//!   on its subject (plain subscriptions drop QoS 1/2 ones while the log feed brings
//!   them; `$share` queue subscriptions take them), and after each batch flushes the
//!   connection once: the QoS 1/2 publishes of the batch are acknowledged to their
//!   clients only then;
//! - the log feed ([`super::feed`]) routes the other nodes' QoS 1/2 messages from the log;
//! - the interest task subscribes on NATS per filter as the router's interest changes
//!   (a queue subscription per shared subscription), one forwarding task per NATS
//!   subscription handing what arrives to the router ([`RouteRemote`]);
//! - the retained tasks ([`super::retained`]) keep retained messages in JetStream;
//! - the isolation watcher ([`super::isolation`]) follows the connection's state;
//! - the heartbeat and the orphan sweeper ([`super::nodes`], [`super::orphans`]) keep
//!   this node alive in `STARLING_NODES` and expire the sessions of dead nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::admin::{self, AdminHandler, AdminLink};
use super::envelope::Envelope;
use super::feed::{self, FeedCmd};
use super::feed_sync::{barrier, feed_subjects};
use super::handle::{ClusterHandle, HandleParts};
use super::isolation;
use super::nodes;
use super::ownership::{self, Owner, OwnershipCmd};
use super::publish::{self, Publisher};
use super::replay::{self, ReplayJob};
use super::retained;
use super::shared;
use super::subject::{filter_to_subjects, queue_group};
use crate::config::ClusterConfig;
use crate::delivery::Origin;
use crate::message::Message;
use crate::metrics::ClusterMetrics;
use crate::persistence::Persistence;
use crate::router::messages::{EvictSessions, RouteRemote};
use crate::router::InterestChange;
use crate::router::Router;
use crate::session::Isolation;
use crate::topic::TopicFilter;

/// Local messages waiting for the publish task; when full, QoS 0 messages are not sent
/// to the cluster (counted in a warning) and QoS 1/2 publishes are not acknowledged.
pub const PUBLISH_QUEUE: usize = 65_536;
/// Longest subject (plus queue name) sent: NATS closes a connection whose protocol line
/// exceeds its `max_control_line` (4 KiB by default).
pub const MAX_SUBJECT_LEN: usize = 3072;
/// How long a flush (QoS 1/2 acknowledgement) may wait for the connection.
pub(super) const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages one NATS subscription holds for its forwarding task; past it, async-nats
/// drops what arrives (logged as a slow consumer).
const SUBSCRIPTION_CAPACITY: usize = 65_536;
/// Messages a forwarding task has in the router's mailbox at most.
const FORWARD_WINDOW: usize = 1024;
/// How long start-up waits for NATS and JetStream.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the bridge works with on the broker's side.
pub struct Bridge {
    /// Where messages from other nodes go.
    pub router: Addr<Router>,
    /// The persistence actor (session state in JetStream).
    pub persistence: Addr<Persistence>,
    /// Set while the node is cut off from NATS.
    pub isolation: Isolation,
    /// Where the bridge reports (the `/metrics` cluster series), if anywhere.
    pub metrics: Option<ClusterMetrics>,
    /// How this node answers the other nodes' admin questions, if it does.
    pub admin: Option<AdminHandler>,
}

/// Why the node could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("invalid NATS url {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("JetStream not ready: {0}")]
    JetStream(String),
    #[error("the cluster arbiter stopped during start-up")]
    Stopped,
}

/// What the router sends the publish task.
pub enum Outbound {
    /// A local message for the other nodes; `done` fires once flushed (QoS 1/2: once
    /// the message log stored it, too).
    Publish {
        msg: Arc<Message>,
        seq: u64,
        done: Option<oneshot::Sender<()>>,
    },
    /// A retained message (or, with an empty payload, its deletion) for the stream;
    /// `done` fires once JetStream acknowledged it.
    Retain {
        msg: Arc<Message>,
        done: Option<oneshot::Sender<()>>,
    },
    /// A resumed session's catch-up on the message log; starts once the log writes
    /// queued before it are acknowledged.
    Replay(ReplayJob),
}

/// What the router sends the interest task.
pub enum InterestCmd {
    Change(InterestChange),
    /// `done` fires once the NATS subscriptions of the changes before it were flushed to
    /// the server and the log feed follows their subjects (or after `FLUSH_TIMEOUT`: the
    /// subscription works locally regardless, and the client re-subscribes on
    /// reconnect); before it, `covered` gets the feed's answer ([`feed::FeedCmd::Sync`]),
    /// if it came.
    Barrier {
        done: oneshot::Sender<()>,
        covered: Option<oneshot::Sender<u64>>,
        /// Wait for the log feed too (not for a restored session whose replay follows).
        feed: bool,
    },
}

/// Connects to NATS, makes sure the retained stream exists, starts the bridge's tasks
/// on `arbiter` and waits until the retained messages already in the stream have reached
/// the router (so a client subscribing right after start sees them). From then on it
/// sets `isolation` while the node is cut off from NATS.
pub async fn start(
    config: &ClusterConfig,
    bridge: Bridge,
    arbiter: &ArbiterHandle,
) -> Result<(ClusterHandle, AdminLink), ClusterError> {
    let origin: u64 = rand::random();
    let message_log = config.message_log;
    let session_state = config.session_state;
    let addrs = config
        .urls
        .iter()
        .map(|url| {
            url.parse::<async_nats::ServerAddr>()
                .map_err(|e| ClusterError::Url {
                    url: url.clone(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
    // Unbounded, and bounded by what feeds them: an interest command per filter that
    // gains its first or loses its last local subscriber (a SUBSCRIBE or UNSUBSCRIBE,
    // which each connection sends one at a time, waiting for its answer; a barrier per
    // SUBACK of a new filter and per resumed session); an ownership command per CONNECT
    // and per session end. Dropping either would break routing or takeover, so there is
    // no full policy to choose: the connection limit bounds them.
    let (interest_tx, interest_rx) = mpsc::unbounded_channel();
    let (ownership_tx, ownership_rx) = mpsc::unbounded_channel();
    let (started_tx, started_rx) = oneshot::channel();
    let config = config.clone();
    let isolation_flag = bridge.isolation.clone();
    arbiter.spawn(async move {
        let channels = Channels {
            publish: publish_rx,
            interest: interest_rx,
            ownership: ownership_rx,
        };
        let result = run(addrs, &config, origin, bridge, channels).await;
        let _ = started_tx.send(result);
    });
    let (admin, feed_start) = started_rx.await.map_err(|_| ClusterError::Stopped)??;
    let handle = ClusterHandle::new(HandleParts {
        origin,
        publish: publish_tx,
        interest: interest_tx,
        ownership: ownership_tx,
        isolation: isolation_flag,
        message_log,
        session_state,
        feed_start,
    });
    Ok((handle, admin))
}

/// The receiving ends of the handle's channels.
struct Channels {
    publish: mpsc::Receiver<Outbound>,
    interest: mpsc::UnboundedReceiver<InterestCmd>,
    ownership: mpsc::UnboundedReceiver<OwnershipCmd>,
}

/// Runs on the cluster arbiter: connects, starts the tasks, and reports.
async fn run(
    addrs: Vec<async_nats::ServerAddr>,
    config: &ClusterConfig,
    origin: u64,
    bridge: Bridge,
    channels: Channels,
) -> Result<(AdminLink, Option<u64>), ClusterError> {
    let Bridge {
        router,
        persistence,
        isolation,
        metrics,
        admin: answer,
    } = bridge;
    let replicas = config.replicas;
    let client = connect(addrs, config, &router, isolation, metrics.clone()).await?;
    let js = async_nats::jetstream::new(client.clone());
    let stream = tokio::time::timeout(START_TIMEOUT, retained::ensure_stream(&js, replicas))
        .await
        .map_err(|_| ClusterError::JetStream("timed out creating the retained stream".into()))??;
    let sessions = tokio::time::timeout(START_TIMEOUT, ownership::ensure_bucket(&js, replicas))
        .await
        .map_err(|_| ClusterError::JetStream("timed out creating the sessions bucket".into()))?
        .map_err(|e| ClusterError::JetStream(e.to_string()))?;
    // Alive before claiming any session: see `nodes::start`.
    nodes::start(nodes::Start {
        js: &js,
        client: client.clone(),
        config,
        origin,
        sessions: sessions.clone(),
        router: router.clone(),
    })
    .await?;
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(retained::follow(stream, router.clone(), ready_tx));
    let links = ownership::Links {
        client: client.clone(),
        store: sessions,
        me: Owner {
            node: config.node_id.clone(),
            origin,
            epoch: 0,
            persistent: false,
        },
        router: router.clone(),
        persistence,
        keep_stored: config.session_state,
    };
    tokio::spawn(ownership::run(links, channels.ownership));
    let log = tokio::time::timeout(
        START_TIMEOUT,
        replay::ensure_stream(&js, replicas, config.log_retention()),
    )
    .await
    .map_err(|_| ClusterError::JetStream("timed out creating the message log".into()))??;
    let (feed_tx, feed_start) = if config.message_log {
        let position = tokio::time::timeout(START_TIMEOUT, feed::start_position(&log))
            .await
            .map_err(|_| ClusterError::JetStream("timed out reading the message log".into()))?;
        let (tx, commands) = mpsc::unbounded_channel();
        tokio::spawn(feed::run(feed::Feed {
            stream: log.clone(),
            origin,
            router: router.clone(),
            position,
            commands,
            metrics: metrics.clone(),
        }));
        (Some(tx), Some(position))
    } else {
        (None, None)
    };
    let publisher = Publisher {
        client: client.clone(),
        js,
        log: log.clone(),
        origin,
        router: router.clone(),
        message_log: config.message_log,
        metrics,
    };
    let groups = shared::Groups::new(log.clone(), config.message_log, origin);
    tokio::spawn(publish::run(publisher, channels.publish));
    tokio::spawn(interest_loop(
        client.clone(),
        (groups, feed_tx),
        router,
        channels.interest,
    ));
    let link = AdminLink::new(client.clone(), origin);
    if let Some(answer) = answer {
        tokio::spawn(admin::serve(client.clone(), origin, answer));
    }
    match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
        Ok(Ok(())) => Ok((link, feed_start)),
        _ => Err(ClusterError::JetStream(
            "timed out loading retained messages".into(),
        )),
    }
}

/// Connects to NATS and starts following the connection's state: the isolation flag,
/// and evicting the local sessions once the node has been cut off for the grace time.
async fn connect(
    addrs: Vec<async_nats::ServerAddr>,
    config: &ClusterConfig,
    router: &Addr<Router>,
    isolation: Isolation,
    metrics: Option<ClusterMetrics>,
) -> Result<async_nats::Client, ClusterError> {
    let node_id = &config.node_id;
    let options = async_nats::ConnectOptions::new()
        .name(format!("starling-{node_id}"))
        .connection_timeout(Duration::from_secs(5))
        .subscription_capacity(SUBSCRIPTION_CAPACITY);
    let (options, link_rx, link_poll) = isolation::track(options);
    let client = options
        .connect(addrs)
        .await
        .map_err(|e| ClusterError::Connect(e.to_string()))?;
    info!(node_id, "connected to NATS");
    tokio::spawn(isolation::poll(client.clone(), link_poll));
    let evict = router.clone();
    tokio::spawn(isolation::watch(
        link_rx,
        config.isolation_grace(),
        (isolation, metrics),
        move || {
            evict.do_send(EvictSessions {
                reason: isolation::DISCONNECT_REASON,
                why: isolation::DISCONNECT_WHY,
            })
        },
    ));
    Ok(client)
}

/// Keeps one NATS subscription (two for a filter ending in `/#`) per filter with local
/// subscribers, each with a task forwarding what arrives to the router, and tells the
/// log feed (if it runs) the log subjects of the plain ones.
async fn interest_loop(
    client: async_nats::Client,
    (groups, feed): (shared::Groups, Option<mpsc::UnboundedSender<FeedCmd>>),
    router: Addr<Router>,
    mut rx: mpsc::UnboundedReceiver<InterestCmd>,
) {
    let mut subs: HashMap<TopicFilter, Vec<JoinHandle<()>>> = HashMap::new();
    let tell_feed = |cmd: FeedCmd| {
        if let Some(feed) = &feed {
            let _ = feed.send(cmd);
        }
    };
    while let Some(cmd) = rx.recv().await {
        let change = match cmd {
            InterestCmd::Change(change) => change,
            InterestCmd::Barrier {
                done,
                covered,
                feed: with_feed,
            } => {
                let synced = (feed.is_some() && with_feed).then(|| {
                    let (synced_tx, synced) = oneshot::channel();
                    tell_feed(FeedCmd::Sync(synced_tx));
                    synced
                });
                let client = client.clone();
                tokio::spawn(barrier(client, synced, done, covered));
                continue;
            }
        };
        match change {
            InterestChange::Add(filter) => {
                let tasks = subscribe(&client, &filter, &groups, &router).await;
                match subs.insert(filter.clone(), tasks) {
                    Some(old) => old.iter().for_each(JoinHandle::abort),
                    None => tell_feed(FeedCmd::Add(feed_subjects(&filter))),
                }
            }
            InterestChange::Remove(filter) => {
                debug!(%filter, "cluster unsubscribe");
                // Dropping the subscriber (with its task) unsubscribes on NATS.
                if let Some(tasks) = subs.remove(&filter) {
                    tasks.iter().for_each(JoinHandle::abort);
                    tell_feed(FeedCmd::Remove(feed_subjects(&filter)));
                }
            }
        }
    }
}

/// The NATS subscriptions of one filter, with their forwarding tasks; for a shared
/// subscription with the message log on, also the task pulling the group's QoS 1/2
/// messages from the log ([`shared`]), the queue subscription then carrying QoS 0 only.
async fn subscribe(
    client: &async_nats::Client,
    filter: &TopicFilter,
    groups: &shared::Groups,
    router: &Addr<Router>,
) -> Vec<JoinHandle<()>> {
    let queue = queue_group(filter);
    let share = queue.as_ref().map(|_| filter.clone());
    // With the log on, QoS 1/2 messages come from it: the log feed for plain
    // subscriptions (`super::feed`), the group's consumer for shared ones.
    let live_qos0_only = groups.log_on();
    let origin = groups.origin();
    let mut tasks = Vec::new();
    if share.is_some() {
        tasks.extend(groups.follow(filter, router).await);
    }
    for subject in filter_to_subjects(filter) {
        if subject.len() + queue.as_ref().map_or(0, String::len) > MAX_SUBJECT_LEN {
            warn!(%filter, "filter too long for a NATS subject; no cross-node messages for it");
            continue;
        }
        debug!(%filter, subject, queue = ?queue, "cluster subscribe");
        let sub = match &queue {
            Some(q) => client.queue_subscribe(subject, q.clone()).await,
            None => client.subscribe(subject).await,
        };
        match sub {
            Ok(sub) => tasks.push(tokio::spawn(forward(
                sub,
                share.clone(),
                (origin, live_qos0_only),
                router.clone(),
            ))),
            Err(e) => warn!(%filter, error = %e, "cluster subscribe failed"),
        }
    }
    tasks
}

/// Hands each message of one NATS subscription to the router, in order, with up to
/// [`FORWARD_WINDOW`] of them not yet handled by the router (its mailbox is the
/// backpressure; past the subscription's capacity async-nats drops messages).
async fn forward(
    sub: async_nats::Subscriber,
    share: Option<TopicFilter>,
    (origin, qos0_only): (u64, bool),
    router: Addr<Router>,
) {
    let routes =
        sub.filter_map(|m| std::future::ready(to_route(&m, share.as_ref(), origin, qos0_only)));
    let mut answers = routes
        .map(|route| router.send(route))
        .buffered(FORWARD_WINDOW);
    while let Some(answer) = answers.next().await {
        if answer.is_err() {
            return;
        }
    }
}

/// The router's message for one NATS message, unless it is not for this node (or, with
/// `qos0_only`, a QoS 1/2 one, which the log feed or the group's log consumer brings).
pub(super) fn to_route(
    m: &async_nats::Message,
    share: Option<&TopicFilter>,
    origin: u64,
    qos0_only: bool,
) -> Option<RouteRemote> {
    let env = match Envelope::decode(&m.payload) {
        Ok(env) => env,
        Err(e) => {
            warn!(subject = %m.subject, error = %e, "undecodable cluster message");
            return None;
        }
    };
    // Plain subscriptions: this node delivered its own messages already. Shared ones:
    // the queue group picked this node, so it delivers.
    if share.is_none() && env.origin == origin {
        return None;
    }
    if qos0_only && env.message.qos != 0 {
        return None;
    }
    let Ok(msg) = env.to_message() else {
        warn!(subject = %m.subject, "cluster message with an invalid topic");
        return None;
    };
    Some(RouteRemote {
        msg: Arc::new(msg),
        origin: Origin {
            node: env.origin,
            seq: env.seq,
        },
        share: share.cloned(),
        receipt: None,
        log: None,
    })
}
