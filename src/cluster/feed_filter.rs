//! What the log feed asks JetStream for (pure): the node's interest as a set of log
//! subjects, reduced to filter subjects one consumer accepts. NATS refuses a consumer
//! whose filter subjects overlap (a subject matching two of them), so the reduction
//! drops every subject another one covers and replaces two that still overlap by a
//! cover of both (their common literal prefix and `>`), until none overlap. A set too
//! large, or one reduced to the whole log, is the whole log.

use std::collections::{BTreeMap, BTreeSet};

/// Filter subjects one consumer gets at most; above, the feed follows the whole log.
pub(super) const MAX_SUBJECTS: usize = 256;

/// What the log feed follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FeedFilter {
    /// No interest: no consumer at all.
    Nothing,
    /// These filter subjects, none overlapping another, sorted.
    Subjects(Vec<String>),
    /// Every subject of the log.
    All,
}

impl FeedFilter {
    /// The filter for the log subjects in `subjects` (each a valid subject under
    /// `whole`, e.g. `starling.l.>`).
    pub fn reduce<'a>(subjects: impl IntoIterator<Item = &'a str>, whole: &str) -> FeedFilter {
        let mut set: BTreeSet<&str> = BTreeSet::new();
        for s in subjects {
            if s == whole || set.len() > MAX_SUBJECTS * 4 {
                return FeedFilter::All;
            }
            set.insert(s);
        }
        let mut kept: Vec<String> = Vec::with_capacity(set.len());
        for s in set {
            merge(&mut kept, s.to_owned());
        }
        if kept.is_empty() {
            return FeedFilter::Nothing;
        }
        if kept.len() > MAX_SUBJECTS || kept.iter().any(|s| covers(s, whole)) {
            return FeedFilter::All;
        }
        kept.sort();
        FeedFilter::Subjects(kept)
    }

    /// True when a message on the log subject `subject` is delivered under this filter.
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            FeedFilter::Nothing => false,
            FeedFilter::All => true,
            FeedFilter::Subjects(list) => list.iter().any(|f| covers(f, subject)),
        }
    }
}

/// The log subjects of the node's plain subscriptions, counted (two filters may share
/// one: `a` and `a/#` both subscribe `a`).
#[derive(Debug, Default)]
pub(super) struct Interest {
    counts: BTreeMap<String, usize>,
}

impl Interest {
    pub fn add(&mut self, subjects: Vec<String>) {
        for s in subjects {
            *self.counts.entry(s).or_insert(0) += 1;
        }
    }

    pub fn remove(&mut self, subjects: Vec<String>) {
        for s in subjects {
            if let Some(n) = self.counts.get_mut(&s) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&s);
                }
            }
        }
    }

    /// The filter for these subjects.
    pub fn filter(&self, whole: &str) -> FeedFilter {
        FeedFilter::reduce(self.counts.keys().map(String::as_str), whole)
    }
}

impl FeedFilter {
    /// True when everything `other` delivers, this delivers too.
    pub fn includes(&self, other: &FeedFilter) -> bool {
        match (self, other) {
            (FeedFilter::All, _) | (_, FeedFilter::Nothing) => true,
            (_, FeedFilter::All) | (FeedFilter::Nothing, _) => false,
            (FeedFilter::Subjects(mine), FeedFilter::Subjects(theirs)) => {
                theirs.iter().all(|t| mine.iter().any(|m| covers(m, t)))
            }
        }
    }
}

/// Adds `s` to `kept` (none of which overlap): dropped if one covers it; else each one
/// it covers goes; one it still overlaps is taken out and replaced, with `s`, by their
/// cover, which is merged in turn.
fn merge(kept: &mut Vec<String>, s: String) {
    if kept.iter().any(|k| covers(k, &s)) {
        return;
    }
    kept.retain(|k| !covers(&s, k));
    match kept.iter().position(|k| overlap(k, &s)) {
        None => kept.push(s),
        Some(i) => {
            let other = kept.swap_remove(i);
            merge(kept, cover(&other, &s));
        }
    }
}

/// True when every subject `b` matches (`b` may have wildcards) also matches `a`.
pub(super) fn covers(a: &str, b: &str) -> bool {
    let mut bt = b.split('.');
    for at in a.split('.') {
        let Some(btok) = bt.next() else {
            return false;
        };
        match at {
            ">" => return true,
            "*" if btok != ">" => {}
            _ if at == btok && at != "*" && at != ">" => {}
            _ => return false,
        }
    }
    bt.next().is_none()
}

