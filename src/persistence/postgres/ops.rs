//! One batch of ops as one transaction: the ops are coalesced per key (the last write
//! of a key wins, a deleted session wipes what came before it), then written with at
//! most one array statement per table and kind, pipelined between BEGIN and COMMIT.
//!
//! Statement order keeps the batch's meaning: session wipes first, then deletes, then
//! upserts, so a key written after its session was deleted in the same batch stays.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::server_error;
use crate::persistence::{Op, StoreError};

/// The statements of a batch, prepared once per connection.
pub(super) struct Statements {
    wipe_subs: Statement,
    wipe_queue: Statement,
    wipe_qos2: Statement,
    del_sessions: Statement,
    del_subs: Statement,
    del_queue: Statement,
    del_qos2: Statement,
    del_retained: Statement,
    put_sessions: Statement,
    put_subs: Statement,
    put_queue: Statement,
    put_qos2: Statement,
    put_retained: Statement,
    bump_seq: Statement,
}

const SQL: [&str; 14] = [
    "DELETE FROM starling_subscriptions WHERE client_id = ANY($1::text[])",
    "DELETE FROM starling_queue WHERE client_id = ANY($1::text[])",
    "DELETE FROM starling_inbound_qos2 WHERE client_id = ANY($1::text[])",
    "DELETE FROM starling_sessions WHERE client_id = ANY($1::text[])",
    "DELETE FROM starling_subscriptions t USING unnest($1::text[], $2::text[]) AS d(c, f) \
     WHERE t.client_id = d.c AND t.filter = d.f",
    "DELETE FROM starling_queue t USING unnest($1::text[], $2::int8[]) AS d(c, s) \
     WHERE t.client_id = d.c AND t.seq = d.s",
    "DELETE FROM starling_inbound_qos2 t USING unnest($1::text[], $2::int4[]) AS d(c, p) \
     WHERE t.client_id = d.c AND t.packet_id = d.p",
    "DELETE FROM starling_retained WHERE topic = ANY($1::text[])",
    "INSERT INTO starling_sessions (client_id, record) \
     SELECT * FROM unnest($1::text[], $2::bytea[]) \
     ON CONFLICT (client_id) DO UPDATE SET record = EXCLUDED.record",
    "INSERT INTO starling_subscriptions (client_id, filter, record) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) \
     ON CONFLICT (client_id, filter) DO UPDATE SET record = EXCLUDED.record",
    "INSERT INTO starling_queue (client_id, seq, record) \
     SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[]) \
     ON CONFLICT (client_id, seq) DO UPDATE SET record = EXCLUDED.record",
    "INSERT INTO starling_inbound_qos2 (client_id, packet_id) \
     SELECT * FROM unnest($1::text[], $2::int4[]) ON CONFLICT DO NOTHING",
    "INSERT INTO starling_retained (topic, record) \
     SELECT * FROM unnest($1::text[], $2::bytea[]) \
     ON CONFLICT (topic) DO UPDATE SET record = EXCLUDED.record",
    "UPDATE starling_meta SET value = GREATEST(value, $1) WHERE name = 'next_seq'",
];

impl Statements {
    /// Prepares every statement (pipelined: one round trip).
    pub async fn prepare(client: &Client) -> Result<Statements, StoreError> {
        let prepared = join_all(SQL.iter().map(|sql| client.prepare(sql))).await;
        let mut s = prepared
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(server_error)?
            .into_iter();
        let mut next = || {
            s.next()
                .ok_or_else(|| super::server("statement missing".into()))
        };
        Ok(Statements {
            wipe_subs: next()?,
            wipe_queue: next()?,
            wipe_qos2: next()?,
            del_sessions: next()?,
            del_subs: next()?,
            del_queue: next()?,
            del_qos2: next()?,
            del_retained: next()?,
            put_sessions: next()?,
            put_subs: next()?,
            put_queue: next()?,
            put_qos2: next()?,
            put_retained: next()?,
            bump_seq: next()?,
        })
    }
}

/// The coalesced writes of one batch: per key, `Some(record)` to upsert, `None` to
/// delete.
#[derive(Default)]
pub(super) struct Plan {
    wiped: BTreeSet<String>,
    sessions: BTreeMap<String, Option<Vec<u8>>>,
    subs: BTreeMap<(String, String), Option<Vec<u8>>>,
    queue: BTreeMap<(String, i64), Option<Vec<u8>>>,
    qos2: BTreeMap<(String, i32), bool>,
    retained: BTreeMap<String, Option<Vec<u8>>>,
    /// The queue's next seq, when the batch raises it.
    pub next_seq: Option<u64>,
}

