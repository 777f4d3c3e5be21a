//! MQTT over WebSocket (MQTT 5.0 section 6, RFC 6455) on any byte stream: [`accept`]
//! answers the HTTP upgrade on the listener's path with the `mqtt` subprotocol, then
//! adapts binary messages into the byte stream a session reads and writes, so an MQTT
//! packet may span messages and one message may carry several [MQTT-6.0.0-2]. A text
//! message closes the connection [MQTT-6.0.0-1]. `wss` is the same over a TLS stream.

mod handshake;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsProtocolError, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

pub use handshake::Refusal;

use super::{BoxedReader, BoxedWriter};

/// The least a WebSocket message may carry whatever `max_packet_size` says: room for a
/// few small packets sent together.
const MIN_MESSAGE: usize = 64 * 1024;
/// The most bytes the broker puts in one WebSocket message.
const MAX_WRITE: usize = 256 * 1024;
/// The per-connection read buffer of the WebSocket layer (tungstenite's default, 128
/// KiB, is allocated eagerly: too much for many idle clients).
const READ_BUFFER: usize = 4 * 1024;
/// How long a refused request's input is drained after the answer, so that closing does
/// not reset the connection before the client read the answer.
const DRAIN: Duration = Duration::from_secs(1);

/// The settings of a WebSocket listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsSettings {
    path: String,
    max_message: usize,
}

impl WsSettings {
    /// MQTT over WebSocket at `path`; an incoming WebSocket message may be as large as
    /// `max_packet_size` (at least 64 KiB), a larger one closes the connection.
    pub fn new(path: impl Into<String>, max_packet_size: usize) -> WsSettings {
        WsSettings {
            path: path.into(),
            max_message: max_packet_size.max(MIN_MESSAGE),
        }
    }

    /// The HTTP path of the endpoint.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
    }
}

/// Why a connection did not become MQTT over WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The request was answered with an HTTP error (and the connection closed).
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The connection closed before the request head was complete.
    #[error("connection closed during the WebSocket handshake")]
    Closed,
    /// Reading or writing the socket failed.
    #[error("WebSocket handshake: {0}")]
    Io(#[from] io::Error),
}

/// Answers the WebSocket handshake on `stream` and returns the MQTT byte stream inside
/// it; a request that is not MQTT over WebSocket on `settings.path` gets an HTTP error.
/// The caller bounds the time. `peer` names the client in later logs.
pub async fn accept<S>(
    mut stream: S,
    settings: &WsSettings,
    peer: SocketAddr,
) -> Result<(BoxedReader, BoxedWriter), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let checked = match read_head(&mut stream).await {
        Ok((mut buf, len)) => handshake::check(&buf[..len], &settings.path).map(|upgrade| {
            buf.advance(len);
            (upgrade, buf)
        }),
        Err(WsError::Refused(refusal)) => Err(refusal),
        Err(other) => return Err(other),
    };
    let (upgrade, rest) = match checked {
        Ok(pair) => pair,
        Err(refusal) => {
            refuse(&mut stream, &refusal).await;
            return Err(refusal.into());
        }
    };
    let answer = handshake::switching_protocols(&upgrade);
    stream.write_all(answer.as_bytes()).await?;
    stream.flush().await?;
    let ws = WebSocketStream::from_partially_read(
        stream,
        rest.to_vec(),
        Role::Server,
        Some(settings.config()),
    )
    .await;
    let (sink, messages) = ws.split();
    let reader = WsReader {
        messages,
        chunk: Bytes::new(),
        peer,
    };
    let writer = WsWriter {
        sink,
        in_flight: None,
    };
    Ok((Box::new(reader), Box::new(writer)))
}

/// Reads until a whole request head is in; returns what was read and the head's length.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(BytesMut, usize), WsError> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Each round adds at least one byte, and `head_len` gives up past MAX_HEAD.
    loop {
        if let Some(len) = handshake::head_len(&buf)? {
            return Ok((buf, len));
        }
        let room = handshake::MAX_HEAD + 1 - buf.len();
        let n = stream.read(&mut chunk[..room.min(1024)]).await?;
        if n == 0 {
            return Err(WsError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Writes the HTTP error, shuts the write side and drains input briefly (bounded in
/// time and bytes) so the client reads the answer instead of a reset.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, refusal: &Refusal) {
    let answer = handshake::refusal_response(refusal);
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async {
        for _ in 0..64 {
            if !matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN, drain).await;
}

/// tungstenite's errors as I/O errors; a closed WebSocket is the end of the stream.
fn io_error(error: WsProtocolError) -> Option<io::Error> {
    match error {
        WsProtocolError::ConnectionClosed | WsProtocolError::AlreadyClosed => None,
        WsProtocolError::Io(e) => Some(e),
        other => Some(io::Error::new(io::ErrorKind::InvalidData, other)),
    }
}

/// The read half: the payloads of binary messages, one after another.
struct WsReader<S> {
    messages: SplitStream<WebSocketStream<S>>,
    /// What is left of the last binary message.
    chunk: Bytes,
    peer: SocketAddr,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsReader<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Each round takes one message; the loop ends when the socket has no more.
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(buf.remaining());
                buf.put_slice(&self.chunk[..n]);
                self.chunk.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(self.messages.poll_next_unpin(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(data))) => self.chunk = data,
                Some(Ok(Message::Text(_))) => {
                    debug!(peer = %self.peer, "WebSocket text message; closing [MQTT-6.0.0-1]");
                    let error = "[MQTT-6.0.0-1] MQTT over WebSocket takes binary messages only";
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
                }
                // Pings are answered by tungstenite; pongs and raw frames carry nothing.
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(io_error(error).map_or(Ok(()), Err)),
            }
        }
    }
}

/// The write half: each write becomes one binary message, written out before the write
/// completes (sessions never flush: a TCP write needs none).
struct WsWriter<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    /// The length of the message handed to the sink and not yet flushed: a write that
    /// returned `Pending` after it resumes flushing instead of sending again.
    in_flight: Option<usize>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsWriter<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let to_io = |e| io_error(e).unwrap_or_else(|| io::ErrorKind::BrokenPipe.into());
        if self.in_flight.is_none() {
            ready!(self.sink.poll_ready_unpin(cx)).map_err(to_io)?;
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            let mut message = BytesMut::with_capacity(total.min(MAX_WRITE));
            for b in bufs {
                let room = MAX_WRITE - message.len();
                message.extend_from_slice(&b[..b.len().min(room)]);
            }
            if message.is_empty() {
                return Poll::Ready(Ok(0));
            }
            self.in_flight = Some(message.len());
            self.sink
                .start_send_unpin(Message::Binary(message.freeze()))
                .map_err(to_io)?;
        }
        let flushed = ready!(self.sink.poll_flush_unpin(cx));
        let written = self.in_flight.take().unwrap_or(0);
        Poll::Ready(flushed.map(|()| written).map_err(to_io))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = ready!(self.sink.poll_flush_unpin(cx));
        Poll::Ready(flushed.or_else(|e| io_error(e).map_or(Ok(()), Err)))
    }

    /// Sends a Close frame.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let closed = ready!(self.sink.poll_close_unpin(cx));
        Poll::Ready(closed.or_else(|e| io_error(e).map_or(Ok(()), Err)))
    }
}

#[cfg(test)]
mod tests;
