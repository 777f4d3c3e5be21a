//! The end of a connection's read side: after the broker's last packet (a DISCONNECT,
//! a refusing CONNACK) and the shutdown of its write side, input is read and discarded
//! for a short, bounded time before the socket closes.
//!
//! Why: a socket closed with unread input (or receiving input after it closed) makes
//! the kernel answer with a TCP reset. A client still sending when the broker gives up
//! on it (Receive Maximum exceeded, a refused CONNECT followed by a PUBLISH) then gets
//! "connection reset" or "broken pipe" from its next write and never reads the reason
//! code the broker sent. Draining until the client's own FIN (it closes once it has read
//! the broker's FIN), [`DRAIN_TIME`] or [`DRAIN_BYTES`], whichever comes first, lets
//! the last packet arrive.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tracing::trace;

use crate::transport::BoxedReader;

/// Longest wait for the client to close after the broker's last packet.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Most bytes read and discarded while draining (a client still flooding after that is
/// cut off with a reset, as before).
pub const DRAIN_BYTES: usize = 1024 * 1024;
/// The drain's read buffer.
const CHUNK: usize = 4096;

/// A connection's read half that, when dropped, is drained (see the module doc) by a
/// task of its own on the current runtime instead of being closed at once. The session
/// drops its reader as it closes the connection, and the connect task drops it after a
/// refusing CONNACK, so both paths drain without further ceremony.
pub struct DrainOnDrop {
    inner: Option<BoxedReader>,
}

impl DrainOnDrop {
    /// Wraps a connection's read half.
    pub fn new(reader: BoxedReader) -> DrainOnDrop {
        DrainOnDrop {
            inner: Some(reader),
        }
    }
}

impl AsyncRead for DrainOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(r) => Pin::new(r).poll_read(cx, buf),
            // Only `drop` takes it.
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(reader) = self.inner.take() else {
            return;
        };
        // Outside a runtime (a test, a runtime shutting down) the socket closes at once.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let read = drain(reader, DRAIN_TIME, DRAIN_BYTES).await;
                trace!(bytes = read, "connection drained");
            });
        }
    }
}

/// Reads and discards until end of input, an error, `within` or `max` bytes; returns
/// how many bytes were read.
pub async fn drain<R: AsyncRead + Unpin>(mut reader: R, within: Duration, max: usize) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    // Not zeroed: read_buf fills the spare capacity, and nothing read is looked at.
    let mut buf = Vec::with_capacity(CHUNK);
    let mut total = 0;
    while total < max {
        buf.clear();
        match tokio::time::timeout_at(deadline, reader.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => total += n,
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn drains_until_end_of_input() {
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for _ in 0..10 {
                client.write_all(&[7u8; 100]).await.unwrap();
            }
            // Dropping the client is its FIN.
        });
        assert_eq!(drain(server, Duration::from_secs(5), 1 << 20).await, 1000);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_time_or_the_bytes() {
        let (_client, server) = tokio::io::duplex(64);
        // The client neither sends nor closes: the time bound ends it.
        assert_eq!(drain(server, Duration::from_secs(2), 1 << 20).await, 0);
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client.write_all(&[1u8; 50_000]).await.unwrap();
        let read = drain(server, Duration::from_secs(2), 10_000).await;
        assert!((10_000..10_000 + CHUNK).contains(&read), "{read}");
    }

    #[tokio::test]
    async fn a_dropped_reader_is_drained_by_a_task() {
        let (mut client, server) = tokio::io::duplex(16);
        drop(DrainOnDrop::new(Box::new(server)));
        // Without the drain, the duplex's other end is gone and writes fail at once;
        // with it, the writes are read and discarded until the client closes.
        for _ in 0..20 {
            client.write_all(&[0u8; 16]).await.unwrap();
        }
    }
}
