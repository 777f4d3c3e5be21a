//! Parallel routing: the subscription index behind a lock, read by publishing sessions
//! on their own worker threads (the fast path), written by the router alone.
//!
//! The router stays the single writer of subscriptions, of the registry and of the
//! persistent flags; it writes them into the [`Index`] under the write lock before it
//! answers (a SUBACK follows the write, so a later publish matched anywhere sees it).
//! A session routes a publish itself ([`FastRoute::try_route`]) when all of these hold,
//! and otherwise sends `Route` to the router as before, having delivered nothing:
//! - the node is standalone and `queue_full` is not `backpressure` ([`FastRoute::enable`]);
//! - the message is QoS 0 or 1, not retained, its topic does not start with `$`;
//! - every matching subscription is a plain one (no `$share` group) of a client whose
//!   session is not persistent (no stored-queue number, no store write: nothing for a
//!   durability ticket to wait for), and that the router is not registering (a
//!   takeover's link change, dropped subscriptions and persistent flag are written
//!   one by one: meanwhile its messages go through the router, which sees them after);
//! - the publisher has nothing outstanding at the router, and the router's deliveries
//!   of its earlier messages were handed to the subscribers' mailboxes: `Routed::after`
//!   names the outbox flush that carries them, [`FastRoute::flushed`] counts the
//!   flushes done (the session checks it, `session/fast.rs`).
//!
//! The session collects what it routes in one read turn in a [`Batch`] (one
//! `DeliverBatch` per subscriber and turn, as the router's outbox does), and hands it
//! over before anything else leaves for the router, at the end of the turn, and before
//! a close. The flush looks each subscriber's session up again under the read lock, so
//! a takeover between the match and the flush delivers to the new session (which got
//! the old one's state), as the router would have after the `Register`; a session
//! that ended or was replaced by a clean start meanwhile gets nothing (its state, and
//! so what the router would have delivered to it, was discarded: `Client::since`).
//!
//! Counters of the fast path (routed, unrouted, topics) are kept here and summed into
//! the router's answers (`GetStats`, `TopTopics`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ahash::AHashMap as HashMap;

use super::link::SessionRef;
use super::state::{collect_direct, Delivery, Trie};
use super::topics::TopicCounts;
use crate::delivery::{Outgoing, SubEntry};
use crate::message::{ClientId, Message};
use crate::protocol::QoS;
use crate::topic::TopicFilter;

/// What matching needs, under one lock.
#[derive(Default)]
pub struct Index {
    pub(super) trie: Trie,
    /// What the fast path must know of each client.
    clients: HashMap<ClientId, Client>,
    /// Stamps handed out (see [`Client::since`]).
    stamps: u64,
}

/// One client as the fast path sees it.
#[derive(Default)]
struct Client {
    /// Its session in the registry (the router's `sessions`, mirrored).
    link: Option<SessionRef>,
    /// Its session is persistent (QoS 1/2 deliveries take a stored-queue number).
    persistent: bool,
    /// The router is registering it (the link is new, the subscriptions and the
    /// persistent flag not settled yet): its messages go through the router.
    unsettled: bool,
    /// Changed whenever the client's session state is discarded (it ended, or a
    /// clean start replaced it): a batch matched before goes nowhere, as it would have
    /// gone to the discarded session.
    since: u64,
}

impl Client {
    fn is_empty(&self) -> bool {
        self.link.is_none() && !self.persistent && !self.unsettled
    }
}

/// Shards of the fast path's topic counts (by thread).
const TOPIC_SHARDS: usize = 16;

/// The index and the fast path's counters, shared by the router and every session.
pub struct FastRoute {
    index: RwLock<Index>,
    /// Off in cluster mode and with `backpressure`.
    enabled: AtomicBool,
    /// Outbox flushes the router has done (each one's deliveries handed over).
    flushed: AtomicU64,
    routed: AtomicU64,
    unrouted: AtomicU64,
    topics: [Mutex<TopicCounts>; TOPIC_SHARDS],
}

impl Default for FastRoute {
    fn default() -> Self {
        FastRoute {
            index: RwLock::default(),
            enabled: AtomicBool::new(true),
            flushed: AtomicU64::new(0),
            routed: AtomicU64::new(0),
            unrouted: AtomicU64::new(0),
            topics: Default::default(),
        }
    }
}

/// The outcome of [`FastRoute::try_route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastRouted {
    /// Matched and put in the batch: this many sessions get it.
    Batched(usize),
    /// Not for the fast path: nothing was delivered, route it through the router.
    Router,
}

impl FastRoute {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Turns the fast path on or off (off: every publish goes to the router).
    pub fn enable(&self, on: bool) {
        let _writer = self.write();
        self.enabled.store(on, Ordering::Release);
    }

    /// Outbox flushes the router has done.
    #[inline]
    pub fn flushed(&self) -> u64 {
        self.flushed.load(Ordering::Acquire)
    }

    /// The router handed one more flush's deliveries over.
    pub(super) fn flush_done(&self, count: u64) {
        self.flushed.store(count, Ordering::Release);
    }

