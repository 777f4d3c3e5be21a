//! The redis storage backend, black box: the broker binary with `[storage] backend =
//! "redis"` against a real `redis-server` (tests/common/redis.rs; skipped when it is not
//! installed, outside CI). Queued messages come back after a restart and after kill -9;
//! the broker warns when redis's `appendfsync` lets acknowledged messages be lost; and
//! when redis itself dies, nothing is acknowledged that was not written, and the broker
//! resumes once redis is back.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::redis::{redis_server_or_skip, RedisServer};
use common::{
    bounded, check_retained, connect_persistent, missing, publish_packet, publish_pipelined,
    publish_retained, subscribe_offline, BrokerProcess, Collector, Event, RawClient, Stop,
};
use starling::protocol::{Packet, Properties, QoS};

const WARNING: &str = "acknowledged messages can be lost if redis or its host crashes";

/// A redis-server with `appendfsync <fsync>`, or `None` when it is not installed.
fn redis(test: &str, fsync: &str) -> Option<RedisServer> {
    redis_server_or_skip(test).map(|bin| RedisServer::start(&bin, fsync))
}

/// A broker whose store is `redis`.
fn broker_on(redis: &RedisServer) -> BrokerProcess {
    let toml = format!(
        "[server]\nworkers = 1\n[storage]\nbackend = \"redis\"\nurl = \"{}\"\n",
        redis.url()
    );
    BrokerProcess::start_with_config(Some(&toml))
}

/// Reconnects `id` (asserting session present) and collects until 2 s pass in silence.
async fn collect_rest(broker: &BrokerProcess, id: &str) -> Collector {
    let (mut c, present) = connect_persistent(broker, id).await;
    assert!(present, "{id}: session present must be 1 after the restart");
    let mut col = Collector::new(0);
    let stop = col.run(&mut c, None, Duration::from_secs(2)).await;
    assert_eq!(stop, Stop::Silence, "{id}: connection dropped");
    c.disconnect().await;
    col
}

// A graceful restart replays what the persistent sessions had queued (QoS 1 and QoS 2,
// in order, exactly once) and the retained messages, all read back from redis.
#[tokio::test]
async fn restart_replays_queued_messages_from_redis() {
    let Some(redis) = redis("restart_replays_queued_messages_from_redis", "always") else {
        return;
    };
    let mut broker = broker_on(&redis);
    bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        subscribe_offline(&broker, "s2", "d/q2", QoS::ExactlyOnce).await;
        let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
        for (topic, qos) in [("d/q1", QoS::AtLeastOnce), ("d/q2", QoS::ExactlyOnce)] {
            let out = publish_pipelined(&mut p, topic, qos, 0..300, 50, None).await;
            assert_eq!(out.completed.len(), 300, "{topic}: all acknowledged");
        }
        publish_retained(&mut p, 20).await;
        p.disconnect().await;
    })
    .await;
    let status = broker.terminate();
    assert!(status.success(), "SIGTERM exit status {status}");
    broker.restart();
    bounded(async {
        for id in ["s1", "s2"] {
            let col = collect_rest(&broker, id).await;
            assert_eq!(col.order, (0..300).collect::<Vec<_>>(), "{id}: order");
            assert!(col.duplicates().is_empty(), "{id}: {:?}", col.duplicates());
        }
        check_retained(&broker, 20).await;
    })
    .await;
}

