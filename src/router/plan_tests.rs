//! The publish plan without an actor: which deliveries go, wait or vanish, and what the
//! store writes for them.

use std::sync::Arc;
use std::time::Instant;

use super::plan::{Plan, Publish, Target};
use super::state::{RouterState, Shares};
use super::test_support::{entry, filter, id, message};
use crate::delivery::Outgoing;
use crate::message::{ClientId, Message};
use crate::persistence::Op;
use crate::protocol::{PacketId, QoS};

fn subscribe(r: &mut RouterState, client: &str, f: &str, qos: QoS) {
    r.subscribe(&id(client), &filter(f), entry(qos), Instant::now());
}

fn publish(msg: &Arc<Message>, store: bool) -> Publish<'_> {
    Publish {
        msg,
        inbound_qos2: None,
        shares: Shares::All,
        store,
    }
}

/// Every client's session is registered; the address is the client id's text.
fn everyone(c: &ClientId) -> Target<String> {
    Target::Send(c.as_str().to_owned())
}

/// `publish`, returning (address, QoS, seq) of each delivery it sent.
fn publish_to(
    r: &mut RouterState,
    p: Publish<'_>,
    target: impl FnMut(&ClientId) -> Target<String>,
    plan: &mut Plan,
) -> Vec<(String, QoS, Option<u64>)> {
    let mut sent = Vec::new();
    let send = |_, a, out: Outgoing| sent.push((a, out.qos, out.seq));
    r.publish(p, &mut (target, send), plan);
    sent
}

#[test]
fn persistent_sessions_number_qos1_and_qos2_deliveries_and_the_store_queues_them() {
    let mut r = RouterState::new();
    subscribe(&mut r, "p", "t/#", QoS::ExactlyOnce);
    subscribe(&mut r, "c", "t/#", QoS::AtLeastOnce);
    r.set_persistent(&id("p"), true, 7);
    let mut plan = Plan::default();
    let m = message("t/1", QoS::AtLeastOnce, false, "x");
    let mut got = publish_to(&mut r, publish(&m, true), everyone, &mut plan);
    got.sort();
    assert_eq!(
        got,
        [
            ("c".to_owned(), QoS::AtLeastOnce, None),
            ("p".to_owned(), QoS::AtLeastOnce, Some(7))
        ]
    );
    assert_eq!(plan.matched, 2);
    let targets: Vec<_> = plan
        .targets
        .iter()
        .map(|t| (t.client.clone(), t.seq))
        .collect();
    assert_eq!(targets, [(id("p"), 7)]);
    assert!(plan.ops.is_empty());
    // The next message takes the next number; QoS 0 none; nothing without a store.
    publish_to(&mut r, publish(&m, true), everyone, &mut plan);
    assert_eq!(plan.targets[0].seq, 8);
    let q0 = message("t/1", QoS::AtMostOnce, false, "x");
    publish_to(&mut r, publish(&q0, true), everyone, &mut plan);
    assert!(!plan.stores());
    let sent = publish_to(&mut r, publish(&m, false), everyone, &mut plan);
    assert!(!plan.stores(), "durability memory stores nothing");
    assert!(sent.iter().all(|(_, _, seq)| seq.is_none()));
}

#[test]
fn held_sessions_wait_and_gone_ones_are_not_counted() {
    let mut r = RouterState::new();
    for c in ["a", "b", "gone"] {
        subscribe(&mut r, c, "t", QoS::AtLeastOnce);
        r.set_persistent(&id(c), true, 1);
    }
    let target = |c: &ClientId| match c.as_str() {
        "a" => Target::Send("a".to_owned()),
        "b" => Target::Hold,
        _ => Target::Gone,
    };
    let mut plan = Plan::default();
    let m = message("t", QoS::AtLeastOnce, false, "x");
    let sent = publish_to(&mut r, publish(&m, true), target, &mut plan);
    assert_eq!(sent, [("a".to_owned(), QoS::AtLeastOnce, Some(1))]);
    let held: Vec<_> = plan.hold.iter().map(|d| d.client.clone()).collect();
    assert_eq!(held, [id("b")]);
    assert_eq!(plan.matched, 2, "held counts, gone does not");
    assert_eq!(
        plan.targets.len(),
        1,
        "a held delivery is numbered when it is sent"
    );
}

#[test]
fn retained_messages_and_inbound_qos2_ids_join_the_store_batch() {
    let mut r = RouterState::new();
    r.set_persistent(&id("pub"), true, 1);
    let mut plan = Plan::default();
    let m = message("r", QoS::ExactlyOnce, true, "on");
    let p = Publish {
        inbound_qos2: PacketId::new(5),
        ..publish(&m, true)
    };
    let sent = publish_to(&mut r, p, everyone, &mut plan);
    assert!(sent.is_empty() && plan.matched == 0);
    assert!(matches!(plan.ops[0], Op::PutRetained(ref rec) if rec.topic == "r"));
    assert!(matches!(
        plan.ops[1],
        Op::PutInboundQos2 { ref client_id, packet_id: 5 } if client_id.as_str() == "pub"
    ));
    assert_eq!(r.retained_count(), 1);
    // An empty retained payload deletes, in the store too.
    let clear = message("r", QoS::AtMostOnce, true, "");
    publish_to(&mut r, publish(&clear, true), everyone, &mut plan);
    assert!(matches!(plan.ops[..], [Op::DeleteRetained { ref topic }] if topic == "r"));
    assert_eq!(r.retained_count(), 0);
    // Without a store the retained copy is kept in memory only.
    publish_to(&mut r, publish(&m, false), everyone, &mut plan);
    assert!(!plan.stores());
    assert_eq!(r.retained_count(), 1);
}

#[test]
fn deliveries_found_elsewhere_carry_their_extra_ops() {
    let mut r = RouterState::new();
    subscribe(&mut r, "a", "t", QoS::AtLeastOnce);
    r.set_persistent(&id("a"), true, 3);
    let m = message("t", QoS::AtLeastOnce, false, "x");
    let found = r.route(&m);
    let forget = vec![Op::DeleteQueued {
        client_id: id("old"),
        seq: 9,
    }];
    let mut plan = Plan::default();
    plan.ops = forget;
    let mut sent = Vec::new();
    let send = |_, a, out: Outgoing| sent.push((a, out.qos, out.seq));
    r.plan_deliveries(&m, found, true, &mut (everyone, send), &mut plan);
    assert_eq!(sent, [("a".to_owned(), QoS::AtLeastOnce, Some(3))]);
    assert!(matches!(plan.ops[..], [Op::DeleteQueued { seq: 9, .. }]));
}
