//! The broker's hooks as sessions and in-process clients call them: the authorizer,
//! the interceptors in order, the event queue, all within the hook budget.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::answer::Inner;
use super::events::EventQueue;
use super::{Access, Authorizer, ClientInfo, Decision, Event, Hook, Intercept, Publication};
use crate::message::{ClientId, Message};

/// A hook's result, now or later (the budget already applied).
pub(crate) enum Pending<T> {
    Ready(T),
    Later(Pin<Box<dyn Future<Output = T> + Send>>),
}

/// What becomes of a publish.
#[derive(Debug)]
pub(crate) enum Vetted {
    /// Route it (as rewritten).
    Allowed(Arc<Message>),
    /// An interceptor dropped it: acknowledge, do not route.
    Dropped,
    /// Not authorized, or a hook ran out of budget.
    Denied,
}

/// Everything hooked into one broker.
pub(crate) struct Hooks {
    authorizer: Option<Arc<dyn Authorizer>>,
    hooks: Arc<[Arc<dyn Hook>]>,
    budget: Duration,
    /// Whether rewritten publishes may keep RETAIN (the server offers retained messages).
    retain_available: bool,
    events: Option<EventQueue>,
}

impl Hooks {
    pub fn new(
        authorizer: Option<Arc<dyn Authorizer>>,
        hooks: Vec<Arc<dyn Hook>>,
        budget: Duration,
        retain_available: bool,
        events: Option<EventQueue>,
    ) -> Hooks {
        Hooks {
            authorizer,
            hooks: hooks.into(),
            budget,
            retain_available,
            events,
        }
    }

    /// True when an authorizer decides (otherwise everything is allowed).
    pub fn authorizes(&self) -> bool {
        self.authorizer.is_some()
    }

    /// True when publishes must be vetted (an authorizer or an interceptor).
    pub fn vets_publishes(&self) -> bool {
        self.authorizer.is_some() || !self.hooks.is_empty()
    }

    /// Whether `client` may do `access` on `topic`; a late answer is denied once the
    /// budget runs out.
    pub fn authorize(&self, client: &ClientInfo, access: Access, topic: &str) -> Pending<Decision> {
        let Some(authorizer) = &self.authorizer else {
            return Pending::Ready(Decision::Allow);
        };
        match authorizer.authorize(client, access, topic).0 {
            Inner::Ready(d) => Pending::Ready(d),
            Inner::Later(f) => {
                let deadline = Instant::now() + self.budget;
                let who = client.client_id.clone();
                Pending::Later(Box::pin(async move {
                    within(deadline, f, &who, "authorizer")
                        .await
                        .unwrap_or(Decision::Deny)
                }))
            }
        }
    }

    /// Authorizes a publish, then runs the interceptors over it in order.
    pub fn vet_publish(&self, client: &Arc<ClientInfo>, msg: Message) -> Pending<Vetted> {
        if let Some(authorizer) = &self.authorizer {
            let answer = authorizer.authorize(client, Access::Publish, msg.topic.as_str());
            match answer.0 {
                Inner::Ready(Decision::Allow) => {}
                Inner::Ready(Decision::Deny) => return Pending::Ready(Vetted::Denied),
                Inner::Later(f) => {
                    let rest = self.rest(client, 0);
                    return Pending::Later(Box::pin(async move {
                        let who = &rest.client.client_id;
                        match within(rest.deadline, f, who, "authorizer").await {
                            Some(Decision::Allow) => rest.run(msg).await,
                            _ => Vetted::Denied,
                        }
                    }));
                }
            }
        }
        let mut msg = msg;
        for (i, hook) in self.hooks.iter().enumerate() {
            let (publication, kept) = split(msg);
            match hook.intercept(client, publication).0 {
                Inner::Ready(Intercept::Drop) => return Pending::Ready(Vetted::Dropped),
                Inner::Ready(Intercept::Publish(p)) => msg = kept.join(p, self.retain_available),
                Inner::Later(f) => {
                    let rest = self.rest(client, i + 1);
                    return Pending::Later(Box::pin(async move {
                        let who = &rest.client.client_id;
                        match within(rest.deadline, f, who, "interceptor").await {
                            Some(Intercept::Publish(p)) => {
                                let msg = kept.join(p, rest.retain);
                                rest.run(msg).await
                            }
                            Some(Intercept::Drop) => Vetted::Dropped,
                            None => Vetted::Denied,
                        }
                    }));
                }
            }
        }
        Pending::Ready(Vetted::Allowed(Arc::new(msg)))
    }

    /// True when hooks hear events.
    pub fn has_events(&self) -> bool {
        self.events.is_some()
    }

    /// Queues an event for the hooks (nothing when there are none).
    pub fn event(&self, event: impl FnOnce() -> Event) {
        if let Some(events) = &self.events {
            events.push(event());
        }
    }

    fn rest(&self, client: &Arc<ClientInfo>, from: usize) -> Rest {
        Rest {
            hooks: Arc::clone(&self.hooks),
            from,
            client: Arc::clone(client),
            deadline: Instant::now() + self.budget,
            retain: self.retain_available,
        }
    }
}

/// The interceptors still to run over a publish after one answered late.
struct Rest {
    hooks: Arc<[Arc<dyn Hook>]>,
    from: usize,
    client: Arc<ClientInfo>,
    deadline: Instant,
    retain: bool,
}

impl Rest {
    async fn run(self, mut msg: Message) -> Vetted {
        for hook in &self.hooks[self.from.min(self.hooks.len())..] {
            let (publication, kept) = split(msg);
            let intercepted = match hook.intercept(&self.client, publication).0 {
                Inner::Ready(i) => Some(i),
                Inner::Later(f) => {
                    within(self.deadline, f, &self.client.client_id, "interceptor").await
                }
            };
            match intercepted {
                Some(Intercept::Publish(p)) => msg = kept.join(p, self.retain),
                Some(Intercept::Drop) => return Vetted::Dropped,
                None => return Vetted::Denied,
            }
        }
        Vetted::Allowed(Arc::new(msg))
    }
}

/// What a publication leaves out of its message.
struct Kept {
    qos: crate::protocol::QoS,
    expires_at: Option<Instant>,
    publisher: Option<ClientId>,
}

fn split(msg: Message) -> (Publication, Kept) {
    let kept = Kept {
        qos: msg.qos,
        expires_at: msg.expires_at,
        publisher: msg.publisher,
    };
    let publication = Publication {
        topic: msg.topic,
        payload: msg.payload,
        qos: msg.qos,
        retain: msg.retain,
        properties: msg.properties,
    };
    (publication, kept)
}

impl Kept {
    /// The message a (possibly rewritten) publication becomes: never above the QoS it
    /// was published with, retained only where the server offers it.
    fn join(self, p: Publication, retain_available: bool) -> Message {
        Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos.min(self.qos),
            retain: p.retain && retain_available,
            properties: p.properties,
            expires_at: self.expires_at,
            publisher: self.publisher,
            encoded: Default::default(),
        }
    }
}

/// Awaits `f` until `deadline`; `None` (and a warning) when it ran out.
async fn within<T>(
    deadline: Instant,
    f: Pin<Box<dyn Future<Output = T> + Send>>,
    client: &ClientId,
    what: &'static str,
) -> Option<T> {
    match tokio::time::timeout_at(deadline.into(), f).await {
        Ok(value) => Some(value),
        Err(_) => {
            warn!(client_id = %client, hook = what, "hook budget ran out; refusing");
            None
        }
    }
}
