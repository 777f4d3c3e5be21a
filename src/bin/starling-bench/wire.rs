//! Pre-encoded handshake packets for `conns`: CONNECT and SUBSCRIBE are encoded once by
//! the crate's codec with a run of zeros in place of the connection's number, and each
//! connection only writes its digits into a copy ([`Template::fill`]). Answers are
//! checked by their fixed header and first bytes ([`Frame`]) instead of being decoded
//! into packets. No allocation per connection.

use anyhow::{anyhow, bail, ensure, Result};
use bytes::BytesMut;
use starling::protocol::{
    encode_packet, Connect, Packet, PacketId, Properties, ProtocolVersion, QoS, Subscribe,
    SubscriptionOptions,
};
use starling::topic::TopicFilter;

/// One packet encoded with `width` zero digits at `at`, to be replaced by a number.
pub struct Template {
    bytes: Vec<u8>,
    at: usize,
    width: usize,
}

impl Template {
    /// Encodes `packet`, whose text ends `tail` bytes before the end of the packet
    /// with `width` zeros (the client id is the CONNECT's last field; a SUBSCRIBE's filter
    /// is followed by its options byte).
    fn new(packet: &Packet, version: ProtocolVersion, width: usize, tail: usize) -> Result<Self> {
        let mut buf = BytesMut::new();
        encode_packet(packet, version, &mut buf)?;
        let at = buf.len() - tail - width;
        ensure!(
            buf[at..at + width].iter().all(|&b| b == b'0'),
            "template digits not where expected"
        );
        Ok(Template {
            bytes: buf.to_vec(),
            at,
            width,
        })
    }

    /// The packet for connection `n`: its number, zero padded, in place of the zeros.
    pub fn fill(&self, n: usize, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        let mut n = n;
        for slot in out[self.at..self.at + self.width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
}

/// Digits needed for the numbers below `count`.
pub fn width(count: usize) -> usize {
    count.saturating_sub(1).max(1).ilog10() as usize + 1
}

/// CONNECT with client id `<tag>-<n>` (clean, keep alive 600 s: rumqttd refuses 0, and
/// 600 s outlasts any run, so no PINGREQ is needed).
pub fn connect(version: ProtocolVersion, tag: &str, width: usize) -> Result<Template> {
    let id = format!("{tag}-{}", "0".repeat(width));
    let connect = Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 600,
        properties: Properties::default(),
        client_id: id.into(),
        will: None,
        username: None,
        password: None,
    };
    Template::new(&Packet::Connect(Box::new(connect)), version, width, 0)
}

/// SUBSCRIBE (packet id 1) to `bench/conns/<n>` at `qos`.
pub fn subscribe(version: ProtocolVersion, qos: QoS, width: usize) -> Result<Template> {
    let filter = format!("bench/conns/{}", "0".repeat(width));
    let filter = TopicFilter::new(filter.as_str()).map_err(|e| anyhow!("filter: {e}"))?;
    let subscribe = Subscribe {
        packet_id: PacketId::new(1).expect("1 is a valid packet id"),
        properties: Properties::default(),
        filters: vec![(filter, SubscriptionOptions::with_qos(qos))],
    };
    Template::new(&Packet::Subscribe(subscribe), version, width, 1)
}

/// DISCONNECT (normal, no properties: the same two bytes at 3.1.1 and 5.0).
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// The first whole packet at the front of a buffer: its first byte and body.
pub struct Frame<'a> {
    pub first: u8,
    pub body: &'a [u8],
    /// Header and body.
    pub len: usize,
}

impl Frame<'_> {
    /// The first whole packet in `buf`, `None` until all of it arrived.
    pub fn parse(buf: &[u8]) -> Result<Option<Frame<'_>>> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let Some((len, used)) = varint(&buf[1..])? else {
            return Ok(None);
        };
        let end = 1 + used + len;
        Ok((buf.len() >= end).then(|| Frame {
            first,
            body: &buf[1 + used..end],
            len: end,
        }))
    }

    /// A CONNACK: `Ok(true)` accepted; an error when refused; `Ok(false)` for another packet.
    pub fn connack(&self) -> Result<bool> {
        match self.first {
            0x20 => match self.body.get(1) {
                Some(0) => Ok(true),
                Some(code) => bail!("CONNACK refused with reason {code}"),
                None => bail!("short CONNACK"),
            },
            0xE0 => bail!("DISCONNECT instead of CONNACK"),
            other => bail!("expected CONNACK, got packet type {}", other >> 4),
        }
    }

    /// A SUBACK for packet id 1 granting its one filter: `Ok(true)`; an error when
    /// refused; `Ok(false)` for another packet (a retained message could come first).
    pub fn suback(&self, version: ProtocolVersion) -> Result<bool> {
        match self.first {
            0x90 => {}
            0xE0 => bail!("DISCONNECT while subscribing"),
            _ => return Ok(false),
        }
        let mut rest = self.body.get(2..).ok_or_else(|| anyhow!("short SUBACK"))?;
        if version.is_v5() {
            let (props, used) = varint(rest)?.ok_or_else(|| anyhow!("short SUBACK"))?;
            rest = rest
                .get(used + props..)
                .ok_or_else(|| anyhow!("short SUBACK"))?;
        }
        match rest {
            [code] if *code < 0x80 => Ok(true),
            [code] => bail!("SUBACK refused with reason {code}"),
            codes => bail!("SUBACK has {} codes for 1 filter", codes.len()),
        }
    }
}

/// A remaining-length varint: (value, bytes used), `None` when incomplete.
fn varint(buf: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut value = 0usize;
    for (i, &b) in buf.iter().enumerate().take(4) {
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        bail!("malformed remaining length");
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling::protocol::decode_packet;

    fn decode(bytes: &[u8], version: ProtocolVersion) -> Packet {
        let mut buf = BytesMut::from(bytes);
        decode_packet(&mut buf, Some(version), 1 << 20)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn templates_decode_with_the_number_in_place() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let w = width(20_000);
            assert_eq!(w, 5);
            let (c, s) = (
                connect(version, "sb1-conns", w).unwrap(),
                subscribe(version, QoS::AtLeastOnce, w).unwrap(),
            );
            let mut out = Vec::new();
            c.fill(1234, &mut out);
            match decode(&out, version) {
                Packet::Connect(c) => assert_eq!(&*c.client_id, "sb1-conns-01234"),
                other => panic!("{other:?}"),
            }
            s.fill(19_999, &mut out);
            match decode(&out, version) {
                Packet::Subscribe(s) => assert_eq!(s.filters[0].0.as_str(), "bench/conns/19999"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((width(1), width(10), width(11)), (1, 1, 2));
    }

    #[test]
    fn answers_are_checked() {
        let f = Frame::parse(&[0x20, 2, 0, 0]).unwrap().unwrap();
        assert!(f.connack().unwrap());
        let f = Frame::parse(&[0x20, 2, 0, 5]).unwrap().unwrap();
        assert!(f.connack().is_err());
        assert!(Frame::parse(&[0x90, 3, 0]).unwrap().is_none());
        let f = Frame::parse(&[0x90, 3, 0, 1, 1]).unwrap().unwrap();
        assert!(f.suback(ProtocolVersion::V311).unwrap());
        let f = Frame::parse(&[0x90, 4, 0, 1, 0, 0x80]).unwrap().unwrap();
        assert!(f.suback(ProtocolVersion::V5).is_err());
        let f = Frame::parse(&[0x30, 3, 0, 1, b'a']).unwrap().unwrap();
        assert!(!f.suback(ProtocolVersion::V311).unwrap());
        assert_eq!(f.len, 5);
    }
}
