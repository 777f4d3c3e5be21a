//! Cluster mode, black box: three `nats-server`s with JetStream (clustered on loopback)
//! and three Starling nodes; clients on different nodes must see one broker. Each test
//! starts its own cluster (about 5 s) and runs several scenarios on distinct topics;
//! the tests take turns (one cluster at a time on small machines). Skipped, with a
//! message, only where nats-server is not installed and `CI` is unset.

mod common;
#[path = "cluster/log.rs"]
mod log;
#[path = "cluster/replay.rs"]
mod replay;
#[path = "cluster/store.rs"]
mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{
    await_routes, connect_packet, connect_persistent, drain, nats_server_or_skip,
    publish_qos1_within, recv_payload, subscribe_offline, text, NatsCluster, RawClient,
    StarlingCluster,
};
use starling::protocol::{LastWill, Properties, PropertyFields, ProtocolVersion, QoS, ReasonCode};
use tokio::sync::{Mutex, MutexGuard};

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());
/// Bound of one test body (the cluster's start is bounded on its own).
const BODY: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(500);

async fn start(test: &str) -> Option<(MutexGuard<'static, ()>, StarlingCluster)> {
    let bin = nats_server_or_skip(test)?;
    let guard = SERIAL.lock().await;
    Some((guard, StarlingCluster::start(&bin)))
}

async fn client(c: &StarlingCluster, node: usize, id: &str) -> RawClient {
    RawClient::connected_v5(c.addr(node), id, Properties::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_across_nodes() {
    let Some((_serial, cluster)) = start("one_broker_across_nodes").await else {
        return;
    };
    tokio::time::timeout(BODY, async {
        qos_levels_and_overlaps(&cluster).await;
        awkward_topics_and_dollar_rule(&cluster).await;
        retained_from_every_node(&cluster).await;
        shared_exactly_once_per_group(&cluster).await;
        will_crosses_nodes(&cluster).await;
        takeover_across_nodes(&cluster).await;
    })
    .await
    .expect("cluster test body exceeded its bound");
}

/// QoS 0/1/2 from node 0 to subscribers on nodes 1 and 2, at the granted QoS; a client
/// whose two filters both match gets one copy at the higher QoS.
async fn qos_levels_and_overlaps(cluster: &StarlingCluster) {
    let mut p = client(cluster, 0, "q-pub").await;
    let mut subs = vec![
        client(cluster, 1, "q-sub1").await,
        client(cluster, 2, "q-sub2").await,
    ];
    subs[0]
        .subscribe(&[("q/#", QoS::ExactlyOnce), ("q/+", QoS::AtMostOnce)])
        .await;
    subs[1].subscribe(&[("q/+", QoS::AtLeastOnce)]).await;
    await_routes(&mut p, "q/probe", &mut subs, &[0, 1]).await;
    for (qos, payload) in [
        (QoS::AtMostOnce, "m0"),
        (QoS::AtLeastOnce, "m1"),
        (QoS::ExactlyOnce, "m2"),
    ] {
        p.publish("q/a", qos, false, payload.as_bytes()).await;
    }
    for (i, cap) in [(0, QoS::ExactlyOnce), (1, QoS::AtLeastOnce)] {
        let got = drain(&mut subs[i], QUIET, WAIT).await;
        let seen: Vec<(String, QoS)> = got.iter().map(|p| (text(p), p.qos())).collect();
        let want: Vec<(String, QoS)> = [
            ("m0", QoS::AtMostOnce),
            ("m1", QoS::AtLeastOnce),
            ("m2", QoS::ExactlyOnce),
        ]
        .iter()
        .map(|(m, q)| (m.to_string(), (*q).min(cap)))
        .collect();
        assert_eq!(seen, want, "subscriber on node {}", i + 1);
    }
}

/// Levels with NATS's special characters, empty levels and spaces route exactly; `#`
/// does not match a `$` topic on another node [MQTT-4.7.2-1] while `$app/#` does.
async fn awkward_topics_and_dollar_rule(cluster: &StarlingCluster) {
    let mut p = client(cluster, 2, "w-pub").await;
    let mut subs = [
        client(cluster, 0, "w-exact").await,
        client(cluster, 0, "w-all").await,
        client(cluster, 1, "w-dollar").await,
    ];
    subs[0]
        .subscribe(&[("w/a.b/*/>/ s //x", QoS::AtLeastOnce)])
        .await;
    subs[1].subscribe(&[("#", QoS::AtLeastOnce)]).await;
    subs[2].subscribe(&[("$app/+/#", QoS::AtLeastOnce)]).await;
    await_routes(&mut p, "w/a.b/*/>/ s //x", &mut subs[..2], &[0, 1]).await;
    await_routes(&mut p, "$app/probe", &mut subs[2..], &[0]).await;
    p.publish("w/a.b/*/>/ s //x", QoS::AtLeastOnce, false, b"exact")
        .await;
    p.publish("w/a.b/*/>/ s /", QoS::AtLeastOnce, false, b"shorter")
        .await;
    p.publish("$app/x", QoS::AtLeastOnce, false, b"dollar")
        .await;
    let exact: Vec<String> = drain(&mut subs[0], QUIET, WAIT)
        .await
        .iter()
        .map(text)
        .collect();
    assert_eq!(exact, ["exact"]);
    let dollar: Vec<String> = drain(&mut subs[2], QUIET, WAIT)
        .await
        .iter()
        .map(text)
        .collect();
    assert_eq!(
        dollar,
        ["dollar"],
        "$app/+/# matches $app/x (the parent level)"
    );
    let all: Vec<String> = drain(&mut subs[1], QUIET, WAIT)
        .await
        .iter()
        .map(text)
        .collect();
    assert_eq!(all, ["exact", "shorter"], "# must not match $app/x");
    // A topic too long for a NATS subject stays on its node (and is acknowledged); the
    // node's NATS connection survives it.
    let long = format!("w/{}", "x".repeat(4000));
    p.publish(&long, QoS::AtLeastOnce, false, b"long").await;
    p.publish("w/after", QoS::AtLeastOnce, false, b"after-long")
        .await;
    let all: Vec<String> = drain(&mut subs[1], QUIET, WAIT)
        .await
        .iter()
        .map(text)
        .collect();
    assert_eq!(all, ["after-long"]);
}

/// A retained message published on node 0 reaches new subscribers on every node; an
/// empty retained message deletes it everywhere.
async fn retained_from_every_node(cluster: &StarlingCluster) {
    let mut p = client(cluster, 0, "r-pub").await;
    p.publish("r/1", QoS::AtLeastOnce, true, b"kept").await;
    for node in 0..3 {
        assert_eq!(
            retained_on(cluster, node, "r/#").await,
            ["kept"],
            "node {node}"
        );
    }
    p.publish("r/1", QoS::AtLeastOnce, true, b"").await;
    for node in 0..3 {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !retained_once(cluster, node, "r/#", 99).await.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {node} still has the deleted retained message"
            );
        }
    }
}

