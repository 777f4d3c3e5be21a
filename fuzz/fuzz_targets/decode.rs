//! Feeds arbitrary bytes to `decode_packet` before CONNECT and at every protocol level.
//! Every packet that decodes must encode, and decode again to an equal packet.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use starling::protocol::{decode_packet, encode_packet, encoded_len, Packet, ProtocolVersion};

const VERSIONS: [Option<ProtocolVersion>; 4] = [
    None,
    Some(ProtocolVersion::V31),
    Some(ProtocolVersion::V311),
    Some(ProtocolVersion::V5),
];

fuzz_target!(|data: &[u8]| {
    for start in VERSIONS {
        let mut buf = BytesMut::from(data);
        let mut version = start;
        while let Ok(Some(packet)) = decode_packet(&mut buf, version, 1 << 16) {
            let v = match (&packet, version) {
                (_, Some(v)) => v,
                (Packet::Connect(c), None) => c.protocol,
                (_, None) => panic!("a packet other than CONNECT decoded before CONNECT"),
            };
            version = Some(v);
            let mut out = BytesMut::new();
            encode_packet(&packet, v, &mut out).expect("a decoded packet encodes");
            assert_eq!(encoded_len(&packet, v), out.len());
            let again = decode_packet(&mut out, Some(v), usize::MAX)
                .expect("the encoding decodes")
                .expect("the encoding is complete");
            assert_eq!(again, packet);
            assert!(out.is_empty());
        }
    }
});
