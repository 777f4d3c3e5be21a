//! The message log seen directly: a session's replay right after writes (used by
//! tests/cluster.rs).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use starling::message::EncodedCache;
use starling::persistence::ReplayCursor;
use starling::protocol::{Properties, QoS};
use starling::topic::TopicName;
use starling::{LogProbe, Message};

/// Messages written per cycle.
const PER_CYCLE: u64 = 3;
/// The writing node incarnation.
const ORIGIN: u64 = 7;

/// `cycles` times: [`PER_CYCLE`] messages written to the log (three copies), each
/// acknowledged, then at once the replay of a session subscribed just before them: it
/// returns every one, in order. A replay read through a consumer on a replica that had
/// not applied the latest acknowledged writes stopped short of them.
pub async fn replays_follow_writes(urls: &[String], cycles: u64) {
    let nats = async_nats::connect(urls[0].as_str()).await.expect("NATS");
    let log = LogProbe::open(async_nats::jetstream::new(nats), 3)
        .await
        .expect("the log stream");
    let mut short = Vec::new();
    for cycle in 0..cycles {
        let subscribed = unix_ms();
        let mut written = Vec::new();
        for i in 1..=PER_CYCLE {
            let seq = cycle * PER_CYCLE + i;
            let msg = message(&format!("log/{cycle}/{i}"));
            assert!(
                log.append(ORIGIN, seq, &msg).await,
                "cycle {cycle}: write {i}"
            );
            written.push((ORIGIN, seq));
        }
        let cursor = ReplayCursor {
            origins: Vec::new(),
            subs: vec![(format!("log/{cycle}/#"), subscribed)],
            ..ReplayCursor::default()
        };
        match log.replay(&cursor).await {
            Ok(replayed) if replayed == written => {}
            other => short.push((cycle, other)),
        }
    }
    assert!(
        short.is_empty(),
        "{} of {cycles} replays failed or missed acknowledged messages (cycle, replayed): {short:?}",
        short.len()
    );
}

/// A session subscribed before 500 messages were written: with a cursor positioned at
/// the 450th, its replay reads and returns only the last 50; without a position (a
/// cursor written before positions existed) all 500; with a position beyond the log's
/// end (the stream re-created since) all 500 as well.
pub async fn replays_start_above_the_position(urls: &[String]) {
    const WRITER: u64 = 8;
    let nats = async_nats::connect(urls[0].as_str()).await.expect("NATS");
    let log = LogProbe::open(async_nats::jetstream::new(nats), 3)
        .await
        .expect("the log stream");
    let subscribed = unix_ms();
    let mut at_450 = 0;
    for seq in 1..=500 {
        assert!(
            log.append(WRITER, seq, &message("pos/x")).await,
            "write {seq}"
        );
        if seq == 450 {
            at_450 = log.last_sequence().await.expect("stream info");
        }
    }
    let cursor = |position| ReplayCursor {
        subs: vec![("pos/#".to_owned(), subscribed)],
        position,
        ..ReplayCursor::default()
    };
    let ids = |range: std::ops::RangeInclusive<u64>| range.map(|s| (WRITER, s)).collect::<Vec<_>>();
    let (got, read) = log
        .replay_counted(&cursor(Some(at_450)))
        .await
        .expect("replay");
    assert_eq!(got, ids(451..=500), "above the position");
    assert_eq!(read, 50, "only the entries above the position are read");
    let (got, read) = log.replay_counted(&cursor(None)).await.expect("replay");
    assert_eq!(got, ids(1..=500), "no position: by time");
    assert!(read >= 500, "read {read}");
    let beyond = log.last_sequence().await.expect("stream info") + 1_000;
    let (got, _) = log
        .replay_counted(&cursor(Some(beyond)))
        .await
        .expect("replay");
    assert_eq!(
        got,
        ids(1..=500),
        "a position the log never reached: by time"
    );
}

fn message(topic: &str) -> Message {
    Message {
        topic: TopicName::new(topic).expect("topic"),
        payload: Bytes::from_static(b"logged"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
        expires_at: None,
        publisher: None,
        encoded: EncodedCache::default(),
    }
}

fn unix_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.expect("clock after 1970").as_millis() as u64
}
