//! JetStream calls the cluster's streams share: creating a stream across a leader
//! election, and reading everything an ephemeral consumer has pending.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use tracing::warn;

/// Pause between attempts to create a stream.
const RETRY_STEP: Duration = Duration::from_millis(500);

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

/// Pulls the messages `consumer` had pending when it was created, `batch` at a time,
/// handing each to `each`. Stops early when a pull returns nothing (messages removed
/// since the count, e.g. expired tombstones).
pub async fn pull_pending(
    consumer: &consumer::PullConsumer,
    batch: usize,
    mut each: impl FnMut(&jetstream::Message),
) -> Result<(), String> {
    let mut left = consumer.cached_info().num_pending as usize;
    while left > 0 {
        let mut messages = consumer
            .fetch()
            .max_messages(left.min(batch))
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut got = 0;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| e.to_string())?;
            got += 1;
            each(&m);
        }
        if got == 0 {
            break;
        }
        left = left.saturating_sub(got);
    }
    Ok(())
}

/// Reads, through a short-lived consumer (memory, one replica, no acknowledgements),
/// what `stream` holds under `filter` from `policy` on, handing each message to `each`;
/// the consumer is deleted afterwards.
pub async fn read_ephemeral(
    stream: &stream::Stream,
    policy: consumer::DeliverPolicy,
    filter: String,
    batch: usize,
    each: impl FnMut(&jetstream::Message),
) -> Result<(), String> {
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
    let result = pull_pending(&consumer, batch, each).await;
    let _ = stream.delete_consumer(&consumer.cached_info().name).await;
    result
}
