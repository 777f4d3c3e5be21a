//! What the rounds found, one line per measurement on stderr, and the Markdown table of
//! the medians.

use std::fmt::Write as _;

use starling::protocol::QoS;

use crate::measure::{median, Latency, Throughput};
use crate::Opts;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Throughput(QoS),
    Latency(QoS),
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Throughput(QoS::AtMostOnce),
        Kind::Throughput(QoS::AtLeastOnce),
        Kind::Latency(QoS::AtMostOnce),
        Kind::Latency(QoS::AtLeastOnce),
    ];

    pub fn qos(self) -> QoS {
        match self {
            Kind::Throughput(q) | Kind::Latency(q) => q,
        }
    }

    pub fn tag(self) -> String {
        match self {
            Kind::Throughput(q) => format!("thr-q{}", q as u8),
            Kind::Latency(q) => format!("rtt-q{}", q as u8),
        }
    }
}

/// Where the clients are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    InProcess,
    Tcp,
}

impl Side {
    pub fn tag(self) -> &'static str {
        match self {
            Side::InProcess => "inproc",
            Side::Tcp => "tcp",
        }
    }
}

#[derive(Default)]
pub struct Results {
    throughput: Vec<(Kind, Side, Throughput)>,
    latency: Vec<(Kind, Side, Latency)>,
    faults: Vec<String>,
}

impl Results {
    pub fn throughput(&mut self, kind: Kind, side: Side, t: Throughput, what: &str) {
        eprintln!(
            "{what}: {} received in {:.3} s, {:.0} msg/s, {:.2} CPU µs/msg, {:.3} switches/msg, lost {} dup {} reorder {}{}",
            t.received,
            t.secs,
            t.msg_per_sec(),
            t.cpu_us_per_msg(),
            t.switches_per_msg(),
            t.lost,
            t.dup,
            t.reorder,
            t.error.as_ref().map_or(String::new(), |e| format!(", error: {e}")),
        );
        if let Some(fault) = t.fault(kind.qos()) {
            self.faults.push(format!("{what}: {fault}"));
        }
        self.throughput.push((kind, side, t));
    }

    pub fn latency(&mut self, kind: Kind, side: Side, l: Latency, what: &str) {
        let (p50, p99) = l.percentiles_us();
        eprintln!(
            "{what}: {} round trips, p50 {p50:.1} µs, p99 {p99:.1} µs, {:.2} CPU µs and {:.2} switches each",
            l.samples.len(),
            l.cpu_us_per_msg(),
            l.switches_per_msg(),
        );
        self.latency.push((kind, side, l));
    }

    /// The first failed measurement, if any.
    pub fn fault(&self) -> Option<&String> {
        self.faults.first()
    }

    fn values_t(&self, kind: Kind, side: Side, f: impl Fn(&Throughput) -> f64) -> Vec<f64> {
        let rows = self.throughput.iter();
        rows.filter(|(k, s, _)| *k == kind && *s == side)
            .map(|(_, _, t)| f(t))
            .collect()
    }

    fn values_l(&self, kind: Kind, side: Side, f: impl Fn(&Latency) -> f64) -> Vec<f64> {
        let rows = self.latency.iter();
        rows.filter(|(k, s, _)| *k == kind && *s == side)
            .map(|(_, _, l)| f(l))
            .collect()
    }

    /// The Markdown table: one row per figure, the medians of the rounds, their ratio
    /// and every round's value.
    pub fn table(&self, opts: &Opts, load: (String, String)) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| measure | in-process | TCP | in-process / TCP | rounds: in-process; TCP |\n|---|---:|---:|---:|---|"
        );
        for q in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let kind = Kind::Throughput(q);
            let n = match q {
                QoS::AtMostOnce => opts.qos0_messages,
                _ => opts.qos1_messages,
            };
            let label = format!("QoS {} throughput, {n} msgs", q as u8);
            let rate = |s| self.values_t(kind, s, |t| t.msg_per_sec() / 1000.0);
            row(&mut out, &format!("{label} (k msg/s)"), rate, 0);
            let cpu = |s| self.values_t(kind, s, Throughput::cpu_us_per_msg);
            row(&mut out, &format!("{label}: CPU per msg (µs)"), cpu, 2);
            let sw = |s| self.values_t(kind, s, Throughput::switches_per_msg);
            row(&mut out, &format!("{label}: thread sleeps per msg"), sw, 3);
        }
        for q in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let kind = Kind::Latency(q);
            let label = format!("QoS {} round trip", q as u8);
            let p50 = |s| self.values_l(kind, s, |l| l.percentiles_us().0);
            row(&mut out, &format!("{label} p50 (µs)"), p50, 1);
            let p99 = |s| self.values_l(kind, s, |l| l.percentiles_us().1);
            row(&mut out, &format!("{label} p99 (µs)"), p99, 1);
            let cpu = |s| self.values_l(kind, s, Latency::cpu_us_per_msg);
            row(&mut out, &format!("{label}: CPU per msg (µs)"), cpu, 2);
            let sw = |s| self.values_l(kind, s, Latency::switches_per_msg);
            row(&mut out, &format!("{label}: thread sleeps per msg"), sw, 2);
        }
        let _ = write!(
            out,
            "\n{} rounds, {}-byte payloads, in-process window {} (TCP: QoS 1 in-flight {}, \
             QoS 0 in writes of 64), {} latency round trips, broker workers {}; \
             load average before: {}, after: {}",
            opts.rounds,
            opts.size,
            opts.window,
            opts.window,
            opts.latency_messages,
            opts.workers,
            load.0,
            load.1
        );
        out
    }
}

/// One table row from the per-round values of each side.
fn row(out: &mut String, label: &str, values: impl Fn(Side) -> Vec<f64>, digits: usize) {
    let (local, tcp) = (values(Side::InProcess), values(Side::Tcp));
    let (ml, mt) = (median(&local), median(&tcp));
    let ratio = if mt > 0.0 { ml / mt } else { 0.0 };
    let list = |v: &[f64]| {
        let s: Vec<String> = v.iter().map(|x| format!("{x:.digits$}")).collect();
        s.join(" ")
    };
    let _ = writeln!(
        out,
        "| {label} | {ml:.digits$} | {mt:.digits$} | {ratio:.2} | {}; {} |",
        list(&local),
        list(&tcp)
    );
}

/// The 1, 5 and 15 minute load averages (how busy the machine was).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