/// The retained payloads a fresh subscription to `filter` on `node` gets. The PUBACK
/// came after JetStream stored the message; other nodes mirror the stream within
/// moments (seconds after losing a NATS server), so an empty answer is retried
/// (bounded).
async fn retained_on(cluster: &StarlingCluster, node: usize, filter: &str) -> Vec<String> {
    retained_within(cluster, node, filter, WAIT).await
}

/// [`retained_on`] with its own bound.
async fn retained_within(
    cluster: &StarlingCluster,
    node: usize,
    filter: &str,
    within: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut attempt = 0;
    while tokio::time::Instant::now() < deadline {
        attempt += 1;
        let got = retained_once(cluster, node, filter, attempt).await;
        if !got.is_empty() {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Vec::new()
}

/// One fresh subscription's retained payloads.
async fn retained_once(
    cluster: &StarlingCluster,
    node: usize,
    filter: &str,
    attempt: usize,
) -> Vec<String> {
    let mut c = client(cluster, node, &format!("r-sub{node}-{attempt}")).await;
    c.subscribe(&[(filter, QoS::AtLeastOnce)]).await;
    let got: Vec<String> = drain(&mut c, QUIET, WAIT).await.iter().map(text).collect();
    c.disconnect().await;
    got
}

/// `$share/g` with members on two nodes and `$share/h` on a third: each group gets every
/// message exactly once, cluster-wide.
async fn shared_exactly_once_per_group(cluster: &StarlingCluster) {
    let mut p = client(cluster, 0, "s-pub").await;
    let members = [(1, "g"), (1, "g"), (2, "g"), (0, "h")];
    let mut subs = Vec::new();
    for (i, (node, group)) in members.iter().enumerate() {
        let mut c = client(cluster, *node, &format!("s-{group}{i}")).await;
        c.subscribe(&[(&format!("$share/{group}/s/#"), QoS::AtLeastOnce)])
            .await;
        subs.push(c);
    }
    await_routes(&mut p, "s/probe", &mut subs, &[0, 0, 0, 1]).await;
    const N: usize = 30;
    for i in 0..N {
        p.publish("s/x", QoS::AtLeastOnce, false, format!("m{i}").as_bytes())
            .await;
    }
    let mut per_group: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut per_member = Vec::new();
    for (c, (_, group)) in subs.iter_mut().zip(members) {
        let got = drain(c, Duration::from_secs(1), WAIT).await;
        per_member.push(got.len());
        for m in got {
            *per_group
                .entry(group)
                .or_default()
                .entry(text(&m))
                .or_default() += 1;
        }
    }
    for group in ["g", "h"] {
        let counts = per_group.get(group).cloned().unwrap_or_default();
        assert_eq!(counts.len(), N, "group {group} got {counts:?}");
        assert!(
            counts.values().all(|&n| n == 1),
            "group {group} got duplicates: {counts:?}"
        );
    }
    assert_eq!(per_member[3], N, "h has one member");
}

/// A client that vanishes from node 1 has its will delivered to a subscriber on node 2.
async fn will_crosses_nodes(cluster: &StarlingCluster) {
    let mut watcher = vec![client(cluster, 2, "will-watch").await];
    watcher[0].subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
    let mut probe = client(cluster, 1, "will-probe").await;
    await_routes(&mut probe, "will/probe", &mut watcher, &[0]).await;
    let mut dying = RawClient::open(cluster.addr(1)).await;
    let mut connect = connect_packet(ProtocolVersion::V5, "will-dying", true, 60);
    connect.will = Some(LastWill {
        topic: common::topic("will/dying"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    });
    let ack = dying.connect(connect).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    drop(dying);
    let will = recv_payload(&mut watcher[0], "gone", WAIT).await;
    assert_eq!(will.qos(), QoS::AtLeastOnce);
}

/// The same client id connecting on another node takes the session over: the old
/// connection gets DISCONNECT 0x8E and closes; the new one works.
async fn takeover_across_nodes(cluster: &StarlingCluster) {
    let mut old = client(cluster, 0, "t-same").await;
    old.subscribe(&[("t/old", QoS::AtLeastOnce)]).await;
    // The first claim is in the key-value bucket before the second connect.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut new = client(cluster, 1, "t-same").await;
    let disconnect = old
        .expect_closed_within(WAIT)
        .await
        .expect("DISCONNECT before the close");
    assert_eq!(disconnect.reason, ReasonCode::SESSION_TAKEN_OVER);
    new.subscribe(&[("t/new", QoS::AtLeastOnce)]).await;
    new.publish("t/new", QoS::AtLeastOnce, false, b"mine").await;
    recv_payload(&mut new, "mine", WAIT).await;
    // And back: the node that lost it can win it again.
    let mut again = client(cluster, 0, "t-same").await;
    let disconnect = new.expect_closed_within(WAIT).await.expect("DISCONNECT");
    assert_eq!(disconnect.reason, ReasonCode::SESSION_TAKEN_OVER);
    again.publish("t/x", QoS::AtLeastOnce, false, b"ok").await;
}

/// kill -9 of a node: clients of the others keep talking, and the node restarted
/// serves its persistent session again (from JetStream). Kill one NATS server: nodes
/// fail over to the others and keep routing; a retained publish is acknowledged once
/// JetStream has a leader again (bounded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_losing_a_node_and_a_nats_server() {
    let Some((_serial, mut cluster)) = start("survives_losing_a_node_and_a_nats_server").await
    else {
        return;
    };
    tokio::time::timeout(BODY, async {
        // A persistent session (3.1.1, clean session 0) on node 1, offline.
        subscribe_offline(&cluster.nodes[1], "k-persist", "k/#", QoS::AtLeastOnce).await;
        subscribe_offline(&cluster.nodes[1], "k-moved", "k/#", QoS::AtLeastOnce).await;
        let mut sub = vec![client(&cluster, 2, "k-sub").await];
        sub[0].subscribe(&[("k/#", QoS::AtLeastOnce)]).await;
        let mut gone = client(&cluster, 1, "k-gone").await;
        gone.subscribe(&[("k/#", QoS::AtLeastOnce)]).await;
        let mut p = client(&cluster, 0, "k-pub").await;
        await_routes(&mut p, "k/probe", &mut sub, &[0]).await;

        cluster.nodes[1].kill9();
        p.publish("k/a", QoS::AtLeastOnce, false, b"after-node-kill")
            .await;
        recv_payload(&mut sub[0], "after-node-kill", WAIT).await;

        // While node 1 is down, "k-moved" connects to node 2: its session comes from
        // JetStream (node 1, its owner, does not answer).
        let (moved, present) = connect_persistent(&cluster.nodes[2], "k-moved").await;
        assert!(present, "node 2 resumes k-moved's session from JetStream");
        moved.disconnect().await;
        cluster.nodes[1].restart();
        let (mut persist, present) = connect_persistent(&cluster.nodes[1], "k-persist").await;
        assert!(present, "the session survives kill -9 of its node");
        await_routes(&mut p, "k/probe", std::slice::from_mut(&mut persist), &[0]).await;
        p.publish("k/c", QoS::AtLeastOnce, false, b"after-restart")
            .await;
        recv_payload(&mut persist, "after-restart", WAIT).await;
        recv_payload(&mut sub[0], "after-restart", WAIT).await;
        // Back to node 1: node 2 releases it, node 1 loads it.
        let (moved, present) = connect_persistent(&cluster.nodes[1], "k-moved").await;
        assert!(present, "k-moved's session follows it back to node 1");
        moved.disconnect().await;

        cluster.nats.servers[0].kill9();
        // Node 0 preferred server 0: it reconnects elsewhere. Publish until it is back.
        // A QoS 1 publish is acknowledged once the message log stored it: after a leader
        // election if server 0 led the log (seconds).
        let mut n = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            n += 1;
            let payload = format!("after-nats-kill-{n}");
            let took = publish_qos1_within(
                &mut p,
                "k/b",
                false,
                payload.as_bytes(),
                Duration::from_secs(30),
            )
            .await;
            if n == 1 {
                eprintln!("QoS 1 PUBACK after losing a NATS server took {took:?}");
            }
            let got = drain(&mut sub[0], Duration::from_millis(500), WAIT).await;
            if got.iter().any(|m| text(m).starts_with("after-nats-kill")) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no cross-node delivery within 30 s of losing a NATS server"
            );
        }
        // Acknowledged once JetStream has a stream leader again (a few seconds).
        let took = publish_qos1_within(
            &mut p,
            "k/r",
            true,
            b"still-retained",
            Duration::from_secs(30),
        )
        .await;
        eprintln!("retained PUBACK after losing a NATS server took {took:?}");
        // Node 2's mirror may have to recreate its consumer first (seconds).
        let seen = retained_within(&cluster, 2, "k/r", Duration::from_secs(30)).await;
        assert_eq!(seen, ["still-retained"]);
    })
    .await
    .expect("cluster test body exceeded its bound");
}

