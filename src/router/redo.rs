//! Messages whose sender cannot be told of a failure: from the cluster (another node
//! acknowledged the remote publish, the retained stream's consumer moved past the
//! retained message, the node taking a session over goes on without it, and the
//! isolation watcher evicts the sessions only once), and the broker's `Adopt` of each
//! stored session at start (sent without waiting, before any client can connect).
//! Their failed reply reaches nobody who could send them again, so the router keeps a
//! copy while it handles one ([`Call::keep`]), and `restarting` handles the copy a
//! failed handler left behind, before anything queued after it.

use actix::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tracing::error;

use super::actor::Router;
use super::messages::{
    Adopt, EvictSessions, RemoteRouted, RemoteTakeover, RetainRemote, RouteRemote,
};
use crate::guard::Call;

/// The copy of the message being handled.
pub(super) enum Redo {
    Remote(RouteRemote),
    Retain(RetainRemote),
    Takeover(RemoteTakeover),
    /// Without it a stored session would stay out of the registry: the messages for it
    /// would be skipped and its client's next CONNECT would delete its stored state.
    Adopt(Adopt),
    /// Without it the connections of a node cut off from the cluster would stay open.
    Evict(EvictSessions),
}

impl Call<Router> for RouteRemote {
    const NAME: &'static str = "RouteRemote";

    /// A message with a receipt is not kept: the cluster sees the failure (no member
    /// took it) and gives it to a member again.
    fn keep(&mut self, act: &mut Router) {
        if self.receipt.is_none() {
            act.redo = Some(Redo::Remote(self.clone()));
        }
    }

    fn call(self, act: &mut Router, ctx: &mut Context<Router>) -> RemoteRouted {
        let routed = act.on_route_remote(self, ctx);
        act.redo = None;
        routed
    }

    fn failed() -> RemoteRouted {
        RemoteRouted::default()
    }
}

impl Call<Router> for RetainRemote {
    const NAME: &'static str = "RetainRemote";

    fn keep(&mut self, act: &mut Router) {
        act.redo = Some(Redo::Retain(self.clone()));
    }

    fn call(self, act: &mut Router, ctx: &mut Context<Router>) {
        act.on_retain_remote(self, ctx);
        act.redo = None;
    }

    fn failed() {}
}

impl Call<Router> for RemoteTakeover {
    const NAME: &'static str = "RemoteTakeover";

    /// The answer to the other node moves to the copy: it must come once the session's
    /// final state is stored, not when a failed handler drops it.
    fn keep(&mut self, act: &mut Router) {
        act.redo = Some(Redo::Takeover(RemoteTakeover {
            client_id: self.client_id.clone(),
            flushed: self.flushed.take(),
            keep_stored: self.keep_stored,
        }));
    }

    fn call(mut self, act: &mut Router, ctx: &mut Context<Router>) {
        if let Some(Redo::Takeover(kept)) = act.redo.take() {
            self.flushed = kept.flushed;
        }
        act.on_remote_takeover(self, ctx);
    }

    fn failed() {}
}

impl Call<Router> for Adopt {
    const NAME: &'static str = "Adopt";

    fn keep(&mut self, act: &mut Router) {
        act.redo = Some(Redo::Adopt(self.clone()));
    }

    fn call(self, act: &mut Router, ctx: &mut Context<Router>) {
        act.on_adopt(self, ctx);
        act.redo = None;
    }

    fn failed() {}
}

impl Call<Router> for EvictSessions {
    const NAME: &'static str = "EvictSessions";

    fn keep(&mut self, act: &mut Router) {
        act.redo = Some(Redo::Evict(self.clone()));
    }

    fn call(self, act: &mut Router, ctx: &mut Context<Router>) {
        act.on_evict_sessions(self, ctx);
        act.redo = None;
    }

    fn failed() {}
}

impl Router {
    /// After a restart: handles once more the message whose handler failed (a
    /// remote message is routed again even if its first copy was counted: the failed
    /// run may have delivered part of it, and QoS 1 allows a duplicate, not a loss).
    /// Should it fail again it is dropped, so that no message fails the router forever.
    pub(super) fn redo(&mut self, ctx: &mut Context<Router>) {
        let Some(redo) = self.redo.take() else {
            return;
        };
        let again = catch_unwind(AssertUnwindSafe(|| match redo {
            Redo::Remote(msg) => {
                self.route_remote(msg, true);
            }
            Redo::Retain(msg) => self.on_retain_remote(msg, ctx),
            Redo::Takeover(msg) => self.on_remote_takeover(msg, ctx),
            Redo::Adopt(msg) => self.on_adopt(msg, ctx),
            Redo::Evict(msg) => self.on_evict_sessions(msg, ctx),
        }));
        if again.is_err() {
            error!("message failed the router twice; dropped");
        }
        self.outbox.flush();
    }
}