impl Plan {
    /// Coalesces `ops` in order; `next_seq` is the store's current one.
    pub fn of(ops: Vec<Op>, next_seq: u64) -> Result<Plan, StoreError> {
        let mut plan = Plan::default();
        let mut seq_high = next_seq;
        for op in ops {
            plan.add(op, &mut seq_high)?;
        }
        plan.next_seq = (seq_high > next_seq).then_some(seq_high);
        Ok(plan)
    }

    /// True if the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.wiped.is_empty()
            && self.sessions.is_empty()
            && self.subs.is_empty()
            && self.queue.is_empty()
            && self.qos2.is_empty()
            && self.retained.is_empty()
            && self.next_seq.is_none()
    }

    fn add(&mut self, op: Op, seq_high: &mut u64) -> Result<(), StoreError> {
        match op {
            Op::PutSession(rec) => {
                let v = encode(&rec)?;
                self.sessions.insert(rec.client_id, Some(v));
            }
            Op::DeleteSession { client_id } => {
                let id = client_id.as_str().to_owned();
                self.subs.retain(|(c, _), _| *c != id);
                self.queue.retain(|(c, _), _| *c != id);
                self.qos2.retain(|(c, _), _| *c != id);
                self.sessions.insert(id.clone(), None);
                self.wiped.insert(id);
            }
            Op::PutSubscription { client_id, sub } => {
                let v = encode(&sub)?;
                self.subs
                    .insert((client_id.as_str().into(), sub.filter), Some(v));
            }
            Op::DeleteSubscription { client_id, filter } => {
                self.subs.insert((client_id.as_str().into(), filter), None);
            }
            Op::PutQueued {
                client_id,
                seq,
                rec,
            } => {
                *seq_high = (*seq_high).max(seq.saturating_add(1));
                let v = encode(&rec)?;
                self.queue
                    .insert((client_id.as_str().into(), db_seq(seq)?), Some(v));
            }
            Op::DeleteQueued { client_id, seq } => {
                self.queue
                    .insert((client_id.as_str().into(), db_seq(seq)?), None);
            }
            Op::PutInboundQos2 {
                client_id,
                packet_id,
            } => {
                self.qos2
                    .insert((client_id.as_str().into(), packet_id.into()), true);
            }
            Op::DeleteInboundQos2 {
                client_id,
                packet_id,
            } => {
                self.qos2
                    .insert((client_id.as_str().into(), packet_id.into()), false);
            }
            Op::PutRetained(msg) => {
                let v = encode(&msg)?;
                self.retained.insert(msg.topic, Some(v));
            }
            Op::DeleteRetained { topic } => {
                self.retained.insert(topic, None);
            }
            Op::Delivered { .. }
            | Op::LogPosition { .. }
            | Op::CaughtUp { .. }
            | Op::RefreshPosition { .. } => {}
            Op::RaiseNextSeq { next_seq } => *seq_high = (*seq_high).max(next_seq),
        }
        Ok(())
    }

    /// Writes the plan in one transaction: BEGIN, the statements and COMMIT are sent
    /// together and answered in one round trip.
    pub async fn write(self, client: &Client, s: &Statements) -> Result<(), StoreError> {
        let calls = self.calls(s)?;
        let begin = client.batch_execute("BEGIN");
        let statements = join_all(
            calls
                .iter()
                .map(|(stmt, params)| client.execute_raw(*stmt, params.iter().map(as_param))),
        );
        let commit = client.batch_execute("COMMIT");
        let (begin, done, commit) = futures::join!(begin, statements, commit);
        begin.map_err(server_error)?;
        for r in done {
            r.map_err(server_error)?;
        }
        // COMMIT of a transaction that failed answers ROLLBACK without an error; the
        // statement's error above was returned first.
        commit.map_err(server_error)
    }

    /// The statements to run, in order, with their array parameters.
    fn calls<'s>(self, s: &'s Statements) -> Result<Vec<Call<'s>>, StoreError> {
        let mut calls: Vec<Call<'s>> = Vec::new();
        if !self.wiped.is_empty() {
            let ids: Vec<String> = self.wiped.into_iter().collect();
            for stmt in [&s.wipe_subs, &s.wipe_queue, &s.wipe_qos2] {
                calls.push((stmt, vec![Box::new(ids.clone())]));
            }
        }
        let (del, put) = split_keyed(self.sessions);
        push1(&mut calls, &s.del_sessions, del);
        push2(&mut calls, &s.put_sessions, put);
        let (del, put) = split_pairs(self.subs);
        push2(&mut calls, &s.del_subs, del);
        push3(&mut calls, &s.put_subs, put);
        let (del, put) = split_pairs(self.queue);
        push2(&mut calls, &s.del_queue, del);
        push3(&mut calls, &s.put_queue, put);
        let (del, put): (Vec<_>, Vec<_>) = self.qos2.into_iter().partition(|(_, put)| !put);
        push2(
            &mut calls,
            &s.del_qos2,
            del.into_iter().map(|(k, _)| k).unzip(),
        );
        push2(
            &mut calls,
            &s.put_qos2,
            put.into_iter().map(|(k, _)| k).unzip(),
        );
        let (del, put) = split_keyed(self.retained);
        push1(&mut calls, &s.del_retained, del);
        push2(&mut calls, &s.put_retained, put);
        if let Some(next) = self.next_seq {
            calls.push((&s.bump_seq, vec![Box::new(db_seq(next)?)]));
        }
        Ok(calls)
    }
}

