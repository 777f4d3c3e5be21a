//! Fills a data directory with persistent sessions and queued messages, for measuring
//! start-up (replay) time: `benches/startup.sh` uses it.
//!
//! `cargo run --release --example fill_store -- DATA_DIR SESSIONS MESSAGES`

use std::path::PathBuf;
use std::time::Instant;

use starling::persistence::{
    store_dir, MessageRecord, Op, PropertiesRecord, QueuedRecord, SessionRecord, SledStore, Store,
    SubscriptionRecord,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(sessions), Some(messages)) = (args.get(1), args.get(2), args.get(3))
    else {
        anyhow::bail!("usage: fill_store DATA_DIR SESSIONS MESSAGES");
    };
    let (sessions, messages): (usize, usize) = (sessions.parse()?, messages.parse()?);
    let started = Instant::now();
    let mut store = SledStore::open(&store_dir(&PathBuf::from(dir)))?;
    let mut ops = Vec::with_capacity(10_000);
    let flush = |store: &mut SledStore, ops: &mut Vec<Op>| -> anyhow::Result<()> {
        store.apply(std::mem::take(ops))?;
        Ok(())
    };
    for i in 0..sessions {
        let client_id = format!("bench-{i}");
        ops.push(Op::PutSession(SessionRecord {
            client_id: client_id.clone(),
            protocol: 4,
            expiry_secs: u32::MAX,
            disconnected_at_ms: None,
            will: None,
        }));
        let sub = SubscriptionRecord {
            filter: format!("bench/{i}/#"),
            qos: 1,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
            subscription_id: None,
        };
        let client_id = client_id.into();
        ops.push(Op::PutSubscription { client_id, sub });
        if ops.len() >= 10_000 {
            flush(&mut store, &mut ops)?;
        }
    }
    for m in 0..messages {
        let i = m % sessions.max(1);
        let rec = QueuedRecord {
            message: MessageRecord {
                topic: format!("bench/{i}/x"),
                payload: vec![b'x'; 64],
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
        let seq = (m / sessions.max(1)) as u64 + 1;
        ops.push(Op::PutQueued {
            client_id: format!("bench-{i}").into(),
            seq,
            rec,
        });
        if ops.len() >= 10_000 {
            flush(&mut store, &mut ops)?;
        }
    }
    flush(&mut store, &mut ops)?;
    store.flush()?;
    eprintln!(
        "filled {dir}: {sessions} sessions, {messages} queued messages, {} bytes, in {:.1} s",
        store.size_on_disk()?,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
