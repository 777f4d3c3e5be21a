//! What one measurement is asked to do ([`Spec`]) and what it found ([`Throughput`],
//! [`Latency`]), the same for the in-process and the TCP side.

use std::time::Duration;

use starling::protocol::QoS;
use tokio::time::Instant;

use crate::track;

/// A subscriber that has received nothing for this long gives up; what it did not get
/// counts as lost (as `starling-bench --drain-ms`).
pub const IDLE: Duration = Duration::from_secs(2);
/// The longest wait for one round trip.
pub const ROUND_TRIP: Duration = Duration::from_secs(5);

/// One measurement: one publisher, one subscriber, one topic of its own.
#[derive(Clone)]
pub struct Spec {
    /// Unique in the run: the topic and the client ids derive from it.
    pub name: String,
    pub qos: QoS,
    pub messages: u64,
    /// Payload bytes (at least [`track::HEADER`]).
    pub size: usize,
    /// Throughput: in-process publishes awaiting their answer at once; the TCP
    /// publisher's QoS 1 in-flight window.
    pub window: usize,
    pub deadline: Instant,
}

impl Spec {
    pub fn topic(&self) -> String {
        format!("bench/local/{}", self.name)
    }

    pub fn client_id(&self, role: &str) -> String {
        format!("local-bench-{}-{role}", self.name)
    }
}

/// One publisher streaming `messages` to one subscriber.
#[derive(Debug, Default, Clone)]
pub struct Throughput {
    /// Distinct messages received.
    pub received: u64,
    pub lost: u64,
    pub dup: u64,
    pub reorder: u64,
    /// First publish to last receipt.
    pub secs: f64,
    /// CPU time and thread sleeps of the whole process (clients and broker) meanwhile.
    pub usage: Usage,
    pub error: Option<String>,
}

impl Throughput {
    pub fn msg_per_sec(&self) -> f64 {
        if self.secs > 0.0 {
            self.received as f64 / self.secs
        } else {
            0.0
        }
    }

    /// CPU µs per message received.
    pub fn cpu_us_per_msg(&self) -> f64 {
        self.usage.cpu_secs * 1e6 / self.received.max(1) as f64
    }

    /// Voluntary context switches (a thread going to sleep) per message received.
    pub fn switches_per_msg(&self) -> f64 {
        self.usage.switches as f64 / self.received.max(1) as f64
    }

    /// Why the run does not count: an error, or a QoS 1 message lost or duplicated.
    pub fn fault(&self, qos: QoS) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        let reliable = qos != QoS::AtMostOnce;
        (reliable && (self.lost > 0 || self.dup > 0))
            .then(|| format!("lost {} dup {} at QoS 1", self.lost, self.dup))
    }
}

/// One-at-a-time round trips: publish, wait until the subscriber has the message.
#[derive(Debug, Default, Clone)]
pub struct Latency {
    /// Publish to receipt, ns, one per message.
    pub samples: Vec<u64>,
    /// CPU time and thread sleeps of the whole process over all round trips.
    pub usage: Usage,
}

impl Latency {
    /// p50 and p99 in µs.
    pub fn percentiles_us(&self) -> (f64, f64) {
        let mut s = self.samples.clone();
        track::percentiles_us(&mut s).map_or((0.0, 0.0), |(p50, p99, _)| (p50, p99))
    }

    /// CPU µs per round trip.
    pub fn cpu_us_per_msg(&self) -> f64 {
        self.usage.cpu_secs * 1e6 / self.samples.len().max(1) as f64
    }

    /// Voluntary context switches per round trip.
    pub fn switches_per_msg(&self) -> f64 {
        self.usage.switches as f64 / self.samples.len().max(1) as f64
    }
}

/// What the process (every thread: clients and broker) used over a measurement.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu_secs: f64,
    /// Voluntary context switches: a thread waiting for work (to be woken by another
    /// thread or by the kernel when data arrives).
    pub switches: i64,
}

impl Usage {
    /// What the process has used so far (`getrusage(RUSAGE_SELF)`).
    pub fn now() -> Usage {
        // SAFETY: rusage is plain data; getrusage writes only into it.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a rusage for the duration of the call.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return Usage::default();
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Usage {
            cpu_secs: secs(u.ru_utime) + secs(u.ru_stime),
            switches: u.ru_nvcsw,
        }
    }

    /// What was used since `self` was taken.
    pub fn since(self) -> Usage {
        let now = Usage::now();
        Usage {
            cpu_secs: now.cpu_secs - self.cpu_secs,
            switches: now.switches - self.switches,
        }
    }
}

/// The sequence number a bench payload carries.
pub fn seq_of(payload: &[u8]) -> Option<u64> {
    track::parse(payload).map(|(_, seq, _)| seq)
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
