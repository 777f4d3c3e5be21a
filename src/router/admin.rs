//! What the admin API (`/api/v1`, see `crate::http`) asks the router: its registry of
//! sessions, the subscriptions and the retained messages, answered as plain data, and
//! an administrator's disconnect or retained-message deletion. Node-local: in cluster
//! mode each node answers for its own sessions and copies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use actix::dev::{MessageResponse, OneshotSender};
use actix::prelude::*;
use tokio::sync::oneshot;

use super::actor::Router;
use super::state::RouterState;
use crate::delivery::SubEntry;
use crate::guard::Call;
use crate::message::{ClientId, Message};
use crate::persistence::Op;
use crate::protocol::ProtocolVersion;
use crate::topic::{matches, TopicFilter, TopicName};

/// A slice of a sorted list: `offset` items skipped, at most `limit` taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: usize,
    pub limit: usize,
}

/// One page of a list, with the length of the whole list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub total: usize,
    pub items: Vec<T>,
}

impl<T> Default for Page<T> {
    fn default() -> Page<T> {
        Page {
            total: 0,
            items: Vec::new(),
        }
    }
}

impl<A: Actor, M: actix::Message<Result = Page<T>>, T: 'static> MessageResponse<A, M> for Page<T> {
    fn handle(self, _: &mut A::Context, tx: Option<OneshotSender<Page<T>>>) {
        if let Some(tx) = tx {
            let _ = tx.send(self);
        }
    }
}

impl<T> Page<T> {
    /// The `window` of `all` (sorted by the caller).
    pub fn of(all: Vec<T>, window: Window) -> Page<T> {
        let total = all.len();
        let items = all
            .into_iter()
            .skip(window.offset)
            .take(window.limit)
            .collect();
        Page { total, items }
    }
}

/// A registered session as the router knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSummary {
    pub client_id: ClientId,
    /// Its client has a live connection.
    pub connected: bool,
    /// Its state is stored (session expiry > 0).
    pub persistent: bool,
    pub subscriptions: usize,
}

/// One subscription of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub client_id: ClientId,
    pub filter: TopicFilter,
    pub entry: SubEntry,
}

/// What a session tells of itself (see
/// [`SessionLink::describe`](super::link::SessionLink::describe)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionDetails {
    /// The client's address; `None` for an in-process client or no connection.
    pub address: Option<SocketAddr>,
    /// The MQTT version of its last connection.
    pub protocol: Option<ProtocolVersion>,
    pub username: Option<String>,
    /// Since when its live connection is up; `None` without one.
    pub connected_since: Option<SystemTime>,
    /// Messages queued for it.
    pub queued: usize,
    /// Messages sent and not yet acknowledged.
    pub inflight: usize,
}

/// One client: the router's part, and the link that answers the rest.
#[derive(MessageResponse)]
pub struct ClientEntry {
    pub summary: ClientSummary,
    pub subscriptions: Vec<SubscriptionInfo>,
    link: super::link::SessionRef,
}

impl ClientEntry {
    /// Asks the session for its details; the answer is `None` when it has none to give
    /// (its actor stopped, or an in-process client).
    pub fn describe(&self) -> oneshot::Receiver<SessionDetails> {
        let (tx, rx) = oneshot::channel();
        self.link.describe(tx);
        rx
    }
}

/// The registered clients, sorted by id.
#[derive(Message)]
#[rtype(result = "Page<ClientSummary>")]
pub struct ListClients(pub Window);

/// One client, when registered.
#[derive(Message)]
#[rtype(result = "Option<ClientEntry>")]
pub struct FindClient(pub ClientId);

/// An administrator disconnects a client (5.0: DISCONNECT 0x98); with `discard` its
/// session ends too. The answer is false when no session has the id.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct KickClient {
    pub client_id: ClientId,
    pub discard: bool,
}

