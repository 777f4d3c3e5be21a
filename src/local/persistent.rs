//! The persistent in-process client: an MQTT 5.0 connection over an in-memory pipe to a
//! session that the broker serves exactly as a network client's (`session::serve`), so
//! its subscriptions and queued messages are stored, restored at start-up and replayed
//! as a network session's are.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use super::client_end::{Agreed, ClientEnd};
use super::deliveries::{Deliveries, Delivery};
use super::requests::{Command, Outbound};
use super::{refused, stopped, LocalMessage, Refused};
use crate::message::ClientId;
use crate::protocol::{Connect, Properties, ProtocolVersion, QoS, ReasonCode};
use crate::session::{self, Shared};
use crate::topic::{TopicFilter, TopicName};
use crate::transport::{Connection, ConnectionLimiter, Workers};

/// The Receive Maximum a persistent client announces: at most this many QoS 1/2
/// messages are delivered and not yet taken by the application; the session queues the
/// rest (bounded by `[limits] max_queued_messages` and `max_queued_bytes`).
const RECEIVE_MAXIMUM: u16 = 64;
/// The pipe's buffer in each direction.
const PIPE_BYTES: usize = 64 * 1024;
/// The peer address the broker logs for an in-process connection.
const LOCAL_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// An in-process client with a persistent session, from
/// [`BrokerHandle::persistent_client`](crate::BrokerHandle::persistent_client).
///
/// It is an MQTT 5.0 client connected over an in-memory pipe (clean start 0, with the
/// session expiry it was given), so its session is a network client's in every way:
/// subscriptions and queued QoS 1/2 messages are stored, survive a restart of the
/// broker (and a crash, under `durability = "sync"`), and a network client connecting
/// with the same client id takes the session over (and the other way round). Its
/// CONNECT is not authenticated: it is the embedding application's own.
///
/// Every message of the session comes through one stream ([`next`](Self::next), or
/// the client as a [`futures::Stream`]), in the order the session sends them. A QoS 1
/// or 2 message is acknowledged only when the application takes it, so one not taken
/// is sent again on the next connection: at least once into the application. At most
/// 64 of them (the Receive Maximum the client announces) wait here; the session queues
/// the rest as it would for a network client. QoS 0 messages are dropped beyond
/// `[limits] max_queued_messages` waiting ([`dropped`](Self::dropped)).
///
/// Once the connection ends (taken over, the broker stopping,
/// [`disconnect`](Self::disconnect)), requests are refused and the stream ends; a new
/// client resumes the session. Dropping the client closes the connection without
/// DISCONNECT; either way the session stays stored for its expiry.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use starling::protocol::QoS;
/// let broker = starling::Broker::new(starling::Config::default()).start().await?;
/// let day = Duration::from_secs(24 * 3600);
/// let app = broker.persistent_client("my-app", day).await?;
/// if !app.session_present() {
///     // A new session: subscribe once; the broker keeps the subscription.
///     app.subscribe("orders/#", QoS::AtLeastOnce).await?;
/// }
/// app.publish("orders/1", "new", QoS::AtLeastOnce, false).await?;
/// while let Some(order) = app.next().await {
///     println!("{}: {:?}", order.topic, order.payload);
/// }
/// # Ok(()) }
/// ```
pub struct PersistentClient {
    id: ClientId,
    commands: mpsc::UnboundedSender<Command>,
    deliveries: Arc<Deliveries>,
    agreed: Agreed,
}