/// Session state lives in JetStream: a persistent session moves between nodes with its
/// subscriptions and queued messages, offline or live (the old connection gets 0x8E),
/// and survives kill -9 of the node that held it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_between_nodes() {
    let Some((_serial, mut cluster)) = start("sessions_move_between_nodes").await else {
        return;
    };
    tokio::time::timeout(BODY, async {
        let urls = cluster.nats.urls();
        tokio::task::spawn_blocking(move || store::js_store_round_trip(&urls))
            .await
            .expect("store round trip");
        let mut p = client(&cluster, 1, "m-pub").await;
        offline_session_moves(&cluster, &mut p).await;
        live_session_moves(&cluster, &mut p).await;

        // Kill -9 of the node holding an offline session with stored messages.
        subscribe_offline(&cluster.nodes[0], "m-z", "z/#", QoS::AtLeastOnce).await;
        let mut witness = vec![client(&cluster, 0, "m-zw").await];
        witness[0].subscribe(&[("z/#", QoS::AtMostOnce)]).await;
        await_routes(&mut p, "z/probe", &mut witness, &[0]).await;
        publish_numbered(&mut p, "z", 5).await;
        // Node 0 stores what reaches it asynchronously (the publisher's PUBACK only
        // waited for NATS): wait until JetStream has all five, then kill it.
        let urls = cluster.nats.urls();
        store::wait_stored(&urls, "m-z", 5).await;
        cluster.nodes[0].kill9();
        let (mut z, present) = connect_persistent(&cluster.nodes[2], "m-z").await;
        assert!(present, "the session survives kill -9 of its node");
        assert_numbered(&mut z, "z", 5).await;
    })
    .await
    .expect("cluster test body exceeded its bound");
}

