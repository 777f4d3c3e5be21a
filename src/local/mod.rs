//! In-process clients: the embedding application publishes and subscribes as a network
//! client would, without a connection. A [`LocalClient`] comes from
//! [`BrokerHandle::client`](crate::BrokerHandle::client). It shares the router with
//! network clients and obeys the same rules: the server's Maximum QoS, Retain
//! Available, wildcard and shared subscription availability, retained messages at
//! subscribe time, one queue per subscription bounded like a session's.
//!
//! - `publish` returns when a network client would get its PUBACK or PUBCOMP: after
//!   the store holds the message for persistent subscribers under `sync` durability.
//! - `subscribe` registers the client id with the router (a network client connecting
//!   with the same id takes it over, and the local subscriptions end) and returns a
//!   [`Subscription`], a `futures::Stream` of [`LocalMessage`]s.
//!
//! The broker's [`Authorizer`](crate::hooks::Authorizer) and hooks see in-process
//! clients as they see network ones ([`ClientInfo`] without a connection): publishes
//! are authorized and intercepted, subscriptions authorized, and each message is
//! authorized for receipt when the subscription's stream yields it.
//!
//! A [`LocalClient`]'s subscriptions end with it and with the broker. For a session
//! that outlives both,
//! [`BrokerHandle::persistent_client`](crate::BrokerHandle::persistent_client) gives a
//! [`PersistentClient`]: an MQTT 5.0 client over an in-memory pipe whose session (a
//! session expiry, its subscriptions, its queued QoS 1/2 messages) is stored and
//! restored like a network client's, with one stream for all its messages, each
//! acknowledged when the application takes it. It is a session like a network
//! client's, so the authorizer and hooks apply to it the same way.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use starling::protocol::QoS;
//! let broker = starling::Broker::new(starling::Config::default()).start().await?;
//! let app = broker.client("my-app");
//! let mut temps = app.subscribe("sensors/+/temp", QoS::AtLeastOnce).await?;
//! app.publish("sensors/1/temp", "21.5", QoS::AtLeastOnce, false).await?;
//! let first = temps.next().await.expect("a message");
//! println!("{}: {:?}", first.topic, first.payload);
//! broker.stop().await;
//! # Ok(()) }
//! ```

mod client_end;
mod deliveries;
mod inbox;
mod link;
mod persistent;
mod requests;
mod subscription;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use actix::Addr;
use ahash::AHashMap as HashMap;
use bytes::Bytes;

use self::inbox::Inbox;
use self::link::LocalLink;
pub use self::persistent::PersistentClient;
pub use self::subscription::{LocalMessage, Subscription};
use crate::delivery::{Outgoing, QueueLimits, SubEntry};
use crate::hooks::{Access, ClientInfo, Decision, Event, Pending, Vetted};
use crate::message::{ClientId, Message};
use crate::metrics::DropReason;
use crate::protocol::{Properties, QoS, ReasonCode, SubscriptionOptions};
use crate::router::link::{SessionLink, SessionRef};
use crate::router::messages::{Register, Route, SessionEnded, Subscribe, Unsubscribe};
use crate::router::Router;
use crate::session::policy::{check_payload, check_publish, reserved_topic, Refusal};
use crate::session::Shared;
use crate::topic::{TopicFilter, TopicName};

/// A client inside the embedding application. Cheap to clone (clones are the same
/// client); its client id is the publisher's for subscribers' No Local option.
#[derive(Clone)]
pub struct LocalClient {
    core: Arc<Core>,
}

/// What a client and its subscriptions share.
struct Core {
    id: ClientId,
    router: Addr<Router>,
    /// The configuration and the hooks, shared with the sessions.
    shared: Arc<Shared>,
    /// Who this client is, as hooks see it.
    info: Arc<ClientInfo>,
    link: LocalLink,
    /// Registered with the router (on the first subscribe).
    registered: tokio::sync::Mutex<bool>,
    /// Each filter subscribed to, with its subscription's identifier.
    filters: Mutex<HashMap<TopicFilter, u32>>,
    next_id: AtomicU32,
}

