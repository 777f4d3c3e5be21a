//! Failed logins counted per source address (`[auth] max_login_failures` within
//! `login_failure_window_secs`): past the limit, the address's CONNECTs are refused at
//! once, before any password is hashed, until its window ends. An IPv4 address counts
//! alone; IPv6 addresses count per /64, the block one host usually holds.
//!
//! The table holds at most [`TRACKED_ADDRESSES`] addresses: when it is full, expired
//! entries go first, then the oldest window. Pure code with the time passed in, so it
//! is unit-tested without waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

/// Most addresses whose failures are remembered at once (about 40 bytes each).
pub const TRACKED_ADDRESSES: usize = 10_000;

/// An address as counted: IPv4 whole, IPv6 to its /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(u128);

impl SourceKey {
    /// The key of `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn of(ip: IpAddr) -> SourceKey {
        match ip.to_canonical() {
            // As its IPv4-mapped IPv6 address, whose low 64 bits are never zero.
            IpAddr::V4(v4) => SourceKey(u128::from(v4.to_ipv6_mapped())),
            // The /64 prefix: low 64 bits zero, so never equal to an IPv4 key.
            IpAddr::V6(v6) => SourceKey(u128::from(v6) & !u128::from(u64::MAX)),
        }
    }
}

/// One address's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// What [`LoginThrottle::failed`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Failures from the address in its current window, this one included.
    pub failures: u32,
    /// Set when this failure reached the limit: how long the address is now refused.
    pub now_refused_for: Option<Duration>,
}

/// The failed-login counters of every source address.
#[derive(Debug)]
pub struct LoginThrottle {
    /// 0: no limit.
    max: u32,
    window: Duration,
    table: Mutex<HashMap<SourceKey, Failures>>,
}

impl LoginThrottle {
    /// At most `max` failures per address within `window` (`max` 0: no limit).
    pub fn new(max: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            max,
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// `[auth] max_login_failures` and `login_failure_window_secs`.
    pub fn from_config(config: &AuthConfig) -> LoginThrottle {
        let window = Duration::from_secs(config.login_failure_window_secs);
        LoginThrottle::new(config.max_login_failures, window)
    }

    /// How long CONNECTs from `ip` are still refused at `now`; `None`: let it try.
    pub fn refused_for(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.max == 0 {
            return None;
        }
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let f = table.get(&SourceKey::of(ip))?;
        let ends = f.since + self.window;
        (f.count >= self.max && now < ends).then(|| ends - now)
    }

    /// Counts a failed login from `ip` at `now`.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Counted {
        if self.max == 0 {
            return Counted {
                failures: 0,
                now_refused_for: None,
            };
        }
        let key = SourceKey::of(ip);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= TRACKED_ADDRESSES && !table.contains_key(&key) {
            self.make_room(&mut table, now);
        }
        let f = table.entry(key).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now >= f.since + self.window {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count = f.count.saturating_add(1);
        let now_refused_for = (f.count == self.max).then(|| f.since + self.window - now);
        Counted {
            failures: f.count,
            now_refused_for,
        }
    }

    /// Drops expired windows; if none had, the oldest one.
    fn make_room(&self, table: &mut HashMap<SourceKey, Failures>, now: Instant) {
        let window = self.window;
        table.retain(|_, f| now < f.since + window);
        if table.len() < TRACKED_ADDRESSES {
            return;
        }
        let oldest = table.iter().min_by_key(|(_, f)| f.since).map(|(k, _)| *k);
        if let Some(key) = oldest {
            table.remove(&key);
        }
    }

    /// Addresses remembered now.
    pub fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        let a = ip("192.0.2.1");
        for n in 0..2 {
            let at = start + Duration::from_secs(n);
            assert_eq!(t.failed(a, at).now_refused_for, None);
            assert_eq!(t.refused_for(a, at), None);
        }
        let third = t.failed(a, start + Duration::from_secs(10));
        assert_eq!(third.failures, 3);
        assert_eq!(third.now_refused_for, Some(Duration::from_secs(50)));
        let later = start + Duration::from_secs(20);
        assert_eq!(t.refused_for(a, later), Some(Duration::from_secs(40)));
        // Another address is not concerned.
        assert_eq!(t.refused_for(ip("192.0.2.2"), later), None);
        // The window ends: a fresh start.
        let after = start + Duration::from_secs(60);
        assert_eq!(t.refused_for(a, after), None);
        assert_eq!(t.failed(a, after).failures, 1);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        t.failed(ip("2001:db8:1:2::1"), now);
        t.failed(ip("2001:db8:1:2:ffff::9"), now);
        assert!(t.refused_for(ip("2001:db8:1:2::77"), now).is_some());
        assert!(t.refused_for(ip("2001:db8:1:3::1"), now).is_none());
        t.failed(ip("::ffff:192.0.2.7"), now);
        t.failed(ip("192.0.2.7"), now);
        assert!(t.refused_for(ip("192.0.2.7"), now).is_some());
        assert_ne!(SourceKey::of(ip("0.0.0.1")), SourceKey::of(ip("::1")));
    }

    #[test]
    fn zero_means_no_limit() {
        let t = LoginThrottle::new(0, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..100 {
            t.failed(ip("192.0.2.1"), now);
        }
        assert_eq!(t.refused_for(ip("192.0.2.1"), now), None);
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        let start = Instant::now();
        let n = TRACKED_ADDRESSES as u32;
        for i in 0..n + 5 {
            let at = start + Duration::from_millis(u64::from(i));
            t.failed(IpAddr::from(i.to_be_bytes()), at);
        }
        assert_eq!(t.tracked(), TRACKED_ADDRESSES);
        // The oldest went; a later one is remembered.
        let now = start + Duration::from_secs(59);
        assert_eq!(t.failed(IpAddr::from(0u32.to_be_bytes()), now).failures, 1);
        let recent = IpAddr::from((n + 4).to_be_bytes());
        assert_eq!(t.failed(recent, now).failures, 2);
        // Once the windows end, room is made by dropping expired entries.
        let late = start + Duration::from_secs(200);
        t.failed(ip("198.51.100.1"), late);
        assert_eq!(t.tracked(), 1);
    }
}
