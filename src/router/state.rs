//! The router's plain state: the subscription trie, retained messages and the shared
//! subscription cursors. No actix here; the actor in `actor.rs` is a thin shell over it.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::fast::FastRoute;
use super::interest::{Interest, InterestChange};
use super::share::SharePicker;
use crate::config::ShareStrategy;
use crate::message::{ClientId, Message};
use crate::protocol::{QoS, RetainHandling};
use crate::topic::{Match, SubscriptionTrie, TopicFilter, TopicTree};

use crate::delivery::{Receipt, SubEntry};

/// One message to hand to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub client: ClientId,
    /// The QoS to deliver at: the lower of the message's and the subscription's.
    pub qos: QoS,
    /// The RETAIN flag to deliver with.
    pub retain: bool,
    /// Subscription identifiers of every matching subscription (5.0).
    pub sub_ids: Vec<u32>,
    /// The shared subscription it goes through, when no non-shared subscription of the
    /// client matched: the message may move to another member (section 4.8.2).
    pub share: Option<TopicFilter>,
    /// Whom to tell once the client took it (see [`Receipt`]).
    pub receipt: Option<Receipt>,
}

/// The result of subscribing to one filter.
#[derive(Debug, Clone)]
pub struct SubscribeOutcome {
    /// Retained messages to send now, per the retain handling option.
    pub retained: Vec<Arc<Message>>,
    /// Not subscribed: a new filter beyond the client's subscription limit.
    pub over_quota: bool,
}

/// Which shared subscriptions [`RouterState::route_with`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shares<'a> {
    /// Every matching group (single node).
    All,
    /// None: in cluster mode groups are served from NATS queue subscriptions.
    Skip,
    /// Only this `$share/{group}/{filter}` (a message its NATS queue subscription got).
    Only(&'a TopicFilter),
}

/// The subscription index: filters to clients and their subscription entries.
pub type Trie = SubscriptionTrie<ClientId, SubEntry>;

/// The state the router actor owns.
#[derive(Default)]
pub struct RouterState {
    /// The trie, the registry's links and the persistent flags, shared with the
    /// sessions' fast path (`super::fast`); written here only.
    fast: Arc<FastRoute>,
    pub(super) retained: TopicTree<Arc<Message>>,
    /// Each client's subscriptions: the source of truth, of which `trie` is an index
    /// (rebuilt from it when the router restarts).
    pub(super) subs: HashMap<ClientId, HashMap<TopicFilter, SubEntry>>,
    /// Clients with a live connection; shared subscriptions deliver only to these.
    pub(super) online: HashSet<ClientId>,
    /// Picks the member of each shared subscription (`$share/{group}/{filter}`).
    picker: SharePicker,
    /// Persistent sessions: the next sequence number of their stored queue.
    persistent: HashMap<ClientId, u64>,
    /// Local subscriptions per filter, kept in cluster mode only (the bridge subscribes
    /// on NATS once per filter).
    interest: Option<Interest>,
    /// Subscriptions one client may hold (0: no limit).
    max_per_client: usize,
}

impl RouterState {
    pub fn new() -> RouterState {
        RouterState::default()
    }

    /// The index the sessions route through on the fast path.
    pub fn fast(&self) -> &Arc<FastRoute> {
        &self.fast
    }

    /// Sets how shared subscriptions pick a member.
    pub fn set_share_strategy(&mut self, strategy: ShareStrategy) {
        self.picker.strategy = strategy;
    }

    /// Sets how many subscriptions one client may hold (`[limits]
    /// max_subscriptions_per_client`; 0: no limit). Existing ones stay.
    pub fn set_subscription_limit(&mut self, max_per_client: usize) {
        self.max_per_client = max_per_client;
    }

    /// Starts counting local subscriptions per filter (cluster mode); every filter
    /// subscribed so far is reported as a change.
    pub fn enable_interest(&mut self) {
        let mut interest = Interest::default();
        interest.rebuild(self.subs.values().flat_map(|s| s.keys()));
        self.interest = Some(interest);
    }

