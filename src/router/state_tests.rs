use std::time::Instant;

use super::*;
use crate::config::ShareStrategy;

use crate::router::test_support::{entry, filter, id, message};

#[test]
fn overlapping_subscriptions_deliver_once_at_max_qos() {
    let mut r = RouterState::new();
    let now = Instant::now();
    r.subscribe(&id("a"), &filter("x/+"), entry(QoS::AtMostOnce), now);
    r.subscribe(&id("a"), &filter("x/#"), entry(QoS::ExactlyOnce), now);
    r.subscribe(&id("b"), &filter("x/y"), entry(QoS::AtLeastOnce), now);
    let mut d = r.route(&message("x/y", QoS::ExactlyOnce, false, "p"));
    d.sort_by(|l, r| l.client.cmp(&r.client));
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].client.as_str(), d[0].qos), ("a", QoS::ExactlyOnce));
    assert_eq!((d[1].client.as_str(), d[1].qos), ("b", QoS::AtLeastOnce));
    // A message's own QoS caps the delivery.
    let d = r.route(&message("x/z", QoS::AtMostOnce, false, "p"));
    assert_eq!(d[0].qos, QoS::AtMostOnce);
}

#[test]
fn retained_messages_are_stored_cleared_and_sent_on_subscribe() {
    let mut r = RouterState::new();
    let now = Instant::now();
    r.retain(&message("a/b", QoS::AtLeastOnce, true, "kept"));
    r.retain(&message("a/c", QoS::AtLeastOnce, true, "gone"));
    r.retain(&message("a/c", QoS::AtLeastOnce, true, ""));
    assert_eq!(r.retained_count(), 1);
    let out = r.subscribe(&id("s"), &filter("a/#"), entry(QoS::AtLeastOnce), now);
    assert_eq!(out.retained.len(), 1);
    assert_eq!(&out.retained[0].payload[..], b"kept");
    // Retain handling 1: only when new; 2: never.
    let mut opts = entry(QoS::AtLeastOnce);
    opts.options.retain_handling = RetainHandling::SendIfNew;
    let again = r.subscribe(&id("s"), &filter("a/#"), opts, now);
    assert!(again.retained.is_empty(), "the subscription existed");
    opts.options.retain_handling = RetainHandling::DoNotSend;
    assert!(r
        .subscribe(&id("t"), &filter("a/#"), opts, now)
        .retained
        .is_empty());
}

#[test]
fn live_delivery_clears_retain_unless_retain_as_published() {
    let mut r = RouterState::new();
    let now = Instant::now();
    r.subscribe(&id("a"), &filter("t"), entry(QoS::AtMostOnce), now);
    let mut rap = entry(QoS::AtMostOnce);
    rap.options.retain_as_published = true;
    r.subscribe(&id("b"), &filter("t"), rap, now);
    let mut d = r.route(&message("t", QoS::AtMostOnce, true, "p"));
    d.sort_by(|l, r| l.client.cmp(&r.client));
    assert!(!d[0].retain, "[MQTT-3.3.1-9]");
    assert!(d[1].retain, "retain as published");
}

#[test]
fn no_local_skips_the_publisher() {
    let mut r = RouterState::new();
    let mut e = entry(QoS::AtMostOnce);
    e.options.no_local = true;
    r.subscribe(&id("pub"), &filter("t"), e, Instant::now());
    assert!(r
        .route(&message("t", QoS::AtMostOnce, false, "p"))
        .is_empty());
}

#[test]
fn shared_subscription_round_robins_over_online_members() {
    let mut r = RouterState::new();
    let now = Instant::now();
    for c in ["a", "b", "c"] {
        r.subscribe(&id(c), &filter("$share/g/t"), entry(QoS::AtMostOnce), now);
        r.set_online(&id(c), true);
    }
    r.set_online(&id("b"), false);
    let picks: Vec<String> = (0..4)
        .map(|_| {
            let d = r.route(&message("t", QoS::AtMostOnce, false, "p"));
            assert_eq!(d.len(), 1, "exactly one member per group");
            d[0].client.as_str().to_string()
        })
        .collect();
    assert_eq!(picks, ["a", "c", "a", "c"]);
}

