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
        // A TLS stream takes the bytes into its own buffer and may keep the last records
        // there when the socket was full; only a flush is sure to send them (for a TCP
        // socket it does nothing).
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if self.closing {
            return match Pin::new(&mut self.io).poll_shutdown(cx) {
                Poll::Ready(_) => Poll::Ready(Ok(true)),
                Poll::Pending => Poll::Pending,
            };
        }
        Poll::Ready(Ok(false))
    }

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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use futures::task::noop_waker_ref;

    use super::*;
    use crate::protocol::{Flow, Publish};
    use crate::topic::TopicName;

    /// A socket that takes at most `limit` bytes per call, from several slices when
    /// `vectored`, and records what it was given.
    struct Trickle {
        got: Arc<Mutex<Vec<u8>>>,
        limit: usize,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.limit);
            self.got.lock().unwrap().extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut left = if self.vectored { self.limit } else { 0 };
            let mut got = self.got.lock().unwrap();
            let mut n = 0;
            for b in bufs {
                if left == 0 {
                    break;
                }
                let take = b.len().min(left);
                got.extend_from_slice(&b[..take]);
                n += take;
                left -= take;
            }
            if !self.vectored {
                // Like the default implementation: the first non-empty slice only.
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                let take = first.len().min(self.limit);
                got.extend_from_slice(&first[..take]);
                n = take;
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Like a TLS stream: takes every byte into a buffer of its own and sends it only
    /// on flush, which is pending once before it goes through.
    struct HeldUntilFlushed {
        held: Vec<u8>,
        sent: Arc<Mutex<Vec<u8>>>,
        flush_pending: bool,
    }

    impl AsyncWrite for HeldUntilFlushed {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.held.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            mut self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
        ) -> Poll<std::io::Result<()>> {
            if std::mem::take(&mut self.flush_pending) {
                return Poll::Pending;
            }
            let held = std::mem::take(&mut self.held);
            self.sent.lock().unwrap().extend_from_slice(&held);
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: Pin<&mut Self>,
            cx: &mut TaskContext<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    #[test]
    fn a_drained_buffer_is_flushed_through_a_stream_that_holds_bytes() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let io = HeldUntilFlushed {
            held: Vec::new(),
            sent: Arc::clone(&sent),
            flush_pending: true,
        };
        let mut w = Writer::new(Box::new(io), ProtocolVersion::V311);
        w.send(&Packet::PingResp);
        let mut cx = TaskContext::from_waker(noop_waker_ref());
        assert!(w.poll_drive(&mut cx).is_pending(), "the flush is pending");
        assert!(sent.lock().unwrap().is_empty());
        assert!(matches!(w.poll_drive(&mut cx), Poll::Ready(Ok(false))));
        assert_eq!(*sent.lock().unwrap(), [0xD0, 0x00]);
    }

    fn encoded(size: usize, qos: QoS) -> EncodedPublish {
        let p = Publish {
            dup: false,
            flow: Flow::with_id(qos, PacketId::new(1).unwrap()),
            retain: false,
            topic: TopicName::new("w/t").unwrap(),
            properties: Default::default(),
            payload: Bytes::from(vec![size as u8; size]),
        };
        EncodedPublish::new(p, ProtocolVersion::V311).unwrap()
    }

    #[test]
    fn shared_chunks_and_copies_go_out_in_order() {
        for (limit, vectored) in [(7, true), (7, false), (100_000, true)] {
            let got = Arc::new(Mutex::new(Vec::new()));
            let io = Trickle {
                got: Arc::clone(&got),
                limit,
                vectored,
            };
            let mut w = Writer::new(Box::new(io), ProtocolVersion::V311);
            let small = encoded(10, QoS::AtMostOnce);
            let large = encoded(3_000, QoS::AtMostOnce);
            let with_id = encoded(2_000, QoS::AtLeastOnce);
            let id = PacketId::new(9).unwrap();
            let mut want = Vec::new();
            w.send_encoded(&small, QoS::AtMostOnce, false, None);
            want.extend_from_slice(small.bytes());
            w.send_encoded(&large, QoS::AtMostOnce, false, None);
            want.extend_from_slice(large.bytes());
            w.send_encoded(&large, QoS::AtMostOnce, false, None);
            want.extend_from_slice(large.bytes());
            w.send_encoded(&with_id, QoS::AtLeastOnce, false, Some(id));
            let mut patched = BytesMut::new();
            with_id.put_with_id(&mut patched, false, QoS::AtLeastOnce, false, id);
            want.extend_from_slice(&patched);
            w.send(&Packet::PingResp);
            want.extend_from_slice(&[0xD0, 0x00]);
            assert_eq!(w.buffered(), want.len());
            let mut cx = TaskContext::from_waker(noop_waker_ref());
            assert!(matches!(w.poll_drive(&mut cx), Poll::Ready(Ok(false))));
            assert_eq!(w.buffered(), 0);
            assert!(w.is_drained());
            assert_eq!(
                *got.lock().unwrap(),
                want,
                "limit {limit}, vectored {vectored}"
            );
        }
    }
}
