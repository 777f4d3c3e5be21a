//! The will message (section 3.1.2.5) as a routed message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::actor::Session;
use crate::message::{ClientId, Message};
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
    /// Publishes the will now, or after the will delay (5.0) unless the session is
    /// resumed first [MQTT-3.1.3-9].
    pub(super) fn schedule_will(&mut self, ctx: &mut Context<Session>, expiry: u32) {
        let Some(will) = self.will.clone() else {
            return;
        };
        let delay = will.properties.will_delay_interval.unwrap_or(0);
        if delay == 0 || expiry == 0 {
            self.publish_will(&will);
            return;
        }
        self.delay_will(ctx, will, Duration::from_secs(u64::from(delay.min(expiry))));
    }

    /// Publishes `will` after `after`, or when the session ends if that comes first.
    pub(super) fn delay_will(
        &mut self,
        ctx: &mut Context<Session>,
        will: Box<LastWill>,
        after: Duration,
    ) {
        let handle = ctx.run_later(after, |act, ctx| act.fire_pending_will(ctx));
        self.pending_will = Some((handle, will));
    }

    /// Publishes a will that is waiting out its delay, now.
    pub(super) fn fire_pending_will(&mut self, ctx: &mut Context<Session>) {
        if let Some((handle, will)) = self.pending_will.take() {
            ctx.cancel_future(handle);
            self.publish_will(&will);
        }
    }

    /// The client came back within the will delay: no will.
    pub(super) fn cancel_pending_will(&mut self, ctx: &mut Context<Session>) {
        if let Some((handle, _)) = self.pending_will.take() {
            ctx.cancel_future(handle);
        }
    }

    pub(super) fn publish_will(&self, will: &LastWill) {
        let msg = will_message(will, &self.state.client_id);
        self.router.do_send(Route {
            msg: Arc::new(msg),
            inbound_qos2: None,
        });
    }
}
