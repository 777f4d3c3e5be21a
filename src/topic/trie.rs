//! The subscription trie: finds every subscription matching a topic name by walking filter levels.

use ahash::AHashMap as HashMap;
use std::fmt;
use std::hash::Hash;
use std::mem;

use super::{TopicFilter, TopicName};

/// A subscription that matches a topic name, given to the visitor of
/// [`SubscriptionTrie::for_each_match`].
#[derive(Debug)]
pub enum Match<'a, K, V> {
    /// A non-shared subscription of `key`.
    Direct {
        /// The subscriber.
        key: &'a K,
        /// What was stored with the subscription.
        value: &'a V,
    },
    /// A shared subscription group [MQTT-4.8.2]: the caller delivers to one member.
    Shared {
        /// The share name (`g` in `$share/g/a/+`).
        group: &'a str,
        /// The full `$share/{group}/{filter}` filter. It identifies the group uniquely
        /// (group name and inner filter) and is cheap to clone, so the caller can key its
        /// round-robin state by it; [`TopicFilter::match_filter`] gives the inner filter.
        filter: &'a TopicFilter,
        /// The members in subscription order; never empty.
        members: &'a [(K, V)],
    },
}

impl<K, V> Clone for Match<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Match<'_, K, V> {}

/// The members of one shared subscription group at one node.
struct Group<K, V> {
    /// The full `$share/{group}/{filter}`; at a given node it differs only by group name.
    filter: TopicFilter,
    members: Vec<(K, V)>,
}

/// One filter level. `+` and `#` have their own slots; other levels are keyed by text.
struct Node<K, V> {
    children: HashMap<Box<str>, Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    hash: Option<Box<Node<K, V>>>,
    direct: HashMap<K, V>,
    groups: Vec<Group<K, V>>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            hash: None,
            direct: HashMap::new(),
            groups: Vec::new(),
        }
    }
}

impl<K, V> Drop for Node<K, V> {
    /// Iterative, so that a filter with tens of thousands of levels cannot overflow the stack.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        self.take_children(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.take_children(&mut stack);
        }
    }
}

impl<K, V> Node<K, V> {
    fn take_children(&mut self, out: &mut Vec<Node<K, V>>) {
        out.extend(self.children.drain().map(|(_, node)| node));
        out.extend(self.plus.take().map(|node| *node));
        out.extend(self.hash.take().map(|node| *node));
    }

    fn child(&self, level: &str) -> Option<&Node<K, V>> {
        match level {
            "+" => self.plus.as_deref(),
            "#" => self.hash.as_deref(),
            _ => self.children.get(level),
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        match level {
            "+" => self.plus.as_deref_mut(),
            "#" => self.hash.as_deref_mut(),
            _ => self.children.get_mut(level),
        }
    }

    fn child_or_insert(&mut self, level: &str) -> &mut Node<K, V> {
        match level {
            "+" => self.plus.get_or_insert_with(Box::default),
            "#" => self.hash.get_or_insert_with(Box::default),
            _ => self.children.entry(Box::from(level)).or_default(),
        }
    }

    fn remove_child(&mut self, level: &str) {
        match level {
            "+" => self.plus = None,
            "#" => self.hash = None,
            _ => {
                self.children.remove(level);
                shrink_map(&mut self.children);
            }
        }
    }

    fn child_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some()) + usize::from(self.hash.is_some())
    }

    fn has_subscriptions(&self) -> bool {
        !self.direct.is_empty() || !self.groups.is_empty()
    }

    fn is_empty(&self) -> bool {
        !self.has_subscriptions() && self.child_count() == 0
    }

    fn descend(&self, filter: &str) -> Option<&Node<K, V>> {
        let mut node = self;
        for level in filter.split('/') {
            node = node.child(level)?;
        }
        Some(node)
    }

    fn descend_mut(&mut self, filter: &str) -> Option<&mut Node<K, V>> {
        let mut node = self;
        for level in filter.split('/') {
            node = node.child_mut(level)?;
        }
        Some(node)
    }

    fn descend_or_insert(&mut self, filter: &str) -> &mut Node<K, V> {
        let mut node = self;
        for level in filter.split('/') {
            node = node.child_or_insert(level);
        }
        node
    }

    /// Removes the nodes along `filter` that were left empty below its last node, which
    /// must itself be empty. Called on the root.
    fn prune(&mut self, filter: &str) -> Option<()> {
        // Pass 1: the deepest node on the path that stays (the root at worst).
        let mut keep = 0;
        let mut node = &*self;
        for (depth, level) in filter.split('/').enumerate() {
            if node.has_subscriptions() || node.child_count() > 1 {
                keep = depth;
            }
            node = node.child(level)?;
        }
        // Pass 2: cut the edge below it; everything under that edge is the empty chain.
        let mut levels = filter.split('/');
        let mut node = self;
        for _ in 0..keep {
            node = node.child_mut(levels.next()?)?;
        }
        node.remove_child(levels.next()?);
        Some(())
    }

    /// Hands every subscription stored at this node to `f`.
    fn emit<'a>(&'a self, f: &mut impl FnMut(Match<'a, K, V>)) {
        for (key, value) in &self.direct {
            f(Match::Direct { key, value });
        }
        for group in &self.groups {
            f(Match::Shared {
                group: group.filter.share().map_or("", |share| share.group),
                filter: &group.filter,
                members: &group.members,
            });
        }
    }

    #[cfg(test)]
    fn count_nodes(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
            stack.extend(node.plus.as_deref());
            stack.extend(node.hash.as_deref());
        }
        count
    }
}