/// The JetStream store's loads see the purges and writes acknowledged just before them,
/// over many cycles (`cluster::js_store`; R1 consumers sat on random, possibly lagging
/// replicas). NATS alone: no Starling nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_loads_follow_purges() {
    let Some(bin) = nats_server_or_skip("store_loads_follow_purges") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let cycles = tokio::task::spawn_blocking(move || store::purge_then_write(&urls, 150));
    tokio::time::timeout(BODY, cycles)
        .await
        .expect("store cycles exceeded their bound")
        .expect("store cycles");
}

/// A resumed session's replay of the message log returns the messages the log
/// acknowledged just before it, over many cycles (`cluster::replay`; an R1 consumer sat
/// on a random, possibly lagging replica and stopped at what it held). NATS alone: no
/// Starling nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_replays_follow_writes() {
    let Some(bin) = nats_server_or_skip("log_replays_follow_writes") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let nats = NatsCluster::start(&bin);
    tokio::time::timeout(BODY, log::replays_follow_writes(&nats.urls(), 250))
        .await
        .expect("replay cycles exceeded their bound");
    tokio::time::timeout(BODY, log::replays_start_above_the_position(&nats.urls()))
        .await
        .expect("positioned replays exceeded their bound");
}

/// kill -9 of a node in the middle of a QoS 1 stream to a persistent session on it:
/// nothing acknowledged to the publisher is lost (`cluster::replay`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_mid_stream() {
    let Some((_serial, mut cluster)) = start("node_killed_mid_stream").await else {
        return;
    };
    tokio::time::timeout(
        BODY,
        replay::every_acknowledged_message_arrives(&mut cluster),
    )
    .await
    .expect("cluster test body exceeded its bound");
}

