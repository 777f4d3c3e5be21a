//! `starling inspect`: a readable summary of a store on disk.

use std::fmt;
use std::path::{Path, PathBuf};

use super::sled_store::SledStore;
use super::spec::{open_spec, OpenMode, StoreSpec};
use super::store::{Snapshot, Store, StoreError};
use super::PersistenceError;

/// What a store holds, for `starling inspect --data-dir DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The store directory.
    pub path: PathBuf,
    /// Schema version found.
    pub schema_version: u32,
    /// Approximate bytes on disk.
    pub size_on_disk: u64,
    /// Next queue seq.
    pub next_seq: u64,
    /// Sessions, sorted by client id.
    pub sessions: Vec<SessionSummary>,
    /// Number of retained messages.
    pub retained_count: usize,
}

/// One session in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Client id.
    pub client_id: String,
    /// Protocol level (3, 4, 5).
    pub protocol: u8,
    /// Session expiry in seconds (`u32::MAX` = never).
    pub expiry_secs: u32,
    /// Unix ms when it went offline; `None` = online when last stored.
    pub disconnected_at_ms: Option<u64>,
    /// Subscription filters with their QoS.
    pub subscriptions: Vec<(String, u8)>,
    /// Queued messages (in flight included).
    pub queue_depth: usize,
    /// Messages sent and awaiting acknowledgement.
    pub in_flight: usize,
    /// Inbound QoS 2 packet ids awaiting PUBREL.
    pub inbound_qos2: usize,
    /// Whether a will is registered.
    pub has_will: bool,
}

/// Opens the store in `dir` without creating it or writing the schema key, loads it and
/// summarizes it. Fails if `dir` holds no store or the broker has it open (sled's lock).
pub fn inspect(dir: &Path) -> Result<Report, StoreError> {
    let store = SledStore::open_existing(dir)?;
    let snapshot = store.load()?;
    Ok(Report::new(
        dir,
        store.schema_version(),
        store.size_on_disk()?,
        &snapshot,
    ))
}

/// Like [`inspect`] for any store a spec names; a sled data directory's store is in
/// [`super::store_dir`]. A server-backed store reports `path` as its URL (password
/// hidden) and schema version 0.
pub fn inspect_spec(spec: &StoreSpec) -> Result<Report, PersistenceError> {
    if let StoreSpec::Sled(data_dir) = spec {
        return Ok(inspect(&super::store_dir(data_dir))?);
    }
    let store = open_spec(spec, OpenMode::Existing)?;
    let snapshot = store.load()?;
    let path = PathBuf::from(spec.to_string());
    Ok(Report::new(&path, 0, store.size_on_disk()?, &snapshot))
}

impl Report {
    /// Summarizes a snapshot.
    pub fn new(path: &Path, schema_version: u32, size_on_disk: u64, snapshot: &Snapshot) -> Self {
        let sessions = snapshot
            .sessions
            .iter()
            .map(|s| SessionSummary {
                client_id: s.record.client_id.clone(),
                protocol: s.record.protocol,
                expiry_secs: s.record.expiry_secs,
                disconnected_at_ms: s.record.disconnected_at_ms,
                subscriptions: s
                    .subscriptions
                    .iter()
                    .map(|sub| (sub.filter.clone(), sub.qos))
                    .collect(),
                queue_depth: s.queue.len(),
                in_flight: s.queue.iter().filter(|(_, q)| q.in_flight()).count(),
                inbound_qos2: s.inbound_qos2.len(),
                has_will: s.record.will.is_some(),
            })
            .collect();
        Report {
            path: path.to_owned(),
            schema_version,
            size_on_disk,
            next_seq: snapshot.next_seq,
            sessions,
            retained_count: snapshot.retained.len(),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "store {}", self.path.display())?;
        writeln!(f, "sessions: {}", self.sessions.len())?;
        for s in &self.sessions {
            let proto = match s.protocol {
                3 => "3.1",
                4 => "3.1.1",
                5 => "5.0",
                _ => "?",
            };
            let expiry = if s.expiry_secs == u32::MAX {
                "never".to_owned()
            } else {
                format!("{}s", s.expiry_secs)
            };
            let state = match s.disconnected_at_ms {
                None => "online".to_owned(),
                Some(ms) => format!("offline since {}", format_utc(ms)),
            };
            writeln!(
                f,
                "  {:?}: MQTT {proto}, expiry {expiry}, {state}{}",
                s.client_id,
                if s.has_will { ", will set" } else { "" }
            )?;
            writeln!(
                f,
                "    queue {} (in flight {}), inbound qos2 {}",
                s.queue_depth, s.in_flight, s.inbound_qos2
            )?;
            for (filter, qos) in &s.subscriptions {
                writeln!(f, "    sub {filter:?} qos {qos}")?;
            }
        }
        writeln!(f, "retained messages: {}", self.retained_count)?;
        writeln!(f, "next seq: {}", self.next_seq)?;
        writeln!(f, "size on disk: {} bytes", self.size_on_disk)?;
        write!(f, "schema version: {}", self.schema_version)
    }
}

/// Formats unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
fn format_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn utc_format() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
