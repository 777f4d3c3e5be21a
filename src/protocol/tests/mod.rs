//! Tests of the codec: byte tables, error table, framing, property-based round trips.

mod errors;
mod framing;
mod roundtrip;
mod strategies;
mod tables;
mod tables_v5;

use bytes::BytesMut;

use super::{decode_packet, encode_packet, encoded_len, DecodeError, Packet, ProtocolVersion};

/// Parses whitespace separated hex bytes.
pub(super) fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// Decodes exactly one packet that must take the whole input.
pub(super) fn decode_one(
    bytes: &[u8],
    version: Option<ProtocolVersion>,
) -> Result<Packet, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let packet = decode_packet(&mut buf, version, 1 << 20)?.expect("complete packet");
    assert!(buf.is_empty(), "packet did not consume all input");
    Ok(packet)
}

/// Encodes, checking that `encoded_len` is exact.
pub(super) fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_packet(packet, version, &mut buf).unwrap();
    assert_eq!(
        encoded_len(packet, version),
        buf.len(),
        "encoded_len of {packet:?}"
    );
    buf.to_vec()
}

/// Asserts `bytes` decode to `packet` and `packet` encodes to `bytes`.
pub(super) fn check_row(version: ProtocolVersion, bytes: &str, packet: &Packet) {
    let raw = hex(bytes);
    let decode_version = match packet {
        Packet::Connect(_) => None,
        _ => Some(version),
    };
    let decoded = decode_one(&raw, decode_version)
        .unwrap_or_else(|e| panic!("decoding {bytes} at {version:?}: {e}"));
    assert_eq!(&decoded, packet, "decoding {bytes} at {version:?}");
    assert_eq!(
        encode(packet, version),
        raw,
        "encoding {packet:?} at {version:?}"
    );
}
