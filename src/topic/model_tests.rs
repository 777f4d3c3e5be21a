//! Model-based property tests: the trie and the tree against the naive `matches` and plain collections.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::{matches, Match, SubscriptionTrie, TopicFilter, TopicName, TopicTree};

/// Few levels, so that filters and topics actually meet; `$` levels test [MQTT-4.7.2-1].
const LEVELS: &[&str] = &["a", "b", "", "$SYS", "$x"];
const FILTER_LEVELS: &[&str] = &["a", "b", "", "$SYS", "$x", "+", "+"];

fn topic() -> impl Strategy<Value = TopicName> {
    prop::collection::vec(select(LEVELS), 1..5).prop_filter_map("valid topic name", |levels| {
        TopicName::new(levels.join("/")).ok()
    })
}

/// Plain or `$share/{g|h}/...` filters, with `+` levels and an optional trailing `#`.
fn filter() -> impl Strategy<Value = TopicFilter> {
    let levels = prop::collection::vec(select(FILTER_LEVELS), 0..4);
    (
        prop::option::of(select(&["g", "h"][..])),
        levels,
        any::<bool>(),
    )
        .prop_filter_map("valid filter", |(group, levels, hash)| {
            crate::topic::assemble_filter(group, &levels, hash)
        })
}

/// Every non-root node a trie or tree of these paths needs: one per distinct level prefix.
fn expected_nodes<'a>(paths: impl Iterator<Item = &'a str>) -> usize {
    let mut prefixes = HashSet::new();
    for path in paths {
        let levels: Vec<&str> = path.split('/').collect();
        for end in 1..=levels.len() {
            prefixes.insert(levels[..end].to_vec());
        }
    }
    prefixes.len() + 1
}

#[derive(Debug, Clone)]
enum TrieOp {
    Insert(Index, u8, u32),
    Remove(Index, u8),
}

fn trie_op() -> impl Strategy<Value = TrieOp> {
    prop_oneof![
        3 => (any::<Index>(), 0..4u8, any::<u32>()).prop_map(|(f, k, v)| TrieOp::Insert(f, k, v)),
        2 => (any::<Index>(), 0..4u8).prop_map(|(f, k)| TrieOp::Remove(f, k)),
    ]
}

/// A match made comparable: direct (key, filter, value) or shared (filter, members).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Direct(u8, String, u32),
    Shared(String, Vec<(u8, u32)>),
}

type Trie = SubscriptionTrie<u8, (TopicFilter, u32)>;

fn trie_matches(trie: &Trie, topic: &TopicName) -> Vec<Seen> {
    let mut seen = Vec::new();
    trie.for_each_match(topic, |m| match m {
        Match::Direct { key, value } => seen.push(Seen::Direct(*key, value.0.to_string(), value.1)),
        Match::Shared {
            group,
            filter,
            members,
        } => {
            assert_eq!(filter.share().map(|s| s.group), Some(group));
            let members = members.iter().map(|(k, (f, v))| {
                assert_eq!(f, filter);
                (*k, *v)
            });
            seen.push(Seen::Shared(filter.to_string(), members.collect()));
        }
    });
    seen.sort();
    seen
}

/// The model: subscriptions in insertion order (a replacement keeps its place).
fn model_matches(model: &[(TopicFilter, u8, u32)], topic: &TopicName) -> Vec<Seen> {
    let mut direct = Vec::new();
    let mut shared: BTreeMap<String, Vec<(u8, u32)>> = BTreeMap::new();
    for (filter, key, value) in model {
        if !matches(filter.match_filter(), topic.as_str()) {
            continue;
        }
        if filter.share().is_some() {
            shared
                .entry(filter.to_string())
                .or_default()
                .push((*key, *value));
        } else {
            direct.push(Seen::Direct(*key, filter.to_string(), *value));
        }
    }
    direct.extend(
        shared
            .into_iter()
            .map(|(filter, members)| Seen::Shared(filter, members)),
    );
    direct.sort();
    direct
}

