//! A PUBLISH is encoded once per message and shared by its receivers (copied, patched
//! with each receiver's packet id at QoS 1, or queued by reference from 1 KiB up). Every
//! receiver must still get exactly the bytes it would have got encoded alone.

mod common;

use common::{bounded, BrokerProcess, RawClient};
use starling::protocol::{Properties, QoS};

/// Sizes that exercise the copied path, the shared-chunk path (>= 1 KiB) and a chunk
/// larger than the session's 64 KiB high-water mark, interleaved so that order across
/// copied and shared bytes matters.
const SIZES: [usize; 6] = [10, 5_000, 3, 100_000, 70, 1_024];

fn payload(i: usize) -> Vec<u8> {
    let size = SIZES[i % SIZES.len()];
    (0..size)
        .map(|k| (k as u8).wrapping_mul(31) ^ i as u8)
        .collect()
}

// [MQTT-4.6.0-6] order per topic, [MQTT-3.3.5-1] the granted QoS, identical payloads.
#[tokio::test]
async fn every_receiver_gets_its_own_correct_copy() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut subs = Vec::new();
        for i in 0..3 {
            subs.push(RawClient::connected_v311(addr, &format!("se-v3-{i}"), true).await);
        }
        for i in 0..2 {
            let name = format!("se-v5-{i}");
            subs.push(RawClient::connected_v5(addr, &name, Properties::default()).await);
        }
        let mut qos0_sub = RawClient::connected_v311(addr, "se-q0", true).await;
        for s in &mut subs {
            s.subscribe(&[("se/t", QoS::AtLeastOnce)]).await;
        }
        qos0_sub.subscribe(&[("se/t", QoS::AtMostOnce)]).await;

        let mut publisher = RawClient::connected_v311(addr, "se-pub", true).await;
        let count = 24;
        let qos_of = |i: usize| {
            if i % 2 == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            }
        };
        for i in 0..count {
            publisher
                .publish("se/t", qos_of(i), i % 3 == 0, &payload(i))
                .await;
        }

        for (n, s) in subs.iter_mut().enumerate() {
            let mut ids = Vec::new();
            for i in 0..count {
                let p = s.recv_publish_acked().await;
                assert_eq!(p.topic.as_str(), "se/t", "subscriber {n}, message {i}");
                assert_eq!(p.qos(), qos_of(i), "subscriber {n}, message {i}");
                assert!(!p.retain, "[MQTT-3.3.1-9] live delivery clears RETAIN");
                assert!(!p.dup);
                assert_eq!(
                    &p.payload[..],
                    &payload(i)[..],
                    "subscriber {n}, message {i}"
                );
                ids.extend(p.packet_id());
            }
            assert_eq!(
                ids.len(),
                count / 2,
                "subscriber {n}: one id per QoS 1 message"
            );
        }
        for i in 0..count {
            let p = qos0_sub.expect_publish().await;
            assert_eq!(p.qos(), QoS::AtMostOnce);
            assert_eq!(p.packet_id(), None);
            assert_eq!(
                &p.payload[..],
                &payload(i)[..],
                "QoS 0 subscriber, message {i}"
            );
        }
    })
    .await;
}
