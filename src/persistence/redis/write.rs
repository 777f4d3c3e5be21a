//! `apply`: one batch of ops as one MULTI/EXEC pipeline (one round trip, atomic, in
//! order).

use redis::Pipeline;
use serde::Serialize;

use super::super::store::Op;
use super::super::StoreError;
use super::keys::{ClientKey, Keys};

/// The pipeline of `ops` (empty when no op writes anything) and the next seq after it:
/// `next_seq` rises past each queued seq, and the `next_seq` key is set when it rose.
pub(super) fn plan(
    keys: &Keys,
    ops: Vec<Op>,
    next_seq: u64,
) -> Result<(Pipeline, u64, usize), StoreError> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    let mut next = next_seq;
    let mut commands = 0usize;
    for op in ops {
        commands += add(&mut pipe, keys, op, &mut next)?;
    }
    if next > next_seq {
        pipe.set(keys.next_seq(), next).ignore();
        commands += 1;
    }
    Ok((pipe, next, commands))
}

/// Adds the commands of one op; returns how many.
fn add(pipe: &mut Pipeline, keys: &Keys, op: Op, next_seq: &mut u64) -> Result<usize, StoreError> {
    match op {
        Op::PutSession(rec) => {
            pipe.hset(keys.sessions(), &rec.client_id, encode(&rec)?)
                .ignore();
        }
        Op::DeleteSession { client_id } => {
            pipe.hdel(keys.sessions(), client_id.as_str()).ignore();
            let children: Vec<String> = ClientKey::ALL
                .iter()
                .map(|k| keys.client(*k, client_id.as_str()))
                .collect();
            pipe.del(children).ignore();
            return Ok(2);
        }
        Op::PutSubscription { client_id, sub } => {
            let key = keys.client(ClientKey::Subs, client_id.as_str());
            pipe.hset(key, &sub.filter, encode(&sub)?).ignore();
        }
        Op::DeleteSubscription { client_id, filter } => {
            pipe.hdel(keys.client(ClientKey::Subs, client_id.as_str()), filter)
                .ignore();
        }
        Op::PutQueued {
            client_id,
            seq,
            rec,
        } => {
            *next_seq = (*next_seq).max(seq.saturating_add(1));
            let key = keys.client(ClientKey::Queue, client_id.as_str());
            pipe.hset(key, seq, encode(&rec)?).ignore();
        }
        Op::DeleteQueued { client_id, seq } => {
            pipe.hdel(keys.client(ClientKey::Queue, client_id.as_str()), seq)
                .ignore();
        }
        Op::PutInboundQos2 {
            client_id,
            packet_id,
        } => {
            pipe.sadd(
                keys.client(ClientKey::Qos2In, client_id.as_str()),
                packet_id,
            )
            .ignore();
        }
        Op::DeleteInboundQos2 {
            client_id,
            packet_id,
        } => {
            pipe.srem(
                keys.client(ClientKey::Qos2In, client_id.as_str()),
                packet_id,
            )
            .ignore();
        }
        Op::PutRetained(msg) => {
            pipe.hset(keys.retained(), &msg.topic, encode(&msg)?)
                .ignore();
        }
        Op::DeleteRetained { topic } => {
            pipe.hdel(keys.retained(), topic).ignore();
        }
        Op::RaiseNextSeq { next_seq: n } => {
            // Written once after the batch by `plan`, when it rose.
            *next_seq = (*next_seq).max(n);
            return Ok(0);
        }
        Op::Delivered { .. }
        | Op::LogPosition { .. }
        | Op::CaughtUp { .. }
        | Op::RefreshPosition { .. } => return Ok(0),
    }
    Ok(1)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Encode(e.to_string()))
}
