//! Retained messages in cluster mode: a JetStream stream keeping the last message per
//! subject (one subject per topic, [`retained_subject`]) is the shared copy. Every node
//! follows it with an ordered consumer and mirrors it into its router's retained tree,
//! from which subscriptions are answered as on a single node. An empty payload deletes
//! (the stream keeps it as the topic's last message; followers remove the topic).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::bridge::ClusterError;
use super::envelope::Envelope;
use super::interest::is_node_local_topic;
use super::subject::{retained_subject, RETAINED_PREFIX};
use crate::message::Message;
use crate::router::messages::RetainRemote;
use crate::router::Router;

/// The stream's name.
pub const STREAM: &str = "STARLING_RETAINED";
/// Attempts to store one retained message before giving up (a stream leader election
/// takes a few seconds).
const STORE_ATTEMPTS: u32 = 8;
/// Expiry of the follower's pull requests (see `follow_once`).
const FOLLOW_EXPIRES: Duration = Duration::from_secs(2);
/// How often the follower checks that it is not behind the stream.
const WATCHDOG: Duration = Duration::from_secs(2);
/// Pause between attempts, times the attempt number.
const RETRY_STEP: Duration = Duration::from_millis(500);

/// Creates the stream unless it exists, retrying while JetStream elects its leaders
/// (the caller bounds the time).
pub(super) async fn ensure_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{RETAINED_PREFIX}.>")],
        max_messages_per_subject: 1,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    Ok(super::jetstream::ensure_stream(js, config, "retained").await)
}

/// Sends the retained copy of `msg` to the stream, in call order; a task awaits the
/// acknowledgement (re-sending a bounded number of times) and then fires `done`.
pub(super) async fn store(
    js: &jetstream::Context,
    origin: u64,
    msg: &Arc<Message>,
    done: Option<oneshot::Sender<()>>,
) {
    let Ok(payload) = Envelope::new(origin, 0, msg).encode() else {
        return;
    };
    let subject = retained_subject(&msg.topic);
    if subject.len() > super::bridge::MAX_SUBJECT_LEN {
        warn!(topic = %msg.topic, "topic too long for a NATS subject; retained on this node only");
        if let Some(done) = done {
            let _ = done.send(());
        }
        return;
    }
    let first = js.publish(subject.clone(), payload.clone().into()).await;
    let js = js.clone();
    tokio::spawn(async move {
        let mut pending = first;
        for attempt in 1..=STORE_ATTEMPTS {
            let acked = match pending {
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match acked {
                Ok(_) => {
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                Err(error) => {
                    warn!(
                        subject,
                        attempt, error, "retained message not stored; retrying"
                    );
                    tokio::time::sleep(RETRY_STEP * attempt).await;
                    pending = js.publish(subject.clone(), payload.clone().into()).await;
                }
            }
        }
        warn!(subject, "retained message not stored; giving up");
    });
}

/// Mirrors the stream into the router for as long as the node runs; `ready` fires once
/// the messages present at start have been handed over.
pub(super) async fn follow(
    mut stream: stream::Stream,
    router: Addr<Router>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    match stream.info().await {
        Ok(info) if info.state.messages == 0 => {
            ready.take().map(|r| r.send(()));
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "retained stream info failed"),
    }
    loop {
        if let Err(e) = follow_once(&stream, &router, &mut ready).await {
            warn!(error = %e, "following the retained stream failed; resuming");
        }
        if !router.connected() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Follows the stream until it fails or stalls: a watchdog compares the stream's last
/// sequence with the last one received, and gives up on a consumer that fell behind
/// without delivering (its server was lost; the caller recreates it, which replays the
/// last message of every topic, harmlessly).
async fn follow_once(
    stream: &stream::Stream,
    router: &Addr<Router>,
    ready: &mut Option<oneshot::Sender<()>>,
) -> Result<(), async_nats::Error> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            filter_subject: format!("{RETAINED_PREFIX}.>"),
            // Pull requests expire (and the server heartbeats) this often, so that the
            // consumer notices a lost server soon (the default is 30 s).
            max_expires: FOLLOW_EXPIRES,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    info!("following the retained stream");
    let mut last_seen = 0;
    let mut stalled = false;
    let mut watchdog = tokio::time::interval(WATCHDOG);
    watchdog.tick().await;
    loop {
        let m = tokio::select! {
            m = messages.next() => m,
            _ = watchdog.tick() => {
                // Unknown while the stream has no leader: keep the last verdict.
                if let Ok(info) = stream.get_info().await {
                    let behind = info.state.last_sequence > last_seen;
                    // Behind at two checks in a row with nothing received between them.
                    if behind && stalled {
                        return Err("the retained stream's consumer stalled".into());
                    }
                    stalled = behind;
                }
                continue;
            }
        };
        let Some(m) = m else { return Ok(()) };
        let m = m?;
        stalled = false;
        let info = m.info().ok().map(|i| (i.stream_sequence, i.pending));
        if let Some((seq, _)) = info {
            last_seen = last_seen.max(seq);
        }
        match Envelope::decode(&m.payload).map(|e| e.to_message()) {
            // `$SYS` describes one node: never taken from the cluster.
            Ok(Ok(msg)) if is_node_local_topic(msg.topic.as_str()) => {}
            Ok(Ok(msg)) => {
                if router
                    .send(RetainRemote { msg: Arc::new(msg) })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            _ => warn!(subject = %m.subject, "undecodable retained message skipped"),
        }
        if ready.is_some() && info.is_some_and(|(_, pending)| pending == 0) {
            ready.take().map(|r| r.send(()));
        }
    }
}
