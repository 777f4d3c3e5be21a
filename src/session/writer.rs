//! The write side of a connection: packets are encoded into one buffer and written by a
//! single future per connection, so a burst of deliveries costs one syscall, and a slow
//! socket never blocks the actor (the session stops filling above a high-water mark).
//! A large PUBLISH encoded once for many receivers is queued as a shared `Bytes` chunk
//! instead of being copied, and goes out with the rest in one vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use actix::prelude::*;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tracing::debug;

use super::actor::Session;
use crate::protocol::{encode_packet, EncodedPublish, Packet, PacketId, ProtocolVersion, QoS};
use crate::transport::BoxedWriter;

/// Above this many buffered bytes the session stops moving queued messages to the socket.
pub const HIGH_WATER: usize = 64 * 1024;

/// Shared encodings at least this large are queued by reference; smaller ones are
/// copied into the buffer, which is cheaper than one more chunk to track and write.
const SHARE_MIN: usize = 1024;

/// Most chunks handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// The write half of a live connection and its outgoing buffer.
pub struct Writer {
    io: BoxedWriter,
    /// Bytes to write before `buf`: shared encodings and what was buffered before them.
    chunks: VecDeque<Bytes>,
    chunked: usize,
    buf: BytesMut,
    version: ProtocolVersion,
    waker: Option<Waker>,
    closing: bool,
}

impl Writer {
    pub fn new(io: BoxedWriter, version: ProtocolVersion) -> Writer {
        Writer {
            io,
            chunks: VecDeque::new(),
            chunked: 0,
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

    /// Appends a PUBLISH encoded once for many receivers: as it is (QoS 0, no packet
    /// id) or copied with this receiver's flags and packet id.
    pub fn send_encoded(
        &mut self,
        enc: &EncodedPublish,
        qos: QoS,
        retain: bool,
        packet_id: Option<PacketId>,
    ) {
        if self.closing {
            return;
        }
        match packet_id {
            Some(id) => enc.put_with_id(&mut self.buf, false, qos, retain, id),
            None if enc.len() < SHARE_MIN => self.buf.extend_from_slice(enc.bytes()),
            None => {
                if !self.buf.is_empty() {
                    let before = self.buf.split().freeze();
                    self.push_chunk(before);
                }
                self.push_chunk(enc.bytes().clone());
            }
        }
        self.wake();
    }

    fn push_chunk(&mut self, chunk: Bytes) {
        self.chunked += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Bytes waiting to be written.
    pub fn buffered(&self) -> usize {
        self.chunked + self.buf.len()
    }

    fn is_drained(&self) -> bool {
        self.chunks.is_empty() && self.buf.is_empty()
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
        while !self.is_drained() {
            let written = if self.chunks.is_empty() {
                Pin::new(&mut self.io).poll_write(cx, &self.buf)
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let parts = self.chunks.iter().map(|c| &c[..]).chain([&self.buf[..]]);
                let mut n = 0;
                for (slot, part) in slices.iter_mut().zip(parts) {
                    *slot = IoSlice::new(part);
                    n += 1;
                }
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n])
            };
            match written {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => self.consume(n),
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

impl Writer {
    /// Drops `n` written bytes from the front: whole chunks first, then the buffer.
    fn consume(&mut self, mut n: usize) {
        while let Some(front) = self.chunks.front_mut() {
            if n < front.len() {
                front.advance(n);
                self.chunked -= n;
                return;
            }
            n -= front.len();
            self.chunked -= front.len();
            self.chunks.pop_front();
        }
        self.buf.advance(n);
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
                    if writer.is_drained() && !writer.closing {
                        writer.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}
