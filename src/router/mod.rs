//! The router: owns the subscription trie, the retained messages and the registry of
//! sessions; routes each published message to the sessions that subscribed. The trie
//! and the registry's links sit in an index behind a lock (`fast.rs`) that publishing
//! sessions also read, to route the common case on their own threads. It reaches
//! a session through its [`link::SessionLink`] (implemented by the session actor's
//! address in the session module), so nothing here names the session actor: the
//! messages "Router → Session" below are what the session's link turns each call into.

//!
//! # Messages between the actors
//!
//! Every router handler runs through the guarded dispatch (`dispatch.rs`); the failure
//! answer of each is listed there (`None`, a failed ticket: never a success).
//!
//! | message | from → to | meaning |
//! |---|---|---|
//! | `Register { client_id, clean_start, addr, persist }` → `Option<RegisterReply { prior }>` | Session → Router | claim the client id; `prior` says where the previous state arrives: `Prior::Live` (the old actor hands it over) or `Prior::Stored` (the store loads it) |
//! | `Takeover { handover: Option<oneshot::Sender<Handoff>> }` | Router → old Session | close (5.0: DISCONNECT 0x8E) and send the state over, or discard it (clean start) |
//! | `Route { msg, inbound_qos2 }` → `Routed { matched, durable, after }` | Session → Router | route one PUBLISH; `matched` feeds the 5.0 "no matching subscribers" code; `durable` is the ticket the PUBACK waits for; `after` the outbox flush that hands its deliveries over (the session's fast path waits for it: `fast.rs`) |
//! | `Deliver(Outgoing)` | Router → Session | one delivery at the granted QoS (`Outgoing`: `seq` is its stored number, `share` the `$share` filter when only a shared subscription matched) |
//! | `DeliverBatch(Vec<Outgoing>)` | Router → Session | the deliveries the router dealt one session in one turn, in routing order (a single one goes as `Deliver`) |
//! | `FlushOutbox` | Router → itself (`ctx.notify`) | end of the router's turn: send what the outbox holds |
//! | `Subscribe` → `SubscribeReply`, `Unsubscribe` → `Option<Vec<bool>>` | Session → Router | change subscriptions; retained messages come back with the outcome |
//! | `WentOffline`, `SessionEnded` | Session → Router | shared subscriptions skip offline members; an ended session's subscriptions go |
//! | `Reshare { from, items }` → `Option<Vec<bool>>` | Session → Router | the connection of a shared-subscription member closed: its unacknowledged QoS 1 and unsent QoS 1/2 messages from `$share` groups go to another online member (the stored copy moves in the same batch); the answer says which ones left, the rest stay (QoS 2 already sent always stays, [MQTT-4.8.2-4/5]). The session waits for the answer (`ctx.wait`), so a reconnect cannot get a moved message too; `None` (the router failed) is asked once more |
//! | `ShutdownSessions` → `bool` / `Shutdown` | Broker → Router → Sessions | close every connection (5.0: DISCONNECT 0x8B); false when the router failed (the broker asks once more) |
//! | `EvictSessions` / `Evict { reason }` | cluster bridge → Router → Sessions | the node is cut off from NATS: close every live connection as a server-side close (5.0: DISCONNECT 0x9C; wills go out, persistent sessions stay); a failed one is handled again after the restart (`redo.rs`) |
//! | `Adopt { client_id, addr }` | Broker → Router | a session restored from the store joins the registry (at start; a failed one is handled again after the restart, `redo.rs`) |
//! | `UpdateSession { record }` | Session → Router | the stored record changed (went offline, new expiry) |
//! | `ForgetClient` | Session → Router | the session it resumed had ended: drop stale subscriptions |
//! | `Persist { ops, done }` | Router/Session → Persistence | store ops; `done` resolves once durable (`sync`) |
//! | `PersistDeliveries { msg, targets, extra, done }` | Router → Persistence | one routed message queued for each persistent target (records built off the router) |
//! | `LoadSession { client_id, reply, then }` → `Loaded` | Router or ownership task → Persistence | a session actor died (or another node held it); the stored state goes to the new actor (`Loaded::Failed`: the connection is refused); `then` is applied after the load |
//! | `FlushNow` | Broker → Persistence | final flush at shutdown |
//! | `RemoteTakeover { client_id, flushed }` | ownership task → Router | cluster: another node claimed the id; the local session closes (`Takeover { flushed }`: it sends an empty `Persist` whose `done` answers the other node once the final state is stored) |
//! | `AttachCluster { port }` → `bool` | Broker → Router | the cluster port replaces `Standalone`; false when the router failed doing it (the broker then does not start) |
//! | `RouteRemote { msg, origin, share, receipt, log }` | cluster bridge → Router | a message from another node, routed to local sessions only; answers how many took it (a shared one's member settles the receipt once its client took it); `log`: its log sequence when the log feed brought it |
//! | `RestoreSession { subscriptions, next_seq, replay }` → `Option<Restored>` | Session → Router | cluster: a session loaded from JetStream; its subscriptions join the router before the CONNACK; with a replay cursor the router asks the bridge for the message log and holds the session's deliveries |
//! | `ReplayDone { client_id, messages }` | cluster bridge → Router | the log's messages the resumed session had not received (`None`: the replay failed); delivered before the held ones, then `Op::CaughtUp` to the store |
//! | `ReplayGuard` | Router → itself (`ctx.notify_later`) | a replay's answer is overdue (90 s): its held deliveries go out without it |
//! | `StorePosition` | Router → itself (`ctx.notify`) | after routing log feed entries: `Persist` of `Op::LogPosition` with the highest one, behind their deliveries (`position.rs`) |
//! | `ListClients`, `FindClient`, `ListSubscriptions`, `ListRetained` → plain data (`admin.rs`) | admin API → Router | node-local answers; `FindClient`'s entry asks the session itself for its details (`SessionLink::describe`) |
//! | `KickClient { discard }` → `bool` / `Kick` | admin API → Router → Session | close the connection (5.0: DISCONNECT 0x98); with `discard` the session ends too (`SessionEnded` back) |
//! | `DeleteRetained` → `bool` | admin API → Router | the retained message goes (stored deletion too), routed to no one |
//! | `TopTopics(k)` → `BusiestTopics` (`topics.rs`) | status page → Router | the `k` topics with the most recent local publishes (a bounded, decaying count) |

mod actor;
pub mod admin;
mod cluster;
mod dispatch;
pub mod fast;
#[cfg(test)]
mod fast_tests;
#[cfg(all(test, feature = "fault-injection"))]
mod fault_tests;
mod interest;
pub mod link;
pub mod messages;
mod outbox;
mod plan;
#[cfg(test)]
mod plan_tests;
mod port;
mod position;
mod redo;
mod replay;
mod reshare;
mod restore;
mod route;
mod share;
mod state;
#[cfg(test)]
mod test_support;
pub mod topics;

pub use actor::{Router, MAILBOX_CAPACITY};
pub use interest::InterestChange;
pub use port::{ClusterPort, Held};
pub use state::{RouterState, SubscribeOutcome};
