//! The message log: every QoS 1/2 message published in the cluster goes to the stream
//! `STARLING_LOG` (subjects `starling.l.<its subject without "starling.">`, kept
//! `log_retention_secs`, `replicas` copies) and is acknowledged to its publisher only once
//! JetStream stored it; the other nodes read it from there ([`super::feed`]). A session
//! resumed on another node reads the log from its [`ReplayCursor`], so that what was on
//! its way to a node that died, or published while no node held the session, still
//! reaches it.
//!
//! **Where a replay starts.** A cursor with a log position `P` (the store's, from the
//! router's `LogPosition` ops: every entry up to `P` that matched the session is in its
//! stored queue, or was not for it; `cluster/js_store/cursor.rs`) is read from stream
//! sequence `P + 1` (from the log's first entry if that is gone), so a resume costs the
//! entries published since the session's node last wrote its cursor, however old its
//! subscriptions. A cursor without one (written before positions existed, or by a node
//! with no log feed, or of a session whose replay never completed since it was last
//! loaded without one) is read from its oldest subscription's time, less
//! [`SKEW_MS`], as before: up to the whole retained log. A position above the log's
//! last entry (the stream was re-created) is not trusted either. The other filters
//! apply in both cases: each subscription's time, the origins and stored queue the
//! cursor records, and what the feed brings. `cluster_replay_read_entries` counts the
//! entries replays read.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use async_nats::jetstream::{self, consumer, context::PublishAckFuture, stream};
use bytes::Bytes;
use tracing::{debug, warn};

use super::bridge::ClusterError;
use super::envelope::Envelope;
use crate::delivery::Origin;
use crate::message::{ClientId, Message};
use crate::metrics::ClusterMetrics;
use crate::persistence::{Durable, ReplayCursor};
use crate::router::messages::ReplayDone;
use crate::router::Router;
use crate::topic::matches;

/// The log stream's name.
pub const STREAM: &str = "STARLING_LOG";
/// Prefix of its subjects.
const PREFIX: &str = "starling.l.";
/// Every subject of the log.
pub(super) const LOG_FILTER: &str = "starling.l.>";
/// Attempts to get one log write acknowledged: the waits between them add up to 22.5 s.
/// A leader election takes 4–8 s, and over 10 s was seen on a loaded 2-core machine
/// (6 attempts, 10.5 s, failed a publish in tests/cluster.rs).
const ATTEMPTS: u32 = 9;
const RETRY_STEP: Duration = Duration::from_millis(500);
const ACK_TIMEOUT: Duration = Duration::from_secs(4);
/// Bound of one replay (consumer creation and reading, its tries again included).
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);
/// Clock difference tolerated between nodes: a message stamped up to this much before
/// a subscription's time is still replayed to it (a duplicate rather than a loss).
const SKEW_MS: u64 = 1000;
/// Messages fetched per pull.
const BATCH: usize = 1000;

/// The log subject of a message subject (`starling.m.…` / `starling.d.…`).
pub fn log_subject(subject: &str) -> String {
    format!(
        "{PREFIX}{}",
        subject.strip_prefix("starling.").unwrap_or(subject)
    )
}

/// Creates the log stream unless it exists (the caller bounds the time).
pub(super) async fn ensure_stream(
    js: &jetstream::Context,
    replicas: usize,
    retention: Duration,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{PREFIX}>")],
        max_age: retention,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    Ok(super::jetstream::ensure_stream(js, config, "message log").await)
}

/// One message log write. Its id (`<origin>.<seq>`, sent as `Nats-Msg-Id`) lets
/// JetStream drop a re-sent write whose first attempt was stored after all (its
/// acknowledgement was only late): within the stream's duplicate window (2 minutes by
/// default, beyond the [`ATTEMPTS`]) the log holds each message once, in the place of
/// its first stored attempt, which is what the log feeds deliver from.
#[derive(Clone)]
pub(super) struct LogEntry {
    pub subject: String,
    pub id: String,
    pub payload: Bytes,
}

impl LogEntry {
    /// Message `seq` of node incarnation `origin`, published on the message subject
    /// `subject`, as the envelope `payload`.
    pub fn new(origin: u64, seq: u64, subject: &str, payload: Bytes) -> LogEntry {
        LogEntry {
            subject: log_subject(subject),
            id: format!("{origin:x}.{seq}"),
            payload,
        }
    }
}

