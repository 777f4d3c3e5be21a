//! JetStream calls the cluster's streams share: creating a stream across a leader
//! election, and reading through an ephemeral consumer up to what the stream leader holds.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use tokio::time::Instant;
use tracing::warn;

/// Pause between attempts to create a stream.
const RETRY_STEP: Duration = Duration::from_millis(500);
/// How long one pull waits for a message when its replica has none yet.
const PULL_WAIT: Duration = Duration::from_secs(1);
/// Pause before a pull is sent again after no server answered it.
const UNHEARD_PAUSE: Duration = Duration::from_millis(20);
/// How long a read waits for its consumer's replica to catch up with the leader.
const CATCH_UP: Duration = Duration::from_secs(20);

/// Creates the stream of `config` unless it exists, retrying while JetStream elects its
/// leaders (the caller bounds the time). `what` names it in the log.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
    what: &str,
) -> stream::Stream {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match js.get_or_create_stream(config.clone()).await {
            Ok(stream) => return stream,
            Err(e) => {
                warn!(attempt, error = %e, "{what} stream not ready; retrying");
                tokio::time::sleep(RETRY_STEP).await;
            }
        }
    }
}

/// Pulls what `consumer` delivers, `batch` at a time, handing each message to `each`,
/// until one numbered `through` or above came.
///
/// The consumer's pending count will not do: a one-replica consumer sits on a random
/// replica of the stream, which may not yet have applied the writes the leader
/// acknowledged, and counts what that replica holds. `through` comes from the leader
/// (the caller knows it is delivered: it matches the consumer). A pull waits (up to
/// `PULL_WAIT`) for the replica to catch up and returns as soon as it has something;
/// after an empty one the leader is asked whether `through` is still there (it may have
/// aged out of the stream meanwhile); one that no server answered (just after the
/// consumer was created) is sent again. Gives up with an error at `deadline`.
async fn pull_through(
    stream: &stream::Stream,
    consumer: &consumer::PullConsumer,
    through: u64,
    batch: usize,
    deadline: Instant,
    mut each: impl FnMut(&jetstream::Message),
) -> Result<(), String> {
    let mut reached = 0;
    while reached < through {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the replica read is behind the stream leader: at sequence {reached} of {through}"
            ));
        }
        let mut messages = consumer
            .fetch()
            .max_messages(batch)
            .expires(left.min(PULL_WAIT))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut got = 0;
        let mut unheard = false;
        while let Some(m) = messages.next().await {
            let m = match m {
                Ok(m) => m,
                Err(e) if got == 0 && is_no_responders(e.as_ref()) => {
                    unheard = true;
                    break;
                }
                Err(e) => return Err(e.to_string()),
            };
            got += 1;
            reached = reached.max(m.info().map_err(|e| e.to_string())?.stream_sequence);
            each(&m);
        }
        if unheard {
            // Nothing was delivered: ask again once our server heard of the consumer.
            tokio::time::sleep(UNHEARD_PAUSE.min(left)).await;
        } else if got == 0 {
            let leader = stream.get_info().await.map_err(|e| e.to_string())?;
            if leader.state.first_sequence > through {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A pull answered "no responders" (503): the consumer sits on another server, which has
/// not yet told ours of its subscription (interest crosses routes asynchronously, after
/// the consumer's creation was answered). async-nats reports the status in the text only.
fn is_no_responders(e: &(dyn std::error::Error + 'static)) -> bool {
    e.to_string().contains(": 503,")
}

/// Reads, through a short-lived consumer (memory, one replica, no acknowledgements),
/// what `stream` holds under `filter` from `policy` on, at least up to stream sequence
/// `through` (which the caller knows matches; see [`pull_through`]), handing each message
/// to `each`; the consumer is deleted afterwards.
pub async fn read_ephemeral(
    stream: &stream::Stream,
    policy: consumer::DeliverPolicy,
    filter: String,
    through: u64,
    batch: usize,
    each: impl FnMut(&jetstream::Message),
) -> Result<(), String> {
    let deadline = Instant::now() + CATCH_UP;
    let config = consumer::pull::Config {
        deliver_policy: policy,
        filter_subject: filter,
        ack_policy: consumer::AckPolicy::None,
        inactive_threshold: Duration::from_secs(10),
        memory_storage: true,
        num_replicas: 1,
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())?;
    let result = pull_through(stream, &consumer, through, batch, deadline, each).await;
    let _ = stream.delete_consumer(&consumer.cached_info().name).await;
    result
}
