//! PROXY header parsing from byte literals, and reading one off a stream.

use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn proxied(src: &str, dst: &str) -> ProxyHeader {
    ProxyHeader::Proxied {
        source: addr(src),
        destination: addr(dst),
    }
}

/// A v2 header: signature, version/command, family, then the address block.
fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | command);
    out.push(family);
    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
    out.extend_from_slice(block);
    out
}

const V4_BLOCK: &[u8] = &[
    198, 51, 100, 7, // source
    203, 0, 113, 9, // destination
    0x9c, 0x41, // source port 40001
    0x07, 0x5b, // destination port 1883
];

#[test]
fn v1_headers() {
    let cases: &[(&[u8], ProxyHeader, usize)] = &[
        (
            b"PROXY TCP4 198.51.100.7 203.0.113.9 40001 1883\r\n",
            proxied("198.51.100.7:40001", "203.0.113.9:1883"),
            48,
        ),
        (
            b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n\x10",
            proxied("[2001:db8::1]:65535", "[2001:db8::2]:0"),
            44,
        ),
        (b"PROXY UNKNOWN\r\n", ProxyHeader::Local, 15),
        (
            b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
            ProxyHeader::Local,
            35,
        ),
    ];
    for (bytes, want, len) in cases {
        let got = parse(bytes).expect("parses").expect("complete");
        assert_eq!(got, (*want, *len), "{:?}", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn v1_malformed() {
    let cases: &[&[u8]] = &[
        b"PROXY TCP4 198.51.100.7 203.0.113.9 40001\r\n",
        b"PROXY TCP4 2001:db8::1 203.0.113.9 40001 1883\r\n",
        b"PROXY TCP6 198.51.100.7 2001:db8::2 40001 1883\r\n",
        b"PROXY TCP4 198.51.100.7 203.0.113.9 65536 1883\r\n",
        b"PROXY TCP4 198.51.100.7  203.0.113.9 1 2\r\n",
        b"PROXY UDP4 198.51.100.7 203.0.113.9 1 2\r\n",
        b"PROXY \xff\r\n",
    ];
    for bytes in cases {
        let got = parse(bytes);
        assert!(
            matches!(got, Err(ProxyError::BadV1(_))),
            "{:?}: {got:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn v1_without_crlf_within_107_bytes_is_too_long() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX - 1, b'x');
    assert!(matches!(parse(&line), Ok(None)), "106 bytes: wait for more");
    line.push(b'x');
    assert!(matches!(parse(&line), Err(ProxyError::TooLong)));
}

#[test]
fn v2_headers() {
    let mut v6 = Vec::new();
    v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().expect("ip").octets());
    v6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().expect("ip").octets());
    v6.extend_from_slice(&[0x9c, 0x41, 0x07, 0x5b]);
    let mut with_tlv = V4_BLOCK.to_vec();
    with_tlv.extend_from_slice(&[0x04, 0x00, 0x02, b'i', b'd']); // a PP2_TYPE_NOOP TLV
    let cases: Vec<(Vec<u8>, ProxyHeader)> = vec![
        (
            v2(1, 0x11, V4_BLOCK),
            proxied("198.51.100.7:40001", "203.0.113.9:1883"),
        ),
        (
            v2(1, 0x21, &v6),
            proxied("[2001:db8::1]:40001", "[2001:db8::2]:1883"),
        ),
        (
            v2(1, 0x11, &with_tlv),
            proxied("198.51.100.7:40001", "203.0.113.9:1883"),
        ),
        // LOCAL (a health check): the socket's address stands, the block is skipped.
        (v2(0, 0x11, V4_BLOCK), ProxyHeader::Local),
        (v2(0, 0x00, &[]), ProxyHeader::Local),
        // UNSPEC, UDP and UNIX families: the socket's address stands.
        (v2(1, 0x00, &[]), ProxyHeader::Local),
        (v2(1, 0x12, V4_BLOCK), ProxyHeader::Local),
        (v2(1, 0x31, &[0; 216]), ProxyHeader::Local),
    ];
    for (bytes, want) in cases {
        let mut with_more = bytes.clone();
        with_more.extend_from_slice(b"\x10\x0c");
        let got = parse(&with_more).expect("parses").expect("complete");
        assert_eq!(got, (want, bytes.len()), "{bytes:02x?}");
    }
}

#[test]
fn v2_malformed() {
    let mut version_1 = v2(1, 0x11, V4_BLOCK);
    version_1[12] = 0x11;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (version_1, "version"),
        (v2(2, 0x11, V4_BLOCK), "command"),
        (v2(1, 0x11, &V4_BLOCK[..11]), "IPv4 block short"),
        (v2(1, 0x21, V4_BLOCK), "IPv6 block short"),
    ];
    for (bytes, what) in cases {
        let got = parse(&bytes);
        assert!(matches!(got, Err(ProxyError::BadV2(_))), "{what}: {got:?}");
    }
    let mut huge = v2(1, 0x11, V4_BLOCK);
    huge[14..16].copy_from_slice(&(V2_MAX as u16 - 15).to_be_bytes());
    assert!(matches!(parse(&huge), Err(ProxyError::TooLong)));
}

#[test]
fn partial_headers_wait_for_more() {
    let v1 = b"PROXY TCP4 198.51.100.7 203.0.113.9 40001 1883\r\n";
    let v2 = v2(1, 0x11, V4_BLOCK);
    for whole in [&v1[..], &v2[..]] {
        for cut in 0..whole.len() {
            assert!(
                matches!(parse(&whole[..cut]), Ok(None)),
                "{:02x?}",
                &whole[..cut]
            );
        }
    }
}

#[test]
fn anything_else_is_not_a_proxy_header() {
    let cases: &[&[u8]] = &[
        b"\x10\x0c\x00\x04MQTT",
        b"GET /mqtt HTTP/1.1\r\n",
        b"PROXY\r\n",
        b"proxy TCP4",
        b"\r\n\r\n\0\r\nQUIX\n1234",
        b"\x16\x03\x01",
    ];
    for bytes in cases {
        let got = parse(bytes);
        assert!(
            matches!(got, Err(ProxyError::Missing)),
            "{bytes:02x?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn read_header_hands_back_what_follows() {
    let mut input = v2(1, 0x11, V4_BLOCK);
    input.extend_from_slice(b"\x10\x0cMQTT...");
    let (mut client, mut server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        // In pieces, as a slow proxy might send it.
        for piece in input.chunks(5) {
            client.write_all(piece).await.expect("write");
        }
        client
    });
    let (header, rest) = read_header(&mut server).await.expect("header");
    assert_eq!(header, proxied("198.51.100.7:40001", "203.0.113.9:1883"));
    let _client = writer.await.expect("writer");
    let mut stream = Rewind::new(rest, server);
    let mut first = [0u8; 9];
    stream.read_exact(&mut first).await.expect("read");
    assert_eq!(&first, b"\x10\x0cMQTT...");
}

#[tokio::test]
async fn read_header_refuses_a_closed_or_plain_stream() {
    let (client, mut server) = tokio::io::duplex(64);
    {
        use tokio::io::AsyncWriteExt;
        let mut client = client;
        client.write_all(b"PROXY TCP4 1.2").await.expect("write");
    }
    let got = read_header(&mut server).await;
    assert!(matches!(got, Err(ProxyError::Closed)), "{got:?}");
    let mut plain: &[u8] = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";
    let got = read_header(&mut plain).await;
    assert!(matches!(got, Err(ProxyError::Missing)), "{got:?}");
}
