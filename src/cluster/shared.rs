//! Shared subscriptions that survive a node's death. With the message log on, the QoS 1/2
//! messages of a group `$share/{g}/{f}` come from one durable JetStream pull consumer on
//! the log, shared by every node with members of the group (the core NATS queue
//! subscription then carries QoS 0 only). Each such node pulls from it and hands each
//! message to one online local member; the consumer's copy is acknowledged only once
//! the member's client took it (PUBACK, PUBREC; or, for a persistent member with `sync`
//! durability, once its stored copy is acknowledged), and refused (NAK) when no local
//! member took it or the member dropped it unacknowledged. What a node that died held
//! unacknowledged, JetStream gives to another node's pull after [`ACK_WAIT`].
//!
//! The consumer: durable name `starling_share_<hash of $share/{g}/{f}>`, the log
//! subjects of `f`, deliver policy New (the first node to create it fixes where it
//! starts; the others bind to it), explicit acks, at most [`MAX_DELIVER`] deliveries,
//! deleted by JetStream once nobody pulled for [`INACTIVE`].

use std::time::Duration;

use actix::Addr;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{stream, AckKind, Message};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::bridge::{to_route, FLUSH_TIMEOUT, MAX_SUBJECT_LEN};
use super::replay::log_subject;
use super::subject::filter_to_subjects;
use crate::delivery::Receipt;
use crate::router::messages::RemoteRouted;
use crate::router::Router;
use crate::topic::TopicFilter;

/// How long a message handed to a node may stay unacknowledged before JetStream gives
/// it to another pull: the delay before a dead node's messages reach another member.
/// A member's client slower than this to acknowledge keeps it through progress notes.
pub const ACK_WAIT: Duration = Duration::from_secs(5);
/// Deliveries of one message at most (refusals by nodes without an online member, and
/// redeliveries after a node's death, included); past it the group loses it.
pub const MAX_DELIVER: i64 = 20;
/// A group consumer nobody pulled from for this long is deleted by JetStream.
pub const INACTIVE: Duration = Duration::from_secs(60);
/// Messages handed out and not yet acknowledged, across every node of the group.
const MAX_ACK_PENDING: i64 = 4096;
/// Messages per pull request, and how long one waits for them.
const BATCH: usize = 256;
const PULL_WAIT: Duration = Duration::from_secs(2);
/// Messages a node has in its router's mailbox at most.
const ROUTER_WINDOW: usize = 256;
/// A member's client still has not acknowledged: the node keeps the message this many
/// times [`ACK_WAIT`]`/2` more (progress notes), then lets JetStream give it to another.
const PROGRESS_NOTES: u32 = 24;
/// Longest wait for a persistent member's stored copy.
const STORE_WAIT: Duration = Duration::from_secs(30);
/// After a pull in which no local member took anything: pause before the next one, so
/// that nodes with online members get the messages; doubled up to the maximum.
const REFUSED_PAUSE: Duration = Duration::from_millis(100);
const REFUSED_PAUSE_MAX: Duration = Duration::from_secs(2);
/// Pause before the consumer is looked up again after failing pulls.
const RETRY: Duration = Duration::from_millis(500);
/// Pulls failing in a row before the consumer is looked up again (it may be gone).
const FAILED_PULLS: u32 = 5;

/// The groups' side of the bridge: the log stream, when the log is on.
#[derive(Clone)]
pub(super) struct Groups {
    log: Option<stream::Stream>,
    origin: u64,
}

impl Groups {
    /// `log` serves the groups' QoS 1/2 messages when `enabled` (`message_log`).
    pub fn new(log: stream::Stream, enabled: bool, origin: u64) -> Groups {
        Groups {
            log: enabled.then_some(log),
            origin,
        }
    }

    /// This node's incarnation.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// True when the groups' QoS 1/2 messages come from the log (so the queue
    /// subscriptions carry QoS 0 only).
    pub fn log_on(&self) -> bool {
        self.log.is_some()
    }