    /// Interest changes since the last call (none unless enabled).
    pub fn take_interest_changes(&mut self) -> Vec<InterestChange> {
        self.interest
            .as_mut()
            .map(Interest::take_changes)
            .unwrap_or_default()
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.fast.read().trie.len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Marks a client's session persistent (its QoS 1/2 deliveries are stored) or not.
    pub fn set_persistent(&mut self, client: &ClientId, persistent: bool, next_seq: u64) {
        self.fast.write().set_persistent(client, persistent);
        if persistent {
            self.persistent
                .entry(client.clone())
                .or_insert(next_seq.max(1));
        } else {
            self.persistent.remove(client);
        }
    }

    /// The persistent sessions this router holds.
    pub fn persistent_clients(&self) -> impl Iterator<Item = &ClientId> {
        self.persistent.keys()
    }

    pub fn is_persistent(&self, client: &ClientId) -> bool {
        self.persistent.contains_key(client)
    }

    /// Makes a persistent session's next stored-queue number at least `seq` (a session
    /// loaded from the cluster's store continues after its stored messages).
    pub fn raise_next_seq(&mut self, client: &ClientId, seq: u64) {
        if let Some(next) = self.persistent.get_mut(client) {
            *next = (*next).max(seq);
        }
    }

    /// The stored-queue sequence number for the next delivery to a persistent session.
    pub fn next_seq(&mut self, client: &ClientId) -> Option<u64> {
        let seq = self.persistent.get_mut(client)?;
        let now = *seq;
        *seq += 1;
        Some(now)
    }

    /// Every filter a client subscribed to, with its entry.
    pub fn subscriptions_of(&self, client: &ClientId) -> Vec<(TopicFilter, SubEntry)> {
        self.subs
            .get(client)
            .into_iter()
            .flatten()
            .map(|(f, e)| (f.clone(), *e))
            .collect()
    }

    /// Rebuilds the trie and the shared-subscription cursors from the per-client
    /// subscriptions (after a failure that may have left the index half-updated).
    pub fn rebuild_index(&mut self) {
        let mut index = self.fast.write();
        index.trie = SubscriptionTrie::new();
        self.picker.reset();
        for (client, subs) in &self.subs {
            for (filter, entry) in subs {
                index.insert(filter, client, *entry);
            }
        }
        drop(index);
        if let Some(interest) = &mut self.interest {
            interest.rebuild(self.subs.values().flat_map(|s| s.keys()));
        }
    }

    pub fn set_online(&mut self, client: &ClientId, online: bool) {
        if online {
            self.online.insert(client.clone());
        } else {
            self.online.remove(client);
        }
    }

    /// Adds or replaces a subscription [MQTT-3.8.4-3] and collects the retained
    /// messages the retain handling option asks for [MQTT-3.3.1-9].
    pub fn subscribe(
        &mut self,
        client: &ClientId,
        filter: &TopicFilter,
        entry: SubEntry,
        now: Instant,
    ) -> SubscribeOutcome {
        let subs = self.subs.entry(client.clone()).or_default();
        let full = self.max_per_client != 0 && subs.len() >= self.max_per_client;
        if full && !subs.contains_key(filter) {
            return SubscribeOutcome {
                retained: Vec::new(),
                over_quota: true,
            };
        }
        let existed = subs.insert(filter.clone(), entry).is_some();
        self.fast.write().insert(filter, client, entry);
        if let (false, Some(interest)) = (existed, &mut self.interest) {
            interest.add(filter);
        }
        let send_retained = match entry.options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendIfNew => !existed,
            RetainHandling::DoNotSend => false,
        };
        // Retained messages are not sent for shared subscriptions [MQTT-3.8.4-? 5.0 4.8.2].
        let mut retained = Vec::new();
        if send_retained && filter.share().is_none() {
            self.retained
                .for_each_match(filter.match_filter(), |_, msg| {
                    if !msg.is_expired(now) {
                        retained.push(Arc::clone(msg));
                    }
                });
        }
        SubscribeOutcome {
            retained,
            over_quota: false,
        }
    }

