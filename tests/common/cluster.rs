//! Three Starling nodes in cluster mode over a [`NatsCluster`], and the waits the
//! cluster tests need: interest travels to other nodes asynchronously after SUBACK, so
//! a test first publishes probes until every subscriber (or group) has seen one.

use std::path::Path;
use std::time::{Duration, Instant};

use starling::protocol::{Packet, Publish, QoS};

use super::{BrokerProcess, Event, NatsCluster, RawClient};

/// How long a probe may take to find its way through the cluster.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// NATS servers plus Starling nodes; dropping it kills them all (nodes first).
pub struct StarlingCluster {
    pub nodes: Vec<BrokerProcess>,
    pub nats: NatsCluster,
}

/// The config of node `i` connected to `urls`.
pub fn node_config(i: usize, urls: &[String]) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "[server]\nsys_interval_secs = 0\n\
         [cluster]\nenabled = true\nurls = [{}]\nnode_id = \"node{i}\"\nreplicas = 3\n",
        urls.join(", ")
    )
}

impl StarlingCluster {
    /// Three NATS servers, then three nodes (each ready once it accepts TCP, which it
    /// does only after joining the cluster).
    pub fn start(nats_bin: &Path) -> StarlingCluster {
        StarlingCluster::start_with(nats_bin, "", |i, urls| {
            // Each node prefers a different server.
            let mut mine = urls.to_vec();
            mine.rotate_left(i);
            mine
        })
    }

    /// Like [`start`](Self::start), with the NATS urls of node `i` chosen by
    /// `urls_of(i, all_urls)` and `extra` lines appended to every node's `[cluster]`.
    pub fn start_with(
        nats_bin: &Path,
        extra: &str,
        urls_of: impl Fn(usize, &[String]) -> Vec<String>,
    ) -> StarlingCluster {
        let nats = NatsCluster::start(nats_bin);
        let urls = nats.urls();
        let nodes = (0..3)
            .map(|i| {
                let config = node_config(i, &urls_of(i, &urls)) + extra;
                BrokerProcess::start_cluster_node(&config)
            })
            .collect();
        StarlingCluster { nodes, nats }
    }

    pub fn addr(&self, node: usize) -> std::net::SocketAddr {
        self.nodes[node].addr()
    }
}

impl Drop for StarlingCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill9();
        }
    }
}

/// Payload as text.
pub fn text(p: &Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}

/// Reads PUBLISHes, acknowledging each, until `quiet` passes without one (or `max`
/// in all); returns those whose payload does not start with `probe`.
pub async fn drain(c: &mut RawClient, quiet: Duration, max: Duration) -> Vec<Publish> {
    let deadline = Instant::now() + max;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match c.next_event(quiet).await {
            Event::Packet(Packet::Publish(p)) => {
                c.ack(&p).await;
                if !p.payload.starts_with(b"probe") {
                    out.push(p);
                }
            }
            Event::Packet(_) => {}
            Event::Timeout => break,
            other => panic!("while draining: {other:?}"),
        }
    }
    out
}

/// Reads until `want` arrives (acknowledging everything), within `within`.
pub async fn recv_payload(c: &mut RawClient, want: &str, within: Duration) -> Publish {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_event(left).await {
            Event::Packet(Packet::Publish(p)) => {
                c.ack(&p).await;
                if text(&p) == want {
                    return p;
                }
                seen.push(text(&p));
            }
            Event::Packet(_) => {}
            other => panic!("waiting for {want:?}: {other:?}; seen {seen:?}"),
        }
    }
}

/// Publishes QoS 0 probes on `topic` from `publisher` until each group of `subs` (group
/// index per client) has received one, then drains the stragglers.
pub async fn await_routes(
    publisher: &mut RawClient,
    topic: &str,
    subs: &mut [RawClient],
    groups: &[usize],
) {
    let deadline = Instant::now() + ROUTE_TIMEOUT;
    let n_groups = groups.iter().max().map_or(0, |g| g + 1);
    let mut reached = vec![false; n_groups];
    let mut n = 0;
    while reached.contains(&false) {
        assert!(
            Instant::now() < deadline,
            "probes on {topic} did not reach groups {reached:?} within {ROUTE_TIMEOUT:?}"
        );
        n += 1;
        let probe = format!("probe-{n}");
        publisher
            .publish(topic, QoS::AtMostOnce, false, probe.as_bytes())
            .await;
        for (c, g) in subs.iter_mut().zip(groups) {
            if let Event::Packet(Packet::Publish(p)) = c.next_event(Duration::from_millis(50)).await
            {
                c.ack(&p).await;
                reached[*g] |= p.payload.starts_with(b"probe");
            }
        }
    }
    for c in subs.iter_mut() {
        let stray = drain(c, Duration::from_millis(300), Duration::from_secs(3)).await;
        assert!(stray.is_empty(), "unexpected messages: {stray:?}");
    }
}

/// Publishes at QoS 1 and waits up to `within` for the PUBACK (the default wait is
/// shorter than a JetStream leader election); returns how long it took.
pub async fn publish_qos1_within(
    c: &mut RawClient,
    topic: &str,
    retain: bool,
    payload: &[u8],
    within: Duration,
) -> Duration {
    let start = Instant::now();
    let id = c.next_packet_id();
    let mut p = super::publish_packet(topic, QoS::AtLeastOnce, payload, Some(id));
    p.retain = retain;
    c.send(Packet::Publish(p)).await;
    loop {
        let left = (start + within).saturating_duration_since(Instant::now());
        match c.next_event(left).await {
            Event::Packet(Packet::PubAck(a)) if a.packet_id == id => return start.elapsed(),
            Event::Packet(Packet::Publish(p)) => c.ack(&p).await,
            Event::Packet(_) => {}
            other => panic!("no PUBACK for {topic} within {within:?}: {other:?}"),
        }
    }
}
