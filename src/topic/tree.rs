//! The topic tree: values stored by topic name (retained messages), looked up by filter.

use ahash::AHashMap as HashMap;
use std::fmt;
use std::mem;

use super::TopicName;

/// One topic level; `entry` holds the value of the topic name ending here.
struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    entry: Option<(TopicName, V)>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            entry: None,
        }
    }
}

impl<V> Drop for Node<V> {
    /// Iterative, so that a topic with tens of thousands of levels cannot overflow the stack.
    fn drop(&mut self) {
        let mut stack: Vec<Node<V>> = self.children.drain().map(|(_, node)| node).collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain().map(|(_, node)| node));
        }
    }
}

impl<V> Node<V> {
    fn descend(&self, topic: &str) -> Option<&Node<V>> {
        let mut node = self;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        Some(node)
    }

    fn descend_mut(&mut self, topic: &str) -> Option<&mut Node<V>> {
        let mut node = self;
        for level in topic.split('/') {
            node = node.children.get_mut(level)?;
        }
        Some(node)
    }

    fn descend_or_insert(&mut self, topic: &str) -> &mut Node<V> {
        let mut node = self;
        for level in topic.split('/') {
            node = node.children.entry(Box::from(level)).or_default();
        }
        node
    }

    fn is_empty(&self) -> bool {
        self.entry.is_none() && self.children.is_empty()
    }

    /// Removes the nodes along `topic` that were left empty below its last node, which
    /// must itself be empty. Called on the root.
    fn prune(&mut self, topic: &str) -> Option<()> {
        // Pass 1: the deepest node on the path that stays (the root at worst).
        let mut keep = 0;
        let mut node = &*self;
        for (depth, level) in topic.split('/').enumerate() {
            if node.entry.is_some() || node.children.len() > 1 {
                keep = depth;
            }
            node = node.children.get(level)?;
        }
        // Pass 2: cut the edge below it; everything under that edge is the empty chain.
        let mut levels = topic.split('/');
        let mut node = self;
        for _ in 0..keep {
            node = node.children.get_mut(levels.next()?)?;
        }
        node.children.remove(levels.next()?);
        if node.children.capacity() > 16 && node.children.len() * 4 < node.children.capacity() {
            node.children.shrink_to_fit();
        }
        Some(())
    }
}

/// Every entry at or below `start`, depth first.
fn entries<V>(start: Vec<&Node<V>>) -> impl Iterator<Item = (&TopicName, &V)> {
    let mut stack = start;
    std::iter::from_fn(move || loop {
        let node = stack.pop()?;
        stack.extend(node.children.values());
        if let Some((topic, value)) = &node.entry {
            return Some((topic, value));
        }
    })
}

/// Values keyed by topic name and indexed by level, so that a filter with wildcards
/// visits only the matching branches. Used for retained messages.
///
/// ```
/// use starling::topic::{TopicName, TopicTree};
///
/// let mut retained = TopicTree::new();
/// retained.insert(&TopicName::new("sensors/1/temp")?, "21.5");
/// retained.insert(&TopicName::new("sensors/2/temp")?, "19.0");
/// retained.insert(&TopicName::new("sensors/2/humidity")?, "40");
///
/// let mut found = Vec::new();
/// retained.for_each_match("sensors/+/temp", |topic, value| found.push((topic.as_str(), *value)));
/// found.sort();
/// assert_eq!(found, [("sensors/1/temp", "21.5"), ("sensors/2/temp", "19.0")]);
/// # Ok::<(), starling::topic::TopicError>(())
/// ```
pub struct TopicTree<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for TopicTree<V> {
    fn default() -> Self {
        TopicTree {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V> fmt::Debug for TopicTree<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicTree")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<V> TopicTree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of stored topics.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no topic is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` under `topic`; returns the value it replaces.
    pub fn insert(&mut self, topic: &TopicName, value: V) -> Option<V> {
        let node = self.root.descend_or_insert(topic.as_str());
        match &mut node.entry {
            Some((_, old)) => Some(mem::replace(old, value)),
            None => {
                node.entry = Some((topic.clone(), value));
                self.len += 1;
                None
            }
        }
    }

    /// Removes the value of `topic`; nodes left empty are freed.
    pub fn remove(&mut self, topic: &TopicName) -> Option<V> {
        let node = self.root.descend_mut(topic.as_str())?;
        let (_, value) = node.entry.take()?;
        self.len -= 1;
        if node.is_empty() {
            self.root.prune(topic.as_str());
        }
        Some(value)
    }

    /// The value stored under `topic`.
    pub fn get(&self, topic: &TopicName) -> Option<&V> {
        self.root
            .descend(topic.as_str())?
            .entry
            .as_ref()
            .map(|(_, value)| value)
    }

    /// Every stored topic and its value, in unspecified order.
    pub fn iter(&self) -> impl Iterator<Item = (&TopicName, &V)> + '_ {
        entries(vec![&self.root])
    }

    /// Calls `f` for every stored topic that `filter` matches, with the semantics of
    /// [`matches`](super::matches): `+` is one level, `#` also matches the parent, and a
    /// filter starting with a wildcard skips `$` topics [MQTT-4.7.2-1]. `filter` is an
    /// already validated filter without its `$share/{group}/` prefix. The order of the
    /// calls is unspecified.
    pub fn for_each_match<'a>(&'a self, filter: &str, mut f: impl FnMut(&'a TopicName, &'a V)) {
        // (node, the filter levels still to match, whether node is the root)
        let mut stack = Vec::new();
        let mut current = Some((&self.root, filter.split('/'), true));
        while let Some((node, mut levels, root)) = current.take().or_else(|| stack.pop()) {
            // At the root, wildcards do not match `$` levels.
            let children = node
                .children
                .iter()
                .filter(move |(level, _)| !(root && level.starts_with('$')));
            match levels.next() {
                None => {
                    if let Some((topic, value)) = &node.entry {
                        f(topic, value);
                    }
                }
                Some("#") => {
                    let start: Vec<_> = if root {
                        children.map(|(_, child)| child).collect()
                    } else {
                        vec![node]
                    };
                    for (topic, value) in entries(start) {
                        f(topic, value);
                    }
                }
                Some("+") => {
                    stack.extend(children.map(|(_, child)| (child, levels.clone(), false)))
                }
                Some(level) => {
                    current = node.children.get(level).map(|child| (child, levels, false))
                }
            }
        }
    }

