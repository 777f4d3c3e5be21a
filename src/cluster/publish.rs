//! The bridge's publish task: local messages to the other nodes, in order.
//!
//! A QoS 0 message goes out on its subject at once. A QoS 1/2 message is written to the
//! message log ([`super::replay`]), from which the other nodes' log feeds
//! ([`super::feed`]) read it for their plain subscriptions, and the `$share` groups'
//! consumers ([`super::shared`]) for shared ones; no core copy is sent (with the log
//! off, a QoS 1/2 message goes out on its subject like a QoS 0 one). Core copies leave in
//! publish order (a later message waits for an earlier one's log write), and each batch
//! is flushed once: a publish is acknowledged to its client after its log write and the
//! flush after it.

use std::collections::VecDeque;
use std::time::Instant;

use actix::Addr;
use async_nats::jetstream;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

use super::bridge::{Outbound, FLUSH_TIMEOUT, MAX_SUBJECT_LEN};
use super::envelope::Envelope;
use super::replay::{self, LogEntry};
use super::retained;
use super::subject::topic_to_subject;
use crate::metrics::ClusterMetrics;
use crate::protocol::QoS;
use crate::router::Router;

/// Messages taken from the queue per turn.
const BATCH: usize = 512;
/// Log writes awaiting their acknowledgement at most.
const MAX_OUTSTANDING: usize = 8192;

/// What the publish task needs.
pub(super) struct Publisher {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub log: jetstream::stream::Stream,
    pub origin: u64,
    pub router: Addr<Router>,
    /// `[cluster] message_log`; without it a QoS 1/2 message goes out live at once.
    pub message_log: bool,
    /// Where log writes and replays are reported.
    pub metrics: Option<ClusterMetrics>,
}

/// The log write of a queued item.
enum Log {
    None,
    Waiting(JoinHandle<bool>),
    Done(bool),
}

/// One item in publish order.
struct Item {
    live: Option<(String, Bytes)>,
    log: Log,
    done: Option<oneshot::Sender<()>>,
    replay: Option<replay::ReplayJob>,
}

pub(super) async fn run(p: Publisher, mut rx: mpsc::Receiver<Outbound>) {
    let mut queue: VecDeque<Item> = VecDeque::new();
    let mut open = true;
    loop {
        release(&p, &mut queue).await;
        if !open && queue.is_empty() {
            return;
        }
        let room = open && queue.len() < MAX_OUTSTANDING;
        let front_waiting = matches!(queue.front().map(|i| &i.log), Some(Log::Waiting(_)));
        tokio::select! {
            out = rx.recv(), if room => match out {
                None => open = false,
                Some(first) => {
                    let mut next = Some(first);
                    let mut n = 0;
                    while let Some(out) = next.take() {
                        accept(&p, &mut queue, out).await;
                        n += 1;
                        if n < BATCH {
                            next = rx.try_recv().ok();
                        }
                    }
                }
            },
            ok = wait_front(&mut queue), if front_waiting => {
                if let Some(front) = queue.front_mut() {
                    front.log = Log::Done(ok);
                }
            }
        }
    }
}

async fn wait_front(queue: &mut VecDeque<Item>) -> bool {
    match queue.front_mut().map(|i| &mut i.log) {
        Some(Log::Waiting(h)) => h.await.unwrap_or(false),
        _ => std::future::pending().await,
    }
}

/// Queues one item; a QoS 1/2 message's log write is sent now.
async fn accept(p: &Publisher, queue: &mut VecDeque<Item>, out: Outbound) {
    match out {
        Outbound::Publish { msg, seq, done } => {
            let Ok(payload) = Envelope::new(p.origin, seq, &msg).encode() else {
                return;
            };
            let subject = topic_to_subject(&msg.topic);
            if subject.len() + 2 > MAX_SUBJECT_LEN {
                // Delivered locally; NATS would drop the whole connection for it.
                warn!(topic = %msg.topic, "topic too long for a NATS subject; not sent to the cluster");
                queue.push_back(Item {
                    live: None,
                    log: Log::None,
                    done,
                    replay: None,
                });
                return;
            }
            let payload = Bytes::from(payload);
            let logged = msg.qos != QoS::AtMostOnce && p.message_log;
            let log = if !logged {
                Log::None
            } else {
                let entry = LogEntry::new(p.origin, seq, &subject, payload.clone());
                let started = Instant::now();
                let ack = replay::write(&p.js, &entry).await;
                let js = p.js.clone();
                let metrics = p.metrics.clone();
                Log::Waiting(tokio::spawn(async move {
                    let acked = replay::confirm(js, entry, ack).await;
                    if let Some(m) = metrics {
                        m.log_write(acked, started.elapsed());
                    }
                    acked
                }))
            };
            // A logged message reaches the other nodes through the log only: their log
            // feeds ([`super::feed`]) for plain subscriptions, the groups' consumers
            // ([`super::shared`]) for shared ones. No core copy is sent.
            let live = (!logged).then_some((subject, payload));
            queue.push_back(Item {
                live,
                log,
                done,
                replay: None,
            });
        }
        Outbound::Retain { msg, done } => {
            retained::store(&p.js, p.origin, &msg, done).await;
        }
        Outbound::Replay(job) => queue.push_back(Item {
            live: None,
            log: Log::None,
            done: None,
            replay: Some(job),
        }),
    }
}

/// Sends the live copies of the items at the front whose log write is done, in order,
/// then flushes once and acknowledges them.
async fn release(p: &Publisher, queue: &mut VecDeque<Item>) {
    let mut waiters = Vec::new();
    loop {
        let ok = match queue.front_mut().map(|i| &mut i.log) {
            None => break,
            Some(Log::None) => true,
            Some(Log::Done(ok)) => *ok,
            Some(Log::Waiting(h)) if h.is_finished() => h.await.unwrap_or(false),
            Some(Log::Waiting(_)) => break,
        };
        let Some(item) = queue.pop_front() else { break };
        if let Some(job) = item.replay {
            let metrics = p.metrics.clone();
            tokio::spawn(replay::run(p.log.clone(), job, p.router.clone(), metrics));
            continue;
        }
        if !ok {
            // Not stored: not acknowledged either (the client re-sends it), and not sent
            // live, so that no node has a message the log lacks.
            warn!("message log write failed; publish not acknowledged");
            continue;
        }
        if let Some((subject, payload)) = item.live {
            if let Err(e) = p.client.publish(subject, payload).await {
                warn!(error = %e, "cluster publish failed");
                continue;
            }
        }
        waiters.extend(item.done);
    }
    if waiters.is_empty() {
        return;
    }
    let client = p.client.clone();
    tokio::spawn(async move {
        match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
            Ok(Ok(())) => waiters.into_iter().for_each(|tx| {
                let _ = tx.send(());
            }),
            _ => warn!(
                messages = waiters.len(),
                "cluster flush failed; publishes not acknowledged"
            ),
        }
    });
}