    /// Publishes routed and unrouted on the fast path.
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.routed.load(Ordering::Relaxed),
            self.unrouted.load(Ordering::Relaxed),
        )
    }

    /// Moves the fast path's topic counts into the router's.
    pub(super) fn drain_topics(&self, into: &mut TopicCounts) {
        for shard in &self.topics {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain_into(into);
        }
    }

    /// Matches `msg` and puts its deliveries in `batch`, when it is for the fast path
    /// (see the module doc); nothing happens otherwise.
    pub fn try_route(&self, msg: &Arc<Message>, batch: &mut Batch) -> FastRouted {
        if msg.retain || msg.qos == QoS::ExactlyOnce || msg.topic.as_str().starts_with('$') {
            return FastRouted::Router;
        }
        let index = self.read();
        if !self.enabled.load(Ordering::Acquire) {
            return FastRouted::Router;
        }
        batch.matches.clear();
        let mut shared = false;
        collect_direct(&index.trie, msg, &mut batch.matches, |_, _| shared = true);
        if shared {
            return FastRouted::Router;
        }
        let slow = |d: &Delivery| {
            let client = index.clients.get(&d.client);
            client.is_some_and(|c| c.unsettled || (c.persistent && d.qos != QoS::AtMostOnce))
        };
        if batch.matches.iter().any(slow) {
            return FastRouted::Router;
        }
        let mut matched = 0;
        let mut matches = std::mem::take(&mut batch.matches);
        for d in matches.drain(..) {
            let Some((_, since)) = index.link(&d.client) else {
                continue;
            };
            matched += 1;
            let out = Outgoing {
                msg: Arc::clone(msg),
                qos: d.qos,
                retain: d.retain,
                sub_ids: d.sub_ids,
                seq: None,
                share: None,
                receipt: None,
            };
            batch.push(d.client, since, out);
        }
        batch.matches = matches;
        batch.published.push((Arc::clone(msg), matched));
        FastRouted::Batched(matched)
    }

    /// Hands the batch's deliveries to their sessions (one message per session) and
    /// counts its publishes; the batch is empty afterwards.
    pub fn flush(&self, batch: &mut Batch) {
        if batch.published.is_empty() {
            return;
        }
        {
            let index = self.read();
            for (client, since, mut outs) in batch.targets.drain(..) {
                let link = index.link(&client).filter(|(_, now)| *now == since);
                let Some((link, _)) = link else {
                    continue;
                };
                match outs.len() {
                    0 => {}
                    1 => link.deliver(outs.pop().expect("one")),
                    _ => link.deliver_batch(outs),
                }
            }
        }
        batch.slots.clear();
        let (mut routed, mut unrouted) = (0, 0);
        let shard = &self.topics[thread_shard()];
        let mut topics = shard.lock().unwrap_or_else(PoisonError::into_inner);
        for (msg, matched) in batch.published.drain(..) {
            routed += 1;
            unrouted += u64::from(matched == 0);
            topics.record(msg.topic.as_str());
        }
        drop(topics);
        self.routed.fetch_add(routed, Ordering::Relaxed);
        if unrouted > 0 {
            self.unrouted.fetch_add(unrouted, Ordering::Relaxed);
        }
    }
}

/// The router's writes into the index (its own state stays the truth).
impl Index {
    /// `client`'s session and its stamp.
    fn link(&self, client: &ClientId) -> Option<(&SessionRef, u64)> {
        let c = self.clients.get(client)?;
        Some((c.link.as_ref()?, c.since))
    }

    /// `client`'s session state was discarded: what was matched for it before goes
    /// nowhere.
    pub(super) fn discarded(&mut self, client: &ClientId) {
        if let Some(c) = self.clients.get_mut(client) {
            self.stamps += 1;
            c.since = self.stamps;
        }
    }

    /// Changes what is known of `client`, forgetting it once nothing is.
    fn update(&mut self, client: &ClientId, f: impl FnOnce(&mut Client)) {
        match self.clients.get_mut(client) {
            Some(c) => {
                f(c);
                if c.is_empty() {
                    self.clients.remove(client);
                }
            }
            None => {
                self.stamps += 1;
                let mut c = Client {
                    since: self.stamps,
                    ..Client::default()
                };
                f(&mut c);
                if !c.is_empty() {
                    self.clients.insert(client.clone(), c);
                }
            }
        }
    }

    pub(super) fn set_link(&mut self, client: &ClientId, link: Option<SessionRef>) {
        self.update(client, |c| c.link = link);
    }

    pub(super) fn set_persistent(&mut self, client: &ClientId, persistent: bool) {
        self.update(client, |c| c.persistent = persistent);
    }

    /// While the router registers `client`, its messages go through the router.
    pub(super) fn set_unsettled(&mut self, client: &ClientId, unsettled: bool) {
        self.update(client, |c| c.unsettled = unsettled);
    }

    pub(super) fn insert(&mut self, filter: &TopicFilter, client: &ClientId, entry: SubEntry) {
        self.trie.insert(filter, client.clone(), entry);
    }
}

/// What a session routed on the fast path in its current read turn, not yet handed
/// over; reused from turn to turn.
#[derive(Default)]
pub struct Batch {
    /// Each subscriber's deliveries, in routing order, with its stamp at the match.
    targets: Vec<(ClientId, u64, Vec<Outgoing>)>,
    /// Where a subscriber's deliveries are in `targets`.
    slots: HashMap<ClientId, usize>,
    /// The messages routed, with how many sessions each reached (for the counters).
    published: Vec<(Arc<Message>, usize)>,
    /// The matching step's output, kept for its allocation.
    matches: Vec<Delivery>,
}

impl Batch {
    /// True when nothing waits to be handed over.
    pub fn is_empty(&self) -> bool {
        self.published.is_empty()
    }

    fn push(&mut self, client: ClientId, since: u64, out: Outgoing) {
        if let Some((last, stamp, outs)) = self.targets.last_mut() {
            if *last == client && *stamp == since {
                outs.push(out);
                return;
            }
        }
        match self.slots.get(&client) {
            Some(&i) if self.targets[i].1 == since => self.targets[i].2.push(out),
            _ => {
                self.slots.insert(client.clone(), self.targets.len());
                self.targets.push((client, since, vec![out]));
            }
        }
    }
}

/// This thread's shard of the topic counts.
fn thread_shard() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SHARD: usize = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % TOPIC_SHARDS;
    }
    SHARD.with(|s| *s)
}