impl PersistentClient {
    /// Connects `id` over a new pipe to a session served on one of `workers`.
    pub(crate) async fn connect(
        id: ClientId,
        session_expiry: Duration,
        shared: Arc<Shared>,
        workers: &Workers,
        limiter: &ConnectionLimiter,
    ) -> Result<PersistentClient, Refused> {
        if id.as_str().is_empty() {
            let why = "a persistent client needs a client id to resume its session by";
            return Err(refused(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, why));
        }
        let (client_io, broker_io) = tokio::io::duplex(PIPE_BYTES);
        let (reader, writer) = tokio::io::split(broker_io);
        let conn = Connection {
            reader: Box::new(reader),
            writer: Box::new(writer),
            peer: LOCAL_PEER,
            listener: LOCAL_PEER,
            // Counted like a network connection (and refused 0x89 past the limit).
            permit: limiter.try_acquire(),
            over_rate: false,
            trusted: true,
            identity: None,
        };
        let (commands, received) = mpsc::unbounded_channel();
        let max_qos0 = shared.config.limits.max_queued_messages;
        let deliveries = Arc::new(Deliveries::new(max_qos0));
        let end = ClientEnd::new(client_io, received, Arc::clone(&deliveries));
        let connect = connect_packet(&id, session_expiry);
        let (connected, agreed) = oneshot::channel();
        // Both ends on one worker arbiter: they stop with the broker.
        let started = workers.next_arbiter().spawn_fn(move || {
            actix_rt::spawn(session::serve(conn, shared));
            actix_rt::spawn(end.run(connect, connected));
        });
        if !started {
            return Err(stopped());
        }
        let agreed = agreed.await.map_err(|_| stopped())??;
        Ok(PersistentClient {
            id,
            commands,
            deliveries,
            agreed,
        })
    }

    /// This client's id.
    pub fn id(&self) -> &ClientId {
        &self.id
    }

    /// True when the broker had a session for this client id (CONNACK's session
    /// present): its subscriptions are in force and its queued messages come first.
    pub fn session_present(&self) -> bool {
        self.agreed.session_present
    }