/// True when some subject matches both `a` and `b`.
pub(super) fn overlap(a: &str, b: &str) -> bool {
    let (mut at, mut bt) = (a.split('.'), b.split('.'));
    loop {
        match (at.next(), bt.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
}

/// The literal tokens `a` and `b` start with in common, then `>` (at least the first
/// token is kept: the subjects here all start with `starling.l`).
fn cover(a: &str, b: &str) -> String {
    let common: Vec<&str> = a
        .split('.')
        .zip(b.split('.'))
        .take_while(|(x, y)| x == y && *x != "*" && *x != ">")
        .map(|(x, _)| x)
        .collect();
    let mut out = common.join(".");
    if !out.is_empty() {
        out.push('.');
    }
    out.push('>');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: &str = "starling.l.>";

    fn reduce(subjects: &[&str]) -> FeedFilter {
        FeedFilter::reduce(subjects.iter().copied(), WHOLE)
    }

    fn subjects(list: &[&str]) -> FeedFilter {
        FeedFilter::Subjects(list.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn covering_and_overlapping_subjects() {
        for (a, b, covered, overlapping) in [
            ("a.>", "a.b", true, true),
            ("a.>", "a", false, false),
            ("a.*", "a.b", true, true),
            ("a.*", "a.>", false, true),
            ("a.*", "a.b.c", false, false),
            ("a.*.c", "a.b.*", false, true),
            ("a.b", "a.b", true, true),
            ("a.b", "a.c", false, false),
            ("a.>", "a.*.c", true, true),
            ("a.*.c", "a.b.d", false, false),
            ("*", ">", false, true),
        ] {
            assert_eq!(covers(a, b), covered, "{a} covers {b}");
            assert_eq!(overlap(a, b), overlapping, "{a} overlaps {b}");
            assert_eq!(overlap(b, a), overlapping, "{b} overlaps {a}");
        }
    }

    #[test]
    fn covered_subjects_are_dropped() {
        let f = reduce(&[
            "starling.l.m._a.>",
            "starling.l.m._a._b",
            "starling.l.m._a.*",
            "starling.l.m._c",
            "starling.l.m._c",
        ]);
        assert_eq!(f, subjects(&["starling.l.m._a.>", "starling.l.m._c"]));
    }

    #[test]
    fn overlapping_subjects_become_their_cover() {
        let f = reduce(&[
            "starling.l.m._a.*._c",
            "starling.l.m._a._b.*",
            "starling.l.m._x",
        ]);
        assert_eq!(f, subjects(&["starling.l.m._a.>", "starling.l.m._x"]));
        // A cover that overlaps another is merged again.
        let f = reduce(&["starling.l.m.*._b", "starling.l.m._a.*", "starling.l.d._$x"]);
        assert_eq!(f, subjects(&["starling.l.d._$x", "starling.l.m.>"]));
    }

    #[test]
    fn every_topic_or_too_many_subjects_is_the_whole_log() {
        assert_eq!(reduce(&["starling.l.>"]), FeedFilter::All);
        assert_eq!(
            reduce(&["starling.l.m._a.>", "starling.l.*._a._b"]),
            FeedFilter::All
        );
        let many: Vec<String> = (0..=MAX_SUBJECTS)
            .map(|i| format!("starling.l.m._t{i}"))
            .collect();
        let f = FeedFilter::reduce(many.iter().map(String::as_str), WHOLE);
        assert_eq!(f, FeedFilter::All);
        let fits = FeedFilter::reduce(many[1..].iter().map(String::as_str), WHOLE);
        assert!(matches!(fits, FeedFilter::Subjects(l) if l.len() == MAX_SUBJECTS));
    }

    #[test]
    fn interest_is_counted_per_subject() {
        let mut i = Interest::default();
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        i.add(s(&["starling.l.m._a", "starling.l.m._a.>"]));
        i.add(s(&["starling.l.m._a"]));
        i.remove(s(&["starling.l.m._a", "starling.l.m._a.>"]));
        assert_eq!(i.filter(WHOLE), subjects(&["starling.l.m._a"]));
        i.remove(s(&["starling.l.m._a"]));
        assert_eq!(i.filter(WHOLE), FeedFilter::Nothing);
    }

    #[test]
    fn a_filter_includes_what_it_covers() {
        let wide = subjects(&["starling.l.m._a.>", "starling.l.m._b"]);
        assert!(wide.includes(&subjects(&["starling.l.m._a._x"])));
        assert!(wide.includes(&FeedFilter::Nothing));
        assert!(!wide.includes(&subjects(&["starling.l.m._a._x", "starling.l.m._c"])));
        assert!(!wide.includes(&FeedFilter::All));
        assert!(FeedFilter::All.includes(&wide));
        assert!(!FeedFilter::Nothing.includes(&wide));
    }

    #[test]
    fn no_interest_is_nothing() {
        assert_eq!(reduce(&[]), FeedFilter::Nothing);
        assert!(!FeedFilter::Nothing.matches("starling.l.m._a"));
        assert!(FeedFilter::All.matches("starling.l.m._a"));
    }

    #[test]
    fn the_reduced_set_matches_what_the_subjects_match() {
        let input = [
            "starling.l.m._a.*._c",
            "starling.l.m._a._b.*",
            "starling.l.m._q._r",
            "starling.l.m._q.>",
            "starling.l.d._$s.*",
        ];
        let f = reduce(&input);
        let FeedFilter::Subjects(list) = &f else {
            panic!("{f:?}");
        };
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                assert!(!overlap(a, b), "{a} and {b} overlap");
            }
        }
        for topic in [
            "starling.l.m._a._x._c",
            "starling.l.m._a._b._y",
            "starling.l.m._q._r",
            "starling.l.m._q._z._z",
            "starling.l.d._$s._t",
        ] {
            assert!(input.iter().any(|s| covers(s, topic)), "{topic}");
            assert!(f.matches(topic), "{topic} dropped by {f:?}");
        }
        assert!(!f.matches("starling.l.m._z"));
        assert!(!f.matches("starling.l.d._$s"));
    }
}