    /// Removes a subscription; true when it existed.
    pub fn unsubscribe(&mut self, client: &ClientId, filter: &TopicFilter) -> bool {
        let existed = match self.subs.get_mut(client) {
            Some(set) => {
                let existed = set.remove(filter).is_some();
                if set.is_empty() {
                    self.subs.remove(client);
                }
                existed
            }
            None => false,
        };
        self.fast.write().trie.remove(filter, client);
        if let (true, Some(interest)) = (existed, &mut self.interest) {
            interest.remove(filter);
        }
        existed
    }

    /// Removes every subscription of a client whose session ended.
    pub fn remove_client(&mut self, client: &ClientId) {
        self.online.remove(client);
        self.persistent.remove(client);
        let mut index = self.fast.write();
        index.set_persistent(client, false);
        index.discarded(client);
        for filter in self.subs.remove(client).unwrap_or_default().into_keys() {
            index.trie.remove(&filter, client);
            if let Some(interest) = &mut self.interest {
                interest.remove(&filter);
            }
        }
    }

    /// Stores or clears the retained message of a topic [MQTT-3.3.1-5], [MQTT-3.3.1-10].
    pub fn retain(&mut self, msg: &Arc<Message>) {
        if msg.payload.is_empty() {
            self.retained.remove(&msg.topic);
        } else {
            self.retained.insert(&msg.topic, Arc::clone(msg));
        }
    }

    /// Every session that must receive `msg`, one delivery per client at the highest
    /// granted QoS of its matching subscriptions [MQTT-3.3.5-1], plus one member of each
    /// matching shared subscription group.
    #[cfg(test)]
    pub fn route(&mut self, msg: &Message) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.route_into(msg, Shares::All, &mut out);
        out
    }

    /// [`RouterState::route`], serving only the shared subscriptions `shares` names.
    pub fn route_with(&mut self, msg: &Message, shares_wanted: Shares<'_>) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.route_into(msg, shares_wanted, &mut out);
        out
    }

    /// [`RouterState::route_with`] into a caller's vector, so that the router reuses one
    /// allocation for every message (`out` is cleared first).
    pub fn route_into(
        &mut self,
        msg: &Message,
        shares_wanted: Shares<'_>,
        out: &mut Vec<Delivery>,
    ) {
        out.clear();
        let index = self.fast.read();
        let mut shares: Vec<(&TopicFilter, &[(ClientId, SubEntry)])> = Vec::new();
        let direct = !matches!(shares_wanted, Shares::Only(_));
        let mut dedup = collect(
            &index.trie,
            msg,
            direct,
            out,
            |filter, members| match shares_wanted {
                Shares::All => shares.push((filter, members)),
                Shares::Only(only) if only == filter => shares.push((filter, members)),
                Shares::Only(_) | Shares::Skip => {}
            },
        );
        for (filter, members) in shares {
            if let Some((client, entry)) = self.picker.pick(filter, members, &self.online, None) {
                add_delivery(out, &mut dedup, true, msg, client, entry, Some(filter));
            }
        }
    }

    /// Another online member than `leaving` of the shared subscription `share` to take
    /// over `msg`, picked by the share strategy; `None` when there is none.
    pub fn reshare(
        &mut self,
        msg: &Message,
        share: &TopicFilter,
        leaving: &ClientId,
    ) -> Option<Delivery> {
        let mut found = None;
        let index = self.fast.read();
        index.trie.for_each_match(&msg.topic, |m| {
            if let Match::Shared {
                filter, members, ..
            } = m
            {
                if filter == share {
                    found = Some(members);
                }
            }
        });
        let members = found?;
        let (client, entry) = self
            .picker
            .pick(share, members, &self.online, Some(leaving))?;
        Some(delivery(msg, client, entry, Some(share)))
    }
}

/// The deliveries of `msg` through plain subscriptions into `out` (one per client, at
/// the highest granted QoS), and each matching shared group to `on_share`.
pub(super) fn collect_direct<'t>(
    trie: &'t Trie,
    msg: &Message,
    out: &mut Vec<Delivery>,
    on_share: impl FnMut(&'t TopicFilter, &'t [(ClientId, SubEntry)]),
) {
    collect(trie, msg, true, out, on_share);
}