// kill -9 of the broker while a QoS 1 publisher publishes: with appendfsync always,
// every PUBACKed message reaches the persistent subscriber after the restart.
#[tokio::test]
async fn broker_kill9_loses_no_acknowledged_message() {
    let Some(redis) = redis("broker_kill9_loses_no_acknowledged_message", "always") else {
        return;
    };
    let mut broker = broker_on(&redis);
    let published = bounded(async {
        subscribe_offline(&broker, "s1", "d/q1", QoS::AtLeastOnce).await;
        let mut p = RawClient::connected_v311(broker.addr(), "publisher", true).await;
        let kill = Some((1000, &mut broker));
        publish_pipelined(&mut p, "d/q1", QoS::AtLeastOnce, 0..3000, 50, kill).await
    })
    .await;
    assert!(
        published.closed,
        "the publisher must see the connection drop"
    );
    assert!(published.completed.len() >= 1000);
    broker.restart();
    let col = bounded(collect_rest(&broker, "s1")).await;
    let lost = missing(&published.completed, &col);
    eprintln!(
        "broker_kill9: {} sent, {} acknowledged, {} delivered after restart, {} lost",
        published.sent,
        published.completed.len(),
        col.counts.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

// appendfsync everysec makes the broker warn (once) that acknowledged messages can be
// lost; appendfsync always does not.
#[tokio::test]
async fn warns_when_appendfsync_can_lose_messages() {
    let Some(everysec) = redis("warns_when_appendfsync_can_lose_messages", "everysec") else {
        return;
    };
    let broker = broker_on(&everysec);
    let log = broker.log_text();
    let warnings = log.lines().filter(|l| l.contains(WARNING)).count();
    assert_eq!(warnings, 1, "one warning with everysec; log:\n{log}");
    assert!(log.contains("appendfsync everysec"), "{log}");
    drop(broker);
    let Some(always) = redis("warns_when_appendfsync_can_lose_messages", "always") else {
        return;
    };
    let broker = broker_on(&always);
    let log = broker.log_text();
    assert!(
        !log.contains(WARNING),
        "no warning with always; log:\n{log}"
    );
}

/// What one QoS 1 publish came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// PUBACK with a success code.
    Acked,
    /// PUBACK with an error code (0x80...).
    Refused,
    /// The connection closed (or the CONNECT was refused) before a PUBACK.
    Dropped,
}

/// A 5.0 QoS 1 publisher that publishes one message at a time and connects again
/// whenever the broker closed its connection.
struct Publisher {
    broker: std::net::SocketAddr,
    client: Option<RawClient>,
    acked: BTreeSet<u32>,
    outcomes: Vec<Outcome>,
}

impl Publisher {
    async fn connect(&mut self) -> Option<RawClient> {
        let mut c = RawClient::open(self.broker).await;
        let ack = c
            .connect_v5("outage-publisher", true, 60, Properties::default())
            .await;
        (!ack.reason.is_error()).then_some(c)
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.outcomes.iter().filter(|o| **o == outcome).count()
    }

    async fn publish(&mut self, idx: u32) -> Outcome {
        if self.client.is_none() {
            self.client = self.connect().await;
        }
        let outcome = match self.client.as_mut() {
            None => Outcome::Dropped,
            Some(c) => {
                let id = c.next_packet_id();
                let p = publish_packet(
                    "o/q",
                    QoS::AtLeastOnce,
                    idx.to_string().as_bytes(),
                    Some(id),
                );
                match c.try_send(Packet::Publish(p)).await {
                    Err(_) => Outcome::Dropped,
                    Ok(()) => match c.next_event(Duration::from_secs(5)).await {
                        Event::Packet(Packet::PubAck(r)) if r.reason.is_error() => Outcome::Refused,
                        Event::Packet(Packet::PubAck(_)) => Outcome::Acked,
                        Event::Closed | Event::Error(_) | Event::Packet(Packet::Disconnect(_)) => {
                            Outcome::Dropped
                        }
                        other => panic!("publish {idx}: unexpected {other:?}"),
                    },
                }
            }
        };
        match outcome {
            Outcome::Acked => {
                self.acked.insert(idx);
            }
            Outcome::Dropped => self.client = None,
            Outcome::Refused => {}
        }
        self.outcomes.push(outcome);
        outcome
    }
}

/// While redis is down: publishes until one is not acknowledged (within 200), then 5
/// more that must not be either; returns the index of the first failure.
async fn publish_while_down(p: &mut Publisher, idx: &mut u32) -> u32 {
    let failed_at = bounded(async {
        for _ in 0..200 {
            *idx += 1;
            if p.publish(*idx).await != Outcome::Acked {
                return *idx;
            }
        }
        panic!("200 publishes acknowledged while redis is down");
    })
    .await;
    for _ in 0..5 {
        *idx += 1;
        let outcome = bounded(p.publish(*idx)).await;
        assert_ne!(
            outcome,
            Outcome::Acked,
            "publish {idx} acknowledged while redis is down"
        );
    }
    failed_at
}

/// Publishes until `n` in a row are acknowledged, within `within`.
async fn publish_until_acked_in_a_row(
    p: &mut Publisher,
    idx: &mut u32,
    n: usize,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    let mut in_a_row = 0;
    while in_a_row < n {
        let recent = &p.outcomes[p.outcomes.len().saturating_sub(20)..];
        assert!(
            Instant::now() < deadline,
            "no {n} acknowledgements in a row within {within:?}; last outcomes {recent:?}"
        );
        *idx += 1;
        match bounded(p.publish(*idx)).await {
            Outcome::Acked => in_a_row += 1,
            _ => in_a_row = 0,
        }
    }
}

// redis-server is SIGKILLed while a 5.0 QoS 1 publisher publishes to a persistent
// subscriber: the broker stays up, answers what it cannot write with an error code or
// by closing the connection (never a success PUBACK), takes publishes again once redis
// is back on the same port and directory (its AOF reloaded), and every acknowledged
// message reaches the subscriber.
#[tokio::test]
async fn redis_outage_acknowledges_only_what_was_written() {
    let Some(mut redis) = redis("redis_outage_acknowledges_only_what_was_written", "always") else {
        return;
    };
    let mut broker = broker_on(&redis);
    subscribe_offline(&broker, "outage-sub", "o/q", QoS::AtLeastOnce).await;
    let mut p = Publisher {
        broker: broker.addr(),
        client: None,
        acked: BTreeSet::new(),
        outcomes: Vec::new(),
    };
    let mut idx = 0u32;
    // Before: everything is acknowledged.
    bounded(async {
        for _ in 0..100 {
            assert_eq!(
                p.publish(idx).await,
                Outcome::Acked,
                "publish {idx} before the outage"
            );
            idx += 1;
        }
    })
    .await;
    redis.kill9();
    let failed_at = publish_while_down(&mut p, &mut idx).await;
    broker.assert_alive();
    redis.restart();
    publish_until_acked_in_a_row(&mut p, &mut idx, 100, Duration::from_secs(20)).await;
    broker.assert_alive();
    let refused = p.count(Outcome::Refused);
    let dropped = p.count(Outcome::Dropped);
    let col = bounded(collect_rest(&broker, "outage-sub")).await;
    let lost = missing(&p.acked, &col);
    eprintln!(
        "redis_outage: first failure at {failed_at}, {} publishes: {} acknowledged, {refused} refused, {dropped} dropped; {} delivered, {} lost",
        p.outcomes.len(),
        p.acked.len(),
        col.counts.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