/// Releases the spare capacity of a map that shrank to a quarter of it.
fn shrink_map<A: Eq + Hash, B>(map: &mut HashMap<A, B>) {
    if map.capacity() > 16 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}

/// Subscriptions indexed by filter level: matching a topic name costs time in the
/// number of its levels and of the matching nodes, not in the number of filters.
///
/// `K` names a subscriber (a client id, a session handle) and `V` is whatever is kept
/// with the subscription (options, a subscription identifier). A key has at most one
/// subscription per filter; a `$share/{group}/{filter}` filter is stored in group
/// `group` at the node of `filter`, separately from a non-shared subscription to
/// `filter` by the same key.
///
/// ```
/// use starling::protocol::QoS;
/// use starling::topic::{Match, SubscriptionTrie, TopicFilter, TopicName};
///
/// let mut trie = SubscriptionTrie::new();
/// trie.insert(&TopicFilter::new("sensors/+/temp")?, "alice", QoS::AtLeastOnce);
/// trie.insert(&TopicFilter::new("sensors/#")?, "bob", QoS::AtMostOnce);
/// trie.insert(&TopicFilter::new("$share/g/sensors/#")?, "carol", QoS::AtMostOnce);
/// trie.insert(&TopicFilter::new("$share/g/sensors/#")?, "dave", QoS::AtMostOnce);
/// assert_eq!(trie.len(), 4);
///
/// let (mut direct, mut groups) = (Vec::new(), Vec::new());
/// trie.for_each_match(&TopicName::new("sensors/1/temp")?, |m| match m {
///     Match::Direct { key, value } => direct.push((*key, *value)),
///     Match::Shared { group, members, .. } => groups.push((group, members.len())),
/// });
/// direct.sort();
/// assert_eq!(direct, [("alice", QoS::AtLeastOnce), ("bob", QoS::AtMostOnce)]);
/// assert_eq!(groups, [("g", 2)]);
///
/// assert_eq!(trie.remove(&TopicFilter::new("sensors/#")?, &"bob"), Some(QoS::AtMostOnce));
/// # Ok::<(), starling::topic::TopicError>(())
/// ```
pub struct SubscriptionTrie<K, V> {
    root: Node<K, V>,
    len: usize,
}

