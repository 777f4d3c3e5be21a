//! The value of a queued key (`starling.s.<client>.q.<seq>`): the postcard
//! [`QueuedRecord`] the other stores keep, then, for a message that came with a cluster
//! number, a trailer naming it: the tag [`ORIGIN_TAG`] and the postcard `(node, seq)`.
//! Pure.
//!
//! The trailer lets a resumed session's replay skip exactly the messages already in its
//! stored queue (`super::cursor`). Values written before it (no trailer) decode with no
//! origin; a reader that knows no trailer decodes new values too, since postcard's
//! `from_bytes` ignores trailing bytes.

use bytes::Bytes;

use crate::delivery::Origin;
use crate::persistence::QueuedRecord;

/// Marks the origin trailer (other values are reserved for later trailers).
const ORIGIN_TAG: u8 = 1;

/// The stored value of a queued message.
pub fn encode(rec: &QueuedRecord, origin: Option<Origin>) -> Result<Bytes, postcard::Error> {
    let mut out = postcard::to_allocvec(rec)?;
    if let Some(o) = origin {
        out.push(ORIGIN_TAG);
        out.extend(postcard::to_allocvec(&(o.node, o.seq))?);
    }
    Ok(Bytes::from(out))
}

/// A stored value read back: the record, and its origin if the value names one (an
/// unknown or damaged trailer counts as none: the record itself is intact).
pub fn decode(payload: &[u8]) -> Result<(QueuedRecord, Option<Origin>), postcard::Error> {
    let (rec, rest) = postcard::take_from_bytes::<QueuedRecord>(payload)?;
    let origin = match rest.split_first() {
        Some((&ORIGIN_TAG, trailer)) => postcard::from_bytes::<(u64, u64)>(trailer)
            .ok()
            .map(|(node, seq)| Origin { node, seq }),
        _ => None,
    };
    Ok((rec, origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::{MessageRecord, PropertiesRecord};

    fn record() -> QueuedRecord {
        QueuedRecord {
            message: MessageRecord {
                topic: "a/b".into(),
                payload: b"x".to_vec(),
                qos: 2,
                retain: false,
                properties: PropertiesRecord::default(),
                expires_at_ms: None,
                publisher: Some("p".into()),
            },
            qos: 2,
            retain: false,
            sub_ids: vec![3],
            packet_id: Some(7),
            released: false,
        }
    }

    #[test]
    fn values_round_trip_and_stay_readable_both_ways() {
        let origin = Origin {
            node: u64::MAX - 1,
            seq: 300,
        };
        let new = encode(&record(), Some(origin)).expect("encode");
        assert_eq!(decode(&new).expect("decode"), (record(), Some(origin)));
        // A reader without the trailer (the sled format) still reads the record.
        let plain: QueuedRecord = postcard::from_bytes(&new).expect("old reader");
        assert_eq!(plain, record());
        // A value written before the trailer existed: no origin.
        let old = postcard::to_allocvec(&record()).expect("old value");
        assert_eq!(decode(&old).expect("decode old"), (record(), None));
        assert_eq!(encode(&record(), None).expect("encode").as_ref(), &old[..]);
        // An unknown trailer is ignored, a damaged record is not.
        let mut odd = old.clone();
        odd.extend([9, 1, 2]);
        assert_eq!(decode(&odd).expect("decode odd"), (record(), None));
        assert!(decode(&old[..old.len() - 3]).is_err());
    }
}
