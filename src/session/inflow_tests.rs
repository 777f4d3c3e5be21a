//! Routed publishes and router answers against the acknowledgements they release.

use super::*;

fn id(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn puback(n: u16) -> Packet {
    Packet::PubAck(PubResponse::new(id(n)))
}

fn pubrec(n: u16) -> Packet {
    Packet::PubRec(PubResponse::new(id(n)))
}

fn drain(flow: &mut Inflow) -> Vec<Packet> {
    std::iter::from_fn(|| flow.next_ack()).collect()
}

const OK: Answered = Answered {
    resume: true,
    failed: false,
};

#[test]
fn acks_go_out_in_arrival_order_whatever_order_the_router_answers_in() {
    let mut flow = Inflow::default();
    let a = flow.on_route(QoS::AtLeastOnce, Some(id(1))).ack;
    let b = flow.on_route(QoS::ExactlyOnce, Some(id(2))).ack;
    let c = flow.on_route(QoS::AtLeastOnce, Some(id(3))).ack;
    assert_eq!(flow.unacked_qos1(), 2);
    // Rows: which publish the router answers, then the acks ready after it.
    let rows = [
        (c, vec![]),
        (a, vec![puback(1)]),
        (b, vec![pubrec(2), puback(3)]),
    ];
    for (i, (answer, expected)) in rows.into_iter().enumerate() {
        assert_eq!(flow.on_routed(Some(1), answer, false), OK);
        assert_eq!(drain(&mut flow), expected, "row {i}");
    }
    assert!(!flow.acks_pending());
    assert!(!flow.routing());
    assert_eq!(flow.unacked_qos1(), 0);
}

#[test]
fn qos_0_publishes_take_no_slot_but_count_in_the_window() {
    let mut flow = Inflow::default();
    let sent = flow.on_route(QoS::AtMostOnce, None);
    assert_eq!(sent.ack, None);
    assert!(flow.routing());
    assert!(!flow.acks_pending());
    assert_eq!(flow.on_routed(Some(0), None, true), OK);
    assert!(!flow.routing());
}

#[test]
fn a_5_0_publish_without_subscribers_is_acknowledged_with_0x10() {
    let mut flow = Inflow::default();
    let ack = flow.on_route(QoS::AtLeastOnce, Some(id(7))).ack;
    flow.on_routed(Some(0), ack, true);
    let mut resp = PubResponse::new(id(7));
    resp.reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    assert_eq!(drain(&mut flow), vec![Packet::PubAck(resp)]);
}

#[test]
fn a_decided_ack_waits_behind_routed_ones() {
    let mut flow = Inflow::default();
    let a = flow.on_route(QoS::AtLeastOnce, Some(id(1))).ack;
    // A re-sent QoS 2 PUBLISH is answered at once, but in its turn.
    flow.push_ack(pubrec(2));
    assert_eq!(drain(&mut flow), vec![]);
    flow.on_routed(Some(1), a, false);
    assert_eq!(drain(&mut flow), vec![puback(1), pubrec(2)]);
}

#[test]
fn a_refused_qos_1_publish_counts_until_its_puback_is_sent() {
    let mut flow = Inflow::default();
    flow.push_ack(puback(4));
    assert_eq!(flow.unacked_qos1(), 1);
    assert_eq!(drain(&mut flow), vec![puback(4)]);
    assert_eq!(flow.unacked_qos1(), 0);
}

#[test]
fn the_window_pauses_reading_at_128_and_resumes_at_64() {
    let mut flow = Inflow::default();
    let mut acks = Vec::new();
    for n in 1..=128u16 {
        let sent = flow.on_route(QoS::AtLeastOnce, Some(id(n)));
        assert_eq!(sent.pause, n == 128, "publish {n}");
        acks.push(sent.ack);
    }
    for (n, ack) in (1..=64).zip(acks) {
        let answered = flow.on_routed(Some(1), ack, false);
        // 127 .. 64 still in flight after this answer.
        assert_eq!(answered.resume, 128 - n <= 64, "answer {n}");
    }
    assert_eq!(drain(&mut flow).len(), 64);
}

#[test]
fn a_failed_route_drops_every_pending_ack() {
    let mut flow = Inflow::default();
    let a = flow.on_route(QoS::AtLeastOnce, Some(id(1))).ack;
    let b = flow.on_route(QoS::AtLeastOnce, Some(id(2))).ack;
    let failed = flow.on_routed(None, b, false);
    assert!(failed.failed);
    assert!(!flow.acks_pending());
    // The answer to the other one finds no slot left to fill.
    flow.on_routed(Some(1), a, false);
    assert_eq!(drain(&mut flow), vec![]);
    assert!(!flow.routing());
}

#[test]
fn a_v5_qos1_failure_is_answered_0x80_until_failures_repeat() {
    let mut flow = Inflow::default();
    let refused = |n: u16| {
        let mut r = PubResponse::new(id(n));
        r.reason = ReasonCode::UNSPECIFIED_ERROR;
        Packet::PubAck(r)
    };
    for n in 1..=3 {
        let a = flow.on_route(QoS::AtLeastOnce, Some(id(n))).ack;
        assert!(!flow.on_routed(None, a, true).failed, "failure {n}");
        assert_eq!(drain(&mut flow), vec![refused(n)]);
    }
    // A success resets the count.
    let a = flow.on_route(QoS::AtLeastOnce, Some(id(4))).ack;
    flow.on_routed(Some(1), a, true);
    assert_eq!(drain(&mut flow), vec![puback(4)]);
    for n in 5..=7 {
        let a = flow.on_route(QoS::AtLeastOnce, Some(id(n))).ack;
        assert!(!flow.on_routed(None, a, true).failed);
    }
    let a = flow.on_route(QoS::AtLeastOnce, Some(id(8))).ack;
    assert!(flow.on_routed(None, a, true).failed, "the store stays down");
    // QoS 2 and 3.1.1 close at once.
    let mut flow = Inflow::default();
    let a = flow.on_route(QoS::ExactlyOnce, Some(id(1))).ack;
    assert!(flow.on_routed(None, a, true).failed);
    let mut flow = Inflow::default();
    let a = flow.on_route(QoS::AtLeastOnce, Some(id(1))).ack;
    assert!(flow.on_routed(None, a, false).failed);
}

#[test]
fn cleared_acks_are_never_sent() {
    let mut flow = Inflow::default();
    let a = flow.on_route(QoS::ExactlyOnce, Some(id(1))).ack;
    flow.clear_acks();
    assert!(!flow.acks_pending());
    assert!(flow.routing());
    flow.on_routed(Some(1), a, false);
    assert_eq!(drain(&mut flow), vec![]);
}