#[test]
fn removing_a_client_removes_its_subscriptions() {
    let mut r = RouterState::new();
    let now = Instant::now();
    r.subscribe(&id("a"), &filter("x"), entry(QoS::AtMostOnce), now);
    r.subscribe(&id("a"), &filter("y/#"), entry(QoS::AtMostOnce), now);
    assert_eq!(r.subscription_count(), 2);
    assert!(r.unsubscribe(&id("a"), &filter("x")));
    assert!(!r.unsubscribe(&id("a"), &filter("x")));
    r.remove_client(&id("a"));
    assert_eq!(r.subscription_count(), 0);
}

#[test]
fn a_client_at_its_subscription_limit_may_only_renew_what_it_holds() {
    let mut r = RouterState::new();
    r.set_subscription_limit(2);
    let now = Instant::now();
    let sub = |r: &mut RouterState, client: &str, f: &str| {
        r.subscribe(&id(client), &filter(f), entry(QoS::AtMostOnce), now)
            .over_quota
    };
    assert!(!sub(&mut r, "a", "x"));
    assert!(!sub(&mut r, "a", "y"));
    assert!(sub(&mut r, "a", "z"), "a third filter is over the limit");
    assert!(
        !sub(&mut r, "a", "x"),
        "renewing a held filter is not a new one"
    );
    assert!(!sub(&mut r, "b", "z"), "the limit is per client");
    assert_eq!(r.subscription_count(), 3);
    assert_eq!(r.route(&message("z", QoS::AtMostOnce, false, "p")).len(), 1);
    assert!(r.unsubscribe(&id("a"), &filter("x")));
    assert!(!sub(&mut r, "a", "z"), "room again after an unsubscribe");
}

#[test]
fn rebuilt_index_routes_like_the_original() {
    let mut r = RouterState::new();
    let now = Instant::now();
    r.subscribe(&id("a"), &filter("x/+"), entry(QoS::AtLeastOnce), now);
    r.subscribe(
        &id("b"),
        &filter("$share/g/x/#"),
        entry(QoS::AtMostOnce),
        now,
    );
    r.set_online(&id("b"), true);
    let before = r.route(&message("x/y", QoS::AtLeastOnce, false, "p"));
    r.rebuild_index();
    let after = r.route(&message("x/y", QoS::AtLeastOnce, false, "p"));
    assert_eq!(before.len(), 2);
    assert_eq!(before, after);
}

#[test]
fn many_overlapping_clients_still_get_one_delivery_each() {
    // Past the scan limit the index switches to a map; deduplication must not change.
    let mut r = RouterState::new();
    let now = Instant::now();
    for i in 0..40 {
        let c = id(&format!("c{i}"));
        r.subscribe(&c, &filter("m/+"), entry(QoS::AtMostOnce), now);
        r.subscribe(&c, &filter("m/#"), entry(QoS::AtLeastOnce), now);
    }
    let d = r.route(&message("m/x", QoS::AtLeastOnce, false, "p"));
    assert_eq!(d.len(), 40);
    assert!(d.iter().all(|d| d.qos == QoS::AtLeastOnce));
}

#[test]
fn a_large_first_node_is_still_deduplicated_against_later_ones() {
    // 30 clients on one filter (no look-ups needed), then three of them again through
    // `#` and a shared group: the index is built late and must still find them.
    let mut r = RouterState::new();
    let now = Instant::now();
    for i in 0..30 {
        r.subscribe(
            &id(&format!("c{i}")),
            &filter("m/x"),
            entry(QoS::AtMostOnce),
            now,
        );
    }
    for c in ["c0", "c29", "late"] {
        r.subscribe(&id(c), &filter("m/#"), entry(QoS::AtLeastOnce), now);
    }
    r.set_online(&id("c5"), true);
    r.subscribe(
        &id("c5"),
        &filter("$share/g/m/x"),
        entry(QoS::ExactlyOnce),
        now,
    );
    let d = r.route(&message("m/x", QoS::ExactlyOnce, false, "p"));
    assert_eq!(d.len(), 31);
    let qos_of = |c: &str| d.iter().find(|d| d.client.as_str() == c).map(|d| d.qos);
    assert_eq!(qos_of("c0"), Some(QoS::AtLeastOnce));
    assert_eq!(qos_of("c29"), Some(QoS::AtLeastOnce));
    assert_eq!(qos_of("c5"), Some(QoS::ExactlyOnce));
    assert_eq!(qos_of("c1"), Some(QoS::AtMostOnce));
    assert_eq!(qos_of("late"), Some(QoS::AtLeastOnce));
}