impl<K, V> Default for SubscriptionTrie<K, V> {
    fn default() -> Self {
        SubscriptionTrie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<K, V> fmt::Debug for SubscriptionTrie<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionTrie")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<K, V> SubscriptionTrie<K, V> {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of subscriptions: direct ones plus shared group memberships.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f` once per direct subscription and once per shared group whose filter
    /// matches `topic` (same semantics as [`matches`](super::matches), including the `$`
    /// rule [MQTT-4.7.2-1]). A key subscribed through several overlapping filters is
    /// reported once per filter; deduplication and picking a group member are the
    /// caller's. The order of the calls is unspecified.
    ///
    /// It builds no strings and allocates nothing per level: only when the walk branches
    /// (a `+` child next to an exact child) does it grow one small stack for the call.
    pub fn for_each_match<'a>(&'a self, topic: &TopicName, mut f: impl FnMut(Match<'a, K, V>)) {
        self.for_each_match_by_node(topic, |_, m| f(m));
    }

    /// [`SubscriptionTrie::for_each_match`], also passing the number of the trie node
    /// each match comes from (1, 2, ... in visiting order). The direct matches of one
    /// node have distinct keys, so a caller that deduplicates by key needs to compare
    /// only matches of different nodes.
    pub fn for_each_match_by_node<'a>(
        &'a self,
        topic: &TopicName,
        mut f: impl FnMut(usize, Match<'a, K, V>),
    ) {
        let mut visited = 0;
        let mut emit = |node: &'a Node<K, V>| {
            visited += 1;
            node.emit(&mut |m| f(visited, m));
        };
        let mut stack: Vec<(&'a Node<K, V>, std::str::Split<'_, char>)> = Vec::new();
        // At the root, wildcards do not match a `$` topic.
        let mut wildcards = !topic.is_dollar();
        let mut current = Some((&self.root, topic.levels()));
        while let Some((mut node, mut levels)) = current.take().or_else(|| stack.pop()) {
            loop {
                if wildcards {
                    if let Some(hash) = node.hash.as_deref() {
                        emit(hash);
                    }
                }
                let Some(level) = levels.next() else {
                    emit(node);
                    break;
                };
                let plus = if wildcards {
                    node.plus.as_deref()
                } else {
                    None
                };
                wildcards = true;
                match (node.children.get(level), plus) {
                    (Some(exact), Some(plus)) => {
                        stack.push((plus, levels.clone()));
                        node = exact;
                    }
                    (Some(next), None) | (None, Some(next)) => node = next,
                    (None, None) => break,
                }
            }
        }
    }

    #[cfg(test)]
    pub(super) fn node_count(&self) -> usize {
        self.root.count_nodes()
    }
}

impl<K: Eq + Hash, V> SubscriptionTrie<K, V> {
    /// Subscribes `key` to `filter`; returns the previous value when `key` already
    /// had a subscription to this exact filter (a replacement keeps its place in a
    /// shared group).
    pub fn insert(&mut self, filter: &TopicFilter, key: K, value: V) -> Option<V> {
        let node = self.root.descend_or_insert(filter.match_filter());
        let old = if filter.share().is_some() {
            insert_member(&mut node.groups, filter, key, value)
        } else {
            node.direct.insert(key, value)
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Unsubscribes `key` from `filter`; returns the value when it was subscribed.
    /// Nodes left empty are freed, so memory follows the live subscriptions.
    pub fn remove(&mut self, filter: &TopicFilter, key: &K) -> Option<V> {
        let inner = filter.match_filter();
        let node = self.root.descend_mut(inner)?;
        let old = if filter.share().is_some() {
            remove_member(&mut node.groups, filter, key)?
        } else {
            let old = node.direct.remove(key)?;
            shrink_map(&mut node.direct);
            old
        };
        self.len -= 1;
        if node.is_empty() {
            self.root.prune(inner);
        }
        Some(old)
    }

    /// The value of `key`'s subscription to `filter`.
    pub fn get(&self, filter: &TopicFilter, key: &K) -> Option<&V> {
        let node = self.root.descend(filter.match_filter())?;
        if filter.share().is_some() {
            let group = node.groups.iter().find(|group| group.filter == *filter)?;
            group.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
        } else {
            node.direct.get(key)
        }
    }
}

fn insert_member<K: Eq, V>(
    groups: &mut Vec<Group<K, V>>,
    filter: &TopicFilter,
    key: K,
    value: V,
) -> Option<V> {
    let index = match groups.iter().position(|group| group.filter == *filter) {
        Some(index) => index,
        None => {
            groups.push(Group {
                filter: filter.clone(),
                members: Vec::new(),
            });
            groups.len() - 1
        }
    };
    let members = &mut groups[index].members;
    if let Some((_, old)) = members.iter_mut().find(|(k, _)| *k == key) {
        return Some(mem::replace(old, value));
    }
    members.push((key, value));
    None
}

fn remove_member<K: Eq, V>(
    groups: &mut Vec<Group<K, V>>,
    filter: &TopicFilter,
    key: &K,
) -> Option<V> {
    let index = groups.iter().position(|group| group.filter == *filter)?;
    let members = &mut groups[index].members;
    let position = members.iter().position(|(k, _)| k == key)?;
    let (_, old) = members.remove(position);
    if members.is_empty() {
        groups.remove(index);
    } else if members.capacity() > 16 && members.len() * 4 < members.capacity() {
        members.shrink_to_fit();
    }
    Some(old)
}

#[cfg(test)]
mod tests;
