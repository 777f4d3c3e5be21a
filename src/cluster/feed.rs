//! The log feed: with the message log on, each node follows the whole stream
//! `STARLING_LOG` with a consumer of its own and hands the other nodes' QoS 1/2 messages
//! to its router (`RouteRemote`, with the message's stream sequence), in log order.
//! QoS 1/2 messages no longer travel as core NATS copies, so a NATS server's crash or a
//! slow node loses none of them: the feed knows the last stream sequence it routed and
//! resumes after it.
//!
//! The consumer is ephemeral (memory, one replica, no acknowledgements), recreated from
//! the position after the last message routed whenever it fails: a pull error, missed
//! heartbeats (its server died or hangs), a gap in its consumer sequence (something was
//! skipped), or the watchdog seeing the stream grow while nothing arrives for two checks
//! in a row (a consumer that heartbeats but no longer delivers). Messages from the node's
//! own incarnation are skipped (its router delivered them locally before their log
//! write). The router's mailbox is the backpressure: messages go in with `do_send` (in
//! order), and a `GetStats` barrier every [`BARRIER_EVERY`] messages bounds what is not
//! yet handled.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use tracing::{info, warn};

use super::replay::LOG_FILTER;
use crate::router::messages::{GetStats, RouteRemote};
use crate::router::Router;

/// Messages between two barriers.
const BARRIER_EVERY: u64 = 256;
/// Barriers not yet answered at most (so about 1,024 messages not yet handled).
const BARRIERS: usize = 4;
/// Messages asked for per pull.
const PULL_BATCH: usize = 1000;
/// Expiry of one pull request; the server heartbeats every [`HEARTBEAT`] meanwhile, and
/// two missed heartbeats end the consumer.
const PULL_EXPIRES: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_millis(500);
/// How often the watchdog compares the stream's last sequence with the feed's position.
const WATCHDOG: Duration = Duration::from_millis(750);
/// Pause before a consumer is created again after a failure.
const RETRY: Duration = Duration::from_millis(250);
/// Bound of one consumer creation.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the feed needs.
pub(super) struct Feed {
    pub stream: stream::Stream,
    /// This node's incarnation: its own messages are skipped.
    pub origin: u64,
    pub router: Addr<Router>,
    /// The stream sequence routed so far (the stream's last at start: older messages
    /// were published before this node had any subscription).
    pub position: u64,
}

/// Why one consumer's run ended.
#[derive(Debug)]
enum Ended {
    /// The router is gone: the node is stopping.
    Stopped,
    /// Recreate the consumer from the feed's position.
    Failed(String),
}

/// The position the feed starts from: the stream's last sequence (retried while
/// JetStream elects a leader; the caller bounds the time).
pub(super) async fn start_position(stream: &stream::Stream) -> u64 {
    loop {
        match stream.get_info().await {
            Ok(info) => return info.state.last_sequence,
            Err(e) => {
                warn!(error = %e, "message log info failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Follows the log for as long as the node runs.
pub(super) async fn run(mut feed: Feed) {
    let mut barriers = VecDeque::new();
    loop {
        match follow_once(&mut feed, &mut barriers).await {
            Ended::Stopped => return,
            Ended::Failed(why) => {
                warn!(position = feed.position, why, "message log feed resuming");
            }
        }
        if !feed.router.connected() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// A consumer from `feed.position + 1`, as a stream of messages.
async fn open(feed: &Feed) -> Result<consumer::pull::Stream, String> {
    let config = consumer::pull::Config {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: feed.position + 1,
        },
        filter_subject: LOG_FILTER.to_owned(),
        ack_policy: consumer::AckPolicy::None,
        max_deliver: 1,
        inactive_threshold: Duration::from_secs(30),
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    let create = async {
        let consumer = feed
            .stream
            .create_consumer(config)
            .await
            .map_err(|e| e.to_string())?;
        consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .expires(PULL_EXPIRES)
            .heartbeat(HEARTBEAT)
            .messages()
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(CREATE_TIMEOUT, create).await {
        Ok(r) => r,
        Err(_) => Err("timed out creating the consumer".into()),
    }
}

/// Routes what one consumer delivers until it fails.
async fn follow_once(feed: &mut Feed, barriers: &mut VecDeque<Barrier>) -> Ended {
    let mut messages = match open(feed).await {
        Ok(m) => m,
        Err(e) => return Ended::Failed(e),
    };
    info!(from = feed.position + 1, "following the message log");
    let mut consumer_seq = 0;
    let mut watchdog = tokio::time::interval(WATCHDOG);
    watchdog.tick().await;
    let (mut stalled, mut progressed) = (false, false);
    loop {
        let m = tokio::select! {
            m = messages.next() => m,
            _ = watchdog.tick() => {
                // Unknown while the stream has no leader: keep the last verdict.
                if let Ok(info) = feed.stream.get_info().await {
                    let behind = info.state.last_sequence > feed.position && !progressed;
                    if behind && stalled {
                        return Ended::Failed("the consumer stalled".into());
                    }
                    stalled = behind;
                }
                progressed = false;
                continue;
            }
        };
        let m = match m {
            None => return Ended::Failed("the consumer ended".into()),
            Some(Err(e)) => return Ended::Failed(e.to_string()),
            Some(Ok(m)) => m,
        };
        let Ok(info) = m.info() else {
            return Ended::Failed("a message without its sequence".into());
        };
        if info.consumer_sequence != consumer_seq + 1 {
            return Ended::Failed(format!(
                "consumer sequence {} after {consumer_seq}",
                info.consumer_sequence
            ));
        }
        consumer_seq = info.consumer_sequence;
        let seq = info.stream_sequence;
        progressed = true;
        if seq <= feed.position {
            continue;
        }
        feed.position = seq;
        if let Some(route) = to_route(&m, seq, feed.origin) {
            feed.router.do_send(route);
        }
        if seq % BARRIER_EVERY == 0 && !pace(&feed.router, barriers).await {
            return Ended::Stopped;
        }
    }
}

/// A barrier's answer: the router handled everything sent before it.
type Barrier = actix::dev::Request<Router, GetStats>;

/// Sends a barrier, then waits while too many are unanswered; false once the router
/// is gone.
async fn pace(router: &Addr<Router>, barriers: &mut VecDeque<Barrier>) -> bool {
    barriers.push_back(router.send(GetStats));
    while barriers.len() > BARRIERS {
        let Some(oldest) = barriers.pop_front() else {
            break;
        };
        if oldest.await.is_err() {
            return false;
        }
    }
    true
}

/// The router's message for one log entry, unless this node published it: decoded as a
/// core copy for a plain subscription is, with its stream sequence.
fn to_route(m: &jetstream::Message, seq: u64, origin: u64) -> Option<RouteRemote> {
    let route = super::bridge::to_route(m, None, origin, false)?;
    Some(RouteRemote {
        log: Some(seq),
        ..route
    })
}
