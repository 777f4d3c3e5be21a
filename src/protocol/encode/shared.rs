//! A PUBLISH encoded once and written to many receivers: the bytes are shared as they
//! are (QoS 0), or copied with the fixed header's flags and the packet identifier
//! patched in (QoS 1/2, where only those differ from one receiver to the next).

use bytes::{BufMut, Bytes, BytesMut};

use super::encode_packet;
use crate::protocol::error::EncodeError;
use crate::protocol::packet::{Packet, Publish};
use crate::protocol::types::{PacketId, ProtocolVersion, QoS};

/// The wire bytes of one PUBLISH, ready to be appended to many connections' buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPublish {
    bytes: Bytes,
    /// Where the two-byte packet identifier sits, when the packet has one.
    id_at: Option<usize>,
}

impl EncodedPublish {
    /// Encodes `publish` for `version`. For a QoS 1/2 PUBLISH its packet identifier is a
    /// placeholder: [`EncodedPublish::put_with_id`] writes the real one.
    pub fn new(publish: Publish, version: ProtocolVersion) -> Result<EncodedPublish, EncodeError> {
        let topic_len = publish.topic.as_str().len();
        let has_id = publish.packet_id().is_some();
        let packet = Packet::Publish(publish);
        let mut dst = BytesMut::new();
        encode_packet(&packet, version, &mut dst)?;
        // Fixed header (type byte and remaining length), the topic (two-byte length and
        // the name), then the id.
        let length_bytes = dst[1..].iter().take_while(|b| *b & 0x80 != 0).count() + 1;
        let header = 1 + length_bytes;
        let id_at = has_id.then_some(header + 2 + topic_len);
        Ok(EncodedPublish {
            bytes: dst.freeze(),
            id_at,
        })
    }

    /// The encoded packet, exactly as it goes on the wire (QoS 0: for every receiver).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Size on the wire, fixed header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a PUBLISH has at least a fixed header and a topic length.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// True when this encoding has a packet identifier (it was built for QoS 1/2).
    pub fn has_packet_id(&self) -> bool {
        self.id_at.is_some()
    }

    /// Appends a copy with these flags and this packet identifier. Only for an encoding
    /// built for QoS 1/2, and only `qos` 1 or 2: the layout must not change.
    pub fn put_with_id(&self, dst: &mut BytesMut, dup: bool, qos: QoS, retain: bool, id: PacketId) {
        debug_assert!(qos != QoS::AtMostOnce, "a QoS 0 PUBLISH has no packet id");
        let Some(at) = self.id_at else {
            debug_assert!(false, "put_with_id on an encoding without a packet id");
            return;
        };
        let start = dst.len();
        dst.put_slice(&self.bytes);
        let out = &mut dst[start..];
        out[0] = (3 << 4) | (u8::from(dup) << 3) | ((qos as u8) << 1) | u8::from(retain);
        out[at..at + 2].copy_from_slice(&id.get().to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Flow, Properties, PropertyFields, UserProperty};
    use crate::topic::TopicName;

    fn publish(qos: QoS, dup: bool, retain: bool, id: Option<u16>, topic: &str) -> Publish {
        Publish {
            dup,
            flow: Flow::new(qos, id.and_then(PacketId::new)).unwrap(),
            retain,
            topic: TopicName::new(topic).unwrap(),
            properties: Properties::from(PropertyFields {
                content_type: Some("text/plain".into()),
                user_properties: vec![UserProperty {
                    key: "k".into(),
                    value: "v".into(),
                }],
                ..PropertyFields::default()
            }),
            payload: Bytes::from(vec![7u8; 300]),
        }
    }

    fn direct(p: Publish, version: ProtocolVersion) -> BytesMut {
        let mut dst = BytesMut::new();
        encode_packet(&Packet::Publish(p), version, &mut dst).unwrap();
        dst
    }

    #[test]
    fn qos0_bytes_are_the_plain_encoding() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let p = publish(QoS::AtMostOnce, false, true, None, "a/b");
            let enc = EncodedPublish::new(p.clone(), version).unwrap();
            assert!(!enc.has_packet_id());
            assert_eq!(&enc.bytes()[..], &direct(p, version)[..]);
        }
    }

    #[test]
    fn patched_copies_equal_the_plain_encoding() {
        // A 300-byte payload makes the remaining length take two bytes.
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            for topic in ["t", "some/longer/topic/name"] {
                let template = publish(QoS::AtLeastOnce, false, false, Some(1), topic);
                let enc = EncodedPublish::new(template, version).unwrap();
                for (qos, dup, retain, id) in [
                    (QoS::AtLeastOnce, false, false, 0x1234),
                    (QoS::ExactlyOnce, true, true, 0xFFFF),
                    (QoS::AtLeastOnce, true, false, 9),
                ] {
                    let mut dst = BytesMut::from(&b"xy"[..]);
                    enc.put_with_id(&mut dst, dup, qos, retain, PacketId::new(id).unwrap());
                    let want = direct(publish(qos, dup, retain, Some(id), topic), version);
                    assert_eq!(&dst[..2], b"xy");
                    assert_eq!(&dst[2..], &want[..], "{version:?} {topic} {qos:?}");
                }
            }
        }
    }
}
