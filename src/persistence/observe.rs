//! [`ObserveStore`]: the broker hands the persistence actor the handles its commits
//! and restarts are counted on (`/metrics`).

use actix::prelude::*;

use super::actor::Persistence;
use crate::metrics::StoreMetrics;

/// Count commits (latency, batch size) and restarts on these handles from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ObserveStore(pub StoreMetrics);

impl Handler<ObserveStore> for Persistence {
    type Result = ();

    fn handle(&mut self, msg: ObserveStore, _: &mut Context<Self>) {
        // Kept across restarts: a supervisor restarts the same actor value.
        self.metrics = Some(msg.0);
    }
}
