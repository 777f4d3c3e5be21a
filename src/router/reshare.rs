//! Shared subscriptions when a member leaves (MQTT 5.0 section 4.8.2): the messages it
//! had not acknowledged move to another online member of the same group as soon as
//! its connection is lost. A stored copy moves in the same batch as the new one.

use actix::prelude::*;
use tracing::debug;

use super::actor::Router;
use super::messages::Reshare;
use crate::delivery::Outgoing;
use crate::message::ClientId;
use crate::persistence::Op;

impl Router {
    pub(super) fn on_reshare(&mut self, msg: Reshare, _: &mut Context<Self>) -> Option<Vec<bool>> {
        self.outbox.flush();
        let handed = self.reshare(msg);
        // The member leaving waits on this answer: what it handed over goes out now.
        self.outbox.flush();
        Some(handed)
    }
}

impl Router {
    fn reshare(&mut self, msg: Reshare) -> Vec<bool> {
        let from = msg.from;
        msg.items
            .into_iter()
            .map(|out| self.hand_to_another(&from, out))
            .collect()
    }

    /// Delivers `out` to another online member of its group, like a routed message;
    /// false when there is none (the message then stays with `from`, stored copy and
    /// all).
    fn hand_to_another(&mut self, from: &ClientId, out: Outgoing) -> bool {
        let Some(mut d) = out
            .share
            .as_ref()
            .and_then(|share| self.state.reshare(&out.msg, share, from))
            .filter(|d| self.sessions.contains_key(&d.client))
        else {
            return false;
        };
        // Whoever waits for the client's acknowledgement waits for the new member's.
        d.receipt = out.receipt;
        debug!(%from, to = %d.client, topic = %out.msg.topic, "shared message handed to another member");
        // The leaving member's stored copy goes in the same batch as the new one.
        let forget = out.seq.map(|seq| Op::DeleteQueued {
            client_id: from.clone(),
            seq,
        });
        self.deliver(&out.msg, [d], forget.into_iter().collect(), None);
        true
    }
}