/// What became of an accepted publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// How many sessions it was handed to on this node (in a cluster, subscribers
    /// elsewhere are not counted).
    pub matched: usize,
}

/// Why a publish or a subscribe was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused ({reason:?}): {why}")]
pub struct Refused {
    /// The reason code a network client would have got.
    pub reason: ReasonCode,
    /// Why, in words (a network client's Reason String).
    pub why: &'static str,
}

impl LocalClient {
    pub(crate) fn new(id: ClientId, shared: Arc<Shared>) -> LocalClient {
        let core = |weak: &std::sync::Weak<Core>| Core {
            info: Arc::new(ClientInfo::new(id.clone())),
            id,
            router: shared.router.clone(),
            shared,
            link: LocalLink::new(weak.clone()),
            registered: tokio::sync::Mutex::new(false),
            filters: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
        };
        LocalClient {
            core: Arc::new_cyclic(core),
        }
    }

    /// This client's id.
    pub fn id(&self) -> &ClientId {
        &self.core.id
    }

    /// Publishes `payload` on `topic`. Returns once the message is routed and, for what
    /// the store must keep, stored as the durability setting asks: when a network
    /// client would get its PUBACK (QoS 1) or PUBCOMP (QoS 2). The broker's authorizer
    /// and interceptor hooks see it first, as a network client's publish; one that an
    /// interceptor dropped is `Published` with nothing matched.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Published, Refused> {
        let msg = self.message(topic, payload.into(), qos, retain)?;
        if reserved_topic(&msg.topic) {
            return Err(refused(ReasonCode::NOT_AUTHORIZED, "$SYS is the broker's"));
        }
        let vetted = match self.core.shared.hooks.vet_publish(&self.core.info, msg) {
            Pending::Ready(vetted) => vetted,
            Pending::Later(f) => f.await,
        };
        let msg = match vetted {
            Vetted::Allowed(msg) => msg,
            Vetted::Dropped => {
                self.core.shared.metrics.add_dropped(DropReason::Hook, 1);
                return Ok(Published { matched: 0 });
            }
            Vetted::Denied => return Err(not_authorized()),
        };
        let routed = self
            .core
            .router
            .send(Route {
                msg,
                inbound_qos2: None,
            })
            .await
            .map_err(|_| stopped())?;
        let stored = match routed.durable {
            Some(durable) => durable.wait().await,
            None => true,
        };
        match stored {
            true => Ok(Published {
                matched: routed.matched,
            }),
            false => Err(refused(
                ReasonCode::UNSPECIFIED_ERROR,
                "the message could not be stored",
            )),
        }
    }

    /// Subscribes to `filter` (a `$share/{group}/...` filter joins a shared
    /// subscription) at `qos`, granted up to the server's Maximum QoS. The retained
    /// messages it matches come first. One subscription per filter and client:
    /// subscribing again to a filter this client holds is refused.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<Subscription, Refused> {
        let filter = self.filter(filter)?;
        let allowed = match self.core.authorize(Access::Subscribe, filter.as_str()) {
            Pending::Ready(decision) => decision,
            Pending::Later(f) => f.await,
        };
        if allowed == Decision::Deny {
            return Err(not_authorized());
        }
        let granted = qos.min(self.core.shared.config.capabilities.max_qos());
        let id = self.core.next_id.fetch_add(1, Ordering::Relaxed);
        if !self.core.claim_filter(&filter, id) {
            return Err(refused(
                ReasonCode::UNSPECIFIED_ERROR,
                "this client already subscribes to this filter",
            ));
        }
        if let Err(e) = self.core.register().await {
            self.core.forget_filter(&filter);
            return Err(e);
        }
        let inbox = Arc::new(Inbox::new(self.core.queue_limits(), granted));
        self.core.link.insert(id, Arc::clone(&inbox));
        // From here on, dropping it unsubscribes (also when subscribing fails below).
        let subscription = Subscription {
            core: Arc::clone(&self.core),
            inbox,
            filter: filter.clone(),
            id,
            granted,
            pending: None,
        };
        let entry = SubEntry {
            options: SubscriptionOptions::with_qos(granted),
            id: Some(id),
        };
        let subscribe = Subscribe {
            client_id: self.core.id.clone(),
            filters: vec![(filter, entry)],
            // Only while this client still holds its id (another connection may have
            // taken it since the registration).
            from: Some(SessionRef::new(self.core.link.clone())),
        };
        let reply = self
            .core
            .router
            .send(subscribe)
            .await
            .map_err(|_| stopped())?;
        let Some(outcome) = reply.outcomes.into_iter().next() else {
            let why = "the client id was taken over, or the router failed";
            return Err(refused(ReasonCode::UNSPECIFIED_ERROR, why));
        };
        if outcome.over_quota {
            let why = "the client holds [limits] max_subscriptions_per_client subscriptions";
            return Err(refused(ReasonCode::QUOTA_EXCEEDED, why));
        }
        let retained = outcome.retained.into_iter().map(|msg| Outgoing {
            qos: msg.qos.min(granted),
            msg,
            retain: true,
            sub_ids: vec![id],
            seq: None,
            share: None,
            receipt: None,
        });
        subscription.inbox.push_front(retained.collect());
        let (info, filter) = (&self.core.info, &subscription.filter);
        self.core.shared.hooks.event(|| Event::Subscribed {
            client: Arc::clone(info),
            filter: filter.clone(),
            qos: granted,
        });
        Ok(subscription)
    }

    /// Unsubscribes from `filter`: its [`Subscription`] ends (the stream yields what it
    /// had queued, then `None`). Returns false when this client did not subscribe to
    /// it. Waits until the router no longer routes to it.
    pub async fn unsubscribe(&self, filter: &str) -> bool {
        let Ok(filter) = TopicFilter::new(filter) else {
            return false;
        };
        let Some(id) = self.core.filters().remove(&filter) else {
            return false;
        };
        let ended = match self.core.link.remove(id) {
            Some(inbox) => {
                let ended = inbox.is_closed();
                inbox.close();
                ended
            }
            None => true,
        };
        self.core.announce_unsubscribed(&filter);
        if !ended {
            let unsubscribe = Unsubscribe {
                client_id: self.core.id.clone(),
                filters: vec![filter],
            };
            let _ = self.core.router.send(unsubscribe).await;
        }
        true
    }

    /// Unsubscribes from whichever of `filters` the authorizer no longer allows.
    async fn recheck(&self, filters: Vec<TopicFilter>) {
        for filter in filters {
            let decision = match self.core.authorize(Access::Subscribe, filter.as_str()) {
                Pending::Ready(d) => d,
                Pending::Later(f) => f.await,
            };
            if decision == Decision::Deny {
                tracing::info!(client_id = %self.core.id, %filter, "subscription no longer authorized; dropped");
                self.unsubscribe(filter.as_str()).await;
            }
        }
    }

    /// The topic filter, or the reason a network client's SUBACK would give.
    fn filter(&self, filter: &str) -> Result<TopicFilter, Refused> {
        let filter = TopicFilter::new(filter)
            .map_err(|_| refused(ReasonCode::TOPIC_FILTER_INVALID, "not a valid topic filter"))?;
        let caps = &self.core.shared.config.capabilities;
        if filter.share().is_some() && !caps.shared_subscriptions {
            let why = "shared subscriptions are not available on this server";
            return Err(refused(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, why));
        }
        if filter.has_wildcards() && !caps.wildcard_subscriptions {
            let why = "wildcard subscriptions are not available on this server";
            return Err(refused(
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                why,
            ));
        }
        Ok(filter)
    }

    /// The message a network PUBLISH with these fields would become, or its refusal.
    fn message(
        &self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<Message, Refused> {
        let topic = TopicName::new(topic)
            .map_err(|_| refused(ReasonCode::TOPIC_NAME_INVALID, "not a valid topic name"))?;
        let refusal = |r: Refusal| refused(r.reason, r.text);
        let config = &self.core.shared.config;
        check_publish(&config.capabilities, qos, retain).map_err(refusal)?;
        let properties = Properties::default();
        let validate = config.limits.validate_utf8_payloads;
        check_payload(validate, &properties, &payload).map_err(refusal)?;
        Ok(Message {
            topic,
            payload,
            qos,
            retain,
            properties,
            expires_at: None,
            publisher: Some(self.core.id.clone()),
            encoded: Default::default(),
        })
    }
}

