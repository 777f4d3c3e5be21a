//! Framing: incomplete input, several packets in one buffer, the maximum packet size.

use bytes::BytesMut;

use super::hex;
use crate::protocol::{decode_packet, DecodeError, MqttCodec, Packet, ProtocolVersion};

const PACKETS: &[(Option<ProtocolVersion>, &str)] = &[
    (
        None,
        "10 34 00 04 4D 51 54 54 05 C6 00 3C 0F 11 00 00 0E 10 21 00 14 26 00 01 6B 00 01 76 \
         00 02 63 31 07 01 01 18 00 00 00 05 00 01 77 00 03 62 79 65 00 01 75 00 01 70",
    ),
    (
        Some(ProtocolVersion::V5),
        "32 1F 00 01 61 00 07 18 02 00 00 00 3C 03 00 01 74 0B 01 0B C8 01 23 00 05 \
         26 00 01 6B 00 01 76 78",
    ),
    (
        Some(ProtocolVersion::V311),
        "82 0C 00 01 00 03 61 2F 2B 01 00 01 23 02",
    ),
    (Some(ProtocolVersion::V311), "C0 00"),
];

#[test]
fn every_prefix_is_incomplete_and_consumes_nothing() {
    for &(version, bytes) in PACKETS {
        let raw = hex(bytes);
        for n in 0..raw.len() {
            let mut buf = BytesMut::from(&raw[..n]);
            let result = decode_packet(&mut buf, version, 1 << 20);
            assert!(
                matches!(result, Ok(None)),
                "prefix {n} of {bytes}: {result:?}"
            );
            assert_eq!(&buf[..], &raw[..n], "prefix {n} of {bytes} was consumed");
        }
        let mut buf = BytesMut::from(&raw[..]);
        assert!(decode_packet(&mut buf, version, 1 << 20).unwrap().is_some());
        assert!(buf.is_empty());
    }
}

#[test]
fn incomplete_packet_reserves_its_rest() {
    let mut buf = BytesMut::from(&hex("30 FF 01 00 03")[..]);
    assert!(
        decode_packet(&mut buf, Some(ProtocolVersion::V311), 1 << 20)
            .unwrap()
            .is_none()
    );
    assert!(buf.capacity() >= 3 + 255);
}

#[test]
fn packets_decode_one_after_another() {
    let mut raw = hex("32 09 00 03 61 2F 62 00 01 68 69");
    raw.extend(hex("C0 00"));
    raw.extend(hex("E0 00"));
    raw.extend(hex("30 03")); // start of a fourth packet
    let mut buf = BytesMut::from(&raw[..]);
    let v = Some(ProtocolVersion::V311);
    let first = decode_packet(&mut buf, v, 1024).unwrap().unwrap();
    match first {
        Packet::Publish(p) => {
            assert_eq!(p.topic.as_str(), "a/b");
            assert_eq!(&p.payload[..], b"hi");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode_packet(&mut buf, v, 1024).unwrap(),
        Some(Packet::PingReq)
    );
    assert!(matches!(
        decode_packet(&mut buf, v, 1024).unwrap(),
        Some(Packet::Disconnect(_))
    ));
    assert_eq!(decode_packet(&mut buf, v, 1024).unwrap(), None);
    assert_eq!(&buf[..], &hex("30 03")[..]);
}

#[test]
fn packet_too_large_from_the_fixed_header_alone() {
    // Just the fixed header of a PUBLISH with the largest remaining length.
    let mut buf = BytesMut::from(&hex("30 FF FF FF 7F")[..]);
    let err = decode_packet(&mut buf, Some(ProtocolVersion::V311), 1024).unwrap_err();
    match err {
        DecodeError::PacketTooLarge { size, max } => {
            assert_eq!(size, 5 + 268_435_455);
            assert_eq!(max, 1024);
        }
        other => panic!("{other:?}"),
    }
    assert!(buf.capacity() < 1024, "the body must not be allocated");
    assert!(err_message_has_clause());
}

fn err_message_has_clause() -> bool {
    DecodeError::PacketTooLarge { size: 2, max: 1 }
        .to_string()
        .starts_with("[MQTT-3.2.2-15]")
}

#[test]
fn maximum_packet_size_counts_the_whole_packet() {
    // PINGREQ is 2 bytes; a 5 byte PUBLISH fits a maximum of 5 but not 4.
    let publish = hex("30 03 00 01 61");
    let v = Some(ProtocolVersion::V311);
    let mut buf = BytesMut::from(&publish[..]);
    assert!(decode_packet(&mut buf, v, 5).unwrap().is_some());
    let mut buf = BytesMut::from(&publish[..2]);
    assert!(matches!(
        decode_packet(&mut buf, v, 4),
        Err(DecodeError::PacketTooLarge { size: 5, max: 4 })
    ));
}

#[test]
fn codec_fixes_the_version_from_connect() {
    use tokio_util::codec::Decoder;
    let mut codec = MqttCodec::new(1024);
    let mut buf = BytesMut::from(&hex("C0 00")[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(DecodeError::Protocol(_))
    ));
    let mut buf = BytesMut::from(&hex(PACKETS[0].1)[..]);
    buf.extend_from_slice(&hex("E0 00"));
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Packet::Connect(_)))
    ));
    assert_eq!(codec.version(), Some(ProtocolVersion::V5));
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Packet::Disconnect(_)))
    ));
}

#[test]
fn short_acknowledgements_decode_as_the_full_decoder_does() {
    use crate::protocol::{PacketId, PubResponse};
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut buf =
            BytesMut::from(&hex("40 02 01 02 50 02 00 07 62 02 FF FF 70 02 00 01 D0")[..]);
        let id = |n| PubResponse::new(PacketId::new(n).unwrap());
        let want = [
            Packet::PubAck(id(0x0102)),
            Packet::PubRec(id(7)),
            Packet::PubRel(id(0xFFFF)),
            Packet::PubComp(id(1)),
        ];
        for packet in want {
            assert_eq!(
                decode_packet(&mut buf, Some(version), 1 << 20).unwrap(),
                Some(packet)
            );
        }
        assert_eq!(&buf[..], &[0xD0], "the next packet's first byte stays");
        for bad in ["40 02 00 00", "60 02 00 01", "52 02 00 01"] {
            let mut buf = BytesMut::from(&hex(bad)[..]);
            let result = decode_packet(&mut buf, Some(version), 1 << 20);
            assert!(
                matches!(result, Err(DecodeError::Malformed(_))),
                "{bad}: {result:?}"
            );
        }
        let mut buf = BytesMut::from(&hex("40 02 00 01")[..]);
        let result = decode_packet(&mut buf, Some(version), 3);
        assert!(
            matches!(result, Err(DecodeError::PacketTooLarge { .. })),
            "{result:?}"
        );
    }
    let mut buf = BytesMut::from(&hex("40 02 00 01")[..]);
    assert!(
        decode_packet(&mut buf, None, 1 << 20).is_err(),
        "before CONNECT"
    );
}
