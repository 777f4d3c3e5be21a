//! The log feed: with the message log on, each node follows the stream `STARLING_LOG`
//! with a consumer of its own, filtered to the log subjects of its plain subscriptions
//! (`$share` groups have their own consumers, `super::shared`), and hands the other
//! nodes' QoS 1/2 messages to its router (`RouteRemote`, with the message's stream
//! sequence), in log order. So a node reads only what it is interested in: a node with
//! no plain subscription has no consumer at all. QoS 1/2 messages do not travel as core
//! NATS copies, so a NATS server's crash or a slow node loses none of them: the feed
//! knows the last stream sequence it routed and resumes after it.
//!
//! The filter ([`super::feed_filter`]) follows the interest: the interest task sends the
//! subjects each filter gains or loses ([`FeedCmd`]), and the feed recreates its consumer
//! with the new filter (changes arriving within [`DEBOUNCE`], or while a consumer is being
//! created, go into one recreation). The new consumer starts after the last entry routed,
//! so nothing the old filter took is lost; an entry the old filter skipped is read again
//! if the new one takes it. Of those, the entries up to the stream's last sequence when
//! the change was applied (`through`) are dropped: they were published before the
//! change, and a node whose feed was idle would otherwise hand a new subscription
//! messages from long before it. A SUBACK that adds a filter new to the node waits for
//! [`FeedCmd::Sync`]: it is answered once the consumer follows every subject added
//! before it, so whatever is published after the SUBACK (stored after `through`) reaches
//! the subscription. A resumed session's replay (`super::replay`) gets the same answer:
//! it reads the log up to it, the feed brings what follows.
//!
//! The consumer is ephemeral (memory, one replica, no acknowledgements), recreated from
//! the position after the last message routed whenever it fails: a pull error, missed
//! heartbeats (its server died or hangs), a gap in its consumer sequence (something was
//! skipped), or the watchdog seeing, for two checks in a row, the consumer report
//! messages pending (or delivered beyond what arrived) while nothing arrives (a consumer
//! that heartbeats but no longer delivers). The watchdog asks the consumer, not the
//! stream (which grows with entries the filter skips); when the consumer holds nothing
//! more, it sends the router the stream's last sequence read before asking (`FeedAt`,
//! for the store's log position). The node's own messages are skipped (routed locally
//! before their log write). The router's mailbox is the backpressure: messages go in with `do_send`
//! (in order), and a `GetStats` barrier every [`BARRIER_EVERY`] messages bounds what is
//! not yet handled.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::feed_filter::{FeedFilter, Interest};
use super::feed_watch::{watch, Watch};
use super::replay::LOG_FILTER;
use crate::metrics::ClusterMetrics;
use crate::router::messages::{FeedAt, GetStats, RouteRemote};
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
/// How often the watchdog asks the consumer what it holds.
pub(super) const WATCHDOG: Duration = Duration::from_millis(750);
/// Pause before a consumer is created again after a failure.
const RETRY: Duration = Duration::from_millis(250);
/// Bound of one consumer creation.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an interest change waits for others before the consumer is recreated.
const DEBOUNCE: Duration = Duration::from_millis(5);

/// What the interest task tells the feed.
pub(super) enum FeedCmd {
    /// The log subjects of a plain filter that gained its first local subscription.
    Add(Vec<String>),
    /// Those of one that lost its last.
    Remove(Vec<String>),
    /// Answered once the consumer follows every subject added before it, with the log
    /// sequence from which on it brings every entry they match.
    Sync(oneshot::Sender<u64>),
}

/// What the feed needs.
pub(super) struct Feed {
    pub stream: stream::Stream,
    /// This node's incarnation: its own messages are skipped.
    pub origin: u64,
    pub router: Addr<Router>,
    /// The stream sequence routed so far (the stream's last at start: older messages
    /// were published before this node had any subscription).
    pub position: u64,
    pub commands: mpsc::UnboundedReceiver<FeedCmd>,
    pub metrics: Option<ClusterMetrics>,
}

/// The feed's filter and what waits on it.
struct Following {
    interest: Interest,
    /// What the interest asks for (recomputed on each change).
    wanted: FeedFilter,
    /// What the current consumer takes.
    current: FeedFilter,
    /// Entries up to `through` that `old` did not take are dropped (see the module docs).
    skip: Option<Skip>,
    /// The log sequence after which the current filter brings every entry it matches.
    covered: u64,
    /// Syncs waiting for the next consumer.
    syncs: Vec<oneshot::Sender<u64>>,
    /// The interest changed: recreate the consumer at this instant.
    change_at: Option<Instant>,
    /// The commands' sender is gone (the bridge stopped).
    closed: bool,
}

