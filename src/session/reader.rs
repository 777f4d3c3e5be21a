//! The read side of a connection as a stream of packets, with no buffer while idle.
//!
//! `tokio_util`'s `FramedRead` keeps its read buffer for the life of the connection,
//! and the frames it splits off (a SUBSCRIBE's filter, a CONNECT's client id) pin that
//! whole allocation for as long as they live. Here, whenever no partial packet is
//! buffered, the buffer is let go and the next read goes to the stack first: only the
//! bytes that arrived are copied to the heap (exactly that many), so an idle connection
//! holds no read buffer and a subscription pins only its own packet's bytes. A read that
//! fills the stack chunk means more is coming: the rest goes straight to a heap buffer
//! that grows as the codec asks ([`MqttCodec`]), as before.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use futures::Stream;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::io::poll_read_buf;

use crate::protocol::{decode_packet, DecodeError, MqttCodec, Packet};
use crate::transport::BoxedReader;

/// Bytes read on the stack when nothing is buffered.
const STACK_CHUNK: usize = 1024;
/// A heap buffer started because the stack chunk filled up.
const BUSY_START: usize = 4 * STACK_CHUNK;

/// Packets decoded from a connection's read half.
pub struct PacketReader {
    io: BoxedReader,
    codec: MqttCodec,
    /// A partial packet (or several whole ones not yet taken); empty and unallocated
    /// while idle.
    buf: BytesMut,
    /// The reader reached end of input.
    eof: bool,
    /// An error or the end was returned: nothing more.
    done: bool,
}

impl PacketReader {
    pub fn new(io: BoxedReader, codec: MqttCodec) -> PacketReader {
        PacketReader {
            io,
            codec,
            buf: BytesMut::new(),
            eof: false,
            done: false,
        }
    }

    /// What was read and not yet decoded.
    pub fn read_buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Reads once: onto the stack when nothing is buffered, else into the buffer.
    /// `Ready(Ok(0))` at end of input.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if !self.buf.is_empty() {
            if self.buf.len() == self.buf.capacity() {
                // Full: more is coming (or a large packet); double.
                self.buf.reserve(self.buf.capacity().max(STACK_CHUNK));
            }
            return poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf);
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); STACK_CHUNK];
        let mut read = ReadBuf::uninit(&mut chunk);
        // Let go of an empty buffer: frames split from it keep what they need.
        self.buf = BytesMut::new();
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        let capacity = if n == STACK_CHUNK { BUSY_START } else { n };
        self.buf = BytesMut::with_capacity(capacity);
        self.buf.extend_from_slice(read.filled());
        Poll::Ready(Ok(n))
    }
}

impl Stream for PacketReader {
    type Item = Result<Packet, DecodeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if !this.buf.is_empty() {
                let (version, max) = (this.codec.version(), this.codec.max_packet_size());
                match decode_packet(&mut this.buf, version, max) {
                    Ok(Some(packet)) => {
                        if let (Packet::Connect(c), None) = (&packet, version) {
                            this.codec.set_version(c.protocol);
                        }
                        return Poll::Ready(Some(Ok(packet)));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            if this.eof {
                this.done = true;
                if this.buf.is_empty() {
                    return Poll::Ready(None);
                }
                // As `FramedRead`: a packet cut short by the end of input.
                let cut = io::Error::other("bytes remaining on stream");
                return Poll::Ready(Some(Err(cut.into())));
            }
            match ready!(this.poll_fill(cx)) {
                Ok(0) => this.eof = true,
                Ok(_) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{encode_packet, PacketId, ProtocolVersion, PubResponse};
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;

    fn encoded(packets: &[Packet]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for p in packets {
            encode_packet(p, ProtocolVersion::V311, &mut buf).unwrap();
        }
        buf.to_vec()
    }

    fn puback(id: u16) -> Packet {
        Packet::PubAck(PubResponse::new(PacketId::new(id).unwrap()))
    }

    #[tokio::test]
    async fn packets_split_across_reads_and_no_buffer_while_idle() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut codec = MqttCodec::new(1 << 20);
        codec.set_version(ProtocolVersion::V311);
        let mut reader = PacketReader::new(Box::new(server), codec);
        let bytes = encoded(&[puback(1), puback(2)]);
        client.write_all(&bytes[..5]).await.unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap(), puback(1));
        client.write_all(&bytes[5..]).await.unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap(), puback(2));
        // Nothing buffered, nothing to read: the buffer is let go.
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(reader.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(reader.buf.capacity(), 0);
        // More than the stack chunk at once (a busy client), then the end.
        let many: Vec<Packet> = (1..=1000).map(puback).collect();
        client.write_all(&encoded(&many)).await.unwrap();
        drop(client);
        for p in many {
            assert_eq!(reader.next().await.unwrap().unwrap(), p);
        }
        assert!(reader.next().await.is_none());
    }

    #[tokio::test]
    async fn a_packet_cut_short_by_the_end_is_an_error() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut codec = MqttCodec::new(1 << 20);
        codec.set_version(ProtocolVersion::V311);
        let mut reader = PacketReader::new(Box::new(server), codec);
        client.write_all(&encoded(&[puback(7)])[..3]).await.unwrap();
        drop(client);
        assert!(reader.next().await.unwrap().is_err());
        assert!(reader.next().await.is_none());
    }
}
