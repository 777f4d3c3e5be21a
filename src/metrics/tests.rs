//! The counters as `$SYS` and the text format show them.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::protocol::ProtocolVersion;

#[test]
fn counters_and_guard() {
    let m = Arc::new(Metrics::new());
    m.add_received(QoS::AtLeastOnce, 10);
    let mut tally = SentTally::default();
    tally.add(QoS::AtMostOnce, 3);
    tally.add(QoS::ExactlyOnce, 4);
    m.add_sent_tally(&mut tally);
    m.add_sent_tally(&mut tally);
    let g = m.connection(
        Some("127.0.0.1:1883".parse().expect("addr")),
        ProtocolVersion::V5,
    );
    assert_eq!(
        m.snapshot(),
        MetricsSnapshot {
            received: 1,
            sent: 2,
            connected: 1,
            bytes_received: 10,
            bytes_sent: 7,
            dropped: 0,
        }
    );
    let text = m.render(None);
    assert!(
        text.contains("starling_connections{listener=\"1883\",protocol=\"5.0\"} 1"),
        "{text}"
    );
    drop(g);
    assert_eq!(m.snapshot().connected, 0);
    let text = m.render(None);
    assert!(
        text.contains("starling_connections{listener=\"1883\",protocol=\"5.0\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("starling_connections_opened_total{listener=\"1883\",protocol=\"5.0\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("starling_messages_received_total{qos=\"1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("starling_received_payload_bytes_total{qos=\"1\"} 10"),
        "{text}"
    );
    assert!(
        text.contains("starling_sent_payload_bytes_total{qos=\"2\"} 4"),
        "{text}"
    );
}

#[test]
fn router_values_move_by_their_difference() {
    let m = Metrics::new();
    m.add_dropped(DropReason::QueueFull, 2);
    let stats = RouterValues {
        sessions: 5,
        subscriptions: 3,
        retained: 4,
        unrouted: 7,
        restarts: 1,
    };
    m.render(Some(&stats));
    let text = m.render(Some(&stats));
    for line in [
        "starling_messages_dropped_total{reason=\"no_subscribers\"} 7",
        "starling_messages_dropped_total{reason=\"queue_full\"} 2",
        "starling_messages_dropped_total{reason=\"expired\"} 0",
        "starling_actor_restarts_total{actor=\"router\"} 1",
        "starling_actor_restarts_total{actor=\"persistence\"} 0",
        "starling_retained_messages 4",
        "starling_subscriptions 3",
        "starling_sessions{state=\"offline\"} 5",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[test]
fn store_commits_are_histograms() {
    let m = Metrics::new();
    m.store().commit(12, Duration::from_micros(300));
    m.store().restarted();
    let text = m.render(None);
    assert!(
        text.contains("starling_store_commit_seconds_count 1"),
        "{text}"
    );
    assert!(text.contains("starling_store_batch_ops_sum 12"), "{text}");
    assert!(
        text.contains("starling_actor_restarts_total{actor=\"persistence\"} 1"),
        "{text}"
    );
}