/// [`collect_direct`], with plain subscriptions skipped unless `direct`; returns the
/// index of `out`, for the shared groups' deliveries to join.
fn collect<'t>(
    trie: &'t Trie,
    msg: &Message,
    direct: bool,
    out: &mut Vec<Delivery>,
    mut on_share: impl FnMut(&'t TopicFilter, &'t [(ClientId, SubEntry)]),
) -> DeliveryIndex {
    let mut index = DeliveryIndex::default();
    // The first node's subscribers are distinct: only later ones may repeat a client.
    let mut first_node = None;
    trie.for_each_match_by_node(&msg.topic, |node, m| match m {
        Match::Direct { key, value } => {
            if !direct {
                return;
            }
            if value.options.no_local && msg.publisher.as_ref() == Some(key) {
                return;
            }
            let repeats = *first_node.get_or_insert(node) != node;
            add_delivery(out, &mut index, repeats, msg, key, value, None);
        }
        Match::Shared {
            filter, members, ..
        } => on_share(filter, members),
    });
    index
}

/// Finds a client's delivery among those collected for one message: a scan while there
/// are few (no allocation on the common path), a map once there are many. The map is
/// built on the first lookup that needs it, so a message whose deliveries all come from
/// one trie node (nothing to deduplicate) never builds it.
#[derive(Default)]
struct DeliveryIndex(Option<HashMap<ClientId, usize>>);

impl DeliveryIndex {
    const SCAN_LIMIT: usize = 16;

    fn get(&mut self, out: &[Delivery], client: &ClientId) -> Option<usize> {
        if self.0.is_none() && out.len() > Self::SCAN_LIMIT {
            let map = out
                .iter()
                .enumerate()
                .map(|(i, d)| (d.client.clone(), i))
                .collect();
            self.0 = Some(map);
        }
        match &self.0 {
            Some(map) => map.get(client).copied(),
            None => out.iter().position(|d| &d.client == client),
        }
    }

    /// Records that `out`'s last delivery is `client`'s (once there is a map).
    fn pushed(&mut self, out: &[Delivery]) {
        if let (Some(map), Some(d)) = (&mut self.0, out.last()) {
            map.insert(d.client.clone(), out.len() - 1);
        }
    }
}

/// Adds `client`'s delivery or merges it into the one it has. `may_repeat`: false when
/// `client` cannot have one yet (the first trie node's subscribers), which skips the look-up.
fn add_delivery(
    out: &mut Vec<Delivery>,
    index: &mut DeliveryIndex,
    may_repeat: bool,
    msg: &Message,
    client: &ClientId,
    entry: &SubEntry,
    share: Option<&TopicFilter>,
) {
    let existing = if may_repeat {
        index.get(out, client)
    } else {
        None
    };
    match existing {
        Some(i) => {
            let (qos, retain) = granted(msg, entry);
            let d = &mut out[i];
            d.qos = d.qos.max(qos);
            d.retain |= retain;
            d.sub_ids.extend(entry.id);
        }
        None => {
            out.push(delivery(msg, client, entry, share));
            index.pushed(out);
        }
    }
}

/// `client`'s delivery of `msg` through the subscription `entry`.
fn delivery(
    msg: &Message,
    client: &ClientId,
    entry: &SubEntry,
    share: Option<&TopicFilter>,
) -> Delivery {
    let (qos, retain) = granted(msg, entry);
    Delivery {
        client: client.clone(),
        qos,
        retain,
        sub_ids: entry.id.into_iter().collect(),
        share: share.cloned(),
        receipt: None,
    }
}

/// The QoS and RETAIN flag of `msg` delivered through `entry`: the lower QoS, and
/// RETAIN cleared on live delivery unless retain-as-published [MQTT-3.3.1-9],
/// [MQTT-3.3.1-12], [MQTT-3.3.1-13].
fn granted(msg: &Message, entry: &SubEntry) -> (QoS, bool) {
    (
        msg.qos.min(entry.options.qos),
        msg.retain && entry.options.retain_as_published,
    )
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
