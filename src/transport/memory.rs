//! The broker's memory budget (`[limits] max_memory`): the process's resident set size
//! (RSS), sampled every 50 ms by a thread of its own, against two watermarks. Above the
//! high one, sessions stop reading their publishers (TCP backpressure: nothing is
//! acknowledged and dropped); above the refuse one, new connections are refused too.
//!
//! Why RSS and not a count of the bytes the broker holds: RSS is what an operator's
//! budget (a container's memory limit, the OOM killer) means, and it covers what a count
//! misses (socket and codec buffers, the store's cache, allocator overhead). Reading
//! `/proc/self/status` costs microseconds, 20 times a second. The cost is lag: between
//! two samples the broker may grow by what its clients send in 50 ms, which the margin
//! between the watermarks and the budget absorbs. The allocator (mimalloc) gives freed
//! pages back to the system, so RSS falls as queues drain and reading resumes; it
//! resumes once RSS is 5% of the budget below the watermark (hysteresis, so that a
//! broker at the mark does not flap).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};

/// How often RSS is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Where memory stands against the watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemoryLevel {
    /// Under the high watermark.
    Normal = 0,
    /// Over the high watermark: publishers are not read.
    High = 1,
    /// Over the refuse watermark: new connections are refused too.
    Refuse = 2,
}

impl MemoryLevel {
    fn from_u8(v: u8) -> MemoryLevel {
        match v {
            0 => MemoryLevel::Normal,
            1 => MemoryLevel::High,
            _ => MemoryLevel::Refuse,
        }
    }
}

/// The watermarks in bytes and the level they give a sample, with hysteresis.
#[derive(Debug, Clone)]
pub struct Watermarks {
    high: u64,
    refuse: u64,
    /// How far below a watermark RSS must fall to leave its level.
    margin: u64,
    level: MemoryLevel,
}

impl Watermarks {
    /// The watermarks of a budget of `max` bytes at the fractions `high` and `refuse`.
    pub fn new(max: u64, high: f64, refuse: f64) -> Watermarks {
        let at = |f: f64| (max as f64 * f) as u64;
        Watermarks {
            high: at(high),
            refuse: at(refuse),
            margin: max / 20,
            level: MemoryLevel::Normal,
        }
    }

    /// The level after a sample of `rss` bytes.
    pub fn observe(&mut self, rss: u64) -> MemoryLevel {
        let stays =
            |mark: u64, level: MemoryLevel| self.level >= level && rss + self.margin >= mark;
        self.level = if rss >= self.refuse || stays(self.refuse, MemoryLevel::Refuse) {
            MemoryLevel::Refuse
        } else if rss >= self.high || stays(self.high, MemoryLevel::High) {
            MemoryLevel::High
        } else {
            MemoryLevel::Normal
        };
        self.level
    }
}

/// The shared view of the budget: the level of the last sample, and a wake-up for the
/// sessions waiting for memory to fall under the high watermark.
#[derive(Debug)]
pub struct MemoryBudget {
    max: u64,
    level: AtomicU8,
    below_high: Notify,
}

impl MemoryBudget {
    /// Starts sampling against a budget of `max` bytes; the sampler thread ends with
    /// the last handle. `None` (with a warning) where `/proc/self/status` cannot be read.
    pub fn start(max: u64, high: f64, refuse: f64) -> Option<Arc<MemoryBudget>> {
        if read_rss().is_none() {
            warn!("max_memory is set but the process's RSS cannot be read here; no memory budget");
            return None;
        }
        let budget = Arc::new(MemoryBudget {
            max,
            level: AtomicU8::new(MemoryLevel::Normal as u8),
            below_high: Notify::new(),
        });
        let marks = Watermarks::new(max, high, refuse);
        let weak = Arc::downgrade(&budget);
        let spawned = std::thread::Builder::new()
            .name("starling-memory".into())
            .spawn(move || sample(weak, marks));
        if let Err(error) = spawned {
            warn!(%error, "cannot start the memory sampler; no memory budget");
            return None;
        }
        Some(budget)
    }

    /// The level of the last sample.
    #[inline]
    pub fn level(&self) -> MemoryLevel {
        MemoryLevel::from_u8(self.level.load(Ordering::Acquire))
    }

    /// Resolves once memory is under the high watermark.
    pub async fn below_high(self: Arc<Self>) {
        loop {
            // Made before the check: a wake-up after it is not missed.
            let notified = self.below_high.notified();
            if self.level() == MemoryLevel::Normal {
                return;
            }
            notified.await;
        }
    }

    /// Records a sample's level; logs and wakes on a change.
    fn record(&self, rss: u64, level: MemoryLevel) {
        let before = MemoryLevel::from_u8(self.level.swap(level as u8, Ordering::AcqRel));
        if before == level {
            return;
        }
        let (rss_mib, max_mib) = (rss >> 20, self.max >> 20);
        match (before, level) {
            (_, MemoryLevel::Refuse) => {
                warn!(
                    rss_mib,
                    max_mib, "memory over the refuse watermark: new connections are refused"
                )
            }
            (MemoryLevel::Normal, MemoryLevel::High) => {
                warn!(
                    rss_mib,
                    max_mib, "memory over the high watermark: publishers are not read"
                )
            }
            (MemoryLevel::Refuse, _) => {
                info!(
                    rss_mib,
                    max_mib, "memory back under the refuse watermark: connections accepted"
                )
            }
            _ => {}
        }
        if level == MemoryLevel::Normal {
            info!(
                rss_mib,
                max_mib, "memory back under the high watermark: publishers are read again"
            );
            self.below_high.notify_waiters();
        }
    }
}

/// The sampler thread: until the budget is dropped.
fn sample(budget: Weak<MemoryBudget>, mut marks: Watermarks) {
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        let Some(budget) = budget.upgrade() else {
            return;
        };
        if let Some(rss) = read_rss() {
            budget.record(rss, marks.observe(rss));
        }
    }
}

/// The process's resident set size in bytes (`VmRSS` in `/proc/self/status`).
fn read_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rise_at_the_marks_and_fall_below_them_less_the_margin() {
        // 1,000 bytes: high at 800, refuse at 950, margin 50.
        let mut m = Watermarks::new(1000, 0.8, 0.95);
        assert_eq!(m.observe(799), MemoryLevel::Normal);
        assert_eq!(m.observe(800), MemoryLevel::High);
        assert_eq!(m.observe(760), MemoryLevel::High, "within the margin");
        assert_eq!(m.observe(960), MemoryLevel::Refuse);
        assert_eq!(m.observe(901), MemoryLevel::Refuse);
        assert_eq!(m.observe(899), MemoryLevel::High);
        assert_eq!(m.observe(749), MemoryLevel::Normal);
    }

    #[test]
    fn rss_is_read_from_proc_status() {
        let status = "Name:\tstarling\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads: 4\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            assert!(read_rss().is_some_and(|b| b > 0));
        }
    }
}
