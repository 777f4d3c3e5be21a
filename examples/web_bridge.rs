//! An actix-web application embedding Starling: MQTT clients and HTTP clients meet on
//! the same broker.
//!
//! - `POST /publish/{topic}` publishes the request body (query `qos`, 0 to 2, default 0;
//!   `retain`, `true` or `false`, default false). 200 `{"matched": n}` (sessions it was
//!   handed to), or 4xx `{"reason": code, "error": text}` with the reason code an MQTT
//!   client would have got (0x90 for a topic with a wildcard).
//! - `GET /subscribe/{filter}` (query `qos`, default 1) is a server-sent-events stream:
//!   `event: subscribed` once the subscription is in place, then one `event: message`
//!   per delivery with JSON data `{"topic", "payload", "encoding" ("utf8" or "base64"),
//!   "qos", "retain"}`. A `#` in a filter is written `%23`. The subscription ends when
//!   the HTTP client goes away.
//!
//! Run: `cargo run --example web_bridge -- --http 127.0.0.1:8080 --mqtt 127.0.0.1:1883`
//! (or `WEB_BRIDGE_HTTP`, `WEB_BRIDGE_MQTT`; port 0 picks a free port). It prints
//! `web_bridge http=ADDR mqtt=ADDR` on stdout once both listen; logs go to stderr.
//!
//! ```text
//! curl -N localhost:8080/subscribe/sensors/%23 &
//! mosquitto_pub -p 1883 -t sensors/1 -m 21.5
//! curl -d on 'localhost:8080/publish/lights/1?qos=1&retain=true'
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use starling::protocol::{QoS, ReasonCode};
use starling::{BrokerHandle, LocalClient, LocalMessage, Refused, Subscription};

/// An SSE comment this often on a quiet stream: a connection that went away is noticed
/// by the write failing at the latest.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What every HTTP worker shares.
struct Bridge {
    /// Taken out at shutdown, to stop it.
    broker: Mutex<Option<BrokerHandle>>,
    /// Publishes for every `POST /publish`.
    publisher: LocalClient,
    /// Numbers each SSE stream's own client id.
    streams: AtomicU64,
}

impl Bridge {
    /// A new in-process client, unless the broker has stopped.
    fn client(&self, id: &str) -> Result<LocalClient, Refused> {
        match &*self.broker() {
            Some(broker) => Ok(broker.client(id)),
            None => Err(Refused {
                reason: ReasonCode::UNSPECIFIED_ERROR,
                why: "the broker has stopped",
            }),
        }
    }

    fn broker(&self) -> MutexGuard<'_, Option<BrokerHandle>> {
        self.broker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct PublishQuery {
    qos: Option<u8>,
    retain: Option<bool>,
}

#[derive(Deserialize)]
struct SubscribeQuery {
    qos: Option<u8>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let http = address("--http", "WEB_BRIDGE_HTTP", "127.0.0.1:8080")?;
    let mqtt = address("--mqtt", "WEB_BRIDGE_MQTT", "127.0.0.1:1883")?;
    actix_web::rt::System::new().block_on(serve(http, mqtt))
}

/// `--flag ADDR` from the command line, else the environment variable, else `default`.
fn address(flag: &str, var: &str, default: &str) -> anyhow::Result<SocketAddr> {
    let args: Vec<String> = std::env::args().collect();
    let given = match args.iter().position(|a| a == flag) {
        Some(i) => Some(args.get(i + 1).cloned().ok_or_else(|| {
            anyhow::anyhow!("{flag} needs an address (host:port, port 0 for any)")
        })?),
        None => std::env::var(var).ok(),
    };
    let text = given.unwrap_or_else(|| default.to_owned());
    text.parse()
        .map_err(|e| anyhow::anyhow!("{flag} {text:?}: {e}"))
}

async fn serve(http: SocketAddr, mqtt: SocketAddr) -> anyhow::Result<()> {
    let mut config = starling::Config::default();
    config.listeners[0].bind = mqtt;
    config.storage.durability = starling::config::Durability::Memory;
    let max_body = config.limits.max_packet_size as usize;
    let broker = starling::Broker::new(config).workers(1).start().await?;
    let mqtt = broker.local_addrs()[0];
    let bridge = web::Data::new(Bridge {
        publisher: broker.client("web-bridge"),
        broker: Mutex::new(Some(broker)),
        streams: AtomicU64::new(0),
    });
    let shared = bridge.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .route("/publish/{topic:.*}", web::post().to(publish))
            .route("/subscribe/{filter:.*}", web::get().to(subscribe))
    })
    .workers(1)
    // An SSE client that goes away closes its side: end the response (and drop its
    // subscription) at once rather than at the next write.
    .h1_allow_half_closed(false)
    // On a signal actix-web would stop the whole actix System, the broker's arbiters
    // with it, before the broker could stop in order: the signals are ours.
    .disable_signals()
    .shutdown_timeout(2)
    .bind(http)?;
    let http = server.addrs()[0];
    let server = server.run();
    let http_server = server.handle();
    let serving = actix_web::rt::spawn(server);
    println!("web_bridge http={http} mqtt={mqtt}");
    terminated().await?;
    // The broker first: its stopping ends every SSE stream, so the HTTP server then has
    // nothing left in flight.
    let broker = bridge.broker().take();
    if let Some(broker) = broker {
        broker.stop().await;
    }
    http_server.stop(true).await;
    serving.await??;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn terminated() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = term.recv() => Ok(()),
    }
}