fn group_picks(strategy: ShareStrategy, offline_after: Option<(usize, &str)>) -> Vec<String> {
    let mut r = RouterState::new();
    r.set_share_strategy(strategy);
    let now = Instant::now();
    for c in ["a", "b", "c"] {
        r.subscribe(&id(c), &filter("$share/g/t"), entry(QoS::AtMostOnce), now);
        r.set_online(&id(c), true);
    }
    (0..60)
        .map(|i| {
            if let Some((at, who)) = offline_after {
                if i == at {
                    r.set_online(&id(who), false);
                }
            }
            let d = r.route(&message("t", QoS::AtMostOnce, false, "p"));
            assert_eq!(d.len(), 1, "exactly one member per message");
            d[0].client.as_str().to_string()
        })
        .collect()
}

#[test]
fn sticky_strategy_keeps_one_member_until_it_goes_offline() {
    let picks = group_picks(ShareStrategy::Sticky, Some((30, "a")));
    assert!(picks[..30].iter().all(|p| p == "a"));
    assert!(picks[30..].iter().all(|p| p == "b"));
}

#[test]
fn random_strategy_spreads_over_online_members_only() {
    let picks = group_picks(ShareStrategy::Random, Some((0, "c")));
    assert!(picks.iter().all(|p| p == "a" || p == "b"));
    assert!(picks.iter().any(|p| p == "a") && picks.iter().any(|p| p == "b"));
    // Not a fixed alternation: random, not round robin.
    assert_ne!(
        picks,
        group_picks(ShareStrategy::RoundRobin, Some((0, "c")))
    );
}

#[test]
fn route_with_serves_only_the_named_share() {
    let mut r = RouterState::new();
    let now = Instant::now();
    r.subscribe(&id("d"), &filter("t"), entry(QoS::AtMostOnce), now);
    r.subscribe(&id("g"), &filter("$share/g/t"), entry(QoS::AtMostOnce), now);
    r.subscribe(&id("h"), &filter("$share/h/+"), entry(QoS::AtMostOnce), now);
    for c in ["d", "g", "h"] {
        r.set_online(&id(c), true);
    }
    let msg = message("t", QoS::AtMostOnce, false, "p");
    let clients = |d: Vec<Delivery>| -> Vec<String> {
        let mut v: Vec<String> = d.into_iter().map(|d| d.client.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(clients(r.route_with(&msg, Shares::All)), ["d", "g", "h"]);
    assert_eq!(clients(r.route_with(&msg, Shares::Skip)), ["d"]);
    let share = filter("$share/h/+");
    assert_eq!(clients(r.route_with(&msg, Shares::Only(&share))), ["h"]);
}

#[test]
fn interest_counts_filters_once_enabled() {
    use crate::router::interest::InterestChange;
    let mut r = RouterState::new();
    let now = Instant::now();
    r.subscribe(&id("a"), &filter("x/#"), entry(QoS::AtMostOnce), now);
    assert!(r.take_interest_changes().is_empty(), "off until enabled");
    r.enable_interest();
    assert_eq!(
        r.take_interest_changes(),
        [InterestChange::Add(filter("x/#"))]
    );
    r.subscribe(&id("b"), &filter("x/#"), entry(QoS::AtMostOnce), now);
    r.subscribe(&id("b"), &filter("x/#"), entry(QoS::AtLeastOnce), now);
    assert!(r.take_interest_changes().is_empty());
    r.unsubscribe(&id("a"), &filter("x/#"));
    assert!(r.take_interest_changes().is_empty());
    r.remove_client(&id("b"));
    assert_eq!(
        r.take_interest_changes(),
        [InterestChange::Remove(filter("x/#"))]
    );
}
