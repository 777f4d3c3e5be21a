//! The error table: bytes -> error variant and the clause its message names.

use super::hex;
use crate::protocol::decode_packet;
use crate::protocol::{DecodeError, ProtocolVersion};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Malformed,
    Protocol,
    Unsupported,
}

use Kind::{Malformed as M, Protocol as P, Unsupported as U};

const V3: Option<ProtocolVersion> = Some(ProtocolVersion::V311);
const V5: Option<ProtocolVersion> = Some(ProtocolVersion::V5);
const NONE: Option<ProtocolVersion> = None;

/// (version, bytes, expected kind, clause the message starts with)
const ROWS: &[(Option<ProtocolVersion>, &str, Kind, &str)] = &[
    // Fixed header.
    (V3, "30 FF FF FF FF 01", M, "[MQTT-1.5.5-1]"),
    (V3, "C0 80 00", M, "[MQTT-1.5.5-1]"),
    (V3, "00 00", M, "[MQTT-2.1.2]"),
    (V5, "00 00", M, "[MQTT-2.1.2]"),
    (V3, "F0 00", M, "[MQTT-2.2.1]"),
    (NONE, "C0 00", P, "[MQTT-3.1.0-1]"),
    (NONE, "30 02 00 00", P, "[MQTT-3.1.0-1]"),
    (V3, "C1 00", M, "[MQTT-2.2.2-1]"),
    (V5, "41 02 00 01", M, "[MQTT-2.2.2-1]"),
    (V3, "60 02 00 01", M, "[MQTT-3.6.1-1]"),
    (V3, "80 06 00 01 00 01 61 00", M, "[MQTT-3.8.1-1]"),
    (V3, "A0 05 00 01 00 01 61", M, "[MQTT-3.10.1-1]"),
    (V3, "36 05 00 01 61 00 01", M, "[MQTT-3.3.1-4]"),
    (V3, "38 03 00 01 61", M, "[MQTT-3.3.1-2]"),
    // CONNECT.
    (NONE, "10 07 00 04 4D 51 54 54 06", U, "[MQTT-3.1.2-2]"),
    (
        NONE,
        "10 09 00 06 4D 51 49 73 64 70 04",
        U,
        "[MQTT-3.1.2-2]",
    ),
    (NONE, "10 07 00 04 41 42 43 44 04", U, "[MQTT-3.1.2-2]"),
    (
        NONE,
        "10 0E 00 04 4D 51 54 54 04 03 00 3C 00 02 63 31",
        M,
        "[MQTT-3.1.2-3]",
    ),
    (
        NONE,
        "10 0E 00 04 4D 51 54 54 04 0A 00 3C 00 02 63 31",
        M,
        "[MQTT-3.1.2-11]",
    ),
    (
        NONE,
        "10 0E 00 04 4D 51 54 54 04 22 00 3C 00 02 63 31",
        M,
        "[MQTT-3.1.2-13]",
    ),
    (
        NONE,
        "10 0E 00 04 4D 51 54 54 04 1E 00 3C 00 02 63 31",
        M,
        "[MQTT-3.1.2-14]",
    ),
    (
        NONE,
        "10 0E 00 04 4D 51 54 54 04 42 00 3C 00 02 63 31",
        M,
        "[MQTT-3.1.2-22]",
    ),
    (
        NONE,
        "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 02 63 00",
        M,
        "[MQTT-1.5.3-2]",
    ),
    (
        NONE,
        "10 0F 00 04 4D 51 54 54 05 02 00 3C 00 00 02 63 00",
        M,
        "[MQTT-1.5.4-2]",
    ),
    (
        NONE,
        "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 ED A0 80",
        M,
        "[MQTT-1.5.3-1]",
    ),
    (
        NONE,
        "10 10 00 04 4D 51 54 54 05 02 00 3C 00 00 03 ED A0 80",
        M,
        "[MQTT-1.5.4-1]",
    ),
    (
        NONE,
        "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 02 63 31 00",
        M,
        "[MQTT-2.1.4]",
    ),
    (
        NONE,
        "10 0E 00 04 4D 51 54 54 04 06 00 3C 00 02 63 31",
        M,
        "[MQTT-2.1.4]",
    ),
    // Will topic with a wildcard, will QoS 1.
    (
        NONE,
        "10 14 00 04 4D 51 54 54 04 0E 00 3C 00 02 63 31 00 01 23 00 01 78",
        M,
        "[MQTT-3.3.2-2]",
    ),
    // CONNACK.
    (V3, "20 02 02 00", M, "[MQTT-3.2.2-1]"),
    (V3, "20 02 00 06", M, "[MQTT-3.2.2.3]"),
    (V3, "20 02 01 05", P, "[MQTT-3.2.2-6]"),
    (V5, "20 03 00 01 00", M, "[MQTT-3.2.2-8]"),
    // PUBLISH.
    (V3, "30 02 00 00", M, "[MQTT-4.7.3-1]"),
    (V3, "30 05 00 03 61 2F 2B", M, "[MQTT-3.3.2-2]"),
    (V5, "30 06 00 03 61 2F 23 00", M, "[MQTT-3.3.2-2]"),
    (V3, "30 03 00 01 FF", M, "[MQTT-1.5.3-1]"),
    (V3, "30 04 00 02 61 00", M, "[MQTT-4.7.3-2]"),
    (V5, "30 03 00 00 00", P, "[MQTT-3.3.2.3.4]"),
    (V3, "32 05 00 01 61 00 00", M, "[MQTT-2.2.1-3]"),
    // Publish responses.
    (V3, "40 02 00 00", M, "[MQTT-2.2.1-3]"),
    (V3, "40 03 00 01 00", M, "[MQTT-2.1.4]"),
    (V3, "40 01 00", M, "[MQTT-2.1.4]"),
    (V5, "40 03 00 01 05", M, "[MQTT-3.4.2-1]"),
    (V5, "50 03 00 01 92", M, "[MQTT-3.5.2-1]"),
    (V5, "62 03 00 01 10", M, "[MQTT-3.6.2-1]"),
    (V5, "70 03 00 01 80", M, "[MQTT-3.7.2-1]"),
    (V5, "40 04 00 01 00 05", M, "[MQTT-2.2.2.1]"),
    (V5, "40 06 00 01 00 01 1F 00", M, "[MQTT-2.1.4]"),
    // SUBSCRIBE.
    (V3, "82 08 00 00 00 03 61 2F 62 00", M, "[MQTT-2.2.1-3]"),
    (V3, "82 02 00 01", P, "[MQTT-3.8.3-3]"),
    (V5, "82 03 00 01 00", P, "[MQTT-3.8.3-3]"),
    (V3, "82 06 00 01 00 01 61 04", M, "[MQTT-3-8.3-4]"),
    (V3, "82 06 00 01 00 01 61 03", M, "[MQTT-3-8.3-4]"),
    (V3, "82 05 00 01 00 01 61", M, "[MQTT-2.1.4]"),
    (V3, "82 08 00 01 00 03 61 2B 62 00", M, "[MQTT-4.7.1-3]"),
    (
        V3,
        "82 0A 00 01 00 05 61 2F 23 2F 62 00",
        M,
        "[MQTT-4.7.1-2]",
    ),
    (V3, "82 05 00 01 00 00 00", M, "[MQTT-4.7.3-1]"),
    (V5, "82 07 00 01 00 00 01 61 40", M, "[MQTT-3.8.3-5]"),
    (V5, "82 07 00 01 00 00 01 61 30", P, "[MQTT-3.8.3.1]"),
    (V5, "82 07 00 01 00 00 01 61 03", M, "[MQTT-3.8.3.1]"),
    (
        V5,
        "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 78 04",
        P,
        "[MQTT-3.8.3-4]",
    ),
    // SUBACK, UNSUBSCRIBE, UNSUBACK.
    (V3, "90 03 00 01 03", M, "[MQTT-3.9.3-2]"),
    (V5, "90 04 00 01 00 03", M, "[MQTT-3.9.3-2]"),
    (V3, "A2 02 00 01", P, "[MQTT-3.10.3-2]"),
    (V3, "B0 03 00 01 00", M, "[MQTT-2.1.4]"),
    (V5, "B0 04 00 01 00 01", M, "[MQTT-3.11.3-2]"),
    // PINGREQ, PINGRESP, DISCONNECT, AUTH.
    (V3, "C0 01 00", M, "[MQTT-3.12.1]"),
    (V5, "D0 01 00", M, "[MQTT-3.13.1]"),
    (V3, "E0 01 00", M, "[MQTT-3.14.1]"),
    (V5, "E0 01 05", M, "[MQTT-3.14.2-1]"),
    (V5, "E0 03 00 00 00", M, "[MQTT-2.1.4]"),
    (V5, "F0 01 01", M, "[MQTT-3.15.2-1]"),
    // Properties: wrong packet, duplicates, values.
    (
        V5,
        "30 09 00 01 61 05 11 00 00 00 01",
        P,
        "[MQTT-2.2.2.2] property 0x11",
    ),
    (
        V5,
        "40 06 00 01 00 02 23 00",
        P,
        "[MQTT-2.2.2.2] property 0x23",
    ),
    (
        V5,
        "E0 05 00 03 21 00 01",
        P,
        "[MQTT-2.2.2.2] property 0x21",
    ),
    (V5, "F0 04 00 02 01 01", P, "[MQTT-2.2.2.2] property 0x01"),
    (
        NONE,
        "10 19 00 04 4D 51 54 54 05 02 00 3C 0A 11 00 00 00 01 11 00 00 00 02 00 02 63 31",
        P,
        "[MQTT-2.2.2.2] duplicate property 0x11",
    ),
    (
        V5,
        "82 0B 00 01 04 0B 01 0B 02 00 01 61 00",
        P,
        "[MQTT-2.2.2.2] duplicate property 0x0B",
    ),
    (
        V5,
        "30 0A 00 01 61 06 02 00 00 00 01 02",
        P,
        "[MQTT-2.2.2.2] duplicate property 0x02",
    ),
    (V5, "30 06 00 01 61 02 07 00", M, "[MQTT-2.2.2.2] unknown"),
    (
        NONE,
        "10 12 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 02 63 31",
        P,
        "[MQTT-3.1.2.11.3]",
    ),
    (
        NONE,
        "10 14 00 04 4D 51 54 54 05 02 00 3C 05 27 00 00 00 00 00 02 63 31",
        P,
        "[MQTT-3.1.2.11.4]",
    ),
    (
        NONE,
        "10 11 00 04 4D 51 54 54 05 02 00 3C 02 17 02 00 02 63 31",
        P,
        "[MQTT-3.1.2.11.7]",
    ),
    (
        NONE,
        "10 11 00 04 4D 51 54 54 05 02 00 3C 02 19 02 00 02 63 31",
        P,
        "[MQTT-3.1.2.11.6]",
    ),
    (
        NONE,
        "10 14 00 04 4D 51 54 54 05 02 00 3C 05 16 00 02 61 62 00 02 63 31",
        P,
        "[MQTT-3.1.2.11.10]",
    ),
    // Will properties: session expiry is not a will property.
    (
        NONE,
        "10 1A 00 04 4D 51 54 54 05 06 00 3C 00 00 02 63 31 05 11 00 00 00 01 00 01 77 00 00",
        P,
        "[MQTT-2.2.2.2] property 0x11",
    ),
    (V5, "30 06 00 01 61 02 0B 00", P, "[MQTT-3.8.2.1.2]"),
    (V5, "30 06 00 01 61 02 01 02", P, "[MQTT-3.3.2.3.2]"),
    (V5, "30 08 00 01 61 04 08 00 01 2B", P, "[MQTT-3.3.2-14]"),
    (V5, "20 05 00 00 02 24 02", P, "[MQTT-3.2.2.3.4]"),
    (V5, "20 05 00 00 02 25 02", P, "[MQTT-3.2.2.3.5]"),
    (V5, "20 05 00 00 02 28 02", P, "[MQTT-3.2.2.3.11]"),
    (V5, "20 05 00 00 02 29 02", P, "[MQTT-3.2.2.3.12]"),
    (V5, "20 05 00 00 02 2A 02", P, "[MQTT-3.2.2.3.13]"),
    (V5, "30 07 00 01 61 03 0B 80 00", M, "[MQTT-1.5.5-1]"),
    (V5, "30 06 00 01 61 02 03 00", M, "[MQTT-2.1.4]"),
    (V5, "30 08 00 01 61 04 03 00 01 00", M, "[MQTT-1.5.4-2]"),
];

