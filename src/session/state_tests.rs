use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::protocol::Properties;
use crate::topic::TopicName;

fn msg(payload: &'static str, qos: QoS) -> Arc<Message> {
    Arc::new(Message {
        topic: TopicName::new("t").unwrap(),
        payload: Bytes::from_static(payload.as_bytes()),
        qos,
        retain: false,
        properties: Properties::default(),
        expires_at: None,
        publisher: None,
        encoded: Default::default(),
    })
}

fn out(payload: &'static str, qos: QoS) -> Outgoing {
    Outgoing {
        msg: msg(payload, qos),
        qos,
        retain: false,
        sub_ids: vec![],
        seq: None,
        share: None,
        receipt: None,
    }
}

fn state(max_messages: usize) -> SessionState {
    state_with(max_messages, false)
}

fn state_with(max_messages: usize, drop_oldest: bool) -> SessionState {
    let limits = QueueLimits {
        max_messages,
        max_bytes: 1 << 20,
        drop_oldest,
        backpressure: false,
    };
    SessionState::new(ClientId::new("c"), ProtocolVersion::V311, limits)
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

#[test]
fn window_limits_inflight_and_keeps_order() {
    let mut s = state(100);
    for p in ["a", "b", "c"] {
        assert_eq!(s.enqueue(out(p, QoS::AtLeastOnce)), Enqueued::Queued);
    }
    let now = Instant::now();
    let (first, id1) = s.next_to_send(2, || now).unwrap();
    let (second, id2) = s.next_to_send(2, || now).unwrap();
    assert_eq!(
        (&first.msg.payload[..], &second.msg.payload[..]),
        (&b"a"[..], &b"b"[..])
    );
    assert_eq!((id1, id2), (Some(pid(1)), Some(pid(2))));
    assert!(s.next_to_send(2, || now).is_none(), "window of 2 is full");
    assert_eq!(s.on_puback(pid(1)), AckResult::Matched { seq: None });
    assert_eq!(s.on_puback(pid(1)), AckResult::Unknown);
    let (third, id3) = s.next_to_send(2, || now).unwrap();
    assert_eq!((&third.msg.payload[..], id3), (&b"c"[..], Some(pid(3))));
}

#[test]
fn qos2_flow_needs_pubrec_then_pubcomp() {
    let mut s = state(10);
    s.enqueue(out("x", QoS::ExactlyOnce));
    let (_, id) = s.next_to_send(10, Instant::now).unwrap();
    let id = id.unwrap();
    assert_eq!(
        s.on_pubcomp(id),
        AckResult::Unknown,
        "PUBCOMP before PUBREC"
    );
    assert_eq!(
        s.on_puback(id),
        AckResult::Unknown,
        "PUBACK is not a QoS 2 ack"
    );
    assert_eq!(s.on_pubrec(id), AckResult::Matched { seq: None });
    assert_eq!(s.inflight().next().unwrap().stage, Stage::Released);
    assert_eq!(s.on_pubcomp(id), AckResult::Matched { seq: None });
    assert_eq!(s.inflight_len(), 0);
}

#[test]
fn drop_oldest_makes_room_for_the_new_message_after_qos0() {
    let mut s = state_with(3, true);
    let stored = |p: &'static str, seq| Outgoing {
        seq: Some(seq),
        ..out(p, QoS::AtLeastOnce)
    };
    s.enqueue(stored("s1", 1));
    s.enqueue(out("q0", QoS::AtMostOnce));
    s.enqueue(stored("s2", 2));
    // QoS 0 goes first, then the oldest, whose stored number is reported.
    assert_eq!(s.enqueue(stored("s3", 3)), Enqueued::DisplacedQos0);
    assert_eq!(
        s.enqueue(stored("s4", 4)),
        Enqueued::DisplacedOldest(vec![1])
    );
    assert_eq!(s.enqueue(out("new0", QoS::AtMostOnce)), Enqueued::Dropped);
    assert_eq!(s.dropped, 3);
    let now = Instant::now();
    let sent: Vec<_> = (0..3)
        .map(|_| s.next_to_send(10, || now).unwrap().0.msg.payload.clone())
        .collect();
    assert_eq!(sent, [&b"s2"[..], b"s3", b"s4"]);
}

