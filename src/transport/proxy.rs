//! PROXY protocol v1 and v2 (HAProxy's `proxy-protocol.txt`): the header a load
//! balancer sends before the client's own bytes, naming the client's address. [`parse`]
//! is pure (bytes in, a header or "not all there yet" out); [`read_header`] reads one
//! from a socket, and [`Rewind`] hands back the bytes read past it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The longest v1 header, CRLF included (the spec's bound).
pub const V1_MAX: usize = 107;
/// The longest v2 header accepted: the 16-byte fixed part and up to 4 KiB of addresses
/// and TLVs (an IPv6 address block is 36 bytes; load balancers add tens of bytes of TLVs).
pub const V2_MAX: usize = 16 + 4096;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a PROXY header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A proxied TCP connection from `source` to `destination`.
    Proxied {
        /// The client's address: the connection's peer from now on.
        source: SocketAddr,
        /// The address the client connected to, at the proxy.
        destination: SocketAddr,
    },
    /// The connection's own addresses stand: a v2 LOCAL command (the proxy's health
    /// check), v1 `UNKNOWN`, or an address family other than TCP over IPv4/IPv6.
    Local,
}

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The connection does not start with a PROXY header (the spec forbids guessing).
    #[error("no PROXY protocol header")]
    Missing,
    /// A v1 header that does not follow the grammar.
    #[error("malformed PROXY v1 header: {0}")]
    BadV1(&'static str),
    /// A v2 header that does not follow the format.
    #[error("malformed PROXY v2 header: {0}")]
    BadV2(&'static str),
    /// A header over [`V1_MAX`] or [`V2_MAX`] bytes.
    #[error("PROXY header too long")]
    TooLong,
    /// The connection closed before the header was complete.
    #[error("connection closed inside the PROXY header")]
    Closed,
    /// Reading the socket failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// Parses the header at the start of `buf`: `Ok(None)` while more bytes are needed,
/// else the header and its length in bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.starts_with(V1_PREFIX) {
        return parse_v1(buf);
    }
    if buf.starts_with(V2_SIGNATURE) {
        return parse_v2(buf);
    }
    let is_start_of = |magic: &[u8]| magic.starts_with(&buf[..buf.len().min(magic.len())]);
    match is_start_of(V1_PREFIX) || is_start_of(V2_SIGNATURE) {
        true => Ok(None),
        false => Err(ProxyError::Missing),
    }
}

/// `PROXY TCP4 192.0.2.1 198.51.100.1 56324 1883\r\n` (or `TCP6`, or `UNKNOWN ...`).
fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return match buf.len() >= V1_MAX {
            true => Err(ProxyError::TooLong),
            false => Ok(None),
        };
    };
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..end])
        .map_err(|_| ProxyError::BadV1("not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let header = match fields.as_slice() {
        ["UNKNOWN", ..] => ProxyHeader::Local,
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v4 = *family == "TCP4";
            ProxyHeader::Proxied {
                source: v1_addr(src, sport, v4)?,
                destination: v1_addr(dst, dport, v4)?,
            }
        }
        [_, ..] => return Err(ProxyError::BadV1("not TCP4, TCP6 or UNKNOWN with 4 fields")),
        [] => return Err(ProxyError::BadV1("empty")),
    };
    Ok(Some((header, end + 2)))
}

fn v1_addr(ip: &str, port: &str, v4: bool) -> Result<SocketAddr, ProxyError> {
    let ip: IpAddr = match v4 {
        true => ip.parse::<Ipv4Addr>().map(IpAddr::V4),
        false => ip.parse::<Ipv6Addr>().map(IpAddr::V6),
    }
    .map_err(|_| ProxyError::BadV1("address does not match the family"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| ProxyError::BadV1("port is not 0 to 65535"))?;
    Ok(SocketAddr::new(ip, port))
}

/// The 12-byte signature, version and command, family and transport, a 16-bit length,
/// then that many bytes of addresses and TLVs.
fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < len {
        return Ok(None);
    }
    let body = &buf[16..len];
    let header = match command {
        0x0 => ProxyHeader::Local,
        0x1 => v2_addresses(buf[13], body)?,
        _ => return Err(ProxyError::BadV2("command is neither LOCAL nor PROXY")),
    };
    Ok(Some((header, len)))
}

/// The address block of a PROXY command: TCP over IPv4 (0x11) or IPv6 (0x21) carries the
/// client's address; other families (UNSPEC, UDP, UNIX) leave the socket's.
fn v2_addresses(family: u8, body: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let short = ProxyError::BadV2("address block shorter than its family");
    match family {
        0x11 => {
            let b: &[u8; 12] = body
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or(short)?;
            let ip = |at: usize| IpAddr::from([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let port = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
            Ok(ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        0x21 => {
            let b: &[u8; 36] = body
                .get(..36)
                .and_then(|b| b.try_into().ok())
                .ok_or(short)?;
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&b[at..at + 16]);
                IpAddr::from(octets)
            };
            let port = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
            Ok(ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        _ => Ok(ProxyHeader::Local),
    }
}

/// Reads the PROXY header that must open `stream`; returns it with the bytes read past
/// it (the start of the client's own stream). Reads at most [`V2_MAX`] bytes; the caller
/// bounds the time.
pub async fn read_header<S>(stream: &mut S) -> Result<(ProxyHeader, Bytes), ProxyError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(256);
    let mut chunk = [0u8; 512];
    // Each round adds at least one byte, and `parse` gives up past V2_MAX.
    loop {
        if let Some((header, len)) = parse(&buf)? {
            buf.advance(len);
            return Ok((header, buf.freeze()));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ProxyError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A stream whose first bytes were already read: they are read again first.
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// `inner`, with `prefix` read before anything `inner` still holds.
    pub fn new(prefix: Bytes, inner: S) -> Rewind<S> {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
