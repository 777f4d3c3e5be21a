//! Tables and property tests of the topic ↔ subject mapping: escaping round-trips, and a
//! filter matches a topic in MQTT exactly when one of its subjects matches the topic's
//! subject in NATS.

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use crate::topic::matches;

/// NATS subject matching (the server's rules): `*` is one token, `>` one or more
/// trailing tokens, anything else an equal token.
fn nats_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return p.next().is_none(),
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A NATS token must be non-empty and free of `.`, `*`, `>` and whitespace.
fn valid_literal_token(t: &str) -> bool {
    !t.is_empty() && !t.contains(['.', '*', '>']) && !t.chars().any(char::is_whitespace)
}

fn name(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

#[test]
fn topics_to_subjects() {
    let table = [
        ("a/b", "starling.m._a._b"),
        ("a", "starling.m._a"),
        ("/", "starling.m._._"),
        ("a//b", "starling.m._a._._b"),
        ("a.b/c*d/e>f", "starling.m._a%2Eb._c%2Ad._e%3Ef"),
        ("sp ace/tab\t", "starling.m._sp%20ace._tab%09"),
        ("100%", "starling.m._100%25"),
        ("$SYS/x", "starling.d._$SYS._x"),
        ("a/$x", "starling.m._a._$x"),
        ("é", "starling.m._%C3%A9"),
    ];
    for (topic, subject) in table {
        assert_eq!(topic_to_subject(&name(topic)), subject, "{topic:?}");
        assert_eq!(
            subject_to_topic(subject).unwrap(),
            name(topic),
            "{subject:?}"
        );
    }
    assert_eq!(retained_subject(&name("$SYS/a")), "starling.r._$SYS._a");
    assert_eq!(
        subject_to_topic("starling.r._$SYS._a").unwrap(),
        name("$SYS/a")
    );
}

#[test]
fn filters_to_subjects() {
    let table: &[(&str, &[&str])] = &[
        ("a/b", &["starling.m._a._b"]),
        ("a/+", &["starling.m._a.*"]),
        ("+", &["starling.m.*"]),
        ("#", &["starling.m.>"]),
        ("a/#", &["starling.m._a", "starling.m._a.>"]),
        ("+/#", &["starling.m.*", "starling.m.*.>"]),
        ("$SYS/#", &["starling.d._$SYS", "starling.d._$SYS.>"]),
        ("$share/g/a/+", &["starling.m._a.*"]),
        ("a/+/b.c", &["starling.m._a.*._b%2Ec"]),
    ];
    for (f, subjects) in table {
        assert_eq!(filter_to_subjects(&filter(f)), *subjects, "{f:?}");
    }
}

#[test]
fn queue_groups_name_group_and_filter() {
    assert_eq!(queue_group(&filter("a/+")), None);
    assert_eq!(
        queue_group(&filter("$share/g/a/+")).unwrap(),
        "_$share/g/a/+"
    );
    assert_eq!(
        queue_group(&filter("$share/g.h/a b")).unwrap(),
        "_$share/g%2Eh/a%20b"
    );
    assert_ne!(
        queue_group(&filter("$share/g/a")),
        queue_group(&filter("$share/g/b"))
    );
}

#[test]
fn foreign_subjects_are_refused() {
    for bad in [
        "other.a",
        "starling.m",
        "starling.m.a",
        "starling.m._a.*",
        "starling.m._%2",
        "starling.m._%zz",
        "starling.m._%2e",
        "starling.m._%FF",
        "starling.m._$SYS",
        "starling.d._a",
        "starling.m._a%2Bb",
        "starling.m._%00",
    ] {
        assert!(subject_to_topic(bad).is_err(), "{bad:?}");
    }
}

/// Levels that stress the escaping: NATS specials, `%`, spaces, `$`, empty, non-ASCII.
const LEVELS: &[&str] = &[
    "a", "b", "", "$SYS", "$x", ".", "*", ">", "a.b", "%", "%2E", " ", "_", "é", "\t", "x>",
];

fn topic() -> impl Strategy<Value = TopicName> {
    prop::collection::vec(select(LEVELS), 1..5).prop_filter_map("valid topic", |levels| {
        TopicName::new(levels.join("/")).ok()
    })
}

fn any_topic() -> impl Strategy<Value = TopicName> {
    "[^+#\u{0}]{1,40}".prop_filter_map("valid topic", |s| TopicName::new(s).ok())
}

fn filter_strategy() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![3 => select(LEVELS), 2 => Just("+")];
    (
        prop::option::of(select(&["g", "h.i"][..])),
        prop::collection::vec(level, 0..4),
        any::<bool>(),
    )
        .prop_filter_map("valid filter", |(group, levels, hash)| {
            crate::topic::assemble_filter(group, &levels, hash)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn topic_subjects_round_trip(t in prop_oneof![topic(), any_topic()]) {
        let subject = topic_to_subject(&t);
        for token in subject.split('.') {
            prop_assert!(valid_literal_token(token), "token {:?} of {:?}", token, subject);
            prop_assert!(token.is_ascii());
        }
        prop_assert_eq!(subject_to_topic(&subject).unwrap(), t.clone());
        prop_assert_eq!(subject_to_topic(&retained_subject(&t)).unwrap(), t);
    }

    #[test]
    fn mqtt_match_iff_nats_match(f in filter_strategy(), t in topic()) {
        let subject = topic_to_subject(&t);
        let subjects = filter_to_subjects(&f);
        let hits = subjects.iter().filter(|s| nats_matches(s, &subject)).count();
        prop_assert!(hits <= 1, "{:?} matched several of {:?}", subject, subjects);
        prop_assert_eq!(
            matches(f.match_filter(), t.as_str()),
            hits == 1,
            "filter {:?} topic {:?} subjects {:?} subject {:?}", f, t, subjects, subject
        );
    }

    #[test]
    fn distinct_filters_get_distinct_queues(a in filter_strategy(), b in filter_strategy()) {
        if let (Some(qa), Some(qb)) = (queue_group(&a), queue_group(&b)) {
            prop_assert_eq!(qa == qb, a == b);
            prop_assert!(!qa.contains(char::is_whitespace));
        }
    }
}
