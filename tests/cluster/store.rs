//! The session state stream seen directly: how many messages it holds for a client, a
//! round trip of the JetStream `Store`, and its loads right after purges (used by
//! tests/cluster.rs).

use std::time::Duration;

use starling::config::ClusterConfig;
use starling::persistence::{
    MessageRecord, Op, PropertiesRecord, QueuedRecord, SessionRecord, Store, SubscriptionRecord,
};
use starling::JsStore;

use super::WAIT;

/// Waits (10 s at most) until the session state stream holds `n` queued messages for
/// `client_id`.
pub async fn wait_stored(urls: &[String], client_id: &str, n: u64) {
    use async_nats::jetstream::consumer;
    let nats = async_nats::connect(urls[1].as_str()).await.expect("NATS");
    let js = async_nats::jetstream::new(nats);
    let stream = js.get_stream("STARLING_STATE").await.expect("stream");
    let filter = starling::JsStore::client_filter(client_id);
    let queued = format!("{}q.>", filter.trim_end_matches('>'));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                filter_subject: queued.clone(),
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(5),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let stored = c.cached_info().num_pending;
        if stored >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {stored} of {n} messages stored for {client_id}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The JetStream `Store` itself: what is applied and flushed comes back from
/// `load_session` (deletes included, sorted); a deleted or expired session is absent.
pub fn js_store_round_trip(urls: &[String]) {
    let mut store = open_store(urls);
    let id = "st/ore é";
    let record = |disconnected_at_ms| session(id, disconnected_at_ms);
    let sub = |filter: &str| SubscriptionRecord {
        filter: filter.into(),
        qos: 1,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
        subscription_id: None,
    };
    let queued = |n: u8| QueuedRecord {
        message: MessageRecord {
            topic: "a/b".into(),
            payload: vec![n],
            qos: 1,
            retain: false,
            properties: PropertiesRecord::default(),
            expires_at_ms: None,
            publisher: None,
        },
        qos: 1,
        retain: false,
        sub_ids: vec![],
        packet_id: None,
        released: false,
    };
    let c = || id.to_owned();
    let mut ops = vec![Op::PutSession(record(None))];
    for f in ["b/#", "a/+", "gone"] {
        ops.push(Op::PutSubscription {
            client_id: c().into(),
            sub: sub(f),
        });
    }
    for seq in [12, 3, 7] {
        ops.push(Op::PutQueued {
            client_id: c().into(),
            seq,
            rec: queued(seq as u8),
        });
    }
    ops.push(Op::DeleteQueued {
        client_id: c().into(),
        seq: 7,
    });
    ops.push(Op::DeleteSubscription {
        client_id: c().into(),
        filter: "gone".into(),
    });
    ops.push(Op::PutInboundQos2 {
        client_id: c().into(),
        packet_id: 9,
    });
    ops.push(Op::PutInboundQos2 {
        client_id: c().into(),
        packet_id: 2,
    });
    store.apply(ops).expect("apply");
    store.flush().expect("flush");
    let s = store
        .load_session(id)
        .expect("load")
        .expect("stored session");
    assert_eq!(s.record, record(None));
    let filters: Vec<_> = s.subscriptions.iter().map(|s| s.filter.as_str()).collect();
    assert_eq!(filters, ["a/+", "b/#"]);
    let seqs: Vec<_> = s.queue.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [3, 12]);
    assert_eq!(s.queue[1].1, queued(12));
    assert_eq!(s.inbound_qos2, [2, 9]);
    assert!(store.load_session("someone else").expect("load").is_none());

    // Offline for longer than its expiry: absent, and purged.
    store
        .apply(vec![Op::PutSession(record(Some(1)))])
        .expect("apply");
    assert!(store.load_session(id).expect("load").is_none(), "expired");
    store
        .apply(vec![Op::PutSession(record(None))])
        .expect("apply");
    let s = store.load_session(id).expect("load").expect("new record");
    assert!(
        s.queue.is_empty() && s.subscriptions.is_empty(),
        "purged: {s:?}"
    );
    store
        .apply(vec![Op::DeleteSession {
            client_id: c().into(),
        }])
        .expect("apply");
    assert!(store.load_session(id).expect("load").is_none(), "deleted");
}

/// `cycles` times: a session written, deleted, written expired (the load purges it) and
/// written again, each load right after the write before it. A load sees everything the
/// store had acknowledged even when a replica lags: loads that read through a consumer
/// on a lagging replica now and then still saw the deleted session, or missed the
/// record written after the purge.
pub fn purge_then_write(urls: &[String], cycles: u32) {
    let mut store = open_store(urls);
    for cycle in 0..cycles {
        let id = format!("cycle {}", cycle % 4);
        let put = |disconnected_at_ms| vec![Op::PutSession(session(&id, disconnected_at_ms))];
        let load = |store: &JsStore| store.load_session(&id).expect("load");
        store.apply(put(None)).expect("apply");
        assert!(load(&store).is_some(), "cycle {cycle}: written");
        store
            .apply(vec![Op::DeleteSession {
                client_id: id.clone().into(),
            }])
            .expect("apply");
        assert!(load(&store).is_none(), "cycle {cycle}: deleted");
        store.apply(put(Some(1))).expect("apply");
        assert!(load(&store).is_none(), "cycle {cycle}: expired");
        store.apply(put(None)).expect("apply");
        assert!(
            load(&store).is_some(),
            "cycle {cycle}: written after the purge"
        );
    }
}

fn open_store(urls: &[String]) -> JsStore {
    let config = ClusterConfig {
        enabled: true,
        urls: urls.to_vec(),
        node_id: "store-test".into(),
        replicas: 3,
        ..ClusterConfig::default()
    };
    JsStore::open(&config).expect("open the store")
}

/// A v5 session record with a one-minute expiry, offline since `disconnected_at_ms`.
fn session(id: &str, disconnected_at_ms: Option<u64>) -> SessionRecord {
    SessionRecord {
        client_id: id.into(),
        protocol: 5,
        expiry_secs: 60,
        disconnected_at_ms,
        will: None,
    }
}
