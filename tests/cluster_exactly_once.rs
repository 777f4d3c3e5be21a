//! Cluster mode, black box: QoS 2 exactly once across a node death. A node that dies
//! between a store batch's queue write and the cursor write after it leaves a queued
//! message the cursor does not cover; the session resumed on another node must get it
//! once (its stored copy), not a second time from the message log. Three
//! `nats-server`s and three nodes, as in tests/cluster.rs; skipped, with a message,
//! only where nats-server is not installed and `CI` is unset.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{nats_server_or_skip, text, Event, RawClient, StarlingCluster};
use starling::config::ClusterConfig;
use starling::message::EncodedCache;
use starling::persistence::{MessageRecord, Op, Origin, PropertiesRecord, QueuedRecord, Store};
use starling::protocol::{Packet, Properties, PropertyFields, QoS, ReasonCode};
use starling::topic::TopicName;
use starling::{JsStore, LogProbe, Message};

const BODY: Duration = Duration::from_secs(120);
const QUIET: Duration = Duration::from_millis(2000);
const ID: &str = "once-sub";
/// The dead node's incarnation, as the test writes its last batch.
const DEAD: u64 = 4242;

fn persistent() -> Properties {
    Properties::from(PropertyFields {
        session_expiry_interval: Some(300),
        ..PropertyFields::default()
    })
}

/// A persistent QoS 2 subscriber, offline, whose node then dies. Its last store batch
/// (written here as that node writes it: the message numbered `DEAD`/1 in the log, its
/// queue record, the cursor) lost the cursor write. Resumed on node 2: the message
/// arrives exactly once (twice before the queue records carried their origin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_queued_before_a_lost_cursor_write_arrives_once() {
    let Some(bin) = nats_server_or_skip("qos2_exactly_once") else {
        return;
    };
    let mut cluster = StarlingCluster::start(&bin);
    tokio::time::timeout(BODY, async {
        let mut sub = RawClient::open(cluster.addr(0)).await;
        let ack = sub.connect_v5(ID, true, 60, persistent()).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        sub.subscribe(&[("once/#", QoS::ExactlyOnce)]).await;
        sub.disconnect().await;
        // Its node dies; what it last wrote is below.
        cluster.nodes[0].kill9();
        let urls = cluster.nats.urls();
        let nats = async_nats::connect(urls[0].as_str()).await.expect("NATS");
        let js = async_nats::jetstream::new(nats);
        let log = LogProbe::open(js.clone(), 3).await.expect("the log");
        assert!(log.append(DEAD, 1, &message()).await, "logged");
        let before = cursor_value(&js).await;
        let store_urls = urls.clone();
        tokio::task::spawn_blocking(move || queue_without_cursor(&store_urls))
            .await
            .expect("the dead node's last batch");
        assert_ne!(
            cursor_value(&js).await,
            before,
            "the batch moved the cursor"
        );
        // The node died before that write: the cursor stays as it was.
        let put_back = js.publish(cursor_subject(), before).await.expect("publish");
        put_back.await.expect("cursor put back");

        let mut again = RawClient::open(cluster.addr(2)).await;
        let ack = again.connect_v5(ID, false, 60, persistent()).await;
        assert!(ack.session_present, "the session resumes on node 2");
        let got = receive(&mut again).await;
        assert_eq!(got, ["once"], "stored and replayed: one copy only");
    })
    .await
    .expect("test body exceeded its bound");
}

/// The message as its publisher's node logged it (QoS 2, topic `once/1`).
fn message() -> Message {
    Message {
        topic: TopicName::new("once/1").expect("topic"),
        payload: Bytes::from_static(b"once"),
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: Properties::default(),
        expires_at: None,
        publisher: None,
        encoded: EncodedCache::default(),
    }
}

/// The subscriber's node's batch for the message: `Delivered` then the queue record,
/// through the JetStream store (its cursor write follows them).
fn queue_without_cursor(urls: &[String]) {
    let config = ClusterConfig {
        enabled: true,
        urls: urls.to_vec(),
        node_id: "dead-node".into(),
        replicas: 3,
        ..ClusterConfig::default()
    };
    let mut store = JsStore::open(&config).expect("open the store");
    // As the node had it: the session loaded, with its cursor.
    store.load_session(ID).expect("load").expect("stored");
    let rec = QueuedRecord {
        message: MessageRecord {
            topic: "once/1".into(),
            payload: b"once".to_vec(),
            qos: 2,
            retain: false,
            properties: PropertiesRecord::default(),
            expires_at_ms: None,
            publisher: None,
        },
        qos: 2,
        retain: false,
        sub_ids: vec![],
        packet_id: None,
        released: false,
    };
    let ops = vec![
        Op::Delivered {
            client_id: ID.into(),
            origin: Origin { node: DEAD, seq: 1 },
        },
        Op::PutQueued {
            client_id: ID.into(),
            seq: 1,
            rec,
        },
    ];
    store.apply(ops).expect("apply");
    store.flush().expect("flush");
}

/// The subject of the session's replay cursor.
fn cursor_subject() -> String {
    format!("{}c", JsStore::client_filter(ID).trim_end_matches('>'))
}

/// The cursor's value now (the stream keeps one per subject).
async fn cursor_value(js: &async_nats::jetstream::Context) -> Bytes {
    let stream = js.get_stream("STARLING_STATE").await.expect("stream");
    let last = stream
        .get_last_raw_message_by_subject(&cursor_subject())
        .await
        .expect("the session's cursor");
    last.payload
}

/// The payloads delivered (QoS 2 flows completed) until quiet.
async fn receive(c: &mut RawClient) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + QUIET * 5;
    while tokio::time::Instant::now() < deadline {
        match c.next_event(QUIET).await {
            Event::Packet(Packet::Publish(m)) => {
                c.ack(&m).await;
                got.push(text(&m));
            }
            Event::Packet(_) => {}
            Event::Timeout => break,
            other => panic!("resumed session: {other:?}"),
        }
    }
    got
}
