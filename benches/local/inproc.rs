//! The in-process side: a `LocalClient` publishes, another `LocalClient`'s
//! `Subscription` receives. Both run on the embedding application's thread (the actix
//! `System`'s), the broker on its own worker thread.

use anyhow::{anyhow, bail, Result};
use futures::{future, stream, FutureExt, StreamExt};
use starling::{BrokerHandle, LocalClient, Subscription};
use tokio::time::{timeout, timeout_at, Instant};

use crate::measure::{seq_of, Latency, Spec, Throughput, Usage, IDLE, ROUND_TRIP};
use crate::track::{self, Tracker};

/// A publisher and a subscriber for the spec (not subscribed yet).
pub fn pair(broker: &BrokerHandle, spec: &Spec) -> (LocalClient, LocalClient) {
    let publisher = broker.client(&spec.client_id("pub"));
    let subscriber = broker.client(&spec.client_id("sub"));
    (publisher, subscriber)
}

/// The subscriber subscribed to the spec's topic.
async fn clients(
    (publisher, subscriber): (LocalClient, LocalClient),
    spec: &Spec,
) -> Result<(LocalClient, Subscription)> {
    let sub = subscriber
        .subscribe(&spec.topic(), spec.qos)
        .await
        .map_err(|e| anyhow!("in-process subscribe: {e}"))?;
    Ok((publisher, sub))
}

/// `spec.messages` publishes, at most `spec.window` awaiting the router's answer at
/// once, received by one subscription.
pub async fn throughput(pair: (LocalClient, LocalClient), spec: Spec) -> Result<Throughput> {
    let spec = &spec;
    let (publisher, sub) = clients(pair, spec).await?;
    let (n, size, topic) = (spec.messages, spec.size, spec.topic());
    let start = std::time::Instant::now();
    let (t0, usage) = (Instant::now(), Usage::now());
    let receiving = actix_rt::spawn(receive(sub, n, spec.deadline));
    let publishes = stream::iter(0..n)
        .map(|seq| {
            let payload = track::payload(0, seq, start.elapsed().as_nanos() as u64, size);
            publisher.publish(&topic, payload, spec.qos, false)
        })
        .buffered(spec.window)
        .filter(|r| future::ready(r.is_err()))
        .count();
    let mut error = match timeout_at(spec.deadline, publishes).await {
        Ok(0) => None,
        Ok(refused) => Some(format!("{refused} publishes refused")),
        Err(_) => Some("publishing: deadline reached".into()),
    };
    let (tracker, last, dropped) = receiving.await?;
    let usage = usage.since();
    if dropped > 0 {
        error = error.or(Some(format!(
            "{dropped} dropped by a full subscription queue"
        )));
    }
    Ok(Throughput {
        received: tracker.unique,
        lost: n.saturating_sub(tracker.unique),
        dup: tracker.dup,
        reorder: tracker.reorder,
        secs: last.map_or(0.0, |l| (l - t0).as_secs_f64()),
        usage,
        error,
    })
}

/// Reads `sub` until it has `n` distinct messages, nothing came for [`IDLE`], or the
/// deadline. Returns what it saw, the time of the last message and the queue's drops.
async fn receive(
    mut sub: Subscription,
    n: u64,
    deadline: Instant,
) -> (Tracker, Option<Instant>, u64) {
    let mut tracker = Tracker::new(0, 1, n, false);
    let (mut last, mut stamped) = (None, 0);
    while tracker.unique < n {
        // What is queued already is taken without a timer (and without reading the
        // clock per message, which the TCP subscriber does once per read).
        let next = match sub.next().now_or_never() {
            Some(next) => next,
            None => {
                if tracker.unique > stamped {
                    (last, stamped) = (Some(Instant::now()), tracker.unique);
                }
                let wake = deadline.min(Instant::now() + IDLE);
                timeout_at(wake, sub.next()).await.ok().flatten()
            }
        };
        match next {
            Some(m) => tracker.record(&m.payload, 0),
            None => break,
        };
    }
    if tracker.unique > stamped {
        last = Some(Instant::now());
    }
    (tracker, last, sub.dropped())
}

/// `spec.messages` round trips, one at a time: the clock runs from just before the
/// publish until the subscription yields the message; the next round trip starts once
/// the publish has returned too.
pub async fn latency(pair: (LocalClient, LocalClient), spec: Spec) -> Result<Latency> {
    let spec = &spec;
    let (publisher, mut sub) = clients(pair, spec).await?;
    let topic = spec.topic();
    let mut samples = Vec::with_capacity(spec.messages as usize);
    let usage = Usage::now();
    for seq in 0..spec.messages {
        if Instant::now() >= spec.deadline {
            bail!("deadline reached after {seq} round trips");
        }
        let payload = track::payload(0, seq, 0, spec.size);
        let t0 = std::time::Instant::now();
        let received = async {
            let m = sub.next().await;
            (m, t0.elapsed())
        };
        let publish = publisher.publish(&topic, payload, spec.qos, false);
        let Ok((published, (m, took))) = timeout(ROUND_TRIP, future::join(publish, received)).await
        else {
            bail!("round trip {seq} took over {ROUND_TRIP:?}");
        };
        published.map_err(|e| anyhow!("publish {seq}: {e}"))?;
        let got = m.and_then(|m| seq_of(&m.payload));
        if got != Some(seq) {
            bail!("round trip {seq}: received {got:?}");
        }
        samples.push(took.as_nanos() as u64);
    }
    Ok(Latency {
        samples,
        usage: usage.since(),
    })
}
