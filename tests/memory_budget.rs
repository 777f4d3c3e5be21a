//! `[limits] max_memory` against the broker binary: four pipelined QoS 1 publishers flood
//! two subscribers that do not read at first, with a budget of the broker's baseline
//! RSS + 64 MiB. Over the watermark the publishers are no longer read and a new CONNECT
//! is refused (5.0: 0x97 Quota exceeded; 3.1.1: code 3); once the subscribers read, the
//! publishers go on. The RSS sampled throughout stays under the budget and every
//! acknowledged message arrives, in order.

mod common;

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::overload::{flood, metric, read_slowly, SILENCE};
use common::{bounded, free_port, BrokerProcess, RawClient};
use starling::protocol::{Properties, QoS, ReasonCode};

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: u32 = 600;
/// 32 KiB: the flood is 75 MiB, more than the budget's headroom.
const SIZE: usize = 32 * 1024;
const WINDOW: usize = 32;
const HEADROOM: u64 = 64 << 20;

/// The broker's RSS right after start, from a broker of the same configuration.
fn baseline_bytes() -> u64 {
    let mut probe = BrokerProcess::start_with_config(Some("[server]\nworkers = 2\n"));
    let rss = probe.rss_kib() * 1024;
    probe.terminate();
    rss
}

/// Polls `/metrics` until `limit` was hit (bounded: 20 s).
async fn limit_hit(http: SocketAddr, limit: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(http, "starling_limit_hits_total", "limit", limit) < 1.0 {
        assert!(Instant::now() < deadline, "{limit} never reached");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh CONNECT's answer (5.0, or 3.1.1 when `v311`).
async fn connack(addr: SocketAddr, id: &str, v311: bool) -> ReasonCode {
    let mut c = RawClient::open(addr).await;
    match v311 {
        true => c.connect_v311(id, true, 60).await.reason,
        false => {
            c.connect_v5(id, true, 60, Properties::default())
                .await
                .reason
        }
    }
}

#[actix_rt::test]
async fn over_the_budget_publishers_wait_and_connects_are_refused() {
    let budget = baseline_bytes() + HEADROOM;
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    // One watermark for both, so that the refusal is seen whenever publishers wait.
    let toml = format!(
        "[server]\nworkers = 2\n\n[http]\nbind = \"{http}\"\n\n[limits]\nmax_memory = {budget}\n\
         memory_high_watermark = 0.8\nmemory_refuse_watermark = 0.8\n"
    );
    let broker = BrokerProcess::start_with_config(Some(&toml));
    let addr = broker.addr();
    let done = Cell::new(false);
    let peak = Cell::new(0u64);
    let sampler = async {
        while !done.get() {
            peak.set(peak.get().max(broker.rss_kib() * 1024));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let body = async {
        let mut subs = Vec::new();
        for i in 0..2 {
            let mut s = RawClient::connected_v311(addr, &format!("stalled-{i}"), true).await;
            s.subscribe(&[("mem/#", QoS::AtLeastOnce)]).await;
            subs.push(s);
        }
        let publishers = (0..PUBLISHERS).map(|who| async move {
            let c = RawClient::connected_v311(addr, &format!("flood-{who}"), true).await;
            flood(c, who, &format!("mem/{who}"), PER_PUBLISHER, SIZE, WINDOW).await
        });
        let want = PUBLISHERS * PER_PUBLISHER as usize;
        let consumers = async {
            limit_hit(http, "memory_high_watermark").await;
            assert_eq!(
                connack(addr, "late-v5", false).await,
                ReasonCode::QUOTA_EXCEEDED
            );
            assert_eq!(
                connack(addr, "late-311", true).await,
                ReasonCode::SERVER_UNAVAILABLE
            );
            let rss = || broker.rss_kib();
            let [a, b] = &mut subs[..] else {
                unreachable!()
            };
            let pause = Duration::ZERO;
            tokio::join!(
                read_slowly(a, want, pause, SILENCE, rss),
                read_slowly(b, want, pause, SILENCE, rss)
            )
        };
        let (acked, (a, b)) = tokio::join!(futures::future::join_all(publishers), consumers);
        done.set(true);
        (acked, [a, b])
    };
    let ((acked, got), ()) = bounded(async { tokio::join!(body, sampler) }).await;
    let all: Vec<u32> = (0..PER_PUBLISHER).collect();
    for (who, acked) in acked.iter().enumerate() {
        assert_eq!(acked, &all, "publisher {who}: every message acknowledged");
        for got in &got {
            assert_eq!(
                got.per_publisher.get(&who),
                Some(&all),
                "publisher {who}: all, in order"
            );
        }
    }
    let refused = metric(
        http,
        "starling_limit_hits_total",
        "limit",
        "memory_refuse_watermark",
    );
    assert!(refused >= 2.0, "refusals counted: {refused}");
    let (peak_mib, budget_mib) = (peak.get() >> 20, budget >> 20);
    eprintln!("memory budget: peak RSS {peak_mib} MiB of {budget_mib} MiB");
    assert!(
        peak.get() < budget,
        "RSS {peak_mib} MiB over the budget of {budget_mib} MiB"
    );
    let log = broker.log_text();
    assert!(
        log.contains("memory over the refuse watermark"),
        "crossing logged"
    );
    assert!(
        log.contains("memory back under the high watermark"),
        "return logged"
    );
}
