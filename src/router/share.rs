//! How a shared subscription (`$share/{group}/{filter}`) picks the member that gets a
//! message: round robin (each in turn), random, or sticky (the same one while it stays
//! online). Only online members are picked.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};

use crate::config::ShareStrategy;
use crate::delivery::SubEntry;
use crate::message::ClientId;
use crate::topic::TopicFilter;

/// The strategy and its state: a position per shared subscription and, for `random`,
/// the generator (xorshift; seeded, so tests repeat).
#[derive(Debug)]
pub(super) struct SharePicker {
    pub strategy: ShareStrategy,
    cursors: HashMap<TopicFilter, usize>,
    rng: u64,
}

impl Default for SharePicker {
    fn default() -> Self {
        SharePicker {
            strategy: ShareStrategy::default(),
            cursors: HashMap::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

impl SharePicker {
    /// Forgets every position (the members' order may have changed).
    pub fn reset(&mut self) {
        self.cursors.clear();
    }

    /// The member of `share` to get the next message: online, and not `except`.
    pub fn pick<'a>(
        &mut self,
        share: &TopicFilter,
        members: &'a [(ClientId, SubEntry)],
        online: &HashSet<ClientId>,
        except: Option<&ClientId>,
    ) -> Option<&'a (ClientId, SubEntry)> {
        let cursor = self.cursors.entry(share.clone()).or_insert(0);
        if self.strategy == ShareStrategy::Random {
            *cursor = next_random(&mut self.rng) as usize % members.len().max(1);
        }
        let advance = self.strategy == ShareStrategy::RoundRobin;
        let n = members.len();
        for step in 0..n {
            let i = (*cursor + step) % n;
            let member = &members[i];
            if online.contains(&member.0) && except != Some(&member.0) {
                // Round robin moves past it; sticky and random stay on it.
                *cursor = if advance { (i + 1) % n } else { i };
                return Some(member);
            }
        }
        None
    }
}

/// xorshift64: cheap, and good enough to spread messages over group members.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}