    /// Publishes `payload` on `topic`; see [`publish_with`](Self::publish_with).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), Refused> {
        let properties = Properties::default();
        self.publish_with(topic, payload, qos, retain, properties)
            .await
    }

    /// Publishes with 5.0 properties (user properties, content type, message expiry,
    /// response topic ...; a Topic Alias or Subscription Identifiers are left out,
    /// they are not the publisher's to set). Returns when the broker acknowledges it:
    /// at once for QoS 0, at PUBACK for QoS 1, at PUBCOMP for QoS 2. An error reason
    /// code of the broker's is the [`Refused`] reason; so is what the broker's CONNACK
    /// rules out (QoS above its Maximum QoS, retain without Retain Available), an
    /// invalid topic name or a packet over its Maximum Packet Size, refused here
    /// before anything is sent.
    pub async fn publish_with(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        mut properties: Properties,
    ) -> Result<(), Refused> {
        let topic = TopicName::new(topic)
            .map_err(|_| refused(ReasonCode::TOPIC_NAME_INVALID, "not a valid topic name"))?;
        if qos > self.agreed.max_qos {
            let why = "PUBLISH QoS exceeds the server's Maximum QoS";
            return Err(refused(ReasonCode::QOS_NOT_SUPPORTED, why));
        }
        if retain && !self.agreed.retain_available {
            let why = "retained messages are not available on this server";
            return Err(refused(ReasonCode::RETAIN_NOT_SUPPORTED, why));
        }
        // Read before written: writing to empty properties would allocate them.
        if properties.topic_alias.is_some() {
            properties.topic_alias = None;
        }
        if !properties.subscription_identifiers.is_empty() {
            properties.subscription_identifiers.clear();
        }
        let publish = Outbound {
            topic,
            payload: payload.into(),
            qos,
            retain,
            properties,
        };
        let (reply, answer) = oneshot::channel();
        self.request(Command::Publish { publish, reply }, answer)
            .await
    }

    /// Subscribes the session to `filter` (a `$share/{group}/...` filter joins a shared
    /// subscription) at `qos`; returns the QoS the broker granted. The broker stores
    /// the subscription with the session. A SUBACK failure code is the [`Refused`]
    /// reason (0xA2 wildcards or 0x9E shared subscriptions not available ...).
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, Refused> {
        let filter = parse_filter(filter)?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Subscribe { filter, qos, reply };
        self.request(command, answer).await
    }

    /// Removes the session's subscription to `filter` (no error when there was none).
    pub async fn unsubscribe(&self, filter: &str) -> Result<(), Refused> {
        let filter = parse_filter(filter)?;
        let (reply, answer) = oneshot::channel();
        self.request(Command::Unsubscribe { filter, reply }, answer)
            .await
    }

    /// The session's next message, acknowledged (QoS 1/2) as it is taken; `None` once
    /// the connection has ended and what it delivered is taken. Cancel safe: a message
    /// is taken only when this returns it.
    pub async fn next(&self) -> Option<LocalMessage> {
        futures::future::poll_fn(|cx| self.poll_take(cx)).await
    }

    /// Messages delivered and not taken yet.
    pub fn queued(&self) -> usize {
        self.deliveries.len()
    }

    /// QoS 0 messages dropped because `[limits] max_queued_messages` of them waited.
    pub fn dropped(&self) -> u64 {
        self.deliveries.dropped()
    }

    /// Sends DISCONNECT (normal disconnection) and waits until the broker closed the
    /// connection (5 s at most): what was acknowledged before it is the session's
    /// state. The session stays stored for its expiry; messages not taken are sent
    /// again on the next connection.
    pub async fn disconnect(self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Disconnect { done }).is_ok() {
            let _ = closed.await;
        }
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<LocalMessage>> {
        match self.deliveries.poll_take(cx) {
            Poll::Ready(Some(Delivery { message, ack })) => {
                if let Some(ack) = ack {
                    // The connection may be gone: then the session sends it again.
                    let _ = self.commands.send(Command::Ack(ack));
                }
                Poll::Ready(Some(message))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Hands `command` to the connection task and waits for its answer.
    async fn request<T>(
        &self,
        command: Command,
        answer: oneshot::Receiver<Result<T, Refused>>,
    ) -> Result<T, Refused> {
        if self.commands.send(command).is_err() {
            return Err(self.closed());
        }
        answer.await.unwrap_or_else(|_| Err(self.closed()))
    }

    /// The refusal of a request made once the connection has ended.
    fn closed(&self) -> Refused {
        let reason = match self.deliveries.ended() {
            Some(reason) if reason.is_error() => reason,
            _ => ReasonCode::UNSPECIFIED_ERROR,
        };
        refused(reason, "the connection to the broker is closed")
    }
}

impl Stream for PersistentClient {
    type Item = LocalMessage;

    /// As [`PersistentClient::next`].
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LocalMessage>> {
        self.poll_take(cx)
    }
}

impl std::fmt::Debug for PersistentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentClient")
            .field("id", &self.id)
            .field("session_present", &self.agreed.session_present)
            .finish_non_exhaustive()
    }
}

/// CONNECT for a persistent session: 5.0, clean start 0, the session expiry (whole
/// seconds; past `u32::MAX` s it never expires), no keep alive of its own.
fn connect_packet(id: &ClientId, session_expiry: Duration) -> Connect {
    let mut properties = Properties::default();
    let expiry = u32::try_from(session_expiry.as_secs()).unwrap_or(u32::MAX);
    properties.session_expiry_interval = Some(expiry);
    properties.receive_maximum = Some(RECEIVE_MAXIMUM);
    Connect {
        protocol: ProtocolVersion::V5,
        clean_start: false,
        keep_alive: 0,
        properties,
        client_id: id.as_str().into(),
        will: None,
        username: None,
        password: None,
    }
}

fn parse_filter(filter: &str) -> Result<TopicFilter, Refused> {
    TopicFilter::new(filter)
        .map_err(|_| refused(ReasonCode::TOPIC_FILTER_INVALID, "not a valid topic filter"))
}