    /// Starts pulling the group `share`'s messages for this node's members (log on);
    /// returns once the consumer exists (or after [`FLUSH_TIMEOUT`]: the task goes on
    /// trying), so that a publish after the SUBACK is in it.
    pub async fn follow(
        &self,
        share: &TopicFilter,
        router: &Addr<Router>,
    ) -> Option<JoinHandle<()>> {
        let log = self.log.clone()?;
        let subjects: Vec<String> = filter_to_subjects(share)
            .iter()
            .map(|s| log_subject(s))
            .filter(|s| s.len() <= MAX_SUBJECT_LEN)
            .collect();
        if subjects.is_empty() {
            return None;
        }
        let group = Group {
            log,
            config: config(share, subjects),
            share: share.clone(),
            origin: self.origin,
            router: router.clone(),
        };
        let first = tokio::time::timeout(FLUSH_TIMEOUT, group.consumer()).await;
        let first = first.ok().and_then(Result::ok);
        if first.is_none() {
            warn!(%share, "shared subscription's log consumer not ready yet");
        }
        Some(tokio::spawn(group.run(first)))
    }
}

/// The durable name of the group `share`'s consumer: valid whatever the filter holds.
pub fn consumer_name(share: &TopicFilter) -> String {
    let digest = Sha256::digest(share.as_str().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("starling_share_{hex}")
}

fn config(share: &TopicFilter, mut subjects: Vec<String>) -> pull::Config {
    let (filter_subject, filter_subjects) = match subjects.len() {
        1 => (subjects.remove(0), Vec::new()),
        _ => (String::new(), subjects),
    };
    pull::Config {
        durable_name: Some(consumer_name(share)),
        description: Some(share.to_string()),
        deliver_policy: DeliverPolicy::New,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: MAX_DELIVER,
        max_ack_pending: MAX_ACK_PENDING,
        inactive_threshold: INACTIVE,
        filter_subject,
        filter_subjects,
        ..Default::default()
    }
}

/// One group's pulling task on this node.
struct Group {
    log: stream::Stream,
    config: pull::Config,
    share: TopicFilter,
    origin: u64,
    router: Addr<Router>,
}

impl Group {
    /// The group's consumer: the existing one, or a new one starting at the next message.
    async fn consumer(&self) -> Result<PullConsumer, String> {
        let name = self.config.durable_name.clone().unwrap_or_default();
        match self
            .log
            .get_or_create_consumer(&name, self.config.clone())
            .await
        {
            Ok(c) => Ok(c),
            // Two nodes created it at once: the other's is the one.
            Err(_) => self
                .log
                .get_consumer(&name)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Pulls until aborted (the last local member left), looking the consumer up again
    /// whenever pulls keep failing (JetStream may have deleted it, or be electing).
    async fn run(self, mut first: Option<PullConsumer>) {
        loop {
            let consumer = match first.take() {
                Some(c) => c,
                None => match self.consumer().await {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(share = %self.share, error = e, "shared subscription's log consumer not ready");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                },
            };
            let why = self.pull(&consumer).await;
            debug!(share = %self.share, error = why, "shared subscription's pulls failing; looking the consumer up again");
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Pulls batches and hands them over; returns why pulls stopped working.
    async fn pull(&self, consumer: &PullConsumer) -> String {
        let mut pause = Duration::ZERO;
        let mut failed = 0;
        loop {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let batch = consumer
                .fetch()
                .max_messages(BATCH)
                .expires(PULL_WAIT)
                .messages()
                .await;
            let batch = match batch {
                Ok(b) => b,
                Err(e) => return e.to_string(),
            };
            let (taken, refused, error) = self.hand_over(batch).await;
            match error {
                Some(e) if taken + refused == 0 => {
                    failed += 1;
                    if failed >= FAILED_PULLS {
                        return e;
                    }
                    pause = RETRY;
                    continue;
                }
                _ => failed = 0,
            }
            pause = match (taken, refused) {
                (0, 0) => Duration::ZERO,
                (0, _) => (pause * 2).clamp(REFUSED_PAUSE, REFUSED_PAUSE_MAX),
                _ => Duration::ZERO,
            };
        }
    }

    /// Hands one pull's messages to the router, in order, and leaves each to a task
    /// that acknowledges it once settled. Returns how many a member took, how many
    /// none did, and the pull's error, if any.
    async fn hand_over(&self, mut batch: pull::Batch) -> (usize, usize, Option<String>) {
        let mut error = None;
        let mut open = true;
        let mut routing = FuturesOrdered::new();
        let (mut taken, mut refused) = (0, 0);
        loop {
            tokio::select! {
                m = batch.next(), if open && routing.len() < ROUTER_WINDOW => match m {
                    Some(Ok(m)) => routing.push_back(self.route(m)),
                    Some(Err(e)) => {
                        error = Some(e.to_string());
                        open = false;
                    }
                    None => open = false,
                },
                Some(handed) = routing.next(), if !routing.is_empty() => {
                    let Some((m, answer, rx)) = handed else {
                        continue;
                    };
                    match answer.matched {
                        0 => refused += 1,
                        _ => taken += 1,
                    }
                    tokio::spawn(settle(m, answer, rx));
                }
                else => break,
            }
        }
        (taken, refused, error)
    }

    /// One message to the router, with the receipt its member's client settles.
    async fn route(&self, m: Message) -> Option<(Message, RemoteRouted, oneshot::Receiver<()>)> {
        let Some(mut route) = to_route(&m, Some(&self.share), self.origin, false) else {
            // Undecodable: no member can ever take it.
            let _ = m.ack_with(AckKind::Term).await;
            return None;
        };
        let (receipt, rx) = Receipt::new();
        route.receipt = Some(receipt);
        // A router that stopped answers nothing: the message is refused below.
        let answer = self.router.send(route).await.unwrap_or_default();
        Some((m, answer, rx))
    }
}

/// Acknowledges `m` once its member took it, refuses it (NAK: another pull gets it at
/// once) when none did, and lets it go back to JetStream after [`ACK_WAIT`] when its
/// client keeps it too long.
async fn settle(m: Message, answer: RemoteRouted, mut rx: oneshot::Receiver<()>) {
    let kind = if answer.matched == 0 {
        Some(AckKind::Nak(None))
    } else if let Some(stored) = answer.durable {
        // A persistent member's stored copy survives this node: it is the member's now.
        match tokio::time::timeout(STORE_WAIT, stored.wait()).await {
            Ok(true) => Some(AckKind::Ack),
            _ => Some(AckKind::Nak(None)),
        }
    } else {
        let mut kind = None;
        for _ in 0..PROGRESS_NOTES {
            match tokio::time::timeout(ACK_WAIT / 2, &mut rx).await {
                Ok(Ok(())) => kind = Some(AckKind::Ack),
                Ok(Err(_)) => kind = Some(AckKind::Nak(None)),
                Err(_) => {
                    let _ = m.ack_with(AckKind::Progress).await;
                    continue;
                }
            }
            break;
        }
        kind
    };
    let Some(kind) = kind else {
        debug!(
            "shared message not acknowledged by its member in time; JetStream gives it to another"
        );
        return;
    };
    if let Err(e) = m.ack_with(kind).await {
        debug!(error = %e, "shared message's acknowledgement not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_valid_and_distinct() {
        let a = TopicFilter::new("$share/g/a.b/*/>/ s/#").unwrap();
        let b = TopicFilter::new("$share/g/a").unwrap();
        let (na, nb) = (consumer_name(&a), consumer_name(&b));
        assert_ne!(na, nb);
        assert_eq!(na, consumer_name(&a));
        assert!(na.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
