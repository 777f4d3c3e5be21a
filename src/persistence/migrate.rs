//! `starling migrate`: copies one store into another through the [`Store`] trait, in
//! bounded batches, then loads the target and compares it with the source.
//!
//! Each session's subscriptions, queue and inbound QoS 2 ids are written before its
//! session record, so a session interrupted half-way is invisible in the target (a
//! store does not load entries without their session record). There is no marker: a
//! migration that was interrupted is finished by running it again with `force`, which
//! skips what already matches, rewrites what differs and removes what the source does
//! not hold; the verification at the end says whether the target is complete.

use std::collections::BTreeMap;

use tracing::info;

use super::checksum::{Checksums, Comparison};
use super::records::MessageRecord;
use super::store::{Op, Snapshot, Store, StoreError, StoredSession};

/// Ops per [`Store::apply`] unless told otherwise.
pub const DEFAULT_BATCH_OPS: usize = 1000;

/// How to migrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Overwrite a target that holds sessions or retained messages: afterwards it holds
    /// exactly the source's (its other sessions and retained messages are deleted).
    pub force: bool,
    /// Ops per apply (at least 1).
    pub batch_ops: usize,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            force: false,
            batch_ops: DEFAULT_BATCH_OPS,
        }
    }
}

/// What a migration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrateSummary {
    /// Sessions written (new or rewritten).
    pub sessions_written: usize,
    /// Sessions and retained messages the target already held unchanged (with `force`).
    pub unchanged: usize,
    /// Target sessions and retained messages deleted (absent from the source).
    pub deleted: usize,
    /// Ops applied.
    pub ops: usize,
    /// Applies (batches).
    pub batches: usize,
    /// The source and the target as loaded after the copy.
    pub comparison: Comparison,
}

/// Why a migration did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target holds state (beyond `$SYS` retained messages) and `force` was not given.
    #[error(
        "the target is not empty ({sessions} sessions, {retained} retained messages); \
         pass --force to make it a copy of the source"
    )]
    TargetNotEmpty {
        /// Sessions in the target.
        sessions: usize,
        /// Retained messages in the target.
        retained: usize,
    },
    /// A store failed; the target may be partly written (run again with `force`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies everything `source` holds into `target` (sessions with their subscriptions,
/// queued and in-flight messages with their packet ids, inbound QoS 2 ids; retained
/// messages; the next queue seq), flushes, and compares the two.
pub fn migrate(
    source: &dyn Store,
    target: &mut dyn Store,
    options: MigrateOptions,
) -> Result<MigrateSummary, MigrateError> {
    let snapshot = source.load()?;
    let source_sums = Checksums::of(&snapshot);
    let existing = target.load()?;
    if !options.force && !is_empty(&existing) {
        let own = existing
            .retained
            .iter()
            .filter(|m| m.topic.starts_with("$SYS/"));
        return Err(MigrateError::TargetNotEmpty {
            sessions: existing.sessions.len(),
            retained: existing.retained.len() - own.count(),
        });
    }
    let mut out = Batcher::new(target, options.batch_ops);
    let mut counts = Counts::default();
    let next_seq = snapshot.next_seq;
    copy_sessions(&mut out, &mut counts, snapshot.sessions, &existing.sessions)?;
    copy_retained(&mut out, &mut counts, snapshot.retained, &existing.retained)?;
    out.push(Op::RaiseNextSeq { next_seq })?;
    let (ops, batches) = out.finish()?;
    let comparison = Comparison {
        source: source_sums,
        target: Checksums::of(&target.load()?),
    };
    Ok(MigrateSummary {
        sessions_written: counts.written,
        unchanged: counts.unchanged,
        deleted: counts.deleted,
        ops,
        batches,
        comparison,
    })
}

/// Loads both stores and compares them, without writing.
pub fn compare(source: &dyn Store, target: &dyn Store) -> Result<Comparison, StoreError> {
    Ok(Comparison {
        source: Checksums::of(&source.load()?),
        target: Checksums::of(&target.load()?),
    })
}

#[derive(Debug, Default)]
struct Counts {
    written: usize,
    unchanged: usize,
    deleted: usize,
}

