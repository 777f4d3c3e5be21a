//! The log feed's watchdog (`super::feed`): asks the feed's consumer what it holds.

use async_nats::jetstream::{consumer, stream};

use super::feed::WATCHDOG;

/// The watchdog's verdict on one consumer.
pub(super) enum Watch {
    /// It delivers what it holds, or holds nothing: then with the stream's last
    /// sequence read before the consumer was asked (every entry up to it that the
    /// filter takes has arrived and gone to the router).
    Fine(Option<u64>),
    /// It holds messages (or delivered some that did not arrive) and nothing arrived.
    Behind,
    /// Its server no longer knows it.
    Lost(String),
    Unknown,
}

/// Asks the consumer what it holds (after the stream its last sequence).
pub(super) async fn watch(
    stream: &stream::Stream,
    consumer: &consumer::PullConsumer,
    received: u64,
    progressed: bool,
) -> Watch {
    let last = match tokio::time::timeout(WATCHDOG, stream.get_info()).await {
        Ok(Ok(info)) => Some(info.state.last_sequence),
        _ => None,
    };
    let info = match tokio::time::timeout(WATCHDOG, consumer.get_info()).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) if e.to_string().contains("not found") => return Watch::Lost(e.to_string()),
        _ => return Watch::Unknown,
    };
    let holds = info.num_pending > 0 || info.delivered.consumer_sequence > received;
    if holds && !progressed {
        Watch::Behind
    } else {
        Watch::Fine(last.filter(|_| !holds))
    }
}
