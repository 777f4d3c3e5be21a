//! Shared subscriptions when a member leaves (MQTT 5.0 section 4.8.2): the messages it
//! had not acknowledged move to another online member of the same group as soon as
//! its connection is lost. A stored copy moves in the same batch as the new one.

use std::sync::Arc;

use actix::prelude::*;
use tracing::debug;

use super::actor::Router;
use super::messages::Reshare;
use crate::config::Durability;
use crate::persistence::{Op, PersistDeliveries, QueuedDelivery};
use crate::protocol::QoS;
use crate::session::state::Outgoing;
use crate::session::Deliver;

impl Handler<Reshare> for Router {
    type Result = Vec<bool>;

    fn handle(&mut self, msg: Reshare, ctx: &mut Self::Context) -> Vec<bool> {
        let n = msg.items.len();
        self.guarded(ctx, |act| act.reshare(msg))
            .unwrap_or_else(|| vec![false; n])
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

    /// Delivers `out` to another online member of its group; false when there is none.
    fn hand_to_another(&mut self, from: &crate::message::ClientId, out: Outgoing) -> bool {
        let placed = out
            .share
            .as_ref()
            .and_then(|share| self.state.reshare(&out.msg, share, from))
            .and_then(|d| Some((self.sessions.get(&d.client)?.clone(), d)));
        let Some((addr, d)) = placed else {
            return false;
        };
        let seq = match (d.qos, self.durability) {
            (QoS::AtMostOnce, _) | (_, Durability::Memory) => None,
            _ => self.state.next_seq(&d.client),
        };
        let targets: Vec<QueuedDelivery> = seq
            .map(|seq| QueuedDelivery {
                client: d.client.clone(),
                seq,
                qos: d.qos,
                retain: d.retain,
                sub_ids: d.sub_ids.clone(),
            })
            .into_iter()
            .collect();
        // The leaving member's stored copy goes in the same batch as the new one.
        let extra: Vec<Op> = out
            .seq
            .map(|seq| Op::DeleteQueued {
                client_id: from.as_str().to_owned(),
                seq,
            })
            .into_iter()
            .collect();
        debug!(%from, to = %d.client, topic = %out.msg.topic, "shared message handed to another member");
        addr.do_send(Deliver {
            msg: Arc::clone(&out.msg),
            qos: d.qos,
            retain: d.retain,
            sub_ids: d.sub_ids,
            seq,
            share: d.share,
        });
        if !targets.is_empty() || !extra.is_empty() {
            self.persistence.do_send(PersistDeliveries {
                msg: out.msg,
                targets,
                extra,
                done: None,
            });
        }
        true
    }
}
