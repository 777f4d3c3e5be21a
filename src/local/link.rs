//! The in-process client's [`SessionLink`]: the router hands it deliveries as it would a
//! session actor, and it puts each into the queue of the subscription it matched (by
//! subscription identifier, which the client gives each of its subscriptions).

use std::any::Any;
use std::sync::{Arc, Mutex, Weak};

use ahash::AHashMap as HashMap;

use super::inbox::Inbox;
use super::{Core, LocalClient};
use crate::delivery::Outgoing;
use crate::protocol::ReasonCode;
use crate::router::link::{SessionLink, Takeover};
use crate::topic::TopicFilter;

#[derive(Clone)]
pub(super) struct LocalLink(Arc<Mutex<Subs>>);

impl LocalLink {
    /// The link of the client `core` (not registered yet: unreachable).
    pub fn new(core: Weak<Core>) -> LocalLink {
        LocalLink(Arc::new(Mutex::new(Subs {
            by_id: HashMap::new(),
            closed: true,
            core,
        })))
    }
}

struct Subs {
    by_id: HashMap<u32, Arc<Inbox>>,
    /// Taken over, evicted or shut down: the router no longer reaches this client
    /// (until it registers again).
    closed: bool,
    /// The client, for rechecking its subscriptions.
    core: Weak<Core>,
}

impl LocalLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Subs> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, id: u32, inbox: Arc<Inbox>) {
        self.lock().by_id.insert(id, inbox);
    }

    /// Takes subscription `id` out; its inbox, if it was there.
    pub fn remove(&self, id: u32) -> Option<Arc<Inbox>> {
        self.lock().by_id.remove(&id)
    }

    /// Registered again: reachable.
    pub fn reopen(&self) {
        self.lock().closed = false;
    }

    /// Ends every subscription's stream: the client lost its registration.
    fn close_all(&self) {
        let mut subs = self.lock();
        subs.closed = true;
        for inbox in subs.by_id.values() {
            inbox.close();
        }
    }
}

impl SessionLink for LocalLink {
    fn deliver(&self, out: Outgoing) {
        // Handed over in process: nothing is in flight on a connection.
        out.settle();
        let subs = self.lock();
        match &out.sub_ids[..] {
            [id] => {
                if let Some(inbox) = subs.by_id.get(id) {
                    inbox.push(out);
                }
            }
            ids => {
                for id in ids {
                    if let Some(inbox) = subs.by_id.get(id) {
                        inbox.push(out.clone());
                    }
                }
            }
        }
    }

    fn deliver_batch(&self, batch: Vec<Outgoing>) {
        for out in batch {
            self.deliver(out);
        }
    }

    /// Another client (a network one, or another local client) claimed the client id:
    /// the subscriptions end. What they held is not handed over: the new session
    /// starts without them.
    fn take_over(&self, takeover: Takeover) {
        self.close_all();
        if let Some(flushed) = takeover.flushed {
            let _ = flushed.send(());
        }
    }

    fn evict(&self, _: ReasonCode, _: &'static str) {
        self.close_all();
    }

    fn shut_down(&self) {
        self.close_all();
    }

    fn recheck(&self, filters: Vec<TopicFilter>) {
        let Some(core) = self.lock().core.upgrade() else {
            return;
        };
        // The authorizer may answer late: never on the router's turn.
        actix_rt::spawn(async move { LocalClient { core }.recheck(filters).await });
    }

    fn connected(&self) -> bool {
        !self.lock().closed
    }

    fn same(&self, other: &dyn SessionLink) -> bool {
        let other = other.as_any().downcast_ref::<LocalLink>();
        other.is_some_and(|o| Arc::ptr_eq(&o.0, &self.0))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
