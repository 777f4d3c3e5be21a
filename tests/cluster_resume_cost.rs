//! Cluster mode, black box: a resume's replay of the message log reads from the
//! session's log position, not from its oldest subscription's time. Three
//! `nats-server`s and three nodes (nodes 0 and 1 with their `[http]` listener, whose
//! `/metrics` count the log entries replays read); skipped, with a message, only where
//! nats-server is not installed and `CI` is unset.
//!
//! A persistent QoS 1 session subscribed long ago gets [`OLD`] messages while
//! connected, then goes offline while [`MISSED`] more are published. Resumed on another
//! node, it gets each missed one once, and the replay reads about [`MISSED`] log
//! entries, not the [`OLD`] before them (it read them all before positions existed).
//! Twice: once taken over from a live node, once after kill -9 of the node that held
//! it (its replay then brings what that node had not stored). Then a session that gets
//! nothing while [`OLD`] messages go by: its node rewrites its cursor with the current
//! position within 30 s, and its resume reads only the entries since.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::http_get;
use common::{
    drain, free_port, nats_server_or_skip, node_config, session_expiry, text, BrokerProcess, Event,
    NatsCluster, RawClient,
};
use prometheus_parse::{Scrape, Value};
use starling::protocol::{Packet, Properties, PubResponse, QoS, ReasonCode};

/// Messages the session got while connected, before each absence.
const OLD: u32 = 3000;
/// Messages published while it was away.
const MISSED: u32 = 50;
/// Log entries a replay may read beyond the missed ones: the cursor's position lags the
/// router by the entries routed since the session's last cursor write.
const SLACK: f64 = 100.0;
/// The same after kill -9 of the session's node, which loses the store writes it had
/// not made yet (the test waits until its cursor is within [`WINDOW`] of the old
/// messages' end before the missed ones are published).
const SLACK_KILLED: f64 = 250.0;
/// QoS 1 publishes sent before their PUBACKs are awaited.
const WINDOW: u32 = 100;
const ID: &str = "cost-sub";
/// Bound of the test's body (twice [`OLD`] messages through the log, two resumes).
const BODY: Duration = Duration::from_secs(150);
const READ: &str = "starling_cluster_replay_read_entries_total";
const REPLAYS: &str = "starling_cluster_replays_total";

/// Node `i` on `urls`, with an HTTP listener (the address) when `http`.
fn node(i: usize, urls: &[String], http: bool) -> (BrokerProcess, Option<SocketAddr>) {
    let mut mine = urls.to_vec();
    mine.rotate_left(i);
    let mut toml = node_config(i, &mine);
    let listener = http.then(|| SocketAddr::from(([127, 0, 0, 1], free_port())));
    if let Some(addr) = listener {
        toml.push_str(&format!("[http]\nbind = \"{addr}\"\n"));
    }
    (BrokerProcess::start_cluster_node(&toml), listener)
}

/// The value of the counter `name` on `http`.
fn value(http: SocketAddr, name: &str) -> f64 {
    let (status, body) = http_get(http, "/metrics");
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    let samples: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .collect();
    assert!(!samples.is_empty(), "no series {name} in /metrics");
    samples.iter().sum()
}

