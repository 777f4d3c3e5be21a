//! The local claims of client ids, and what a takeover notice from another node decides
//! against them. Pure: the ownership task (`super`) performs the verdicts.
//!
//! A notice carries the KV revision of the other node's claim; it wins against every
//! local claim with a lower revision. While a local claim is unresolved (its
//! compare-and-set in flight), or a local claim's connection is *settling* (between its
//! claim and the hand-over of its load), a notice is not answered: its reply waits, and
//! the verdict comes once the claims settle. So a node answers "released" only once it
//! has released its own previous owner and written nothing more, or once its session,
//! loaded and then closed, stored its final state; never while a load of its own might
//! still run on stale state.

use std::collections::HashMap;

use async_nats::Subject;

use crate::message::ClientId;

/// The local claims of one client id.
#[derive(Debug, Default)]
struct Local {
    /// Claims whose compare-and-set is in flight.
    pending: u32,
    /// Claims with a connection waiting for its load, between their start and the load.
    settling: u32,
    /// The highest revision a local claim got.
    revision: u64,
    /// The highest revision of a notice that came.
    seen: u64,
    /// Replies to notices held until the claims settle.
    deferred: Vec<Subject>,
}

/// What to do about a client id's local session.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Claims are unresolved: nothing yet.
    Wait,
    /// The local claim is the newest: answer these "kept".
    Kept(Vec<Subject>),
    /// A newer claim elsewhere: close the local session (if any) and answer these once
    /// its final state is stored.
    Lost(Vec<Subject>),
}

/// The local claims, by client id.
#[derive(Debug, Default)]
pub(super) struct Claims(HashMap<ClientId, Local>);

impl Claims {
    /// A local claim starts; `settles`: a connection waits for its load.
    pub(super) fn start(&mut self, id: &ClientId, settles: bool) {
        let local = self.0.entry(id.clone()).or_default();
        local.pending += 1;
        local.settling += u32::from(settles);
    }

    /// A notice of another node's claim at `revision`, with its reply subject.
    pub(super) fn notice(
        &mut self,
        id: &ClientId,
        revision: u64,
        reply: Option<Subject>,
    ) -> Verdict {
        let Some(local) = self.0.get_mut(id) else {
            // No claim here: whatever session the node has for the id goes.
            return Verdict::Lost(reply.into_iter().collect());
        };
        local.seen = local.seen.max(revision);
        local.deferred.extend(reply);
        self.resolve(id)
    }

    /// A local claim's compare-and-set ended (`None`: it failed).
    pub(super) fn claimed(&mut self, id: &ClientId, revision: Option<u64>) -> Verdict {
        let Some(local) = self.0.get_mut(id) else {
            return Verdict::Wait;
        };
        local.pending = local.pending.saturating_sub(1);
        local.revision = local.revision.max(revision.unwrap_or(0));
        self.resolve(id)
    }

    /// A settling claim handed its load over (or gave up).
    pub(super) fn settled(&mut self, id: &ClientId) -> Verdict {
        let Some(local) = self.0.get_mut(id) else {
            return Verdict::Wait;
        };
        local.settling = local.settling.saturating_sub(1);
        self.resolve(id)
    }

    /// True when a notice newer than every local claim of `id` came: a claim about to
    /// load is superseded and must give up.
    pub(super) fn superseded(&self, id: &ClientId) -> bool {
        self.0.get(id).is_some_and(|l| l.seen > l.revision)
    }

    /// The local session ended: forgotten unless claims are still unresolved.
    pub(super) fn release(&mut self, id: &ClientId) {
        if self
            .0
            .get(id)
            .is_some_and(|l| l.pending == 0 && l.settling == 0)
        {
            self.0.remove(id);
        }
    }

    fn resolve(&mut self, id: &ClientId) -> Verdict {
        let Some(local) = self.0.get_mut(id) else {
            return Verdict::Wait;
        };
        if local.pending > 0 || local.settling > 0 {
            return Verdict::Wait;
        }
        if local.seen > local.revision {
            let deferred = std::mem::take(&mut local.deferred);
            self.0.remove(id);
            return Verdict::Lost(deferred);
        }
        Verdict::Kept(std::mem::take(&mut local.deferred))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Option<Subject> {
        Some(Subject::from(s))
    }

    #[test]
    fn notices_only_beat_older_claims() {
        let (a, b) = (ClientId::new("a"), ClientId::new("b"));
        let mut c = Claims::default();
        c.start(&a, false);
        // A notice while the claim is pending waits for the claim's revision.
        assert_eq!(c.notice(&a, 7, reply("r1")), Verdict::Wait);
        assert_eq!(c.claimed(&a, Some(5)), Verdict::Lost(vec!["r1".into()]));
        c.start(&b, false);
        assert_eq!(c.notice(&b, 3, reply("r2")), Verdict::Wait);
        assert_eq!(c.claimed(&b, Some(5)), Verdict::Kept(vec!["r2".into()]));
        assert_eq!(c.notice(&b, 4, None), Verdict::Kept(vec![]));
        assert_eq!(c.notice(&b, 6, None), Verdict::Lost(vec![]));
        let x = ClientId::new("x");
        assert_eq!(
            c.notice(&x, 9, reply("r3")),
            Verdict::Lost(vec!["r3".into()])
        );
    }

    #[test]
    fn a_settling_claim_answers_only_once_settled() {
        let a = ClientId::new("a");
        let mut c = Claims::default();
        c.start(&a, true);
        assert_eq!(
            c.claimed(&a, Some(10)),
            Verdict::Wait,
            "its load is to come"
        );
        // The next claim's notice arrives while this node releases its previous owner.
        assert_eq!(c.notice(&a, 11, reply("r")), Verdict::Wait);
        assert!(c.superseded(&a), "so it must not load");
        c.release(&a);
        assert_eq!(c.settled(&a), Verdict::Lost(vec!["r".into()]));
        assert!(!c.superseded(&a));
    }

    #[test]
    fn a_second_local_claim_keeps_the_first_ones_load() {
        let a = ClientId::new("a");
        let mut c = Claims::default();
        c.start(&a, true);
        c.start(&a, false);
        assert_eq!(c.claimed(&a, Some(3)), Verdict::Wait);
        assert_eq!(c.notice(&a, 2, reply("old")), Verdict::Wait);
        assert_eq!(c.claimed(&a, Some(4)), Verdict::Wait);
        assert!(!c.superseded(&a));
        assert_eq!(c.settled(&a), Verdict::Kept(vec!["old".into()]));
    }
}
