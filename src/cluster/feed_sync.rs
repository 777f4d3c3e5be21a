//! The interest task's side of the log feed (`super::feed`): the log subjects a filter
//! adds to the feed's filter, and the barrier a SUBACK (or a resumed session's replay)
//! waits on, which now includes the feed's answer.

use tokio::sync::oneshot;

use super::bridge::{FLUSH_TIMEOUT, MAX_SUBJECT_LEN};
use super::replay;
use super::subject::filter_to_subjects;
use crate::topic::TopicFilter;

/// Waits (up to `FLUSH_TIMEOUT`) for the flush of the NATS subscriptions and the log
/// feed's answer, passes the answer on, then fires `done`.
pub(super) async fn barrier(
    client: async_nats::Client,
    synced: Option<oneshot::Receiver<u64>>,
    done: oneshot::Sender<()>,
    covered: Option<oneshot::Sender<u64>>,
) {
    let feed = async {
        match synced {
            Some(rx) => rx.await.ok(),
            None => None,
        }
    };
    let both = futures::future::join(client.flush(), feed);
    if let Ok((_, Some(at))) = tokio::time::timeout(FLUSH_TIMEOUT, both).await {
        if let Some(covered) = covered {
            let _ = covered.send(at);
        }
    }
    let _ = done.send(());
}

/// The log subjects the feed follows for `filter`: none for a shared one (its group's
/// consumer brings its messages, `super::shared`) or one too long for NATS.
pub(super) fn feed_subjects(filter: &TopicFilter) -> Vec<String> {
    if filter.share().is_some() {
        return Vec::new();
    }
    filter_to_subjects(filter)
        .iter()
        .filter(|s| s.len() <= MAX_SUBJECT_LEN)
        .map(|s| replay::log_subject(s))
        .collect()
}
