//! Reading the store back: everything at start ([`everything`]), in pages of
//! [`PAGE`] rows per query (keyset pagination on each table's primary key) inside one
//! read-only snapshot, and one client's session ([`session`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::{server_error, Conn};
use crate::persistence::records::{MessageRecord, SessionRecord};
use crate::persistence::{Snapshot, StoreError, StoredSession};

/// Rows per query.
const PAGE: i64 = 5_000;

/// Sessions being loaded, by client id.
type Sessions = BTreeMap<String, StoredSession>;

/// Boxed query parameters (the cursor of the next page).
type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// The queue's next seq, as stored.
pub(super) async fn next_seq(conn: Arc<Conn>) -> Result<u64, StoreError> {
    let row = conn
        .client
        .query_one(
            "SELECT GREATEST(value, 1) FROM starling_meta WHERE name = 'next_seq'",
            &[],
        )
        .await
        .map_err(server_error)?;
    let v: i64 = row.try_get(0).map_err(server_error)?;
    Ok(u64::try_from(v).unwrap_or(1))
}

/// Everything stored, in one snapshot of the database.
pub(super) async fn everything(client: &Client, next_seq: u64) -> Result<Snapshot, StoreError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(server_error)?;
    let mut sessions = Sessions::new();
    let base = "SELECT client_id, record FROM starling_sessions";
    paged(client, base, "client_id", cursor1, |row| {
        let id: String = row.try_get(0).map_err(server_error)?;
        let record: SessionRecord = decode("starling_sessions", &id, row)?;
        sessions.insert(id, StoredSession::new(record));
        Ok(())
    })
    .await?;
    let base = "SELECT client_id, filter, record FROM starling_subscriptions";
    paged(client, base, "client_id, filter", cursor_text, |row| {
        let id: &str = row.try_get(0).map_err(server_error)?;
        if let Some(s) = sessions.get_mut(id) {
            s.subscriptions
                .push(decode("starling_subscriptions", id, row)?);
        }
        Ok(())
    })
    .await?;
    let mut high = next_seq;
    let base = "SELECT client_id, seq, record FROM starling_queue";
    paged(client, base, "client_id, seq", cursor_seq, |row| {
        let id: &str = row.try_get(0).map_err(server_error)?;
        let seq = seq_of(row)?;
        high = high.max(seq.saturating_add(1));
        if let Some(s) = sessions.get_mut(id) {
            s.queue.push((seq, decode("starling_queue", id, row)?));
        }
        Ok(())
    })
    .await?;
    let base = "SELECT client_id, packet_id FROM starling_inbound_qos2";
    paged(client, base, "client_id, packet_id", cursor_pid, |row| {
        let id: &str = row.try_get(0).map_err(server_error)?;
        if let Some(s) = sessions.get_mut(id) {
            s.inbound_qos2.push(packet_id_of(row)?);
        }
        Ok(())
    })
    .await?;
    let mut retained = Vec::new();
    let base = "SELECT topic, record FROM starling_retained";
    paged(client, base, "topic", cursor1, |row| {
        let topic: &str = row.try_get(0).map_err(server_error)?;
        let msg: MessageRecord = decode("starling_retained", topic, row)?;
        retained.push(msg);
        Ok(())
    })
    .await?;
    client.batch_execute("COMMIT").await.map_err(server_error)?;
    Ok(Snapshot {
        sessions: sessions.into_values().collect(),
        retained,
        next_seq: high,
    })
}

/// One client's session, in one snapshot of the database.
pub(super) async fn session(
    client: &Client,
    id: String,
) -> Result<Option<StoredSession>, StoreError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(server_error)?;
    let found = session_in_snapshot(client, &id).await?;
    client.batch_execute("COMMIT").await.map_err(server_error)?;
    Ok(found)
}