#[derive(Debug, Clone)]
struct Skip {
    through: u64,
    old: FeedFilter,
}

impl Following {
    fn apply(&mut self, cmd: FeedCmd) {
        match cmd {
            FeedCmd::Add(s) => self.interest.add(s),
            FeedCmd::Remove(s) => self.interest.remove(s),
            FeedCmd::Sync(tx) => {
                self.syncs.push(tx);
                self.answer_if_current();
                return;
            }
        }
        self.wanted = self.interest.filter(LOG_FILTER);
        if self.wanted != self.current && self.change_at.is_none() {
            self.change_at = Some(Instant::now() + DEBOUNCE);
        }
    }

    /// Answers the syncs once the consumer takes what the interest asks for.
    fn answer_if_current(&mut self) {
        if self.wanted == self.current {
            for tx in self.syncs.drain(..) {
                let _ = tx.send(self.covered);
            }
        }
    }

    /// Takes every command queued.
    fn drain(&mut self, rx: &mut mpsc::UnboundedReceiver<FeedCmd>) {
        loop {
            match rx.try_recv() {
                Ok(cmd) => self.apply(cmd),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    /// True when an entry on `subject` at `seq` goes to the router.
    fn takes(&self, seq: u64, subject: &str) -> bool {
        match &self.skip {
            Some(skip) if seq <= skip.through => skip.old.matches(subject),
            _ => true,
        }
    }
}

/// Why one consumer's run ended.
#[derive(Debug)]
enum Ended {
    /// The router is gone: the node is stopping.
    Stopped,
    /// Recreate the consumer from the feed's position.
    Failed(String),
    /// The interest changed: recreate the consumer with the new filter.
    Changed,
}

/// The position the feed starts from: the stream's last sequence (retried while
/// JetStream elects a leader; the caller bounds the time).
pub(super) async fn start_position(stream: &stream::Stream) -> u64 {
    loop {
        match last_sequence(stream).await {
            Ok(last) => return last,
            Err(e) => {
                warn!(error = %e, "message log info failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// The stream's last sequence, from its leader.
async fn last_sequence(stream: &stream::Stream) -> Result<u64, String> {
    let info = tokio::time::timeout(CREATE_TIMEOUT, stream.get_info()).await;
    match info {
        Ok(Ok(info)) => Ok(info.state.last_sequence),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out reading the message log's info".into()),
    }
}

/// Follows the log for as long as the node runs.
pub(super) async fn run(mut feed: Feed) {
    let mut barriers = VecDeque::new();
    let mut f = Following {
        interest: Interest::default(),
        wanted: FeedFilter::Nothing,
        current: FeedFilter::Nothing,
        skip: None,
        covered: feed.position,
        syncs: Vec::new(),
        change_at: None,
        closed: false,
    };
    loop {
        f.drain(&mut feed.commands);
        if f.closed || !feed.router.connected() {
            return;
        }
        if f.wanted == FeedFilter::Nothing {
            // No interest: no consumer; what is published meanwhile is not for this node.
            f.current = FeedFilter::Nothing;
            f.skip = None;
            f.answer_if_current();
            match feed.commands.recv().await {
                Some(cmd) => f.apply(cmd),
                None => return,
            }
            continue;
        }
        let ended = match refilter(&mut feed, &mut f).await {
            Ok(()) => follow_once(&mut feed, &mut f, &mut barriers).await,
            Err(e) => Ended::Failed(e),
        };
        match ended {
            Ended::Stopped => return,
            Ended::Changed => continue,
            Ended::Failed(why) => {
                warn!(position = feed.position, why, "message log feed resuming");
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Makes the filter the next consumer takes the wanted one; when it takes entries the
/// current one did not, those up to the stream's last sequence are dropped.
async fn refilter(feed: &mut Feed, f: &mut Following) -> Result<(), String> {
    f.change_at = None;
    if f.wanted == f.current {
        return Ok(());
    }
    if !f.current.includes(&f.wanted) {
        let through = last_sequence(&feed.stream).await?;
        if f.current == FeedFilter::Nothing {
            // Nothing was followed: nothing before `through` is for this node.
            feed.position = feed.position.max(through);
        } else {
            f.skip = Some(Skip {
                through,
                old: f.current.clone(),
            });
        }
        f.covered = f.covered.max(through);
    }
    debug!(filter = ?f.wanted, "message log feed filter");
    f.current = f.wanted.clone();
    Ok(())
}

/// A consumer of `filter` from `feed.position + 1`, as a stream of messages.
async fn open(
    feed: &Feed,
    filter: &FeedFilter,
) -> Result<(consumer::PullConsumer, consumer::pull::Stream), String> {
    let (filter_subject, filter_subjects) = match filter {
        FeedFilter::Subjects(list) if list.len() == 1 => (list[0].clone(), Vec::new()),
        FeedFilter::Subjects(list) => (String::new(), list.clone()),
        FeedFilter::All | FeedFilter::Nothing => (LOG_FILTER.to_owned(), Vec::new()),
    };
    let config = consumer::pull::Config {
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: feed.position + 1,
        },
        filter_subject,
        filter_subjects,
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
        let messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .expires(PULL_EXPIRES)
            .heartbeat(HEARTBEAT)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        Ok((consumer, messages))
    };
    match tokio::time::timeout(CREATE_TIMEOUT, create).await {
        Ok(r) => r,
        Err(_) => Err("timed out creating the consumer".into()),
    }
}

/// Deletes a consumer the feed no longer reads, in the background (it would otherwise
/// linger until its inactivity threshold).
fn retire(stream: &stream::Stream, consumer: consumer::PullConsumer) {
    let stream = stream.clone();
    tokio::spawn(async move {
        let name = consumer.cached_info().name.clone();
        let _ = stream.delete_consumer(&name).await;
    });
}

/// Routes what one consumer delivers until it fails or the interest changes.
async fn follow_once(
    feed: &mut Feed,
    f: &mut Following,
    barriers: &mut VecDeque<Barrier>,
) -> Ended {
    let (consumer, mut messages) = match open(feed, &f.current).await {
        Ok(m) => m,
        Err(e) => return Ended::Failed(e),
    };
    if let Some(m) = &feed.metrics {
        m.feed_consumer();
    }
    info!(from = feed.position + 1, "following the message log");
    f.answer_if_current();
    let ended = route(feed, f, &consumer, &mut messages, barriers).await;
    drop(messages);
    retire(&feed.stream, consumer);
    ended
}

/// The loop of [`follow_once`].
async fn route(
    feed: &mut Feed,
    f: &mut Following,
    consumer: &consumer::PullConsumer,
    messages: &mut consumer::pull::Stream,
    barriers: &mut VecDeque<Barrier>,
) -> Ended {
    let mut consumer_seq = 0;
    let mut watchdog = tokio::time::interval(WATCHDOG);
    watchdog.tick().await;
    let (mut stalled, mut progressed) = (false, false);
    loop {
        let change_at = f.change_at;
        let m = tokio::select! {
            m = messages.next() => m,
            cmd = feed.commands.recv(), if !f.closed => {
                match cmd {
                    Some(cmd) => f.apply(cmd),
                    None => f.closed = true,
                }
                continue;
            }
            _ = sleep_until(change_at), if change_at.is_some() => {
                f.drain(&mut feed.commands);
                return Ended::Changed;
            }
            _ = watchdog.tick() => {
                match watch(&feed.stream, consumer, consumer_seq, progressed).await {
                    Watch::Lost(why) => return Ended::Failed(why),
                    Watch::Behind if stalled => return Ended::Failed("the consumer stalled".into()),
                    Watch::Behind => stalled = true,
                    Watch::Fine(None) => stalled = false,
                    Watch::Fine(Some(last)) => {
                        stalled = false;
                        if last > feed.position {
                            feed.router.do_send(FeedAt { seq: last });
                        }
                    }
                    // Unknown while the consumer's server does not answer: keep the verdict.
                    Watch::Unknown => {}
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
        if let Some(metrics) = &feed.metrics {
            metrics.feed_entry();
        }
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
        if !f.takes(seq, m.subject.as_str()) {
            continue;
        }
        if let Some(route) = to_route(&m, seq, feed.origin) {
            feed.router.do_send(route);
        }
        if seq % BARRIER_EVERY == 0 && !pace(&feed.router, barriers).await {
            return Ended::Stopped;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
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
