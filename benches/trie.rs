//! Subscription trie micro-benchmark: time to find every subscription matching one topic
//! among 100,000 (exact filters, `+`, `#` and shared subscriptions), against the naive
//! scan that calls the reference `matches` on every filter. Run with
//! `cargo bench --bench trie`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use starling::topic::{matches, Match, SubscriptionTrie, TopicFilter, TopicName};

const SUBSCRIPTIONS: u32 = 100_000;
const SITES: u32 = 100;
const DEVICES: u32 = 1_000;

/// The filter of subscriber `i`: 80% exact, 10% with `+`, 5% with `#`, 5% shared.
fn filter(i: u32) -> String {
    let site = i % SITES;
    let device = (i / SITES) % DEVICES;
    match i % 20 {
        0 => format!("site/{site}/device/+/temp"),
        1 => format!("site/+/device/{device}/temp"),
        2 => format!("site/{site}/#"),
        3 => format!("$share/g{}/site/{site}/device/+/temp", i % 7),
        _ => format!("site/{site}/device/{device}/temp"),
    }
}

/// Topics looked up, in turn: spread over sites and devices, plus one nobody matches
/// exactly and one `$` topic that wildcards must skip.
fn topics() -> Vec<TopicName> {
    let mut names: Vec<String> = (0..62)
        .map(|k| {
            format!(
                "site/{}/device/{}/temp",
                (k * 37) % SITES,
                (k * 211) % DEVICES
            )
        })
        .collect();
    names.push("site/7/device/999999/humidity".to_string());
    names.push("$SYS/broker/load".to_string());
    names
        .into_iter()
        .map(|n| TopicName::new(n).expect("valid topic"))
        .collect()
}

struct Fixture {
    trie: SubscriptionTrie<u32, ()>,
    /// `(filter matched, subscriber)` for the naive scan; shares stored by inner filter.
    flat: Vec<(String, u32)>,
    topics: Vec<TopicName>,
}

fn fixture() -> Fixture {
    let mut trie = SubscriptionTrie::new();
    let mut flat = Vec::with_capacity(SUBSCRIPTIONS as usize);
    for i in 0..SUBSCRIPTIONS {
        let f = TopicFilter::new(filter(i)).expect("valid filter");
        flat.push((f.match_filter().to_string(), i));
        trie.insert(&f, i, ());
    }
    Fixture {
        trie,
        flat,
        topics: topics(),
    }
}

/// Subscriptions matched by the trie: direct ones plus every member of a matched group.
fn trie_count(trie: &SubscriptionTrie<u32, ()>, topic: &TopicName) -> usize {
    let mut n = 0;
    trie.for_each_match(topic, |m| match m {
        Match::Direct { .. } => n += 1,
        Match::Shared { members, .. } => n += members.len(),
    });
    n
}

fn naive_count(flat: &[(String, u32)], topic: &TopicName) -> usize {
    flat.iter()
        .filter(|(f, _)| matches(f, topic.as_str()))
        .count()
}

fn lookup(c: &mut Criterion) {
    let fx = fixture();
    for t in &fx.topics {
        assert_eq!(
            trie_count(&fx.trie, t),
            naive_count(&fx.flat, t),
            "trie and naive scan disagree on {}",
            t.as_str()
        );
    }
    let mut group = c.benchmark_group("match_100k");
    let mut k = 0;
    group.bench_function("trie", |b| {
        b.iter(|| {
            k = (k + 1) % fx.topics.len();
            trie_count(&fx.trie, black_box(&fx.topics[k]))
        })
    });
    group.bench_function("naive_scan", |b| {
        b.iter(|| {
            k = (k + 1) % fx.topics.len();
            naive_count(&fx.flat, black_box(&fx.topics[k]))
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookup
}
criterion_main!(benches);