/// Sends one message to the log; `None` if it could not be sent (see [`confirm`]).
pub(super) async fn write(js: &jetstream::Context, entry: &LogEntry) -> Option<PublishAckFuture> {
    let message = jetstream::message::PublishMessage::build()
        .message_id(&entry.id)
        .payload(entry.payload.clone());
    match js.send_publish(entry.subject.clone(), message).await {
        Ok(ack) => Some(ack),
        Err(e) => {
            warn!(error = %e, "message log write not sent");
            None
        }
    }
}

/// Waits for `ack`, re-sending the write while it fails.
pub(super) async fn confirm(
    js: jetstream::Context,
    entry: LogEntry,
    mut ack: Option<PublishAckFuture>,
) -> bool {
    for attempt in 1..=ATTEMPTS {
        if let Some(a) = ack.take() {
            if let Ok(Ok(_)) = tokio::time::timeout(ACK_TIMEOUT, a).await {
                return true;
            }
        }
        warn!(attempt, "message log write not acknowledged; re-sending");
        tokio::time::sleep(RETRY_STEP * attempt).await;
        ack = write(&js, &entry).await;
    }
    false
}

/// One session's replay request.
pub struct ReplayJob {
    pub client: ClientId,
    /// Passed back in `ReplayDone`.
    pub generation: u64,
    pub cursor: ReplayCursor,
    /// Resolves once the session's NATS subscriptions reached the server: from then on
    /// what the log does not hold yet arrives live.
    pub after: Option<Durable>,
    /// The incarnation of the node replaying: its own messages are taken up to the
    /// log's end (the node delivered them locally before their log write).
    pub origin: u64,
    /// With the log feed on: the highest log sequence the router had routed when the
    /// replay was asked; the other nodes' later messages come through the feed.
    pub fed: Option<u64>,
    /// The log feed's answer to the barrier before `after`: from which log sequence on
    /// its filter brings every entry of the session's subscriptions (entries it skipped
    /// before, under a filter without them, are the replay's). Without an answer, the
    /// replay takes the other nodes' messages too (the router drops those it holds).
    pub covered: Option<tokio::sync::oneshot::Receiver<u64>>,
}

/// Reads the log for `job` and answers the router (an empty answer if it failed).
pub(super) async fn run(
    stream: stream::Stream,
    job: ReplayJob,
    router: Addr<Router>,
    metrics: Option<ClusterMetrics>,
) {
    let ReplayJob {
        client,
        generation,
        cursor,
        after,
        origin,
        fed,
        covered,
    } = job;
    if let Some(after) = after {
        after.wait().await;
    }
    // Sent before `after` fired, if at all.
    let covered = covered.and_then(|mut rx| rx.try_recv().ok());
    let feed = Feed {
        origin,
        fed: fed.zip(covered).map(|(fed, covered)| fed.max(covered)),
    };
    let fetched = tokio::time::timeout(
        REPLAY_TIMEOUT,
        fetch_retrying(&stream, &cursor, feed, &client),
    );
    let messages = match fetched.await {
        Ok(Ok(m)) => Some(m),
        Ok(Err(e)) => {
            warn!(client_id = %client, error = e, "message log replay failed");
            None
        }
        Err(_) => {
            warn!(client_id = %client, "message log replay timed out");
            None
        }
    };
    if let Some(m) = metrics {
        m.replay(messages.as_ref().map(|r| (r.messages.len(), r.read)));
    }
    let messages = messages.map(|r| r.messages);
    debug!(client_id = %client, messages = ?messages.as_ref().map(Vec::len), "message log replayed");
    router.do_send(ReplayDone {
        client_id: client,
        generation,
        messages,
    });
}

