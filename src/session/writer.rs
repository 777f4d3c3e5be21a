//! The write side of a connection: packets are encoded into one buffer and written by a
//! single future per connection, so a burst of deliveries costs one syscall, and a slow
//! socket never blocks the actor (the session stops filling above a high-water mark).

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use actix::prelude::*;
use bytes::{Buf, BytesMut};
use tokio::io::AsyncWrite;
use tracing::debug;

use super::actor::Session;
use crate::protocol::{encode_packet, Packet, ProtocolVersion};
use crate::transport::BoxedWriter;

/// Above this many buffered bytes the session stops moving queued messages to the socket.
pub const HIGH_WATER: usize = 64 * 1024;

/// The write half of a live connection and its outgoing buffer.
pub struct Writer {
    io: BoxedWriter,
    buf: BytesMut,
    version: ProtocolVersion,
    waker: Option<Waker>,
    closing: bool,
}

impl Writer {
    pub fn new(io: BoxedWriter, version: ProtocolVersion) -> Writer {
        Writer {
            io,
            buf: BytesMut::new(),
            version,
            waker: None,
            closing: false,
        }
    }

    /// Encodes a packet into the buffer; it is written when the write future next runs.
    pub fn send(&mut self, packet: &Packet) {
        if self.closing {
            return;
        }
        if let Err(error) = encode_packet(packet, self.version, &mut self.buf) {
            debug!(%error, "packet not encodable for this client; dropped");
        }
        self.wake();
    }

    /// Bytes waiting to be written.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Flush what is buffered, then shut the socket down.
    pub fn close(&mut self) {
        self.closing = true;
        self.wake();
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Writes as much as the socket takes. Ready(true) once closed, Ready(false) on error.
    fn poll_drive(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<bool, std::io::Error>> {
        while !self.buf.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.buf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => self.buf.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.closing {
            return match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Ready(_) => Poll::Ready(Ok(true)),
                Poll::Pending => Poll::Pending,
            };
        }
        Poll::Ready(Ok(false))
    }
}

/// The future that drives a session's [`Writer`]; spawned once per connection.
pub struct WriteLoop;

impl ActorFuture<Session> for WriteLoop {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut Session,
        ctx: &mut Context<Session>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<()> {
        loop {
            let Some(writer) = act.writer_mut() else {
                return Poll::Ready(());
            };
            match writer.poll_drive(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(true)) => {
                    act.on_writer_closed(ctx);
                    return Poll::Ready(());
                }
                Poll::Ready(Err(error)) => {
                    debug!(%error, "write failed");
                    act.on_writer_closed(ctx);
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(false)) => {
                    // Buffer drained: refill from the queue; sleep if nothing came.
                    act.pump(ctx);
                    let Some(writer) = act.writer_mut() else {
                        return Poll::Ready(());
                    };
                    if writer.buf.is_empty() && !writer.closing {
                        writer.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}
