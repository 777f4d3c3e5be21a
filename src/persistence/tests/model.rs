//! Model-based test: random op batches and restarts applied to `SledStore` and
//! `MemoryStore` must always load the same snapshot (`super::postgres` runs the same
//! steps against `PgStore`).

use proptest::prelude::*;

use super::super::records::{
    MessageRecord, PropertiesRecord, QueuedRecord, SessionRecord, SubscriptionRecord, WillRecord,
};
use super::super::{MemoryStore, Op, SledStore, Store};

const IDS: [&str; 4] = ["a", "ab", "b", "c/d"];
const FILTERS: [&str; 3] = ["x", "x/#", "+"];
const TOPICS: [&str; 3] = ["t", "t/1", "u"];

fn id() -> impl Strategy<Value = String> {
    prop::sample::select(&IDS[..]).prop_map(String::from)
}

fn cid() -> impl Strategy<Value = crate::message::ClientId> {
    id().prop_map(crate::message::ClientId::from)
}

fn props() -> impl Strategy<Value = PropertiesRecord> {
    (
        any::<Option<u8>>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..3)),
    )
        .prop_map(|(pfi, corr)| PropertiesRecord {
            payload_format_indicator: pfi,
            content_type: pfi.map(|_| "text/plain".into()),
            response_topic: None,
            correlation_data: corr,
            user_properties: if pfi.is_some() {
                vec![("k".into(), "v".into())]
            } else {
                vec![]
            },
        })
}

fn message() -> impl Strategy<Value = MessageRecord> {
    (
        prop::sample::select(&TOPICS[..]),
        prop::collection::vec(any::<u8>(), 0..4),
        0u8..3,
        any::<bool>(),
        props(),
        prop::option::of(0u64..100),
    )
        .prop_map(|(t, payload, qos, retain, properties, exp)| MessageRecord {
            topic: t.into(),
            payload,
            qos,
            retain,
            properties,
            expires_at_ms: exp,
            publisher: exp.map(|_| "p".into()),
        })
}

fn session() -> impl Strategy<Value = SessionRecord> {
    (
        id(),
        3u8..6,
        any::<u32>(),
        any::<Option<u64>>(),
        any::<bool>(),
    )
        .prop_map(
            |(client_id, protocol, expiry_secs, disconnected_at_ms, will)| SessionRecord {
                client_id,
                protocol,
                expiry_secs,
                disconnected_at_ms,
                will: will.then(|| WillRecord {
                    topic: "will".into(),
                    payload: b"bye".to_vec(),
                    qos: 1,
                    retain: true,
                    properties: PropertiesRecord::default(),
                    delay_secs: 5,
                }),
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let seq = 0u64..6;
    let pid = 1u16..4;
    prop_oneof![
        3 => session().prop_map(Op::PutSession),
        1 => cid().prop_map(|client_id| Op::DeleteSession { client_id }),
        2 => (cid(), prop::sample::select(&FILTERS[..]), 0u8..3, any::<Option<u32>>()).prop_map(
            |(client_id, f, qos, subscription_id)| Op::PutSubscription {
                client_id,
                sub: SubscriptionRecord {
                    filter: f.into(),
                    qos,
                    no_local: qos == 1,
                    retain_as_published: qos == 2,
                    retain_handling: qos,
                    subscription_id,
                },
            }
        ),
        1 => (cid(), prop::sample::select(&FILTERS[..]))
            .prop_map(|(client_id, f)| Op::DeleteSubscription { client_id, filter: f.into() }),
        4 => (cid(), seq.clone(), message(), any::<Option<u16>>(), any::<bool>()).prop_map(
            |(client_id, seq, message, packet_id, released)| Op::PutQueued {
                client_id,
                seq,
                rec: QueuedRecord {
                    qos: message.qos,
                    retain: message.retain,
                    message,
                    sub_ids: vec![1, 7],
                    packet_id,
                    released,
                },
            }
        ),
        2 => (cid(), seq).prop_map(|(client_id, seq)| Op::DeleteQueued { client_id, seq }),
        1 => (cid(), pid.clone())
            .prop_map(|(client_id, packet_id)| Op::PutInboundQos2 { client_id, packet_id }),
        1 => (cid(), pid).prop_map(|(client_id, packet_id)| Op::DeleteInboundQos2 { client_id, packet_id }),
        1 => message().prop_map(Op::PutRetained),
        1 => prop::sample::select(&TOPICS[..]).prop_map(|t| Op::DeleteRetained { topic: t.into() }),
        1 => (0u64..12).prop_map(|next_seq| Op::RaiseNextSeq { next_seq }),
    ]
}

#[derive(Debug, Clone)]
pub(super) enum Step {
    Apply(Vec<Op>),
    Flush,
    /// Drop the sled store (after flushing if `flush`) and reopen the directory.
    Restart {
        flush: bool,
    },
}

pub(super) fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => prop::collection::vec(op(), 0..12).prop_map(Step::Apply),
        1 => Just(Step::Flush),
        2 => any::<bool>().prop_map(|flush| Step::Restart { flush }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sled_matches_memory(steps in prop::collection::vec(step(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let mut sled = SledStore::open(dir.path()).unwrap();
        let mut model = MemoryStore::new();
        prop_assert_eq!(sled.load().unwrap(), model.load().unwrap());
        for step in steps {
            match step {
                Step::Apply(ops) => {
                    model.apply(ops.clone()).unwrap();
                    sled.apply(ops).unwrap();
                }
                Step::Flush => sled.flush().unwrap(),
                Step::Restart { flush } => {
                    if flush {
                        sled.flush().unwrap();
                    }
                    drop(sled);
                    sled = SledStore::open(dir.path()).unwrap();
                }
            }
            prop_assert_eq!(sled.load().unwrap(), model.load().unwrap());
        }
    }
}