#[test]
fn full_queue_drops_qos0_first() {
    let mut s = state(2);
    s.enqueue(out("q0", QoS::AtMostOnce));
    s.enqueue(out("q1", QoS::AtLeastOnce));
    assert_eq!(s.enqueue(out("new0", QoS::AtMostOnce)), Enqueued::Dropped);
    assert_eq!(
        s.enqueue(out("new1", QoS::AtLeastOnce)),
        Enqueued::DisplacedQos0
    );
    assert_eq!(s.enqueue(out("new2", QoS::AtLeastOnce)), Enqueued::Dropped);
    assert_eq!(s.dropped, 3);
    let now = Instant::now();
    let a = s.next_to_send(10, || now).unwrap().0;
    let b = s.next_to_send(10, || now).unwrap().0;
    assert_eq!(
        (&a.msg.payload[..], &b.msg.payload[..]),
        (&b"q1"[..], &b"new1"[..])
    );
}

#[test]
fn expired_messages_are_skipped() {
    let mut s = state(10);
    let mut m = (*msg("old", QoS::AtLeastOnce)).clone();
    let now = Instant::now();
    m.expires_at = Some(now);
    s.enqueue(Outgoing {
        msg: Arc::new(m),
        qos: QoS::AtLeastOnce,
        retain: false,
        sub_ids: vec![],
        seq: None,
        share: None,
        receipt: None,
    });
    s.enqueue(out("fresh", QoS::AtLeastOnce));
    let (o, _) = s.next_to_send(10, || now + Duration::from_secs(1)).unwrap();
    assert_eq!(&o.msg.payload[..], b"fresh");
    assert_eq!(s.dropped, 1);
}

#[test]
fn packet_ids_skip_ids_in_flight_and_wrap() {
    let mut s = state(70_000);
    let now = Instant::now();
    // Keep id 1 in flight, then cycle through every other id.
    s.enqueue(out("held", QoS::AtLeastOnce));
    let (_, held) = s.next_to_send(usize::MAX, || now).unwrap();
    assert_eq!(held, Some(pid(1)));
    for _ in 2..=u16::MAX {
        s.enqueue(out("m", QoS::AtLeastOnce));
        let (_, id) = s.next_to_send(usize::MAX, || now).unwrap();
        s.on_puback(id.unwrap());
    }
    s.enqueue(out("after wrap", QoS::AtLeastOnce));
    let (_, id) = s.next_to_send(usize::MAX, || now).unwrap();
    assert_eq!(
        id,
        Some(pid(2)),
        "id 1 is still in flight and must be skipped"
    );
}

#[test]
fn inbound_qos2_ids_detect_resends() {
    let mut s = state(10);
    assert!(s.begin_inbound_qos2(pid(7)));
    assert!(
        !s.begin_inbound_qos2(pid(7)),
        "re-sent PUBLISH must not be delivered twice"
    );
    assert!(s.on_pubrel(pid(7)));
    assert!(!s.on_pubrel(pid(7)));
    assert!(
        s.begin_inbound_qos2(pid(7)),
        "id is free again after PUBREL"
    );
}

#[test]
fn going_offline_drops_queued_qos0() {
    let mut s = state(10);
    s.enqueue(out("a", QoS::AtMostOnce));
    s.enqueue(out("b", QoS::AtLeastOnce));
    s.drop_queued_qos0();
    assert_eq!(s.queue_len(), 1);
    assert_eq!(s.dropped, 1);
}

#[test]
fn stored_messages_take_packet_ids_from_their_seq_and_wait_on_collision() {
    let mut s = state(10);
    let now = Instant::now();
    let stored = |seq| Outgoing {
        seq: Some(seq),
        ..out("m", QoS::AtLeastOnce)
    };
    s.enqueue(stored(7));
    s.enqueue(stored(7 + 65_535));
    let (_, id) = s.next_to_send(10, || now).unwrap();
    assert_eq!(id, Some(pid(7)));
    assert!(
        s.next_to_send(10, || now).is_none(),
        "same id still in flight: wait"
    );
    assert_eq!(s.on_puback(pid(7)), AckResult::Matched { seq: Some(7) });
    assert_eq!(s.next_to_send(10, || now).unwrap().1, Some(pid(7)));
    assert_eq!(packet_id_for_seq(65_535), pid(65_535));
    assert_eq!(packet_id_for_seq(65_536), pid(1));
}