fn apply_trie_op(
    trie: &mut Trie,
    model: &mut Vec<(TopicFilter, u8, u32)>,
    filters: &[TopicFilter],
    op: &TrieOp,
) {
    match op {
        TrieOp::Insert(index, key, value) => {
            let filter = index.get(filters);
            let old = trie.insert(filter, *key, (filter.clone(), *value));
            let slot = model.iter_mut().find(|(f, k, _)| f == filter && k == key);
            let expected = match slot {
                Some((_, _, v)) => Some(std::mem::replace(v, *value)),
                None => {
                    model.push((filter.clone(), *key, *value));
                    None
                }
            };
            assert_eq!(old.map(|(_, v)| v), expected);
        }
        TrieOp::Remove(index, key) => {
            let filter = index.get(filters);
            let old = trie.remove(filter, key);
            let position = model.iter().position(|(f, k, _)| f == filter && k == key);
            let expected = position.map(|p| model.remove(p).2);
            assert_eq!(old.map(|(_, v)| v), expected);
        }
    }
}

#[derive(Debug, Clone)]
enum TreeOp {
    Insert(Index, u32),
    Remove(Index),
}

fn tree_op() -> impl Strategy<Value = TreeOp> {
    prop_oneof![
        3 => (any::<Index>(), any::<u32>()).prop_map(|(t, v)| TreeOp::Insert(t, v)),
        2 => any::<Index>().prop_map(TreeOp::Remove),
    ]
}

fn sorted<'a>(entries: impl Iterator<Item = (&'a TopicName, &'a u32)>) -> Vec<(String, u32)> {
    let mut out: Vec<_> = entries.map(|(t, v)| (t.to_string(), *v)).collect();
    out.sort();
    out
}

proptest! {
    #[test]
    fn trie_agrees_with_naive_model(
        filters in prop::collection::vec(filter(), 1..8),
        topics in prop::collection::vec(topic(), 1..8),
        ops in prop::collection::vec(trie_op(), 1..40),
    ) {
        let mut trie = Trie::new();
        let mut model = Vec::new();
        for op in &ops {
            apply_trie_op(&mut trie, &mut model, &filters, op);
            prop_assert_eq!(trie.len(), model.len());
            prop_assert_eq!(trie.is_empty(), model.is_empty());
            prop_assert_eq!(trie.node_count(), expected_nodes(model.iter().map(|(f, _, _)| f.match_filter())));
            for (filter, key, value) in &model {
                prop_assert_eq!(trie.get(filter, key).map(|(_, v)| *v), Some(*value));
            }
            for topic in &topics {
                prop_assert_eq!(trie_matches(&trie, topic), model_matches(&model, topic), "topic {}", topic);
            }
        }
    }

    #[test]
    fn tree_agrees_with_naive_model(
        topics in prop::collection::vec(topic(), 1..8),
        filters in prop::collection::vec(filter(), 1..8),
        ops in prop::collection::vec(tree_op(), 1..40),
    ) {
        let mut tree = TopicTree::new();
        let mut model: BTreeMap<TopicName, u32> = BTreeMap::new();
        for op in &ops {
            match op {
                TreeOp::Insert(index, value) => {
                    let topic = index.get(&topics);
                    prop_assert_eq!(tree.insert(topic, *value), model.insert(topic.clone(), *value));
                }
                TreeOp::Remove(index) => {
                    let topic = index.get(&topics);
                    prop_assert_eq!(tree.remove(topic), model.remove(topic));
                }
            }
            prop_assert_eq!(tree.len(), model.len());
            prop_assert_eq!(tree.is_empty(), model.is_empty());
            prop_assert_eq!(tree.node_count(), expected_nodes(model.keys().map(TopicName::as_str)));
            for topic in &topics {
                prop_assert_eq!(tree.get(topic), model.get(topic));
            }
            prop_assert_eq!(sorted(tree.iter()), sorted(model.iter()));
            for filter in &filters {
                let inner = filter.match_filter();
                let mut seen = Vec::new();
                tree.for_each_match(inner, |t, v| seen.push((t, v)));
                let expected = model.iter().filter(|(t, _)| matches(inner, t.as_str()));
                prop_assert_eq!(sorted(seen.into_iter()), sorted(expected), "filter {}", inner);
            }
        }
    }
}