/// [`fetch`], tried again after a failure (JetStream answers 503 "no responders" while a
/// stream or consumer leader is being elected, e.g. just after a node restarted): an
/// empty answer would release the session's held deliveries without what only the log
/// holds. Bounded by the caller's [`REPLAY_TIMEOUT`] and [`ATTEMPTS`].
async fn fetch_retrying(
    stream: &stream::Stream,
    cursor: &ReplayCursor,
    feed: Feed,
    client: &ClientId,
) -> Result<Replayed, String> {
    let mut attempt = 1;
    loop {
        match fetch(stream, cursor, feed).await {
            Ok(messages) => return Ok(messages),
            Err(e) if attempt < ATTEMPTS => {
                warn!(client_id = %client, attempt, error = e, "message log replay failed; trying again");
                tokio::time::sleep(RETRY_STEP * attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What the log feed brings a replaying node (see [`Feed::brings`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Feed {
    /// The replaying node's incarnation.
    pub origin: u64,
    /// The highest log sequence its router routed from the feed; `None` without a feed.
    pub fed: Option<u64>,
}

impl Feed {
    /// True when the feed brings (or brought, after the session's subscriptions were
    /// in place) the log entry `seq` of `origin`, so the replay leaves it out: another
    /// node's message above what the router had routed when the replay was asked. The
    /// node's own messages never come through the feed, and without a feed nothing does.
    pub fn brings(&self, origin: u64, seq: u64) -> bool {
        origin != self.origin && self.fed.is_some_and(|fed| seq > fed)
    }
}

/// What one replay found.
pub(super) struct Replayed {
    /// For the session, in log order.
    pub messages: Vec<(Arc<Message>, Origin)>,
    /// Log entries read to find them.
    pub read: u64,
}

/// Where a replay reads the log from: above the cursor's position when it has one the
/// log can honour, else from `start_time`. `first`, `last`: the log's first and last
/// sequence. Pure.
fn start_policy(
    position: Option<u64>,
    first: u64,
    last: u64,
    start_time: time::OffsetDateTime,
) -> consumer::DeliverPolicy {
    match position {
        Some(p) if p <= last => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: p.saturating_add(1).max(first),
        },
        _ => consumer::DeliverPolicy::ByStartTime { start_time },
    }
}

/// The log's messages a subscription of `cursor` matches, made after the subscription,
/// above the cursor's log position, numbered above what the cursor records for their
/// origin, not in the session's stored queue, and not brought by the feed; in log
/// order.
async fn fetch(
    stream: &stream::Stream,
    cursor: &ReplayCursor,
    feed: Feed,
) -> Result<Replayed, String> {
    // Shared subscriptions are served by their group, not replayed to one member.
    let subs: Vec<(&str, u64)> = cursor
        .subs
        .iter()
        .filter(|(f, _)| !f.starts_with("$share/"))
        .map(|(f, t)| (f.as_str(), *t))
        .collect();
    let nothing = Replayed {
        messages: Vec::new(),
        read: 0,
    };
    let Some(since) = subs.iter().map(|(_, t)| *t).min() else {
        return Ok(nothing);
    };
    let seen: HashMap<u64, u64> = cursor.origins.iter().map(|&(o, s, _)| (o, s)).collect();
    let stored: HashSet<(u64, u64)> = cursor.stored.iter().copied().collect();
    let start_ns = i128::from(since.saturating_sub(SKEW_MS)) * 1_000_000;
    let start_time =
        time::OffsetDateTime::from_unix_timestamp_nanos(start_ns).map_err(|e| e.to_string())?;
    // The leader answers: it holds every write acknowledged so far (a replica may not).
    // What is acknowledged after this arrives live (the session's subscriptions are in
    // place), so the read must reach the leader's last message, unless that one is older
    // than the start (then so is every other).
    let leader = stream.get_info().await.map_err(|e| e.to_string())?.state;
    let (first, through) = (leader.first_sequence, leader.last_sequence);
    let covered = cursor.position.is_some_and(|p| p == through);
    if leader.messages == 0 || leader.last_timestamp < start_time || covered {
        return Ok(nothing);
    }
    let mut out = Vec::new();
    let mut read = 0;
    let policy = start_policy(cursor.position, first, through, start_time);
    let filter = LOG_FILTER.to_owned();
    super::jetstream::read_ephemeral(stream, policy, filter, through, BATCH, |m| {
        read += 1;
        let Ok(env) = Envelope::decode(&m.payload) else {
            return;
        };
        let Ok(info) = m.info() else { return };
        if feed.brings(env.origin, info.stream_sequence) {
            return;
        }
        let queued = stored.contains(&(env.origin, env.seq));
        if queued || env.seq <= seen.get(&env.origin).copied().unwrap_or(0) {
            return;
        }
        let Ok(msg) = env.to_message() else { return };
        let wanted = subs.iter().any(|(f, t)| {
            env.at_ms.saturating_add(SKEW_MS) >= *t && matches(f, msg.topic.as_str())
        });
        if wanted {
            let origin = Origin {
                node: env.origin,
                seq: env.seq,
            };
            out.push((Arc::new(msg), origin));
        }
    })
    .await?;
    Ok(Replayed {
        messages: out,
        read,
    })
}

/// The log seen from a test (tests/cluster.rs): entries written as a node writes them,
/// and what a resumed session's replay reads. Not part of the embedding API.
#[doc(hidden)]
pub struct LogProbe {
    js: jetstream::Context,
    stream: stream::Stream,
}

impl LogProbe {
    /// Over `js`: the log stream (`replicas` copies), created unless it exists.
    pub async fn open(js: jetstream::Context, replicas: usize) -> Result<LogProbe, ClusterError> {
        let stream = ensure_stream(&js, replicas, Duration::from_secs(3600)).await?;
        Ok(LogProbe { js, stream })
    }

    /// Writes `msg` as message `seq` of node incarnation `origin`; true once the log
    /// acknowledged it (when a node would acknowledge it to its publisher).
    pub async fn append(&self, origin: u64, seq: u64, msg: &Message) -> bool {
        let Ok(payload) = Envelope::new(origin, seq, msg).encode() else {
            return false;
        };
        let subject = super::subject::topic_to_subject(&msg.topic);
        let entry = LogEntry::new(origin, seq, &subject, Bytes::from(payload));
        let ack = write(&self.js, &entry).await;
        confirm(self.js.clone(), entry, ack).await
    }

    /// The (origin, seq) of each message the replay of `cursor` returns, in log order.
    pub async fn replay(&self, cursor: &ReplayCursor) -> Result<Vec<(u64, u64)>, String> {
        Ok(self.replay_counted(cursor).await?.0)
    }

    /// [`LogProbe::replay`], and how many log entries the replay read.
    pub async fn replay_counted(
        &self,
        cursor: &ReplayCursor,
    ) -> Result<(Vec<(u64, u64)>, u64), String> {
        let feed = Feed {
            origin: 0,
            fed: None,
        };
        let r = fetch(&self.stream, cursor, feed).await?;
        let ids = r.messages.iter().map(|(_, o)| (o.node, o.seq)).collect();
        Ok((ids, r.read))
    }

    /// The log's last stream sequence (a cursor position).
    pub async fn last_sequence(&self) -> Result<u64, String> {
        let info = self
            .stream
            .clone()
            .get_info()
            .await
            .map_err(|e| e.to_string())?;
        Ok(info.state.last_sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_brings_other_nodes_messages_after_its_position() {
        let feed = Feed {
            origin: 7,
            fed: Some(100),
        };
        assert!(
            !feed.brings(9, 100),
            "routed before the subscriptions: replayed"
        );
        assert!(
            feed.brings(9, 101),
            "routed after them: the feed delivers it"
        );
        assert!(
            !feed.brings(7, 101),
            "the node's own: never through the feed"
        );
        let off = Feed {
            origin: 7,
            fed: None,
        };
        assert!(
            !off.brings(9, u64::MAX),
            "no feed: the replay takes everything"
        );
    }

    #[test]
    fn a_replay_starts_above_the_cursor_position_when_the_log_has_it() {
        let t = time::OffsetDateTime::UNIX_EPOCH;
        let by_time = consumer::DeliverPolicy::ByStartTime { start_time: t };
        let from = |start_sequence| consumer::DeliverPolicy::ByStartSequence { start_sequence };
        assert_eq!(
            start_policy(None, 1, 500, t),
            by_time,
            "no position: by time"
        );
        assert_eq!(start_policy(Some(400), 1, 500, t), from(401));
        assert_eq!(start_policy(Some(500), 1, 500, t), from(501));
        assert_eq!(
            start_policy(Some(10), 300, 500, t),
            from(300),
            "older than the log's first entry: from the first"
        );
        assert_eq!(
            start_policy(Some(900), 1, 500, t),
            by_time,
            "beyond the log's end (a re-created stream): by time"
        );
    }

    #[test]
    fn log_subjects_keep_the_message_subject() {
        assert_eq!(log_subject("starling.m._a._b"), "starling.l.m._a._b");
        assert_eq!(log_subject("starling.d._$SYS"), "starling.l.d._$SYS");
    }
}
