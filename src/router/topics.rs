//! The busiest topics, for the status page (`GET /`, `GET /status.json`): the router
//! counts each local publish by its topic name in a bounded map, and halves every count
//! now and then so that the figures follow recent traffic.
//!
//! Cost per routed message: one hash and one lookup of the topic name (an allocation
//! only the first time a topic is seen). The map holds at most [`CAPACITY`] topics; a
//! new topic while it is full is not counted. Every [`DECAY_EVERY`] publishes, after
//! [`CAPACITY`]`/4` uncounted new topics, or when asked after [`DECAY_AFTER`] without
//! one, every count is halved and topics at zero leave the map (O([`CAPACITY`]),
//! amortised over thousands of publishes). `$`-topics (`$SYS`) are not counted.

use std::time::{Duration, Instant};

use actix::prelude::*;
use ahash::AHashMap as HashMap;

use super::actor::Router;
use crate::guard::Call;

/// The most topics counted at once.
pub const CAPACITY: usize = 4096;
/// Publishes between two halvings.
pub const DECAY_EVERY: u64 = 1 << 16;
/// A question after this long without a halving halves first (a quiet broker's map
/// would otherwise keep old topics for ever).
pub const DECAY_AFTER: Duration = Duration::from_secs(60);

/// Recent publishes per topic name (see the module doc).
#[derive(Debug)]
pub struct TopicCounts {
    counts: HashMap<Box<str>, u64>,
    /// Publishes counted since the last halving.
    since_decay: u64,
    /// New topics not counted (the map was full) since the last halving.
    missed: usize,
    last_decay: Instant,
}

impl Default for TopicCounts {
    fn default() -> TopicCounts {
        TopicCounts {
            counts: HashMap::new(),
            since_decay: 0,
            missed: 0,
            last_decay: Instant::now(),
        }
    }
}

/// One topic and its recent publishes (halved now and then, see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCount {
    pub topic: String,
    pub messages: u64,
}

impl TopicCounts {
    /// One publish to `topic`.
    #[inline]
    pub fn record(&mut self, topic: &str) {
        if topic.starts_with('$') {
            return;
        }
        if let Some(n) = self.counts.get_mut(topic) {
            *n += 1;
        } else if self.counts.len() < CAPACITY {
            self.counts.insert(topic.into(), 1);
        } else {
            self.missed += 1;
        }
        self.since_decay += 1;
        if self.since_decay >= DECAY_EVERY || self.missed >= CAPACITY / 4 {
            self.decay(Instant::now());
        }
    }

    /// Adds these counts to `into` and forgets them.
    pub fn drain_into(&mut self, into: &mut TopicCounts) {
        for (topic, n) in self.counts.drain() {
            into.add(&topic, n);
        }
        self.since_decay = 0;
        self.missed = 0;
    }

    /// `n` publishes to `topic` (counted elsewhere).
    fn add(&mut self, topic: &str, n: u64) {
        if let Some(count) = self.counts.get_mut(topic) {
            *count += n;
        } else if self.counts.len() < CAPACITY {
            self.counts.insert(topic.into(), n);
        }
    }

    /// Halves every count; topics at zero go.
    fn decay(&mut self, now: Instant) {
        self.counts.retain(|_, n| {
            *n /= 2;
            *n > 0
        });
        self.since_decay = 0;
        self.missed = 0;
        self.last_decay = now;
    }

    /// The `k` busiest topics, busiest first (ties by name), after a halving if
    /// [`DECAY_AFTER`] passed since the last one.
    pub fn top(&mut self, k: usize, now: Instant) -> Vec<TopicCount> {
        if now.saturating_duration_since(self.last_decay) >= DECAY_AFTER {
            self.decay(now);
        }
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(t, n)| (&**t, *n)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter()
            .take(k)
            .map(|(topic, messages)| TopicCount {
                topic: topic.to_owned(),
                messages,
            })
            .collect()
    }

    /// How many topics are counted.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.counts.len()
    }
}

/// The `.0` busiest topics of local publishes, busiest first (see [`TopicCounts`]).
#[derive(Message)]
#[rtype(result = "BusiestTopics")]
pub struct TopTopics(pub usize);

/// The answer to [`TopTopics`].
#[derive(Debug, Default, MessageResponse)]
pub struct BusiestTopics(pub Vec<TopicCount>);

impl Call<Router> for TopTopics {
    const NAME: &'static str = "TopTopics";

    fn call(self, act: &mut Router, _: &mut Context<Router>) -> BusiestTopics {
        act.state.fast().drain_topics(&mut act.topics);
        BusiestTopics(act.topics.top(self.0, Instant::now()))
    }

    fn failed() -> BusiestTopics {
        BusiestTopics::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(top: &[TopicCount]) -> Vec<(&str, u64)> {
        top.iter().map(|t| (t.topic.as_str(), t.messages)).collect()
    }

    #[test]
    fn busiest_first_ties_by_name_dollar_topics_skipped() {
        let mut counts = TopicCounts::default();
        for topic in ["b", "a", "c", "c", "$SYS/broker/uptime", "c", "a"] {
            counts.record(topic);
        }
        let top = counts.top(2, Instant::now());
        assert_eq!(names(&top), [("c", 3), ("a", 2)]);
        assert_eq!(counts.len(), 3);
    }

    #[test]
    fn bounded_and_decays_when_full() {
        let mut counts = TopicCounts::default();
        for _ in 0..3 {
            counts.record("hot");
        }
        for i in 0..CAPACITY - 1 {
            counts.record(&format!("t/{i}"));
        }
        assert_eq!(counts.len(), CAPACITY);
        // New topics beyond the capacity are not counted, until a quarter of the
        // capacity was refused: then a halving drops the single-count topics.
        for i in 0..CAPACITY / 4 {
            counts.record(&format!("new/{i}"));
            assert!(counts.len() <= CAPACITY);
        }
        assert_eq!(names(&counts.top(5, Instant::now())), [("hot", 1)]);
        counts.record("after");
        assert_eq!(counts.len(), 2);
    }

    #[test]
    fn halves_every_decay_every_publishes_and_after_a_quiet_minute() {
        let mut counts = TopicCounts::default();
        for _ in 0..DECAY_EVERY {
            counts.record("a");
        }
        assert_eq!(
            names(&counts.top(1, Instant::now())),
            [("a", DECAY_EVERY / 2)]
        );
        let later = Instant::now() + DECAY_AFTER;
        assert_eq!(names(&counts.top(1, later)), [("a", DECAY_EVERY / 4)]);
    }
}