/// Offline on node 0; five QoS 1 messages published on node 1; resumed on node 2 with
/// session present, all five, and a subscription that keeps working there.
async fn offline_session_moves(cluster: &StarlingCluster, p: &mut RawClient) {
    subscribe_offline(&cluster.nodes[0], "m-x", "x/#", QoS::AtLeastOnce).await;
    let mut witness = vec![client(cluster, 0, "m-xw").await];
    witness[0].subscribe(&[("x/#", QoS::AtMostOnce)]).await;
    await_routes(p, "x/probe", &mut witness, &[0]).await;
    publish_numbered(p, "x", 5).await;
    let (mut x, present) = connect_persistent(&cluster.nodes[2], "m-x").await;
    assert!(present, "the session moved to node 2");
    assert_numbered(&mut x, "x", 5).await;
    await_routes(p, "x/probe", std::slice::from_mut(&mut x), &[0]).await;
    p.publish("x/new", QoS::AtLeastOnce, false, b"x-new").await;
    recv_payload(&mut x, "x-new", WAIT).await;
    x.disconnect().await;
}

/// Live on node 0 with a receive maximum of 2 and nothing acknowledged, six messages
/// sent to it (two in flight, four queued); the same id on node 1 takes it over: 0x8E
/// for the old connection, session present and all six for the new one.
async fn live_session_moves(cluster: &StarlingCluster, p: &mut RawClient) {
    let props = || {
        Properties::from(PropertyFields {
            session_expiry_interval: Some(300),
            receive_maximum: Some(2),
            ..PropertyFields::default()
        })
    };
    let mut old = RawClient::open(cluster.addr(0)).await;
    let ack = old.connect_v5("m-live", true, 60, props()).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    old.subscribe(&[("l/#", QoS::AtLeastOnce)]).await;
    await_routes(p, "l/probe", std::slice::from_mut(&mut old), &[0]).await;
    publish_numbered(p, "l", 6).await;
    // Two arrive and stay unacknowledged (the window is full).
    for _ in 0..2 {
        let got = old.expect_publish().await;
        assert!(text(&got).starts_with("l-"), "{got:?}");
    }
    let mut new = RawClient::open(cluster.addr(1)).await;
    let ack = new.connect_v5("m-live", false, 60, props()).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(ack.session_present, "the live session moved to node 1");
    let disconnect = old
        .expect_closed_within(WAIT)
        .await
        .expect("DISCONNECT before the close");
    assert_eq!(disconnect.reason, ReasonCode::SESSION_TAKEN_OVER);
    assert_numbered(&mut new, "l", 6).await;
    new.disconnect().await;
}

/// Publishes `{prefix}/i` with payload `{prefix}-i`, i in 1..=n, at QoS 1 (acknowledged).
async fn publish_numbered(p: &mut RawClient, prefix: &str, n: u32) {
    for i in 1..=n {
        let (topic, payload) = (format!("{prefix}/{i}"), format!("{prefix}-{i}"));
        p.publish(&topic, QoS::AtLeastOnce, false, payload.as_bytes())
            .await;
    }
}

/// Every one of `{prefix}-1..=n` arrives (duplicates allowed at QoS 1).
async fn assert_numbered(c: &mut RawClient, prefix: &str, n: u32) {
    let want: std::collections::BTreeSet<String> =
        (1..=n).map(|i| format!("{prefix}-{i}")).collect();
    let got: std::collections::BTreeSet<String> =
        drain(c, QUIET, WAIT).await.iter().map(text).collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(missing.is_empty(), "missing {missing:?}; got {got:?}");
}
