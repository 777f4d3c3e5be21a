//! The store's JetStream calls (async, on the store's runtime): writes and their
//! acknowledgements, the stream, and reading one client's keys.

use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tracing::warn;

use super::{keys, STREAM};
use crate::persistence::StoreError;

/// How long a tombstone stays (the minimum message TTL).
const TOMBSTONE_TTL: &str = "1";
/// Acknowledgements awaited at most before a batch waits for them (the JetStream
/// context allows this many outstanding).
pub(super) const MAX_PENDING: usize = 8192;
/// Attempts to get one write acknowledged; a stream leader election takes 4–8 s.
pub(super) const ATTEMPTS: u32 = 6;
/// Pause between attempts, times the attempt number.
pub(super) const RETRY_STEP: Duration = Duration::from_millis(500);
/// How long one acknowledgement may take before it counts as failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(4);
/// Values requested at once while loading a session.
const LOAD_CONCURRENCY: usize = 64;

/// One write whose acknowledgement is outstanding.
pub(super) struct Pending {
    pub subject: String,
    pub payload: Bytes,
    pub ack: Option<PublishAckFuture>,
}

/// Publishes one write (an empty payload is a tombstone); `None` if it could not be sent.
pub(super) async fn send(
    js: &jetstream::Context,
    subject: &str,
    payload: &Bytes,
) -> Option<PublishAckFuture> {
    let mut msg = jetstream::message::PublishMessage::build().payload(payload.clone());
    if payload.is_empty() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-TTL", TOMBSTONE_TTL);
        msg = msg.headers(headers);
    }
    match js.send_publish(subject.to_owned(), msg).await {
        Ok(ack) => Some(ack),
        Err(e) => {
            warn!(subject, error = %e, "session state write not sent");
            None
        }
    }
}

/// Awaits all acknowledgements; re-sends, a bounded number of times, each failed write
/// that no later write of the same subject supersedes (JetStream keeps one connection's
/// writes in order, so the later one decides the value either way).
pub(super) async fn settle(
    js: jetstream::Context,
    mut pending: Vec<Pending>,
) -> Result<(), StoreError> {
    for attempt in 1..=ATTEMPTS {
        let acks = pending.iter_mut().map(|p| {
            let ack = p.ack.take();
            async move {
                match ack {
                    Some(ack) => matches!(tokio::time::timeout(ACK_TIMEOUT, ack).await, Ok(Ok(_))),
                    None => false,
                }
            }
        });
        let results = futures::future::join_all(acks).await;
        let mut latest = std::collections::HashMap::new();
        for (i, p) in pending.iter().enumerate() {
            latest.insert(p.subject.as_str(), i);
        }
        let retry: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|&(i, ok)| !ok && latest.get(pending[i].subject.as_str()) == Some(&i))
            .map(|(i, _)| i)
            .collect();
        if retry.is_empty() {
            return Ok(());
        }
        warn!(
            attempt,
            failed = retry.len(),
            "session state writes not acknowledged; re-sending"
        );
        tokio::time::sleep(RETRY_STEP * attempt).await;
        let mut again = Vec::with_capacity(retry.len());
        for i in retry {
            let p = &pending[i];
            let ack = send(&js, &p.subject, &p.payload).await;
            again.push(Pending {
                subject: p.subject.clone(),
                payload: p.payload.clone(),
                ack,
            });
        }
        pending = again;
    }
    Err(StoreError::Cluster(
        "session state writes not acknowledged by JetStream".into(),
    ))
}

/// Creates the stream unless it exists (the caller bounds the time).
pub(super) async fn ensure_stream(js: &jetstream::Context, replicas: usize) -> stream::Stream {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{}.>", keys::PREFIX)],
        max_messages_per_subject: 1,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        allow_message_ttl: true,
        ..Default::default()
    };
    crate::cluster::jetstream::ensure_stream(js, config, "session state").await
}

/// The last message of every subject matching `filter`, tombstones left out. Retried
/// whole, a bounded number of times, while JetStream answers "no responders" (a stream
/// leader being elected, e.g. just after the cluster started).
pub(super) async fn read_all(
    stream: stream::Stream,
    filter: String,
) -> Result<Vec<(String, Bytes)>, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read_once(&stream, &filter).await {
            Ok(out) => return Ok(out),
            Err(e) if attempt < ATTEMPTS => {
                warn!(attempt, error = %e, "session load failed; retrying");
                tokio::time::sleep(RETRY_STEP * attempt).await;
            }
            Err(e) => return Err(StoreError::Cluster(format!("cannot load session: {e}"))),
        }
    }
}

/// One try of [`read_all`]: the subjects under `filter` (stream info), then the last
/// message of each (`STREAM.MSG.GET`, `LOAD_CONCURRENCY` at a time).
///
/// Both requests are answered by the stream leader alone, which has applied every write
/// and purge it acknowledged. Not a consumer: an R1 consumer is placed on a random
/// replica of the stream, and a follower may not yet have applied the writes the leader
/// just acknowledged; a load read there missed a record written right after a purge,
/// or saw a session the store had just deleted (and purged it again, live).
async fn read_once(stream: &stream::Stream, filter: &str) -> Result<Vec<(String, Bytes)>, String> {
    let mut listed = stream
        .info_builder()
        .subjects(filter)
        .fetch()
        .await
        .map_err(|e| e.to_string())?;
    let mut subjects = Vec::new();
    while let Some((subject, _count)) = listed.try_next().await.map_err(|e| e.to_string())? {
        subjects.push(subject);
    }
    let gets = subjects.into_iter().map(|subject| async move {
        let got = stream
            .raw_message_builder()
            .last_by_subject(subject.clone())
            .send()
            .await;
        match got {
            Ok(m) => Ok((!m.payload.is_empty()).then_some((subject, m.payload))),
            // Gone since it was listed (an expired tombstone, a purge).
            Err(e) if matches!(e.kind(), RawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(format!("{subject}: {e}")),
        }
    });
    let mut values = futures::stream::iter(gets).buffer_unordered(LOAD_CONCURRENCY);
    let mut out = Vec::new();
    while let Some(value) = values.next().await {
        out.extend(value?);
    }
    Ok(out)
}