    #[cfg(test)]
    pub(super) fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    fn matched(tree: &TopicTree<u32>, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        tree.for_each_match(filter, |t, v| out.push(format!("{t}={v}")));
        out.sort();
        out
    }

    fn build(topics: &[&str]) -> TopicTree<u32> {
        let mut tree = TopicTree::new();
        for (i, t) in topics.iter().enumerate() {
            assert_eq!(tree.insert(&topic(t), i as u32), None);
        }
        tree
    }

    #[test]
    fn matches_filters() {
        let tree = build(&[
            "a", "a/b", "a/", "a//b", "/", "b/b", "$SYS", "$SYS/x", "a/b/c",
        ]);
        let table: &[(&str, &[&str])] = &[
            ("a", &["a=0"]),
            ("a/b", &["a/b=1"]),
            ("a/#", &["a/=2", "a//b=3", "a/b/c=8", "a/b=1", "a=0"]),
            ("a/+", &["a/=2", "a/b=1"]),
            ("+/b", &["a/b=1", "b/b=5"]),
            ("+/+", &["/=4", "a/=2", "a/b=1", "b/b=5"]),
            ("+", &["a=0"]),
            (
                "#",
                &["/=4", "a/=2", "a//b=3", "a/b/c=8", "a/b=1", "a=0", "b/b=5"],
            ),
            ("$SYS/#", &["$SYS/x=7", "$SYS=6"]),
            ("$SYS/+", &["$SYS/x=7"]),
            ("+/x", &[]),
            ("a/+/b", &["a//b=3"]),
            ("c/#", &[]),
            ("/#", &["/=4"]),
        ];
        for (filter, expected) in table {
            let mut expected = expected.to_vec();
            expected.sort();
            assert_eq!(matched(&tree, filter), expected, "filter {filter}");
        }
    }

    #[test]
    fn insert_replace_remove_prune() {
        let mut tree = build(&["a/b/c", "a", "a/b/d"]);
        assert_eq!(tree.insert(&topic("a"), 9), Some(1));
        assert_eq!(tree.get(&topic("a")), Some(&9));
        assert_eq!(tree.get(&topic("a/b")), None);
        assert_eq!(tree.len(), 3);
        assert_eq!(tree.remove(&topic("a/b")), None);
        assert_eq!(tree.remove(&topic("a/b/c")), Some(0));
        assert_eq!(tree.node_count(), 4);
        assert_eq!(tree.remove(&topic("a/b/d")), Some(2));
        assert_eq!(tree.node_count(), 2);
        let mut all: Vec<_> = tree.iter().map(|(t, v)| format!("{t}={v}")).collect();
        all.sort();
        assert_eq!(all, ["a=9"]);
        assert_eq!(tree.remove(&topic("a")), Some(9));
        assert!(tree.is_empty());
        assert_eq!(tree.node_count(), 1);
    }

    #[test]
    fn deep_topics_do_not_overflow_the_stack() {
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let deep = vec!["a"; 30_000].join("/");
                let mut tree = TopicTree::new();
                tree.insert(&topic(&deep), 1);
                tree.insert(&topic(&format!("{deep}/b")), 2);
                let mut n = 0;
                tree.for_each_match("#", |_, _| n += 1);
                tree.for_each_match(&vec!["+"; 30_000].join("/"), |_, _| n += 1);
                assert_eq!(n, 3);
                assert_eq!(tree.iter().count(), 2);
                assert_eq!(tree.remove(&topic(&deep)), Some(1));
                drop(tree);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