/// The subscriptions whose filter `filter` covers (all of them without one), sorted
/// by filter, then client id.
#[derive(Message)]
#[rtype(result = "Page<SubscriptionInfo>")]
pub struct ListSubscriptions {
    pub filter: Option<TopicFilter>,
    pub window: Window,
}

/// The retained messages whose topic matches `filter`, sorted by topic.
#[derive(Message)]
#[rtype(result = "Page<Arc<Message>>")]
pub struct ListRetained {
    pub filter: TopicFilter,
    pub window: Window,
}

/// An administrator deletes the retained message of `topic` (not routed to anyone).
/// The answer is false when there was none.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct DeleteRetained(pub TopicName);

impl RouterState {
    fn summary(&self, client: &ClientId) -> ClientSummary {
        ClientSummary {
            client_id: client.clone(),
            connected: self.online.contains(client),
            persistent: self.is_persistent(client),
            subscriptions: self.subs.get(client).map_or(0, |s| s.len()),
        }
    }

    fn client_subscriptions(&self, client: &ClientId) -> Vec<SubscriptionInfo> {
        let mut subs: Vec<_> = self
            .subs
            .get(client)
            .into_iter()
            .flatten()
            .map(|(filter, entry)| SubscriptionInfo {
                client_id: client.clone(),
                filter: filter.clone(),
                entry: *entry,
            })
            .collect();
        subs.sort_by(|a, b| a.filter.as_str().cmp(b.filter.as_str()));
        subs
    }

    /// Every subscription whose filter `filter` covers, read as a topic name (`a/#`
    /// covers `a/+/b`); an exact filter lists those equal to it.
    fn subscriptions_under(&self, filter: Option<&TopicFilter>) -> Vec<SubscriptionInfo> {
        let covers = |f: &TopicFilter| match filter {
            None => true,
            Some(wanted) => wanted == f || matches(wanted.as_str(), f.as_str()),
        };
        let mut all: Vec<_> = self
            .subs
            .iter()
            .flat_map(|(client, subs)| subs.iter().map(move |(f, e)| (client, f, e)))
            .filter(|(_, f, _)| covers(f))
            .map(|(client, filter, entry)| SubscriptionInfo {
                client_id: client.clone(),
                filter: filter.clone(),
                entry: *entry,
            })
            .collect();
        all.sort_by(|a, b| {
            (a.filter.as_str(), a.client_id.as_str())
                .cmp(&(b.filter.as_str(), b.client_id.as_str()))
        });
        all
    }

    fn retained_under(&self, filter: &TopicFilter) -> Vec<Arc<Message>> {
        let mut all = Vec::new();
        self.retained
            .for_each_match(filter.match_filter(), |_, msg| all.push(Arc::clone(msg)));
        all.sort_by(|a, b| a.topic.as_str().cmp(b.topic.as_str()));
        all
    }
}

impl Router {
    fn on_list_clients(&mut self, msg: ListClients) -> Page<ClientSummary> {
        let mut ids: Vec<&ClientId> = self.sessions.keys().collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let all = ids.into_iter().map(|id| self.state.summary(id)).collect();
        Page::of(all, msg.0)
    }

    fn on_find_client(&mut self, msg: FindClient) -> Option<ClientEntry> {
        let link = self.sessions.get(&msg.0)?.clone();
        Some(ClientEntry {
            summary: self.state.summary(&msg.0),
            subscriptions: self.state.client_subscriptions(&msg.0),
            link,
        })
    }

    fn on_kick_client(&mut self, msg: KickClient) -> bool {
        let Some(link) = self.sessions.get(&msg.client_id).cloned() else {
            return false;
        };
        if link.connected() {
            // A discarded session tells the router it ended (`SessionEnded`).
            link.kick(msg.discard);
        } else if msg.discard {
            // Its actor died: nothing would tell the router.
            self.set_session(&msg.client_id, None);
            self.drop_client(&msg.client_id);
            self.sync_interest();
            self.cluster.release(&msg.client_id);
        }
        true
    }