/// Waits (up to 20 s) until `name` on `http` reaches `at_least`.
async fn counter_reaches(http: SocketAddr, name: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = value(http, name);
        if v >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_reads_the_log_from_the_session_position() {
    let Some(bin) = nats_server_or_skip("a_resume_reads_the_log_from_the_session_position") else {
        return;
    };
    let nats = NatsCluster::start(&bin);
    let urls = nats.urls();
    let (mut n0, http0) = node(0, &urls, true);
    let (mut n1, http1) = node(1, &urls, true);
    let (n2, http2) = node(2, &urls, true);
    let (http0, http1) = (http0.expect("http 0"), http1.expect("http 1"));
    let http2 = http2.expect("http 2");
    tokio::time::timeout(BODY, async {
        let mut publisher =
            RawClient::connected_v5(n2.addr(), "cost-pub", Properties::default()).await;
        let stored = Stored::open(&urls).await;
        let mut sub = RawClient::open(n0.addr()).await;
        let ack = sub.connect_v5(ID, false, 60, session_expiry(600)).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        sub.subscribe(&[("cost/#", QoS::AtLeastOnce)]).await;
        await_route(&mut publisher, &mut sub).await;

        // Taken over from node 0 (alive) by a CONNECT on node 1.
        live_then_missed(&mut publisher, sub, "a", &stored).await;
        resume_and_check(n1.addr(), http1, "a", false, || {}).await;

        // Back on node 1, which holds it and then dies: resumed on node 0.
        let mut sub = RawClient::open(n1.addr()).await;
        let ack = sub.connect_v5(ID, false, 60, session_expiry(600)).await;
        assert!(ack.session_present, "the session is on node 1");
        await_route(&mut publisher, &mut sub).await;
        live_then_missed(&mut publisher, sub, "b", &stored).await;
        resume_and_check(n0.addr(), http0, "b", true, || n1.kill9()).await;

        // A session that gets nothing while the log grows: its node refreshes its
        // cursor's position all the same.
        quiet_session(&stored, &mut publisher, n0.addr(), (n2.addr(), http2)).await;
        n0.assert_alive();
    })
    .await
    .expect("test body exceeded its bound");
}

/// A persistent session `quiet-sub` on the node at `home`, subscribed to `quiet/#`,
/// offline, gets none of [`OLD`] messages published meanwhile; its cursor is rewritten
/// with a position past them once its node refreshes the positions (every 30 s; small
/// messages are published meanwhile so that the log moves), and its resume on `to`
/// reads only the log entries since.
async fn quiet_session(
    stored: &Stored,
    publisher: &mut RawClient,
    home: SocketAddr,
    (to, http): (SocketAddr, SocketAddr),
) {
    const QUIET_ID: &str = "quiet-sub";
    let mut q = RawClient::open(home).await;
    let ack = q.connect_v5(QUIET_ID, false, 60, session_expiry(600)).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    q.subscribe(&[("quiet/#", QoS::AtLeastOnce)]).await;
    q.disconnect().await;
    publish_many(publisher, "noise/old", "old", OLD).await;
    let end = stored.log_end().await;
    // The refresh comes at most 30 s after the previous one (and the log must move).
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut tick = 0;
    while stored.position(QUIET_ID).await.is_none_or(|p| p < end) {
        assert!(
            Instant::now() < deadline,
            "the quiet session's cursor never got a position past the {OLD} messages"
        );
        tick += 1;
        publish_many(publisher, "noise/tick", &format!("tick{tick}"), 1).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (read, replays) = (value(http, READ), value(http, REPLAYS));
    let mut q = RawClient::open(to).await;
    let ack = q.connect_v5(QUIET_ID, false, 60, session_expiry(600)).await;
    assert!(ack.session_present, "the quiet session resumes");
    counter_reaches(http, REPLAYS, replays + 1.0).await;
    let got = drain(&mut q, Duration::from_millis(500), Duration::from_secs(10)).await;
    assert!(got.is_empty(), "nothing was for it: {got:?}");
    let read = value(http, READ) - read;
    println!("quiet session: the replay read {read} log entries ({tick} ticks published)");
    assert!(
        read <= SLACK,
        "the quiet session's replay read {read} log entries after {OLD} not for it"
    );
    q.disconnect().await;
}

/// The streams as the nodes keep them.
struct Stored {
    state: async_nats::jetstream::stream::Stream,
    log: async_nats::jetstream::stream::Stream,
}

impl Stored {
    async fn open(urls: &[String]) -> Stored {
        let nats = async_nats::connect(urls[0].as_str()).await.expect("NATS");
        let js = async_nats::jetstream::new(nats);
        Stored {
            state: js.get_stream("STARLING_STATE").await.expect("state stream"),
            log: js.get_stream("STARLING_LOG").await.expect("log stream"),
        }
    }

    /// The log's last sequence.
    async fn log_end(&self) -> u64 {
        let mut log = self.log.clone();
        log.info().await.expect("log info").state.last_sequence
    }

    /// The log position of `id`'s stored cursor, if it has one.
    async fn position(&self, id: &str) -> Option<u64> {
        let subject = format!(
            "{}c",
            starling::JsStore::client_filter(id).trim_end_matches('>')
        );
        let last = self.state.get_last_raw_message_by_subject(&subject).await;
        last.ok()
            .and_then(|m| starling::JsStore::cursor_position(&m.payload))
    }

    /// Waits (up to 20 s) until `id`'s stored cursor has a position of at least `at`.
    async fn reaches(&self, id: &str, at: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.position(id).await.is_none_or(|p| p < at) {
            assert!(
                Instant::now() < deadline,
                "{id}'s cursor stayed before {at}: {:?}",
                self.position(id).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Probes (QoS 0, `cost/probe`) until `sub` gets one: its subscription reached the
/// publisher's node.
async fn await_route(publisher: &mut RawClient, sub: &mut RawClient) {
    common::await_routes(publisher, "cost/probe", std::slice::from_mut(sub), &[0]).await;
}

/// [`OLD`] messages `cost/<round>/old/<i>` reach `sub` live; it disconnects; [`MISSED`]
/// messages `cost/<round>/missed/<i>` are published and acknowledged.
async fn live_then_missed(
    publisher: &mut RawClient,
    mut sub: RawClient,
    round: &str,
    stored: &Stored,
) {
    let topic = format!("cost/{round}/old");
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < OLD {
            match sub.next_event(Duration::from_secs(30)).await {
                Event::Packet(Packet::Publish(p)) => {
                    sub.ack(&p).await;
                    got += u32::from(p.payload.starts_with(b"old-"));
                }
                Event::Packet(_) => {}
                other => panic!("live messages: {other:?} after {got}"),
            }
        }
        sub.disconnect().await;
    });
    publish_many(publisher, &topic, "old", OLD).await;
    reader.await.expect("every old message arrived live");
    // Its node's store caught up with them (a node killed later has written that much).
    let end = stored.log_end().await;
    stored
        .reaches(ID, end.saturating_sub(u64::from(WINDOW)))
        .await;
    let topic = format!("cost/{round}/missed");
    publish_many(publisher, &topic, "missed", MISSED).await;
}

/// Publishes `<topic>/<i>` with payload `<prefix>-<i>` for i in 1..=n at QoS 1,
/// [`WINDOW`] at a time, each acknowledged.
async fn publish_many(p: &mut RawClient, topic: &str, prefix: &str, n: u32) {
    let mut i = 1;
    while i <= n {
        let last = (i + WINDOW - 1).min(n);
        let mut ids = BTreeSet::new();
        let mut packets = Vec::new();
        for k in i..=last {
            let id = p.next_packet_id();
            ids.insert(id);
            let payload = format!("{prefix}-{k}");
            let publish = common::publish_packet(
                &format!("{topic}/{k}"),
                QoS::AtLeastOnce,
                payload.as_bytes(),
                Some(id),
            );
            packets.push(Packet::Publish(publish));
        }
        p.send_together(packets).await;
        while !ids.is_empty() {
            match p.next_event(Duration::from_secs(30)).await {
                Event::Packet(Packet::PubAck(a)) => {
                    assert_eq!(a.reason, ReasonCode::SUCCESS, "PUBACK of {topic}");
                    ids.remove(&a.packet_id);
                }
                Event::Packet(Packet::Publish(m)) => {
                    if let Some(id) = m.packet_id() {
                        p.send(Packet::PubAck(PubResponse::new(id))).await;
                    }
                }
                Event::Packet(_) => {}
                other => panic!("publishing {topic}: {other:?}"),
            }
        }
        i = last + 1;
    }
}

/// After `before` (`killed`: kill -9 of the node that held the session), the session
/// resumes on the node at `addr`: it gets each missed message of `round` once, in
/// order, and its replay read about [`MISSED`] log entries.
async fn resume_and_check(
    addr: SocketAddr,
    http: SocketAddr,
    round: &str,
    killed: bool,
    before: impl FnOnce(),
) {
    let (read, replays) = (value(http, READ), value(http, REPLAYS));
    before();
    let mut sub = RawClient::open(addr).await;
    let ack = sub.connect_v5(ID, false, 60, session_expiry(600)).await;
    assert!(ack.session_present, "round {round}: the session resumes");
    counter_reaches(http, REPLAYS, replays + 1.0).await;
    let got: Vec<String> = drain(
        &mut sub,
        Duration::from_millis(1500),
        Duration::from_secs(30),
    )
    .await
    .iter()
    .map(text)
    .collect();
    let want: Vec<String> = (1..=MISSED).map(|i| format!("missed-{i}")).collect();
    let (missed, other): (Vec<String>, Vec<String>) =
        got.into_iter().partition(|m| m.starts_with("missed-"));
    assert_eq!(
        missed, want,
        "round {round}: each missed message once, in order"
    );
    // After kill -9, messages the client had acknowledged may still be in the dead
    // node's stored queue (their deletion was not written yet): sent again, at QoS 1.
    // Never with a live previous owner, which stores its final state first.
    let redelivered_only = other.iter().all(|m| m.starts_with("old-"));
    assert!(
        other.is_empty() || (killed && redelivered_only),
        "round {round}: unexpected messages {other:?}"
    );
    let read = value(http, READ) - read;
    println!("round {round}: the replay read {read} log entries");
    let slack = if killed { SLACK_KILLED } else { SLACK };
    assert!(
        read <= f64::from(MISSED) + slack,
        "round {round}: the replay read {read} log entries for {MISSED} missed after {OLD} old"
    );
    sub.disconnect().await;
}