#[test]
fn error_table() {
    for &(version, bytes, kind, clause) in ROWS {
        let mut buf = bytes::BytesMut::from(&hex(bytes)[..]);
        let err = match decode_packet(&mut buf, version, 1 << 20) {
            Ok(p) => panic!("{bytes} at {version:?} decoded to {p:?}"),
            Err(e) => e,
        };
        let got = match &err {
            DecodeError::Malformed(_) => M,
            DecodeError::Protocol(_) => P,
            DecodeError::UnsupportedProtocolVersion { .. } => U,
            other => panic!("{bytes}: unexpected {other:?}"),
        };
        assert_eq!(got, kind, "{bytes} at {version:?}: {err}");
        let msg = match &err {
            DecodeError::Malformed(m) | DecodeError::Protocol(m) => m.to_string(),
            e => e.to_string(),
        };
        assert!(
            msg.starts_with(clause),
            "{bytes} at {version:?}: {msg:?} does not start with {clause}"
        );
    }
}

#[test]
fn reason_codes_map_to_spec() {
    assert_eq!(DecodeError::Malformed("x").reason_code().0, 0x81);
    assert_eq!(DecodeError::Protocol("x").reason_code().0, 0x82);
    let unsupported = DecodeError::UnsupportedProtocolVersion {
        name: "MQTT".into(),
        level: 6,
    };
    assert_eq!(unsupported.reason_code().0, 0x84);
}
