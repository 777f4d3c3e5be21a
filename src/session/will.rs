//! The will message (section 3.1.2.5) as a routed message.

use std::time::{Duration, Instant};

use super::actor::Session;
use tracing::debug;

use crate::hooks::{Pending, Vetted};
use crate::message::{ClientId, Message};
use crate::metrics::DropReason;
use crate::protocol::LastWill;
use crate::router::messages::Route;

/// The message a will publishes: its will properties become PUBLISH properties, minus
/// the will delay interval, which only concerns the broker.
pub fn will_message(will: &LastWill, client: &ClientId) -> Message {
    let mut properties = will.properties.clone();
    if properties.will_delay_interval.is_some() {
        properties.will_delay_interval = None;
    }
    let expires_at = properties
        .message_expiry_interval
        .map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
    Message {
        topic: will.topic.clone(),
        payload: will.payload.clone(),
        qos: will.qos,
        retain: will.retain,
        properties,
        expires_at,
        publisher: Some(client.clone()),
        encoded: Default::default(),
    }
}

impl Session {
    /// Routes the will (its timing is decided by the lifecycle) once the authorizer
    /// and interceptors let it through, as a publish of the client's.
    pub(super) fn publish_will(&self, will: &LastWill) {
        let msg = will_message(will, &self.state.client_id);
        let router = self.router.clone();
        let client_id = self.state.client_id.clone();
        let metrics = self.shared.metrics.clone();
        let route = move |vetted: Vetted| match vetted {
            Vetted::Allowed(msg) => router.do_send(Route {
                msg,
                inbound_qos2: None,
            }),
            Vetted::Denied => debug!(%client_id, "will not authorized"),
            Vetted::Dropped => metrics.add_dropped(DropReason::Hook, 1),
        };
        match self.shared.hooks.vet_publish(&self.client, msg) {
            Pending::Ready(vetted) => route(vetted),
            // Not tied to this actor: the will goes out even if the session stops.
            Pending::Later(f) => {
                actix_rt::spawn(async move { route(f.await) });
            }
        }
    }
}