    fn on_delete_retained(&mut self, msg: DeleteRetained) -> bool {
        if self.state.retained.get(&msg.0).is_none() {
            return false;
        }
        self.state.retained.remove(&msg.0);
        self.cluster.forget_retained(&Arc::new(Message {
            topic: msg.0.clone(),
            payload: bytes::Bytes::new(),
            qos: crate::protocol::QoS::AtMostOnce,
            retain: true,
            properties: Default::default(),
            expires_at: None,
            publisher: None,
            encoded: Default::default(),
        }));
        if self.durability != crate::config::Durability::Memory {
            let topic = msg.0.as_str().to_owned();
            self.persist(vec![Op::DeleteRetained { topic }]);
        }
        true
    }
}

/// The admin messages go through the router's guarded dispatch like every other; a
/// failed handler answers as if nothing matched.
macro_rules! admin_calls {
    ($($msg:ident => |$act:ident, $m:ident| $body:expr, failed $failed:expr;)*) => {$(
        impl Call<Router> for $msg {
            const NAME: &'static str = stringify!($msg);

            fn call(self, $act: &mut Router, _: &mut Context<Router>) -> Self::Result {
                let $m = self;
                $body
            }

            fn failed() -> Self::Result {
                $failed
            }
        }
    )*};
}

admin_calls! {
    ListClients => |act, m| act.on_list_clients(m), failed Page::default();
    FindClient => |act, m| act.on_find_client(m), failed None;
    KickClient => |act, m| act.on_kick_client(m), failed false;
    ListSubscriptions => |act, m| {
        Page::of(act.state.subscriptions_under(m.filter.as_ref()), m.window)
    }, failed Page::default();
    ListRetained => |act, m| Page::of(act.state.retained_under(&m.filter), m.window),
        failed Page::default();
    DeleteRetained => |act, m| act.on_delete_retained(m), failed false;
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::protocol::{QoS, SubscriptionOptions};

    fn subscribe(state: &mut RouterState, client: &str, filter: &str) {
        let entry = SubEntry {
            options: SubscriptionOptions::with_qos(QoS::AtLeastOnce),
            id: None,
        };
        let filter = TopicFilter::new(filter).expect("filter");
        state.subscribe(&ClientId::new(client), &filter, entry, Instant::now());
    }

    fn listed(state: &RouterState, filter: Option<&str>) -> Vec<(String, String)> {
        let filter = filter.map(|f| TopicFilter::new(f).expect("filter"));
        state
            .subscriptions_under(filter.as_ref())
            .into_iter()
            .map(|s| {
                (
                    s.filter.as_str().to_owned(),
                    s.client_id.as_str().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn subscriptions_covered_by_a_filter_sorted() {
        let mut state = RouterState::new();
        subscribe(&mut state, "b", "a/b");
        subscribe(&mut state, "a", "a/b");
        subscribe(&mut state, "a", "a/+/c");
        subscribe(&mut state, "c", "x");
        let pair = |f: &str, c: &str| (f.to_owned(), c.to_owned());
        assert_eq!(
            listed(&state, Some("a/#")),
            [pair("a/+/c", "a"), pair("a/b", "a"), pair("a/b", "b")]
        );
        assert_eq!(listed(&state, Some("a/+/c")), [pair("a/+/c", "a")]);
        assert_eq!(listed(&state, None).len(), 4);
        assert_eq!(state.summary(&ClientId::new("a")).subscriptions, 2);
    }

    #[test]
    fn pages() {
        let page = Page::of(
            (0..5).collect(),
            Window {
                offset: 3,
                limit: 10,
            },
        );
        assert_eq!((page.total, page.items), (5, vec![3, 4]));
        let page = Page::of(
            (0..5).collect::<Vec<_>>(),
            Window {
                offset: 9,
                limit: 1,
            },
        );
        assert_eq!((page.total, page.items.len()), (5, 0));
    }
}