impl Core {
    /// Registers the client id with the router (once; again after a takeover ended the
    /// registration), as a session that is not persistent.
    async fn register(&self) -> Result<(), Refused> {
        let mut registered = self.registered.lock().await;
        if *registered && self.link.connected() {
            return Ok(());
        }
        // Not reachable until the router answered: a registration that ended (taken
        // over, evicted) is replaced, not taken over by itself.
        let register = Register {
            client_id: self.id.clone(),
            clean_start: true,
            addr: SessionRef::new(self.link.clone()),
            persist: None,
        };
        let reply = self.router.send(register).await.map_err(|_| stopped())?;
        if reply.is_none() {
            return Err(refused(ReasonCode::UNSPECIFIED_ERROR, "the router failed"));
        }
        self.link.reopen();
        *registered = true;
        Ok(())
    }

    fn queue_limits(&self) -> QueueLimits {
        let limits = &self.shared.config.limits;
        QueueLimits {
            max_messages: limits.max_queued_messages,
            max_bytes: limits.max_queued_bytes,
            drop_oldest: limits.queue_full == crate::config::QueueFull::DropOldest,
            // In-process subscriptions drop as with drop_new: they have no pressure.
            backpressure: false,
        }
    }

    fn announce_unsubscribed(&self, filter: &TopicFilter) {
        let client = Arc::clone(&self.info);
        self.shared.hooks.event(|| Event::Unsubscribed {
            client,
            filter: filter.clone(),
        });
    }

