//! Cluster mode, black box: a node cut off from NATS. Node 2 knows only NATS server 2
//! (the servers advertise no other urls); killing that server isolates it. After
//! `isolation_grace_ms` its clients are closed (5.0: DISCONNECT 0x9C Use another server)
//! and CONNECTs are refused (CONNACK 0x88 / 3.1.1 code 3) while nodes 0 and 1 keep routing; once the server is
//! back, node 2 accepts clients again and its messages reach the other nodes.

mod common;

use std::time::{Duration, Instant};

use common::{
    await_routes, connect_packet, connect_persistent, nats_server_or_skip, publish_qos1_within,
    recv_payload, RawClient, StarlingCluster,
};
use starling::protocol::{Packet, Properties, ProtocolVersion, QoS, ReasonCode};

/// Bound of the test body (the cluster's start is bounded on its own).
const BODY: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(10);
/// The grace configured for the nodes here (the default is 2 s).
const GRACE_MS: u64 = 1000;
/// From the server's death to the isolated node's closes: the grace plus slack.
const ISOLATED_WITHIN: Duration = Duration::from_millis(GRACE_MS + 5000);
/// From the server's restart to the node accepting again: async-nats retries every
/// 4 s at most, then the node reconnects.
const HEALED_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_node_refuses_and_closes_then_recovers() {
    let Some(bin) = nats_server_or_skip("isolated_node_refuses_and_closes_then_recovers") else {
        return;
    };
    let started = Instant::now();
    let extra = format!("isolation_grace_ms = {GRACE_MS}\n");
    // Nodes 0 and 1 use servers 0 and 1; node 2 only server 2.
    let mut cluster = StarlingCluster::start_with(&bin, &extra, |i, urls| match i {
        2 => vec![urls[2].clone()],
        _ => vec![urls[i].clone(), urls[1 - i].clone()],
    });
    eprintln!("cluster started in {:?}", started.elapsed());
    tokio::time::timeout(BODY, partition_and_heal(&mut cluster))
        .await
        .expect("partition test body exceeded its bound");
}

async fn partition_and_heal(cluster: &mut StarlingCluster) {
    let (n0, n1, n2) = (cluster.addr(0), cluster.addr(1), cluster.addr(2));
    let t = Instant::now();
    let mut sub0 = RawClient::connected_v5(n0, "x-sub0", Properties::default()).await;
    sub0.subscribe(&[("x/#", QoS::AtLeastOnce)]).await;
    let mut v5 = RawClient::connected_v5(n2, "x-v5", Properties::default()).await;
    v5.subscribe(&[("x/#", QoS::AtLeastOnce)]).await;
    // A persistent session (3.1.1, clean session 0): it must survive the close.
    let (mut v3, present) = connect_persistent(&cluster.nodes[2], "x-v3").await;
    assert!(!present);
    let mut pub1 = RawClient::connected_v5(n1, "x-pub1", Properties::default()).await;
    // Before: node 1 reaches the subscribers on nodes 0 and 2.
    let mut subs = [sub0, v5];
    await_routes(&mut pub1, "x/probe", &mut subs, &[0, 1]).await;
    let [mut sub0, mut v5] = subs;
    eprintln!("routes ready at {:?}", t.elapsed());

    // Before the kill: the node's grace starts at its disconnect, a little later.
    let cut = Instant::now();
    cluster.nats.servers[2].kill9();
    let disconnect = v5.expect_closed_within(ISOLATED_WITHIN).await;
    let took = cut.elapsed();
    assert_eq!(
        disconnect.map(|d| d.reason),
        Some(ReasonCode::USE_ANOTHER_SERVER),
        "the 5.0 client on the isolated node gets DISCONNECT 0x9C"
    );
    assert!(
        took >= Duration::from_millis(GRACE_MS),
        "closed after {took:?}, before the grace of {GRACE_MS} ms"
    );
    eprintln!("isolated node closed its 5.0 client {took:?} after losing NATS");
    let left = ISOLATED_WITHIN.saturating_sub(cut.elapsed());
    assert_eq!(
        v3.expect_closed_within(left.max(Duration::from_secs(1)))
            .await,
        None,
        "a 3.1.1 connection is just closed"
    );
    assert_refused(n2).await;

    // Nodes 0 and 1 keep routing between each other.
    await_routes(&mut pub1, "x/probe", std::slice::from_mut(&mut sub0), &[0]).await;
    // Acknowledged once the message log stored it: after a leader election if server 2
    // led the log (seconds).
    publish_qos1_within(&mut pub1, "x/cut", false, b"while-cut", WAIT * 3).await;
    recv_payload(&mut sub0, "while-cut", WAIT).await;

    eprintln!("nodes 0 and 1 still route at {:?}", t.elapsed());
    cluster.nats.servers[2].restart();
    let mut back = connect_when_healed(n2).await;
    let (v3, present) = connect_persistent(&cluster.nodes[2], "x-v3").await;
    assert!(present, "the persistent session stays on the isolated node");
    v3.disconnect().await;
    // Node 2's messages reach node 0 again (probes: interest crosses the re-formed routes).
    await_routes(&mut back, "x/probe", std::slice::from_mut(&mut sub0), &[0]).await;
    publish_qos1_within(&mut back, "x/healed", false, b"after-heal", WAIT * 3).await;
    recv_payload(&mut sub0, "after-heal", WAIT).await;
    eprintln!("healed at {:?}", t.elapsed());
}

/// A CONNECT to the isolated node: 5.0 gets CONNACK 0x88, 3.1.1 return code 3, and both
/// connections are closed.
async fn assert_refused(addr: std::net::SocketAddr) {
    let mut c = RawClient::open(addr).await;
    c.set_version(ProtocolVersion::V5);
    let connect = connect_packet(ProtocolVersion::V5, "x-new5", true, 60);
    c.send(Packet::Connect(Box::new(connect))).await;
    let ack = c.expect_connect_refused().await;
    assert_eq!(
        ack.map(|a| a.reason),
        Some(ReasonCode::SERVER_UNAVAILABLE),
        "5.0 CONNECT to the isolated node"
    );
    let mut c = RawClient::open(addr).await;
    let connect = connect_packet(ProtocolVersion::V311, "x-new3", true, 60);
    c.send(Packet::Connect(Box::new(connect))).await;
    let bytes = c.read_raw_until_closed(WAIT).await;
    assert_eq!(
        bytes,
        [0x20, 0x02, 0x00, 0x03],
        "3.1.1 CONNECT to the isolated node: CONNACK return code 3, then close"
    );
}

/// Connects a 5.0 client to `addr` once the node accepts again (0x88 until then);
/// bounded by [`HEALED_WITHIN`].
async fn connect_when_healed(addr: std::net::SocketAddr) -> RawClient {
    let start = Instant::now();
    for attempt in 1.. {
        let mut c = RawClient::open(addr).await;
        let ack = c
            .connect_v5("x-back", true, 60, Properties::default())
            .await;
        if ack.reason == ReasonCode::SUCCESS {
            eprintln!(
                "node accepted again {:?} after the NATS server restarted",
                start.elapsed()
            );
            return c;
        }
        assert_eq!(
            ack.reason,
            ReasonCode::SERVER_UNAVAILABLE,
            "attempt {attempt}"
        );
        assert!(
            start.elapsed() < HEALED_WITHIN,
            "node still refusing {HEALED_WITHIN:?} after NATS came back ({attempt} attempts)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unreachable!("the loop returns or panics")
}
