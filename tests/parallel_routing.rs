//! Parallel routing (publishing sessions match and deliver on their own worker
//! threads, the router for the rest: `src/router/fast.rs`) keeps the router's promises,
//! on a broker with two workers and a router thread of its own:
//! - each publisher's order per topic [MQTT-4.6.0-5/6], while its publishes switch
//!   between the two ways (a retained or QoS 2 one goes through the router) and other
//!   subscribers subscribe and unsubscribe;
//! - one delivery per client at the highest granted QoS of its overlapping
//!   subscriptions [MQTT-3.3.5-1];
//! - a retained message then live ones on the same topic arrive in order, and the
//!   retained one is kept;
//! - a subscription counts from its SUBACK and stops at its UNSUBACK.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{publish_packet, BrokerProcess, Event, RawClient};
use starling::protocol::{encode_packet, Packet, PacketId, ProtocolVersion, QoS};

const CONFIG: &str = "[server]\nworkers = 2\nrouter_thread = \"dedicated\"\n\
     [limits]\nmax_queued_messages = 1000000\nmax_queued_bytes = 1073741824\n";

/// Bound of one whole exchange.
const WITHIN: Duration = Duration::from_secs(60);

/// Publisher `p`'s message `seq`: most at QoS 0, every 10th at QoS 1, every 97th at
/// QoS 2 and every 50th retained (the last two go through the router).
fn flood_packet(p: u32, seq: u32) -> Packet {
    let qos = match seq {
        s if s % 97 == 96 => QoS::ExactlyOnce,
        s if s % 10 == 9 => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    };
    let id = (qos != QoS::AtMostOnce).then(|| PacketId::new((seq % 60_000 + 1) as u16).unwrap());
    let mut publish = publish_packet(&format!("par/{p}"), qos, &seq.to_be_bytes(), id);
    publish.retain = seq % 50 == 25;
    Packet::Publish(publish)
}

