//! Rebuilding the router's state from a store snapshot at start.

use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use super::state::RouterState;
use crate::message::ClientId;
use crate::persistence::convert::{message_from_record, subscription_from_record};
use crate::persistence::Snapshot;

impl RouterState {
    /// The subscriptions, persistent sessions and retained messages of a snapshot.
    pub fn restore(snapshot: &Snapshot) -> RouterState {
        let mut state = RouterState::new();
        // (The share strategy is set by the broker from its config.)
        let now = Instant::now();
        for session in &snapshot.sessions {
            let client = ClientId::new(session.record.client_id.clone());
            let next_seq = session.queue.last().map_or(1, |(seq, _)| seq + 1);
            state.set_persistent(&client, true, next_seq);
            for sub in &session.subscriptions {
                match subscription_from_record(sub) {
                    Some((filter, entry)) => {
                        state.subscribe(&client, &filter, entry, now);
                    }
                    None => {
                        warn!(client_id = %client, filter = %sub.filter, "stored filter is not valid; skipped")
                    }
                }
            }
        }
        for rec in &snapshot.retained {
            match message_from_record(rec) {
                Some(msg) => state.retain(&Arc::new(msg)),
                None => warn!(topic = %rec.topic, "stored retained topic is not valid; skipped"),
            }
        }
        state
    }
}
