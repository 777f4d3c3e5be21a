//! Order under load [MQTT-4.6.0-5/6]: several publishers flood QoS 0 messages through a
//! broker whose router has a thread of its own (the layout where a full router mailbox
//! could let a later publish overtake an earlier one); one subscriber checks that each
//! publisher's messages arrive complete and in order.

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{publish_packet, BrokerProcess, Event, RawClient};
use starling::protocol::{encode_packet, Packet, ProtocolVersion, QoS};

/// Bound of the whole exchange.
const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_publishers_order_survives_a_busy_router() {
    flood(4, 20_000).await;
}

/// More sessions than one router turn takes: 48 × 128 publishes may await the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_survives_many_publishers() {
    flood(48, 3_000).await;
}

async fn flood(publishers: u32, messages: u32) {
    let broker = BrokerProcess::start_with_config(Some(
        "[server]\nworkers = 2\nrouter_thread = \"dedicated\"\n\
         [limits]\nmax_queued_messages = 1000000\nmax_queued_bytes = 1073741824\n",
    ));
    let mut sub = RawClient::connected_v311(broker.addr(), "ord-sub", true).await;
    sub.subscribe(&[("ord/+", QoS::AtMostOnce)]).await;
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let addr = broker.addr();
        tasks.push(tokio::spawn(async move {
            let mut c = RawClient::connected_v311(addr, &format!("ord-pub{p}"), true).await;
            let topic = format!("ord/{p}");
            // Many PUBLISHes per write, so the broker reads them in bursts.
            for chunk in (0..messages).collect::<Vec<_>>().chunks(500) {
                let mut buf = BytesMut::new();
                for &seq in chunk {
                    let packet = Packet::Publish(publish_packet(
                        &topic,
                        QoS::AtMostOnce,
                        &seq.to_be_bytes(),
                        None,
                    ));
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
        match sub.next_event(Duration::from_secs(5)).await {
            Event::Packet(Packet::Publish(m)) => {
                let p: usize = m.topic.as_str()[4..].parse().expect("ord/<n>");
                let seq = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
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
    for t in tasks {
        t.await.expect("publisher task");
    }
}
