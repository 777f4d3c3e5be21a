//! Which filters this node has local subscribers for, reference-counted: the router
//! counts subscriptions per filter and tells its cluster port (`super::port`) when a
//! filter gains its first or loses its last subscriber, so that a cluster subscribes
//! once per filter. Counted only when a cluster is attached. Pure.

use ahash::AHashMap as HashMap;

use crate::topic::TopicFilter;

/// A change of this node's interest in one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterestChange {
    /// The first local subscription with this filter.
    Add(TopicFilter),
    /// The last one went.
    Remove(TopicFilter),
}

/// Local subscriptions per filter (a `$share/{group}/{filter}` filter counts apart from
/// its inner filter) and the changes not yet sent to the bridge.
#[derive(Debug, Default)]
pub struct Interest {
    counts: HashMap<TopicFilter, usize>,
    changes: Vec<InterestChange>,
}

impl Interest {
    /// One more local subscription with `filter`.
    pub fn add(&mut self, filter: &TopicFilter) {
        let n = self.counts.entry(filter.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.changes.push(InterestChange::Add(filter.clone()));
        }
    }

    /// One local subscription with `filter` fewer.
    pub fn remove(&mut self, filter: &TopicFilter) {
        let Some(n) = self.counts.get_mut(filter) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.counts.remove(filter);
            self.changes.push(InterestChange::Remove(filter.clone()));
        }
    }

    /// Replaces the counts with those of `filters` (one item per subscription), recording
    /// only the filters that appeared or disappeared.
    pub fn rebuild<'a>(&mut self, filters: impl IntoIterator<Item = &'a TopicFilter>) {
        let mut fresh = Interest::default();
        for f in filters {
            fresh.add(f);
        }
        for f in fresh.counts.keys() {
            if !self.counts.contains_key(f) {
                self.changes.push(InterestChange::Add(f.clone()));
            }
        }
        for f in self.counts.keys() {
            if !fresh.counts.contains_key(f) {
                self.changes.push(InterestChange::Remove(f.clone()));
            }
        }
        self.counts = fresh.counts;
    }

    /// The changes since the last call.
    pub fn take_changes(&mut self) -> Vec<InterestChange> {
        std::mem::take(&mut self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    #[test]
    fn counts_transitions_only() {
        let mut i = Interest::default();
        i.add(&f("a/+"));
        i.add(&f("a/+"));
        i.add(&f("$share/g/a/+"));
        assert_eq!(
            i.take_changes(),
            vec![
                InterestChange::Add(f("a/+")),
                InterestChange::Add(f("$share/g/a/+"))
            ]
        );
        i.remove(&f("a/+"));
        assert!(i.take_changes().is_empty());
        i.remove(&f("a/+"));
        i.remove(&f("a/+"));
        assert_eq!(i.take_changes(), vec![InterestChange::Remove(f("a/+"))]);
        assert_eq!(i.counts.len(), 1);
    }

    #[test]
    fn rebuild_reports_the_difference() {
        let mut i = Interest::default();
        i.add(&f("a"));
        i.add(&f("b"));
        i.take_changes();
        let now = [f("b"), f("b"), f("c")];
        i.rebuild(now.iter());
        let mut changes = i.take_changes();
        changes.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(
            changes,
            vec![InterestChange::Add(f("c")), InterestChange::Remove(f("a"))]
        );
        i.remove(&f("b"));
        assert!(i.take_changes().is_empty(), "b still has one subscriber");
    }
}