fn decode(m: &starling::protocol::Publish) -> (usize, u32) {
    let p = m.topic.as_str()[4..].parse().expect("par/<n>");
    let seq = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
    (p, seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_publishers_order_holds_across_both_ways_while_others_churn() {
    let (publishers, messages) = (4u32, 5_000u32);
    let broker = BrokerProcess::start_with_config(Some(CONFIG));
    let mut sub = RawClient::connected_v311(broker.addr(), "par-sub", true).await;
    sub.subscribe(&[("par/+", QoS::AtMostOnce)]).await;
    // Subscribes and unsubscribes while the traffic flows: what it gets of each
    // publisher is in order, never twice.
    let churn_addr = broker.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_churn = std::sync::Arc::clone(&stop);
    let churn = tokio::spawn(async move {
        let mut c = RawClient::connected_v311(churn_addr, "par-churn", true).await;
        let mut last = vec![None::<u32>; publishers as usize];
        let mut got = 0u64;
        let mut rounds = 0;
        while !stop_churn.load(std::sync::atomic::Ordering::Relaxed) || rounds < 3 {
            rounds += 1;
            c.subscribe(&[("par/#", QoS::AtMostOnce)]).await;
            let until = Instant::now() + Duration::from_millis(30);
            while Instant::now() < until {
                match c.next_event(Duration::from_millis(10)).await {
                    // Retained at SUBSCRIBE: older, flagged; only live ones count.
                    Event::Packet(Packet::Publish(m)) if !m.retain => {
                        let (p, seq) = decode(&m);
                        if let Some(prev) = last[p] {
                            assert!(seq > prev, "churn: publisher {p}: {seq} after {prev}");
                        }
                        last[p] = Some(seq);
                        got += 1;
                    }
                    Event::Packet(_) | Event::Timeout => {}
                    other => panic!("churn subscriber: {other:?}"),
                }
            }
            let id = c.next_packet_id();
            c.send(Packet::Unsubscribe(starling::protocol::Unsubscribe {
                packet_id: id,
                properties: Default::default(),
                filters: vec![common::filter("par/#")],
            }))
            .await;
            // Deliveries before the UNSUBACK still count and must be in order.
            loop {
                match c.next_event(Duration::from_secs(5)).await {
                    Event::Packet(Packet::UnsubAck(a)) if a.packet_id == id => break,
                    // Retained at SUBSCRIBE: older, flagged; only live ones count.
                    Event::Packet(Packet::Publish(m)) if !m.retain => {
                        let (p, seq) = decode(&m);
                        if let Some(prev) = last[p] {
                            assert!(seq > prev, "churn: publisher {p}: {seq} after {prev}");
                        }
                        last[p] = Some(seq);
                        got += 1;
                    }
                    Event::Packet(_) => {}
                    other => panic!("churn subscriber waiting for UNSUBACK: {other:?}"),
                }
            }
        }
        (rounds, got)
    });
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let addr = broker.addr();
        tasks.push(tokio::spawn(async move {
            let mut c = RawClient::connected_v311(addr, &format!("par-pub{p}"), true).await;
            for chunk in (0..messages).collect::<Vec<_>>().chunks(250) {
                let mut buf = BytesMut::new();
                for &seq in chunk {
                    let packet = flood_packet(p, seq);
                    encode_packet(&packet, ProtocolVersion::V311, &mut buf).expect("encode");
                }
                c.send_raw(&buf).await;
            }
            c
        }));
    }
    let mut next = vec![0u32; publishers as usize];
    let mut received = 0;
    let deadline = Instant::now() + WITHIN;
    while received < publishers * messages && Instant::now() < deadline {
        match sub.next_event(Duration::from_secs(10)).await {
            Event::Packet(Packet::Publish(m)) => {
                let (p, seq) = decode(&m);
                assert_eq!(
                    seq, next[p],
                    "publisher {p}: message {seq} arrived where {} was due",
                    next[p]
                );
                next[p] += 1;
                received += 1;
            }
            Event::Packet(_) => {}
            other => panic!("after {received} messages: {other:?}"),
        }
    }
    assert_eq!(received, publishers * messages, "per publisher: {next:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (rounds, got) = churn.await.expect("churn task");
    assert!(
        rounds >= 3 && got > 0,
        "churn: {rounds} rounds, {got} messages"
    );
    for t in tasks {
        t.await.expect("publisher task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_delivery_per_client_at_the_highest_qos_from_several_publishers() {
    let broker = BrokerProcess::start_with_config(Some(CONFIG));
    let mut sub = RawClient::connected_v311(broker.addr(), "ovl-sub", true).await;
    sub.subscribe(&[
        ("ovl/#", QoS::AtMostOnce),
        ("ovl/+/x", QoS::AtLeastOnce),
        ("ovl/a/x", QoS::AtMostOnce),
    ])
    .await;
    let (publishers, messages) = (3u32, 300u32);
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let addr = broker.addr();
        tasks.push(tokio::spawn(async move {
            let mut c = RawClient::connected_v311(addr, &format!("ovl-pub{p}"), true).await;
            for seq in 0..messages {
                let mut buf = BytesMut::new();
                let payload = [p.to_be_bytes(), seq.to_be_bytes()].concat();
                // The topic two subscriptions match at QoS 1 and 0, then one only the
                // QoS 0 subscription matches.
                let id = PacketId::new((seq % 60_000 + 1) as u16);
                let both = publish_packet("ovl/a/x", QoS::AtLeastOnce, &payload, id);
                let low = publish_packet("ovl/b/y", QoS::AtMostOnce, &payload, None);
                for packet in [Packet::Publish(both), Packet::Publish(low)] {
                    encode_packet(&packet, ProtocolVersion::V311, &mut buf).expect("encode");
                }
                c.send_raw(&buf).await;
            }
            // Behind all of them in this publisher's order.
            let end = publish_packet("ovl/end", QoS::AtMostOnce, &p.to_be_bytes(), None);
            c.send(Packet::Publish(end)).await;
            // Every PUBACK comes back: the publishes were routed.
            let mut acks = 0;
            while acks < messages {
                match c.next_event(Duration::from_secs(10)).await {
                    Event::Packet(Packet::PubAck(_)) => acks += 1,
                    other => panic!("publisher {p} after {acks} PUBACKs: {other:?}"),
                }
            }
            c
        }));
    }
    let total = publishers * messages * 2;
    let mut seen = std::collections::HashSet::new();
    let mut ends = 0;
    let deadline = Instant::now() + WITHIN;
    // A duplicate would come before its publisher's end marker.
    while ends < publishers && Instant::now() < deadline {
        let m = match sub.next_event(Duration::from_secs(10)).await {
            Event::Packet(Packet::Publish(m)) => m,
            other => panic!("after {} deliveries: {other:?}", seen.len()),
        };
        if m.topic.as_str() == "ovl/end" {
            ends += 1;
            continue;
        }
        let p = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        let seq = u32::from_be_bytes(m.payload[4..8].try_into().unwrap());
        let want = match m.topic.as_str() {
            "ovl/a/x" => QoS::AtLeastOnce,
            _ => QoS::AtMostOnce,
        };
        assert_eq!(m.qos(), want, "{} from {p}: {seq}", m.topic.as_str());
        let key = (m.topic.as_str().to_owned(), p, seq);
        assert!(
            seen.insert(key),
            "{} from {p}: {seq} twice",
            m.topic.as_str()
        );
        sub.ack(&m).await;
    }
    assert_eq!(seen.len() as u32, total);
    for t in tasks {
        t.await.expect("publisher task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retained_then_live_messages_arrive_in_order_and_the_retained_one_is_kept() {
    let broker = BrokerProcess::start_with_config(Some(CONFIG));
    let mut sub = RawClient::connected_v311(broker.addr(), "ret-sub", true).await;
    sub.subscribe(&[("ret/+", QoS::AtMostOnce)]).await;
    let rounds = 40u32;
    let mut pubs = Vec::new();
    for p in 0..2 {
        pubs.push(RawClient::connected_v311(broker.addr(), &format!("ret-pub{p}"), true).await);
    }
    for round in 0..rounds {
        for (p, c) in pubs.iter_mut().enumerate() {
            // One write: the retained message (through the router) then 20 live ones
            // (on the publisher's thread once the router's deliveries are out).
            let topic = format!("ret/{p}");
            let mut buf = BytesMut::new();
            for i in 0..21u32 {
                let payload = [round.to_be_bytes(), i.to_be_bytes()].concat();
                let mut publish = publish_packet(&topic, QoS::AtMostOnce, &payload, None);
                publish.retain = i == 0;
                encode_packet(&Packet::Publish(publish), ProtocolVersion::V311, &mut buf)
                    .expect("encode");
            }
            c.send_raw(&buf).await;
        }
    }
    let mut next = [(0u32, 0u32); 2];
    for _ in 0..rounds * 21 * 2 {
        let m = match sub.next_event(Duration::from_secs(10)).await {
            Event::Packet(Packet::Publish(m)) => m,
            other => panic!("at {next:?}: {other:?}"),
        };
        let p: usize = m.topic.as_str()[4..].parse().unwrap();
        let round = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        let i = u32::from_be_bytes(m.payload[4..8].try_into().unwrap());
        assert_eq!((round, i), next[p], "publisher {p}");
        // Live delivery clears RETAIN [MQTT-3.3.1-9]... for a subscription that was
        // there already: no retained flag on any of them.
        assert!(!m.retain, "live delivery with RETAIN set");
        next[p] = if i == 20 {
            (round + 1, 0)
        } else {
            (round, i + 1)
        };
    }
    // A new subscriber gets the last retained message of each topic, flagged.
    let mut late = RawClient::connected_v311(broker.addr(), "ret-late", true).await;
    late.subscribe(&[("ret/+", QoS::AtMostOnce)]).await;
    for _ in 0..2 {
        let m = late.expect_publish().await;
        assert!(m.retain, "retained message without RETAIN");
        let round = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
        let i = u32::from_be_bytes(m.payload[4..8].try_into().unwrap());
        assert_eq!((round, i), (rounds - 1, 0), "{}", m.topic.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_counts_from_its_suback_to_its_unsuback() {
    let broker = BrokerProcess::start_with_config(Some(CONFIG));
    let mut sub = RawClient::connected_v311(broker.addr(), "vis-sub", true).await;
    sub.subscribe(&[("vis/marker", QoS::AtMostOnce)]).await;
    let mut publisher = RawClient::connected_v311(broker.addr(), "vis-pub", true).await;
    for round in 0..100u32 {
        let topic = format!("vis/{round}");
        sub.subscribe(&[(&topic, QoS::AtMostOnce)]).await;
        publisher
            .publish(&topic, QoS::AtMostOnce, false, b"in")
            .await;
        let m = sub.expect_publish().await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            (topic.as_str(), &b"in"[..])
        );
        let id = sub.next_packet_id();
        sub.send(Packet::Unsubscribe(starling::protocol::Unsubscribe {
            packet_id: id,
            properties: Default::default(),
            filters: vec![common::filter(&topic)],
        }))
        .await;
        sub.wait_for(
            "UNSUBACK",
            |p| matches!(p, Packet::UnsubAck(a) if a.packet_id == id),
        )
        .await;
        // After the UNSUBACK: not delivered. The marker from the same publisher comes
        // after it, so the marker arriving first proves it did not come.
        publisher
            .publish(&topic, QoS::AtMostOnce, false, b"out")
            .await;
        publisher
            .publish("vis/marker", QoS::AtMostOnce, false, b"m")
            .await;
        let m = sub.expect_publish().await;
        assert_eq!(
            m.topic.as_str(),
            "vis/marker",
            "round {round}: delivered after UNSUBACK"
        );
    }
}

/// The window the flush rule closes: the router answers a `Route` (here a retained
/// QoS 1 publish, acknowledged) before its outbox flush hands the delivery over; a
/// busy router (other clients flooding it with retained publishes) widens the gap.
/// The publisher's next message, routed on its own thread, must still come second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_message_right_after_an_acknowledged_retained_one_comes_second() {
    let broker = BrokerProcess::start_with_config(Some(CONFIG));
    let mut sub = RawClient::connected_v311(broker.addr(), "gap-sub", true).await;
    sub.subscribe(&[("gap/t", QoS::AtMostOnce)]).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut noise = Vec::new();
    for n in 0..4 {
        let (addr, stop) = (broker.addr(), std::sync::Arc::clone(&stop));
        noise.push(tokio::spawn(async move {
            let mut c = RawClient::connected_v311(addr, &format!("gap-noise{n}"), true).await;
            let mut k = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut buf = BytesMut::new();
                for _ in 0..200 {
                    let mut p = publish_packet(
                        &format!("noise/{n}/{}", k % 1000),
                        QoS::AtMostOnce,
                        b"x",
                        None,
                    );
                    p.retain = true;
                    encode_packet(&Packet::Publish(p), ProtocolVersion::V311, &mut buf)
                        .expect("encode");
                    k += 1;
                }
                c.send_raw(&buf).await;
            }
        }));
    }
    let mut publisher = RawClient::connected_v311(broker.addr(), "gap-pub", true).await;
    let rounds = 300u32;
    for round in 0..rounds {
        publisher
            .publish(
                "gap/t",
                QoS::AtLeastOnce,
                true,
                &[&round.to_be_bytes()[..], b"R"].concat(),
            )
            .await;
        let live = publish_packet(
            "gap/t",
            QoS::AtMostOnce,
            &[&round.to_be_bytes()[..], b"L"].concat(),
            None,
        );
        publisher.send(Packet::Publish(live)).await;
    }
    for round in 0..rounds {
        for want in [b'R', b'L'] {
            let m = match sub.next_event(Duration::from_secs(10)).await {
                Event::Packet(Packet::Publish(m)) => m,
                other => panic!("round {round}: {other:?}"),
            };
            let got = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
            assert_eq!(
                (got, m.payload[4]),
                (round, want),
                "round {round}: out of order"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in noise {
        t.await.expect("noise task");
    }
}