fn copy_sessions(
    out: &mut Batcher<'_>,
    counts: &mut Counts,
    sessions: Vec<StoredSession>,
    existing: &[StoredSession],
) -> Result<(), StoreError> {
    let mut old: BTreeMap<&str, &StoredSession> = existing
        .iter()
        .map(|s| (s.record.client_id.as_str(), s))
        .collect();
    for s in sessions {
        match old.remove(s.record.client_id.as_str()) {
            Some(o) if same_session(o, &s) => {
                counts.unchanged += 1;
                continue;
            }
            // Clears what differs (and entries left by an interrupted run).
            Some(_) => out.push(Op::DeleteSession {
                client_id: s.record.client_id.as_str().into(),
            })?,
            None => {}
        }
        put_session(out, s)?;
        counts.written += 1;
    }
    for (id, _) in old {
        out.push(Op::DeleteSession {
            client_id: id.into(),
        })?;
        counts.deleted += 1;
    }
    Ok(())
}

/// Same state (the cluster-only replay cursor aside).
fn same_session(a: &StoredSession, b: &StoredSession) -> bool {
    a.record == b.record
        && a.subscriptions == b.subscriptions
        && a.queue == b.queue
        && a.inbound_qos2 == b.inbound_qos2
}

/// The session's children first, its record last (see the module doc).
fn put_session(out: &mut Batcher<'_>, s: StoredSession) -> Result<(), StoreError> {
    let id = s.record.client_id.as_str();
    for sub in s.subscriptions {
        out.push(Op::PutSubscription {
            client_id: id.into(),
            sub,
        })?;
    }
    for (seq, rec) in s.queue {
        out.push(Op::PutQueued {
            client_id: id.into(),
            seq,
            rec,
        })?;
    }
    for packet_id in s.inbound_qos2 {
        out.push(Op::PutInboundQos2 {
            client_id: id.into(),
            packet_id,
        })?;
    }
    out.push(Op::PutSession(s.record))
}

fn copy_retained(
    out: &mut Batcher<'_>,
    counts: &mut Counts,
    retained: Vec<MessageRecord>,
    existing: &[MessageRecord],
) -> Result<(), StoreError> {
    let mut old: BTreeMap<&str, &MessageRecord> =
        existing.iter().map(|m| (m.topic.as_str(), m)).collect();
    for msg in retained {
        if old.remove(msg.topic.as_str()) == Some(&msg) {
            counts.unchanged += 1;
            continue;
        }
        out.push(Op::PutRetained(msg))?;
    }
    for (topic, _) in old {
        out.push(Op::DeleteRetained {
            topic: topic.to_owned(),
        })?;
        counts.deleted += 1;
    }
    Ok(())
}

/// Applies ops to the target in batches of a bounded size.
struct Batcher<'t> {
    target: &'t mut dyn Store,
    pending: Vec<Op>,
    limit: usize,
    ops: usize,
    batches: usize,
}

impl<'t> Batcher<'t> {
    fn new(target: &'t mut dyn Store, limit: usize) -> Self {
        let limit = limit.max(1);
        Batcher {
            target,
            pending: Vec::with_capacity(limit),
            limit,
            ops: 0,
            batches: 0,
        }
    }

    fn push(&mut self, op: Op) -> Result<(), StoreError> {
        self.pending.push(op);
        if self.pending.len() >= self.limit {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let ops = std::mem::replace(&mut self.pending, Vec::with_capacity(self.limit));
        self.ops += ops.len();
        self.target.apply(ops)?;
        self.batches += 1;
        if self.batches % 100 == 0 {
            info!(ops = self.ops, batches = self.batches, "migrating");
        }
        Ok(())
    }

    /// Applies what is left and flushes; returns (ops, batches).
    fn finish(mut self) -> Result<(usize, usize), StoreError> {
        self.apply()?;
        self.target.flush()?;
        Ok((self.ops, self.batches))
    }
}

/// Whether a snapshot holds no sessions and no retained messages but the broker's own
/// `$SYS` ones (a broker that ran once on an empty store has those; it publishes them
/// again at each start).
fn is_empty(snapshot: &Snapshot) -> bool {
    snapshot.sessions.is_empty()
        && snapshot
            .retained
            .iter()
            .all(|m| m.topic.starts_with("$SYS/"))
}
