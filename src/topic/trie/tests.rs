//! Unit tables for the subscription trie.

use super::*;

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

/// The matches for `t` as sorted strings: `key=value` or `share:key,key`.
fn matched(trie: &SubscriptionTrie<&'static str, u32>, t: &str) -> Vec<String> {
    let mut out = Vec::new();
    trie.for_each_match(&topic(t), |m| match m {
        Match::Direct { key, value } => out.push(format!("{key}={value}")),
        Match::Shared {
            group,
            filter,
            members,
        } => {
            assert_eq!(filter.share().unwrap().group, group);
            let keys: Vec<_> = members.iter().map(|(k, _)| *k).collect();
            out.push(format!("{filter}:{}", keys.join(",")));
        }
    });
    out.sort();
    out
}

#[test]
fn matches_through_levels_and_wildcards() {
    let mut trie = SubscriptionTrie::new();
    for (i, f) in [
        "a/b", "a/+", "a/#", "#", "+/b", "a//b", "$SYS/#", "+", "/", "a/b/c",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(trie.insert(&filter(f), *f, i as u32), None);
    }
    assert_eq!(trie.len(), 10);
    let table: &[(&str, &[&str])] = &[
        ("a/b", &["#=3", "+/b=4", "a/#=2", "a/+=1", "a/b=0"]),
        ("a", &["#=3", "+=7", "a/#=2"]),
        ("a/", &["#=3", "a/#=2", "a/+=1"]),
        ("a//b", &["#=3", "a/#=2", "a//b=5"]),
        ("/", &["#=3", "/=8"]),
        ("b", &["#=3", "+=7"]),
        ("a/b/c", &["#=3", "a/#=2", "a/b/c=9"]),
        ("$SYS/b", &["$SYS/#=6"]),
        ("$SYS", &["$SYS/#=6"]),
        ("$x", &[]),
    ];
    for (t, expected) in table {
        let mut expected = expected.to_vec();
        expected.sort();
        assert_eq!(matched(&trie, t), expected, "topic {t}");
    }
}

#[test]
fn one_key_with_overlapping_filters_matches_each() {
    let mut trie = SubscriptionTrie::new();
    trie.insert(&filter("a/+"), "c", 1);
    trie.insert(&filter("a/#"), "c", 2);
    assert_eq!(trie.insert(&filter("a/#"), "c", 3), Some(2));
    assert_eq!(matched(&trie, "a/b"), ["c=1", "c=3"]);
    assert_eq!(trie.len(), 2);
    assert_eq!(trie.get(&filter("a/#"), &"c"), Some(&3));
}

#[test]
fn shared_groups_keep_order_and_identity() {
    let mut trie = SubscriptionTrie::new();
    trie.insert(&filter("$share/g/a/+"), "x", 1);
    trie.insert(&filter("$share/g/a/+"), "y", 2);
    trie.insert(&filter("$share/h/a/+"), "x", 3);
    trie.insert(&filter("$share/g/a/#"), "z", 4);
    trie.insert(&filter("a/+"), "x", 5);
    assert_eq!(trie.insert(&filter("$share/g/a/+"), "x", 6), Some(1));
    assert_eq!(trie.len(), 5);
    assert_eq!(
        matched(&trie, "a/b"),
        [
            "$share/g/a/#:z",
            "$share/g/a/+:x,y",
            "$share/h/a/+:x",
            "x=5"
        ]
    );
    assert_eq!(trie.get(&filter("$share/g/a/+"), &"x"), Some(&6));
    assert_eq!(trie.get(&filter("$share/h/a/+"), &"y"), None);
    assert_eq!(trie.remove(&filter("$share/g/a/+"), &"x"), Some(6));
    assert_eq!(trie.remove(&filter("$share/g/a/+"), &"x"), None);
    assert_eq!(
        matched(&trie, "a/b"),
        ["$share/g/a/#:z", "$share/g/a/+:y", "$share/h/a/+:x", "x=5"]
    );
    // `$share/g/#` has an inner filter starting with a wildcard: no `$` topics.
    trie.insert(&filter("$share/g/#"), "w", 7);
    assert_eq!(matched(&trie, "$SYS/a"), Vec::<String>::new());
}

#[test]
fn remove_prunes_every_empty_node() {
    let mut trie = SubscriptionTrie::new();
    let filters = ["a/b/c", "a/b", "a/+/#", "$share/g/a/b/c", "#", "/", "a//b"];
    for f in filters {
        trie.insert(&filter(f), 1, ());
        trie.insert(&filter(f), 2, ());
    }
    assert_eq!(trie.len(), 14);
    assert_eq!(trie.remove(&filter("a/b/c"), &3), None);
    assert_eq!(trie.remove(&filter("x/y"), &1), None);
    for f in filters.iter().rev() {
        assert_eq!(trie.remove(&filter(f), &1), Some(()));
    }
    for f in filters {
        assert_eq!(trie.remove(&filter(f), &2), Some(()));
    }
    assert!(trie.is_empty());
    assert_eq!(trie.node_count(), 1);
}

#[test]
fn deep_filters_do_not_overflow_the_stack() {
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(|| {
            let deep = vec!["+"; 30_000].join("/");
            let mut trie = SubscriptionTrie::new();
            trie.insert(&filter(&deep), 1, ());
            trie.insert(&filter(&format!("{deep}/#")), 2, ());
            let mut n = 0;
            trie.for_each_match(&topic(&vec!["a"; 30_000].join("/")), |_| n += 1);
            assert_eq!(n, 2);
            assert_eq!(trie.remove(&filter(&deep), &1), Some(()));
            drop(trie);
        })
        .unwrap()
        .join()
        .unwrap();
}