    fn authorize(&self, access: Access, topic: &str) -> Pending<Decision> {
        self.shared.hooks.authorize(&self.info, access, topic)
    }

    fn filters(&self) -> std::sync::MutexGuard<'_, HashMap<TopicFilter, u32>> {
        self.filters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `filter` for subscription `id`; false when another subscription has it.
    fn claim_filter(&self, filter: &TopicFilter, id: u32) -> bool {
        let mut filters = self.filters();
        if filters.contains_key(filter) {
            return false;
        }
        filters.insert(filter.clone(), id);
        true
    }

    fn has_filter(&self, filter: &TopicFilter, id: u32) -> bool {
        self.filters().get(filter) == Some(&id)
    }

    fn forget_filter(&self, filter: &TopicFilter) {
        self.filters().remove(filter);
    }
}

impl Drop for Core {
    /// The last clone of the client and the last of its subscriptions are gone: its
    /// registration ends, as a session that is not persistent ends (the router ignores
    /// it when this client does not hold the id, or never registered).
    fn drop(&mut self) {
        self.router.do_send(SessionEnded {
            client_id: self.id.clone(),
            addr: SessionRef::new(self.link.clone()),
        });
    }
}

fn refused(reason: ReasonCode, why: &'static str) -> Refused {
    Refused { reason, why }
}

fn not_authorized() -> Refused {
    refused(ReasonCode::NOT_AUTHORIZED, "not authorized")
}

fn stopped() -> Refused {
    refused(ReasonCode::UNSPECIFIED_ERROR, "the broker has stopped")
}
