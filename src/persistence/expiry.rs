//! Expiry at start: drops expired sessions, queued messages and retained messages.

use super::store::{Op, Snapshot};
use crate::message::ClientId;

/// Removes from `snapshot` what expired at `now_ms` (unix ms) and returns the ops that
/// remove it from the store too:
/// - sessions whose `disconnected_at_ms + expiry_secs * 1000 <= now_ms`
///   (`expiry_secs == u32::MAX` never expires). A session still marked connected
///   (`disconnected_at_ms: None`, i.e. the broker stopped while it was online) counts as
///   disconnected at `now_ms`: its record in the snapshot gets `Some(now_ms)` and a
///   `PutSession` op is returned so its expiry runs from this start. With
///   `expiry_secs == 0` such a session therefore expires now (MQTT: it ends with the
///   network connection).
/// - queued messages whose message `expires_at_ms <= now_ms`, unless already in flight
///   (packet id set): MQTT 5 only drops messages whose onward delivery has not started.
/// - retained messages whose `expires_at_ms <= now_ms`.
pub fn drop_expired(snapshot: &mut Snapshot, now_ms: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    snapshot.sessions.retain_mut(|s| {
        let rec = &mut s.record;
        let was_online = rec.disconnected_at_ms.is_none();
        let since = *rec.disconnected_at_ms.get_or_insert(now_ms);
        let expired = rec.expiry_secs != u32::MAX
            && since.saturating_add(u64::from(rec.expiry_secs) * 1000) <= now_ms;
        if expired {
            ops.push(Op::DeleteSession {
                client_id: ClientId::new(rec.client_id.clone()),
            });
            return false;
        }
        if was_online {
            ops.push(Op::PutSession(rec.clone()));
        }
        let client_id = ClientId::new(rec.client_id.clone());
        s.queue.retain(|(seq, q)| {
            let drop = q.packet_id.is_none() && q.message.is_expired(now_ms);
            if drop {
                ops.push(Op::DeleteQueued {
                    client_id: client_id.clone(),
                    seq: *seq,
                });
            }
            !drop
        });
        true
    });
    snapshot.retained.retain(|m| {
        let drop = m.is_expired(now_ms);
        if drop {
            ops.push(Op::DeleteRetained {
                topic: m.topic.clone(),
            });
        }
        !drop
    });
    ops
}
