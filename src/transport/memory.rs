//! The broker's memory budget (`[limits] max_memory`): the process's resident set size
//! (RSS), sampled every 50 ms by a thread of its own, against two watermarks. Above the
//! high one, while messages are queued in sessions, sessions stop reading their
//! publishers (TCP backpressure: nothing is acknowledged and dropped); above the refuse
//! one, new connections are refused too.
//!
//! Why RSS and not a count of the bytes the broker holds: RSS is what an operator's
//! budget (a container's memory limit, the OOM killer) means, and it covers what a count
//! misses (socket and codec buffers, the store's cache, allocator overhead). Reading
//! `/proc/self/status` costs microseconds, 20 times a second. The cost is lag: between
//! two samples the broker may grow by what its clients send in 50 ms, which the margin
//! between the watermarks and the budget absorbs. A level is left once RSS is 5% of the
//! budget below its watermark (hysteresis, so that a broker at the mark does not flap).
//!
//! RSS does not fall at once when queues drain: the allocator (mimalloc) returns a page
//! freed by another thread only once its owner thread allocates again, and a held
//! publisher's thread may be idle. So publishers are held only while messages are
//! queued (`starling_queued_messages` > 0): once the queues are empty they are read
//! again, and the memory the allocator kept is reused before RSS grows; they are held
//! again as soon as a queue forms while RSS is still over the mark.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};

/// How often RSS is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Where memory stands after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryLevel {
    /// RSS over the high watermark.
    pub over_high: bool,
    /// RSS over the refuse watermark: new connections are refused.
    pub refuse: bool,
    /// Over the high watermark with messages queued in sessions: publishers are not
    /// read. With nothing queued, holding them back would free nothing (the allocator
    /// may keep freed pages a while, so RSS alone can stay high) and would never end.
    pub hold: bool,
}

/// The watermarks in bytes and the level they give a sample, with hysteresis.
#[derive(Debug, Clone)]
pub struct Watermarks {
    high: u64,
    refuse: u64,
    /// How far below a watermark RSS must fall to be under it again.
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
            level: MemoryLevel::default(),
        }
    }

    /// The level after a sample of `rss` bytes, with `queued` messages in sessions.
    pub fn observe(&mut self, rss: u64, queued: i64) -> MemoryLevel {
        let over = |mark: u64, was: bool| rss >= mark || (was && rss + self.margin >= mark);
        let over_high = over(self.high, self.level.over_high);
        self.level = MemoryLevel {
            over_high,
            refuse: over(self.refuse, self.level.refuse),
            hold: over_high && queued > 0,
        };
        self.level
    }
}

/// A probe of the messages queued in sessions.
pub(crate) type QueuedProbe = Box<dyn Fn() -> i64 + Send>;

/// The shared view of the budget: the level of the last sample, and a wake-up for the
/// sessions waiting for publishers to be read again.
#[derive(Debug)]
pub struct MemoryBudget {
    max: u64,
    hold: AtomicBool,
    refuse: AtomicBool,
    level: Mutex<MemoryLevel>,
    released: Notify,
}

impl MemoryBudget {
    /// Starts sampling against a budget of `max` bytes; the sampler thread ends with
    /// the last handle. `None` (with a warning) where `/proc/self/status` cannot be read.
    pub fn start(
        max: u64,
        high: f64,
        refuse: f64,
        queued: QueuedProbe,
    ) -> Option<Arc<MemoryBudget>> {
        if read_rss().is_none() {
            warn!("max_memory is set but the process's RSS cannot be read here; no memory budget");
            return None;
        }
        let budget = Arc::new(MemoryBudget {
            max,
            hold: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            level: Mutex::new(MemoryLevel::default()),
            released: Notify::new(),
        });
        let marks = Watermarks::new(max, high, refuse);
        let weak = Arc::downgrade(&budget);
        let spawned = std::thread::Builder::new()
            .name("starling-memory".into())
            .spawn(move || sample(weak, marks, queued));
        if let Err(error) = spawned {
            warn!(%error, "cannot start the memory sampler; no memory budget");
            return None;
        }
        Some(budget)
    }

    /// True while publishers are not to be read.
    #[inline]
    pub fn holds_publishers(&self) -> bool {
        self.hold.load(Ordering::Acquire)
    }

    /// True while new connections are refused.
    #[inline]
    pub fn refuses_connections(&self) -> bool {
        self.refuse.load(Ordering::Acquire)
    }

    /// Resolves once publishers may be read again.
    pub async fn released(self: Arc<Self>) {
        loop {
            // Made before the check: a wake-up after it is not missed.
            let notified = self.released.notified();
            if !self.holds_publishers() {
                return;
            }
            notified.await;
        }
    }

    /// Records a sample's level; logs each crossing and wakes the held publishers.
    fn record(&self, rss: u64, level: MemoryLevel) {
        let before = match self.level.lock() {
            Ok(mut l) => std::mem::replace(&mut *l, level),
            Err(_) => return,
        };
        self.refuse.store(level.refuse, Ordering::Release);
        self.hold.store(level.hold, Ordering::Release);
        let (rss_mib, max_mib) = (rss >> 20, self.max >> 20);
        match (before.over_high, level.over_high) {
            (false, true) => warn!(
                rss_mib,
                max_mib,
                "memory over the high watermark: publishers are not read while messages are queued"
            ),
            (true, false) => info!(rss_mib, max_mib, "memory back under the high watermark"),
            _ => {}
        }
        match (before.refuse, level.refuse) {
            (false, true) => warn!(
                rss_mib,
                max_mib, "memory over the refuse watermark: new connections are refused"
            ),
            (true, false) => info!(
                rss_mib,
                max_mib, "memory back under the refuse watermark: connections accepted"
            ),
            _ => {}
        }
        if before.hold && !level.hold {
            self.released.notify_waiters();
        }
    }
}

/// The sampler thread: until the budget is dropped.
fn sample(budget: Weak<MemoryBudget>, mut marks: Watermarks, queued: QueuedProbe) {
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        let Some(budget) = budget.upgrade() else {
            return;
        };
        if let Some(rss) = read_rss() {
            budget.record(rss, marks.observe(rss, queued()));
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
        let level = |m: &mut Watermarks, rss, queued| {
            let l = m.observe(rss, queued);
            (l.over_high, l.refuse, l.hold)
        };
        assert_eq!(level(&mut m, 799, 5), (false, false, false));
        assert_eq!(level(&mut m, 800, 5), (true, false, true));
        assert_eq!(
            level(&mut m, 760, 5),
            (true, false, true),
            "within the margin"
        );
        assert_eq!(level(&mut m, 960, 5), (true, true, true));
        assert_eq!(level(&mut m, 901, 5), (true, true, true));
        assert_eq!(
            level(&mut m, 899, 0),
            (true, false, false),
            "nothing queued: no hold"
        );
        assert_eq!(level(&mut m, 749, 5), (false, false, false));
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
