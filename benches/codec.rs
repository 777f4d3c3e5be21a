//! Codec micro-benchmarks: decode and encode time per packet for the packets on the hot
//! path (PUBLISH QoS 0/1 with a 64-byte payload, 3.1.1 and 5.0 with a few properties)
//! and for CONNECT and SUBSCRIBE, and the per-receiver cost of a shared encoding. Run
//! with `cargo bench --bench codec`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use starling::protocol::{
    decode_packet, encode_packet, Connect, EncodedPublish, Flow, Packet, PacketId, Properties,
    PropertyFields, ProtocolVersion, Publish, QoS, Subscribe, SubscriptionOptions, UserProperty,
};
use starling::topic::{TopicFilter, TopicName};

fn pid(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero packet id")
}

/// 5.0 properties a real publisher might send: expiry, content type, one user property.
fn v5_properties() -> Properties {
    Properties::from(PropertyFields {
        message_expiry_interval: Some(60),
        content_type: Some("application/octet-stream".into()),
        user_properties: vec![UserProperty {
            key: "source".into(),
            value: "sensor-17".into(),
        }],
        ..PropertyFields::default()
    })
}

fn publish(qos: QoS, v5: bool) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        flow: Flow::with_id(qos, pid(17)),
        retain: false,
        topic: TopicName::new("site/42/device/1337/temperature").expect("valid topic"),
        properties: if v5 {
            v5_properties()
        } else {
            Properties::default()
        },
        payload: Bytes::from(vec![0xA5; 64]),
    })
}

fn connect(protocol: ProtocolVersion) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        properties: if protocol.is_v5() {
            Properties::from(PropertyFields {
                session_expiry_interval: Some(3600),
                receive_maximum: Some(100),
                ..PropertyFields::default()
            })
        } else {
            Properties::default()
        },
        client_id: "bench-client-0001".into(),
        will: None,
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret")),
    }))
}

fn subscribe(v5: bool) -> Packet {
    let filters = [
        "site/+/device/+/temperature",
        "site/42/#",
        "alerts/critical",
    ]
    .iter()
    .map(|f| {
        (
            TopicFilter::new(*f).expect("valid filter"),
            SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        )
    })
    .collect();
    Packet::Subscribe(Subscribe {
        packet_id: pid(3),
        properties: if v5 {
            Properties::from(PropertyFields {
                subscription_identifiers: vec![12],
                ..PropertyFields::default()
            })
        } else {
            Properties::default()
        },
        filters,
    })
}

fn cases() -> Vec<(&'static str, ProtocolVersion, Packet)> {
    use ProtocolVersion::{V311, V5};
    vec![
        ("publish_qos0_v311", V311, publish(QoS::AtMostOnce, false)),
        ("publish_qos1_v311", V311, publish(QoS::AtLeastOnce, false)),
        ("publish_qos0_v5_props", V5, publish(QoS::AtMostOnce, true)),
        ("publish_qos1_v5_props", V5, publish(QoS::AtLeastOnce, true)),
        ("connect_v311", V311, connect(V311)),
        ("connect_v5", V5, connect(V5)),
        ("subscribe_v311", V311, subscribe(false)),
        ("subscribe_v5", V5, subscribe(true)),
    ]
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let mut buf = BytesMut::with_capacity(4096);
    for (name, version, packet) in cases() {
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                encode_packet(black_box(&packet), version, &mut buf).expect("encodable");
                buf.len()
            })
        });
    }
    group.finish();
}

/// The per-receiver cost of a PUBLISH encoded once for many (what a session does for
/// the second and later receivers of a message): a copy, with the packet id patched in
/// for QoS 1.
fn encode_shared(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_shared");
    let mut buf = BytesMut::with_capacity(4096);
    for (name, version, qos) in [
        ("publish_qos0_v311", ProtocolVersion::V311, QoS::AtMostOnce),
        ("publish_qos1_v311", ProtocolVersion::V311, QoS::AtLeastOnce),
        (
            "publish_qos1_v5_props",
            ProtocolVersion::V5,
            QoS::AtLeastOnce,
        ),
    ] {
        let Packet::Publish(p) = publish(qos, version.is_v5()) else {
            unreachable!("publish() builds a PUBLISH")
        };
        let enc = EncodedPublish::new(p, version).expect("encodable");
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                if qos == QoS::AtMostOnce {
                    buf.extend_from_slice(black_box(&enc).bytes());
                } else {
                    black_box(&enc).put_with_id(&mut buf, false, qos, false, pid(42));
                }
                buf.len()
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, version, packet) in cases() {
        let mut wire = BytesMut::new();
        encode_packet(&packet, version, &mut wire).expect("encodable");
        let wire = wire.freeze();
        // The session decodes with its negotiated level; CONNECT arrives before there is one.
        let level = match packet {
            Packet::Connect(_) => None,
            _ => Some(version),
        };
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&wire[..]),
                |src| decode_packet(src, level, usize::MAX).expect("decodes"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = encode, encode_shared, decode
}
criterion_main!(benches);
