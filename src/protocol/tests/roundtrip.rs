//! Property-based tests: encode -> decode is the identity; arbitrary bytes never panic.

use bytes::BytesMut;
use proptest::prelude::*;

use super::strategies as s;
use super::{decode_one, encode};
use crate::protocol::{decode_packet, encode_packet, Packet, ProtocolVersion};

fn round_trip(packet: &Packet, version: ProtocolVersion) {
    let bytes = encode(packet, version);
    let decoded = decode_one(&bytes, Some(version))
        .unwrap_or_else(|e| panic!("{packet:?} at {version:?} -> {bytes:02X?}: {e}"));
    assert_eq!(&decoded, packet, "bytes {bytes:02X?}");
}

macro_rules! round_trips {
    ($($name:ident: $version:expr => $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $name(packet in $strategy) {
                    round_trip(&packet, $version);
                }
            )*
        }
    };
}

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

round_trips! {
    v31_connect: ProtocolVersion::V31 => s::connect(ProtocolVersion::V31);
    v311_connect: V3 => s::connect(V3);
    v311_connack: V3 => s::connack(false);
    v311_publish: V3 => s::publish(false);
    v311_puback: V3 => s::pub_response(4, false);
    v311_pubrec: V3 => s::pub_response(5, false);
    v311_pubrel: V3 => s::pub_response(6, false);
    v311_pubcomp: V3 => s::pub_response(7, false);
    v311_subscribe: V3 => s::subscribe(false);
    v311_suback: V3 => s::suback(false);
    v311_unsubscribe: V3 => s::unsubscribe(false);
    v311_unsuback: V3 => s::unsuback(false);
    v311_ping: V3 => s::ping();
    v311_disconnect: V3 => s::disconnect(false);
    v5_connect: V5 => s::connect(V5);
    v5_connack: V5 => s::connack(true);
    v5_publish: V5 => s::publish(true);
    v5_puback: V5 => s::pub_response(4, true);
    v5_pubrec: V5 => s::pub_response(5, true);
    v5_pubrel: V5 => s::pub_response(6, true);
    v5_pubcomp: V5 => s::pub_response(7, true);
    v5_subscribe: V5 => s::subscribe(true);
    v5_suback: V5 => s::suback(true);
    v5_unsubscribe: V5 => s::unsubscribe(true);
    v5_unsuback: V5 => s::unsuback(true);
    v5_ping: V5 => s::ping();
    v5_disconnect: V5 => s::disconnect(true);
    v5_auth: V5 => s::auth();
}

/// What the fuzz target checks: whatever decodes re-encodes and decodes to itself.
fn decode_reencode(data: &[u8], version: Option<ProtocolVersion>) {
    let mut buf = BytesMut::from(data);
    let mut version = version;
    while let Ok(Some(packet)) = decode_packet(&mut buf, version, 4096) {
        let v = match (&packet, version) {
            (Packet::Connect(c), None) => c.protocol,
            (_, Some(v)) => v,
            (_, None) => unreachable!("only CONNECT decodes without a version"),
        };
        version = Some(v);
        let mut out = BytesMut::new();
        encode_packet(&packet, v, &mut out).expect("decoded packets encode");
        let again = decode_packet(&mut out, Some(v), usize::MAX).expect("re-decodes");
        assert_eq!(again.as_ref(), Some(&packet));
        assert!(out.is_empty());
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        for version in [None, Some(ProtocolVersion::V31), Some(V3), Some(V5)] {
            decode_reencode(&data, version);
        }
    }

    /// Arbitrary bytes behind a valid fixed header reach the body parsers.
    #[test]
    fn arbitrary_bodies_never_panic(
        first in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut data = vec![first, body.len() as u8];
        data.extend(&body);
        for version in [None, Some(V3), Some(V5)] {
            decode_reencode(&data, version);
        }
    }
}