/// `POST /publish/{topic}`: the body, published.
async fn publish(
    bridge: web::Data<Bridge>,
    topic: web::Path<String>,
    query: web::Query<PublishQuery>,
    body: Bytes,
) -> HttpResponse {
    let Some(qos) = qos(query.qos, QoS::AtMostOnce) else {
        return bad_qos();
    };
    let retain = query.retain.unwrap_or(false);
    match bridge.publisher.publish(&topic, body, qos, retain).await {
        Ok(done) => HttpResponse::Ok().json(serde_json::json!({ "matched": done.matched })),
        Err(refused) => refusal(&refused),
    }
}

/// `GET /subscribe/{filter}`: the messages the filter matches, as server-sent events.
async fn subscribe(
    bridge: web::Data<Bridge>,
    filter: web::Path<String>,
    query: web::Query<SubscribeQuery>,
) -> HttpResponse {
    let Some(qos) = qos(query.qos, QoS::AtLeastOnce) else {
        return bad_qos();
    };
    // A client of its own: one client holds each filter once, and this stream's
    // subscription ends with it.
    let n = bridge.streams.fetch_add(1, Ordering::Relaxed);
    let subscribed = match bridge.client(&format!("web-bridge-sse-{n}")) {
        Ok(client) => client.subscribe(&filter, qos).await,
        Err(refused) => Err(refused),
    };
    match subscribed {
        Ok(subscription) => HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("cache-control", "no-cache"))
            .streaming(events(subscription)),
        Err(refused) => refusal(&refused),
    }
}

/// The SSE body: `subscribed`, then each message, keep-alive comments between. It ends
/// with the subscription; dropping it (the HTTP client went away) unsubscribes.
fn events(subscription: Subscription) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let data = serde_json::json!({
        "filter": subscription.topic_filter().as_str(),
        "qos": subscription.granted_qos() as u8,
    });
    let opened = Bytes::from(format!("event: subscribed\ndata: {data}\n\n"));
    let messages = futures::stream::unfold(subscription, |mut subscription| async move {
        let chunk = match tokio::time::timeout(KEEP_ALIVE, subscription.next()).await {
            Ok(Some(message)) => event(&message),
            Ok(None) => return None,
            Err(_) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((chunk, subscription))
    });
    futures::stream::once(async { opened })
        .chain(messages)
        .map(Ok)
}

/// One `message` event; the payload as text when it is UTF-8, else in base64.
fn event(message: &LocalMessage) -> Bytes {
    let (payload, encoding) = match std::str::from_utf8(&message.payload) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (B64.encode(&message.payload), "base64"),
    };
    let data = serde_json::json!({
        "topic": message.topic.as_str(),
        "payload": payload,
        "encoding": encoding,
        "qos": message.qos as u8,
        "retain": message.retain,
    });
    Bytes::from(format!("event: message\ndata: {data}\n\n"))
}

/// The query's QoS, `default` when absent; `None` when it is not 0, 1 or 2.
fn qos(asked: Option<u8>, default: QoS) -> Option<QoS> {
    asked.map_or(Some(default), QoS::from_u8)
}

fn bad_qos() -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({
        "reason": ReasonCode::QOS_NOT_SUPPORTED.0,
        "error": "qos must be 0, 1 or 2",
    }))
}

/// A refusal as the HTTP status nearest to it, with the MQTT reason code.
fn refusal(refused: &Refused) -> HttpResponse {
    let status = match refused.reason {
        ReasonCode::NOT_AUTHORIZED => StatusCode::FORBIDDEN,
        ReasonCode::QUOTA_EXCEEDED => StatusCode::TOO_MANY_REQUESTS,
        ReasonCode::PACKET_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        // The broker stopped or could not store the message: not the request's fault.
        ReasonCode::UNSPECIFIED_ERROR => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    HttpResponse::build(status).json(serde_json::json!({
        "reason": refused.reason.0,
        "error": refused.why,
    }))
}