fn as_param(b: &Param) -> &(dyn ToSql + Sync) {
    &**b
}

/// One boxed statement parameter.
type Param = Box<dyn ToSql + Sync + Send>;
/// Keys and records to upsert.
type Upserts = (Vec<String>, Vec<Vec<u8>>);

/// A statement and its parameters.
type Call<'s> = (&'s Statement, Vec<Param>);

fn push1<'s>(calls: &mut Vec<Call<'s>>, stmt: &'s Statement, keys: Vec<String>) {
    if !keys.is_empty() {
        calls.push((stmt, vec![Box::new(keys)]));
    }
}

fn push2<'s, A, B>(calls: &mut Vec<Call<'s>>, stmt: &'s Statement, (a, b): (Vec<A>, Vec<B>))
where
    A: ToSql + Sync + Send + 'static,
    B: ToSql + Sync + Send + 'static,
{
    if !a.is_empty() {
        calls.push((stmt, vec![Box::new(a), Box::new(b)]));
    }
}

fn push3<'s, A, B>(calls: &mut Vec<Call<'s>>, stmt: &'s Statement, rows: Vec<(A, B, Vec<u8>)>)
where
    A: ToSql + Sync + Send + 'static,
    B: ToSql + Sync + Send + 'static,
{
    if rows.is_empty() {
        return;
    }
    let mut cols = (Vec::new(), Vec::new(), Vec::new());
    for (a, b, v) in rows {
        cols.0.push(a);
        cols.1.push(b);
        cols.2.push(v);
    }
    calls.push((
        stmt,
        vec![Box::new(cols.0), Box::new(cols.1), Box::new(cols.2)],
    ));
}

/// Single-column keys: the deleted ones, and the (key, record) pairs to upsert.
fn split_keyed(map: BTreeMap<String, Option<Vec<u8>>>) -> (Vec<String>, Upserts) {
    let mut del = Vec::new();
    let mut put = (Vec::new(), Vec::new());
    for (k, v) in map {
        match v {
            Some(v) => {
                put.0.push(k);
                put.1.push(v);
            }
            None => del.push(k),
        }
    }
    (del, put)
}

/// (client, key) pairs: the deleted ones as two columns, and the rows to upsert.
#[allow(clippy::type_complexity)]
fn split_pairs<K>(
    map: BTreeMap<(String, K), Option<Vec<u8>>>,
) -> ((Vec<String>, Vec<K>), Vec<(String, K, Vec<u8>)>) {
    let mut del = (Vec::new(), Vec::new());
    let mut put = Vec::new();
    for ((c, k), v) in map {
        match v {
            Some(v) => put.push((c, k, v)),
            None => {
                del.0.push(c);
                del.1.push(k);
            }
        }
    }
    (del, put)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Encode(e.to_string()))
}

/// A queue seq as the table's `bigint` (seqs count up from 1 and never reach 2^63).
pub(super) fn db_seq(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Encode(format!("queue seq {seq} above 2^63")))
}
