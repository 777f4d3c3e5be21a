//! Loading: sessions, their children and retained messages read in pages (HSCAN /
//! SSCAN), so no reply holds a whole large queue; the first page of many small sessions
//! goes in one pipelined round trip.

use std::collections::{BTreeMap, BTreeSet};

use redis::Connection;
use serde::de::DeserializeOwned;

use super::super::records::{MessageRecord, QueuedRecord, SessionRecord, SubscriptionRecord};
use super::super::store::StoredSession;
use super::super::StoreError;
use super::keys::{ClientKey, Keys};
use super::link::Failure;

/// Elements asked for per SCAN page.
const PAGE: usize = 1000;
/// Sessions whose children are fetched in one pipeline.
const SESSIONS_PER_ROUND: usize = 200;

/// One page of a SCAN-family reply: the next cursor (0 when done) and the elements
/// (field, value, field, value... for HSCAN).
type Page = (u64, Vec<Vec<u8>>);

type Read<T> = Result<T, Failure>;

fn scan_page(con: &mut Connection, cmd: &str, key: &str, cursor: u64) -> Read<Page> {
    Ok(redis::cmd(cmd)
        .arg(key)
        .arg(cursor)
        .arg("COUNT")
        .arg(PAGE)
        .query(con)?)
}

/// Every element of `key` (an HSCAN or SSCAN), from the page already read on.
fn scan_rest(con: &mut Connection, cmd: &str, key: &str, first: Page) -> Read<Vec<Vec<u8>>> {
    let (mut cursor, mut items) = first;
    while cursor != 0 {
        let (next, more) = scan_page(con, cmd, key, cursor)?;
        items.extend(more);
        cursor = next;
    }
    Ok(items)
}

/// Every field → value of hash `key`; a field SCAN returned twice is kept once.
pub(super) fn hash_all(con: &mut Connection, key: &str) -> Read<BTreeMap<Vec<u8>, Vec<u8>>> {
    let first = scan_page(con, "HSCAN", key, 0)?;
    pairs(scan_rest(con, "HSCAN", key, first)?)
}

fn pairs(items: Vec<Vec<u8>>) -> Read<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut it = items.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        out.insert(field, value);
    }
    Ok(out)
}

/// The sessions (without children yet), by client id.
pub(super) fn sessions(con: &mut Connection, keys: &Keys) -> Read<BTreeMap<String, StoredSession>> {
    let mut out = BTreeMap::new();
    for (field, value) in hash_all(con, &keys.sessions())? {
        let record: SessionRecord = decode("sessions", &field, &value)?;
        if record.client_id.as_bytes() != field.as_slice() {
            return Err(corrupt("sessions", &field, "record is for another client").into());
        }
        out.insert(record.client_id.clone(), StoredSession::new(record));
    }
    Ok(out)
}

/// One session, without children yet.
pub(super) fn session(con: &mut Connection, keys: &Keys, id: &str) -> Read<Option<StoredSession>> {
    let value: Option<Vec<u8>> = redis::cmd("HGET").arg(keys.sessions()).arg(id).query(con)?;
    match value {
        None => Ok(None),
        Some(v) => Ok(Some(StoredSession::new(decode(
            "sessions",
            id.as_bytes(),
            &v,
        )?))),
    }
}

/// Fills in the subscriptions, queues and inbound QoS 2 ids of `sessions`.
pub(super) fn children<'s>(
    con: &mut Connection,
    keys: &Keys,
    sessions: impl Iterator<Item = &'s mut StoredSession>,
) -> Read<()> {
    let mut round: Vec<&mut StoredSession> = Vec::with_capacity(SESSIONS_PER_ROUND);
    for s in sessions {
        round.push(s);
        if round.len() == SESSIONS_PER_ROUND {
            children_round(con, keys, std::mem::take(&mut round))?;
        }
    }
    children_round(con, keys, round)
}

/// The first page of every child key of `round` in one pipeline, then the rest of any
/// key that has more.
fn children_round(con: &mut Connection, keys: &Keys, round: Vec<&mut StoredSession>) -> Read<()> {
    if round.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for s in &round {
        for kind in ClientKey::ALL {
            let key = keys.client(kind, &s.record.client_id);
            pipe.cmd(scan_cmd(kind))
                .arg(key)
                .arg(0)
                .arg("COUNT")
                .arg(PAGE);
        }
    }
    let pages: Vec<Page> = pipe.query(con)?;
    let mut pages = pages.into_iter();
    for s in round {
        for kind in ClientKey::ALL {
            let Some(first) = pages.next() else {
                return Err(Failure::Store(corrupt(
                    kind.name(),
                    b"",
                    "short pipeline reply",
                )));
            };
            let key = keys.client(kind, &s.record.client_id);
            let items = scan_rest(con, scan_cmd(kind), &key, first)?;
            fill(s, kind, &key, items)?;
        }
    }
    Ok(())
}

fn scan_cmd(kind: ClientKey) -> &'static str {
    match kind {
        ClientKey::Qos2In => "SSCAN",
        ClientKey::Subs | ClientKey::Queue => "HSCAN",
    }
}

/// Decodes one child key's elements into `s`, sorted (and without SCAN's repeats).
fn fill(s: &mut StoredSession, kind: ClientKey, key: &str, items: Vec<Vec<u8>>) -> Read<()> {
    let name = kind.name();
    match kind {
        ClientKey::Subs => {
            let mut subs = BTreeMap::new();
            for (field, value) in pairs(items)? {
                let sub: SubscriptionRecord = decode(name, &field, &value)?;
                subs.insert(sub.filter.clone(), sub);
            }
            s.subscriptions = subs.into_values().collect();
        }
        ClientKey::Queue => {
            let mut queue = BTreeMap::new();
            for (field, value) in pairs(items)? {
                let seq: u64 = number(name, key, &field)?;
                let rec: QueuedRecord = decode(name, &field, &value)?;
                queue.insert(seq, rec);
            }
            s.queue = queue.into_iter().collect();
        }
        ClientKey::Qos2In => {
            let mut ids = BTreeSet::new();
            for member in items {
                ids.insert(number::<u16>(name, key, &member)?);
            }
            s.inbound_qos2 = ids.into_iter().collect();
        }
    }
    Ok(())
}

/// Retained messages, by topic.
pub(super) fn retained(con: &mut Connection, keys: &Keys) -> Read<Vec<MessageRecord>> {
    let mut out = Vec::new();
    for (field, value) in hash_all(con, &keys.retained())? {
        out.push(decode::<MessageRecord>("retained", &field, &value)?);
    }
    Ok(out)
}

/// The stored `next_seq` (1 when missing).
pub(super) fn next_seq(con: &mut Connection, keys: &Keys) -> Read<u64> {
    let v: Option<u64> = redis::cmd("GET").arg(keys.next_seq()).query(con)?;
    Ok(v.unwrap_or(1).max(1))
}

fn number<T: std::str::FromStr>(tree: &'static str, key: &str, field: &[u8]) -> Read<T> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            corrupt(
                tree,
                &[key.as_bytes(), b" ", field].concat(),
                "not a number",
            )
            .into()
        })
}

fn decode<T: DeserializeOwned>(tree: &'static str, key: &[u8], v: &[u8]) -> Read<T> {
    postcard::from_bytes(v).map_err(|e| corrupt(tree, key, &e.to_string()).into())
}

fn corrupt(tree: &'static str, key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt {
        tree,
        key: key.to_vec(),
        reason: reason.to_owned(),
    }
}
