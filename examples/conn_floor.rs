//! The least work an MQTT broker can do per connection, to measure what this machine's
//! kernel allows for `starling-bench conns` (see BENCHMARKS.md, "Connection rate floor").
//!
//! Single-threaded tokio: accept, `TCP_NODELAY`, read a CONNECT and answer a fixed
//! CONNACK (3.1.1, accepted), then answer each SUBSCRIBE with a SUBACK granting QoS 0
//! for its one filter, and hold the connection until the client closes it. No state, no
//! validation: not a broker.
//!
//! ```text
//! cargo build --release --example conn_floor
//! taskset -c 1 target/release/examples/conn_floor 127.0.0.1:18840 &
//! taskset -c 0 target/release/starling-bench --port 18840 conns --connections 19900 --subscribe
//! ```

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONNACK: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18840".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    tracing::info!(%addr, "conn_floor listening");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream));
    }
}

/// Answers CONNECT and SUBSCRIBE packets until the peer closes.
async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        while let Some((kind, body, len)) = next_packet(&buf) {
            match kind {
                1 => out.extend_from_slice(&CONNACK),
                // SUBACK: the packet id, then one granted QoS 0.
                8 if body.len() >= 2 => out.extend_from_slice(&[0x90, 0x03, body[0], body[1], 0]),
                _ => {}
            }
            buf.drain(..len);
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The packet type, the body and the whole length of the first complete packet.
fn next_packet(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let kind = buf.first()? >> 4;
    let (mut len, mut shift, mut i) = (0usize, 0, 1);
    loop {
        let b = *buf.get(i)?;
        len |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return None;
        }
    }
    let end = i + len;
    (buf.len() >= end).then(|| (kind, &buf[i..end], end))
}