async fn session_in_snapshot(
    client: &Client,
    id: &str,
) -> Result<Option<StoredSession>, StoreError> {
    let key: [&(dyn ToSql + Sync); 1] = [&id];
    let (record, subs, qos2) = futures::join!(
        client.query_opt(
            "SELECT record FROM starling_sessions WHERE client_id = $1",
            &key
        ),
        client.query(
            "SELECT record FROM starling_subscriptions WHERE client_id = $1 ORDER BY filter",
            &key
        ),
        client.query(
            "SELECT packet_id FROM starling_inbound_qos2 WHERE client_id = $1 \
             ORDER BY packet_id",
            &key
        ),
    );
    let Some(row) = record.map_err(server_error)? else {
        return Ok(None);
    };
    let mut s = StoredSession::new(decode_at("starling_sessions", id, &row, 0)?);
    for row in subs.map_err(server_error)? {
        s.subscriptions
            .push(decode_at("starling_subscriptions", id, &row, 0)?);
    }
    for row in qos2.map_err(server_error)? {
        let pid: i32 = row.try_get(0).map_err(server_error)?;
        s.inbound_qos2.push(pid_from(pid)?);
    }
    let sql = format!(
        "SELECT seq, record FROM starling_queue WHERE client_id = $1 AND seq > $2 \
         ORDER BY seq LIMIT {PAGE}"
    );
    let stmt = client.prepare(&sql).await.map_err(server_error)?;
    let mut after: i64 = -1;
    loop {
        let rows = client
            .query(&stmt, &[&id, &after])
            .await
            .map_err(server_error)?;
        for row in &rows {
            after = row.try_get(0).map_err(server_error)?;
            let seq = u64::try_from(after).map_err(|_| corrupt("starling_queue", id, "seq"))?;
            s.queue
                .push((seq, decode_at("starling_queue", id, row, 1)?));
        }
        if (rows.len() as i64) < PAGE {
            return Ok(Some(s));
        }
    }
}

/// Runs `base` page by page in key order, calling `each` on every row; `cursor` gives
/// the key of a row (the first columns of `base`, as in `key`).
async fn paged(
    client: &Client,
    base: &str,
    key: &str,
    cursor: fn(&Row) -> Result<Params, StoreError>,
    mut each: impl FnMut(&Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let width = key.split(',').count();
    let marks: Vec<String> = (1..=width).map(|i| format!("${i}")).collect();
    let first = format!("{base} ORDER BY {key} LIMIT {PAGE}");
    let next = format!(
        "{base} WHERE ({key}) > ({}) ORDER BY {key} LIMIT {PAGE}",
        marks.join(", ")
    );
    let next = client.prepare(&next).await.map_err(server_error)?;
    let mut rows = client.query(&first, &[]).await.map_err(server_error)?;
    loop {
        for row in &rows {
            each(row)?;
        }
        let Some(last) = rows.last().filter(|_| rows.len() as i64 == PAGE) else {
            return Ok(());
        };
        let params = cursor(last)?;
        let params = params.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync));
        let stream = client
            .query_raw(&next, params)
            .await
            .map_err(server_error)?;
        rows = stream.try_collect().await.map_err(server_error)?;
    }
}

fn cursor1(row: &Row) -> Result<Params, StoreError> {
    let k: String = row.try_get(0).map_err(server_error)?;
    Ok(vec![Box::new(k)])
}

fn cursor_text(row: &Row) -> Result<Params, StoreError> {
    let (a, b): (String, String) = (
        row.try_get(0).map_err(server_error)?,
        row.try_get(1).map_err(server_error)?,
    );
    Ok(vec![Box::new(a), Box::new(b)])
}

fn cursor_seq(row: &Row) -> Result<Params, StoreError> {
    let (a, b): (String, i64) = (
        row.try_get(0).map_err(server_error)?,
        row.try_get(1).map_err(server_error)?,
    );
    Ok(vec![Box::new(a), Box::new(b)])
}

fn cursor_pid(row: &Row) -> Result<Params, StoreError> {
    let (a, b): (String, i32) = (
        row.try_get(0).map_err(server_error)?,
        row.try_get(1).map_err(server_error)?,
    );
    Ok(vec![Box::new(a), Box::new(b)])
}

fn seq_of(row: &Row) -> Result<u64, StoreError> {
    let seq: i64 = row.try_get(1).map_err(server_error)?;
    u64::try_from(seq).map_err(|_| corrupt("starling_queue", "?", "negative seq"))
}

fn packet_id_of(row: &Row) -> Result<u16, StoreError> {
    pid_from(row.try_get(1).map_err(server_error)?)
}

fn pid_from(pid: i32) -> Result<u16, StoreError> {
    u16::try_from(pid).map_err(|_| corrupt("starling_inbound_qos2", "?", "packet id"))
}

/// Decodes the record in the row's last column.
fn decode<T: DeserializeOwned>(table: &'static str, key: &str, row: &Row) -> Result<T, StoreError> {
    decode_at(table, key, row, row.len().saturating_sub(1))
}

fn decode_at<T: DeserializeOwned>(
    table: &'static str,
    key: &str,
    row: &Row,
    col: usize,
) -> Result<T, StoreError> {
    let bytes: &[u8] = row.try_get(col).map_err(server_error)?;
    postcard::from_bytes(bytes).map_err(|e| corrupt(table, key, &e.to_string()))
}

fn corrupt(table: &'static str, key: &str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        tree: table,
        key: key.as_bytes().to_vec(),
        reason: reason.to_owned(),
    }
}