#[test]
fn restore_puts_stored_inflight_back_in_order() {
    let limits = QueueLimits {
        max_messages: 10,
        max_bytes: 1 << 20,
        drop_oldest: false,
        backpressure: false,
    };
    let entries = vec![
        (out("a", QoS::ExactlyOnce), Some(pid(3)), true),
        (out("b", QoS::AtLeastOnce), Some(pid(4)), false),
        (out("c", QoS::AtLeastOnce), None, false),
    ];
    let s = SessionState::restore(
        ClientId::new("c"),
        ProtocolVersion::V5,
        limits,
        entries,
        vec![pid(9)],
    );
    let stages: Vec<_> = s.inflight().map(|i| (i.packet_id, i.stage)).collect();
    assert_eq!(
        stages,
        vec![(pid(3), Stage::Released), (pid(4), Stage::Published)]
    );
    assert_eq!(s.queue_len(), 1);
    assert_eq!(s.awaiting_rel_len(), 1);
}

#[test]
fn shared_handover_offers_only_unacknowledged_shared_messages() {
    let mut s = state(10);
    let now = Instant::now();
    let filter = crate::topic::TopicFilter::new("$share/g/t").unwrap();
    let shared = |payload, qos| Outgoing {
        share: Some(filter.clone()),
        receipt: None,
        ..out(payload, qos)
    };
    s.enqueue(shared("in-flight-1", QoS::AtLeastOnce));
    s.enqueue(shared("released-2", QoS::ExactlyOnce));
    s.enqueue(shared("published-2", QoS::ExactlyOnce));
    s.enqueue(out("direct", QoS::AtLeastOnce));
    s.enqueue(shared("queued-0", QoS::AtMostOnce));
    s.enqueue(shared("queued-1", QoS::AtLeastOnce));
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (_, id) = s.next_to_send(4, || now).unwrap();
        ids.push(id.unwrap());
    }
    assert!(matches!(s.on_pubrec(ids[1]), AckResult::Matched { .. }));
    let candidates = s.shared_handover();
    let taken: Vec<_> = candidates
        .iter()
        .map(|o| String::from_utf8(o.msg.payload.to_vec()).unwrap())
        .collect();
    assert_eq!(taken, ["in-flight-1", "queued-1"]);
    assert_eq!((s.inflight_len(), s.queue_len()), (4, 2), "copies only");
    let gone: Vec<_> = candidates.into_iter().map(|o| o.msg).collect();
    s.remove_handed_over(&gone);
    // What stays: both QoS 2 messages already sent, the direct message, queued QoS 0.
    assert_eq!(s.inflight_len(), 3);
    assert_eq!(s.queue_len(), 1);
    assert!(matches!(s.on_pubcomp(ids[1]), AckResult::Matched { .. }));
    assert!(matches!(s.on_pubrec(ids[2]), AckResult::Matched { .. }));
    assert!(matches!(s.on_puback(ids[3]), AckResult::Matched { .. }));
    assert!(matches!(s.on_puback(ids[0]), AckResult::Unknown));
}

#[test]
fn backpressure_queues_beyond_the_limit_unless_offline() {
    let mut s = state(2);
    s.set_limits(QueueLimits {
        backpressure: true,
        ..*s.limits()
    });
    s.enqueue(out("a", QoS::AtMostOnce));
    s.enqueue(out("b", QoS::AtLeastOnce));
    assert_eq!(s.enqueue(out("c", QoS::AtMostOnce)), Enqueued::Overshoot);
    assert_eq!(s.enqueue(out("d", QoS::AtLeastOnce)), Enqueued::Overshoot);
    assert!(s.limits().over(s.queue_len(), s.queued_bytes()));
    assert_eq!(
        s.enqueue_offline(out("e", QoS::AtLeastOnce)),
        Enqueued::Dropped
    );
    // Offline: the usual policy (the queued QoS 0 goes first, then the new one).
    assert_eq!((s.queue_len(), s.dropped), (3, 2));
}
