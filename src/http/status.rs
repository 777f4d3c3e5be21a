//! The status page: `GET /` serves `status.html` (plain HTML and JS, embedded in the
//! binary), which polls `GET /status.json` every second and draws what it gets. No
//! token is needed (like `/metrics`: counts, not contents).
//!
//! `/status.json`:
//!
//! ```json
//! {"ready": true, "connections": 2,
//!  "sessions": {"online": 2, "offline": 1}, "subscriptions": 3, "retained": 1,
//!  "messages": {"received": 120, "sent": 240},
//!  "dropped": {"client_offline": 0, "expired": 0, "no_subscribers": 4,
//!              "not_authorized": 0, "queue_full": 0, "too_large": 0},
//!  "topics": [{"topic": "sensors/1", "messages": 80}]}
//! ```
//!
//! The counters are those of `/metrics` (the same handles, and the router's values
//! taken the same way); `sessions`, `subscriptions` and `retained` are `null` when the
//! router did not answer in time. `topics` are the busiest [`TOP_TOPICS`] topics of
//! recent local publishes (`crate::router::topics`: counts halved now and then).

use std::collections::BTreeMap;
use std::time::Duration;

use actix::Addr;
use actix_web::http::header::{self, ContentType};
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::Ops;
use crate::metrics::{DropReason, RouterValues};
use crate::router::topics::{BusiestTopics, TopTopics};
use crate::router::Router;

/// How many topics the page lists.
pub const TOP_TOPICS: usize = 10;
/// How long `/status.json` waits for the router's busiest topics.
const TOPICS_TIMEOUT: Duration = Duration::from_secs(2);

/// The page, served as is.
const PAGE: &str = include_str!("status.html");

/// The broker's `Ops`, under a type of this module (see `routes::OpsData`).
#[derive(Clone)]
struct StatusOps(Ops);

pub(super) fn configure(cfg: &mut web::ServiceConfig, ops: &Ops) {
    cfg.app_data(web::Data::new(StatusOps(ops.clone())))
        .route("/", web::get().to(page))
        .route("/status.json", web::get().to(status));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

#[derive(Serialize)]
struct StatusBody {
    ready: bool,
    connections: u64,
    sessions: Option<Sessions>,
    subscriptions: Option<usize>,
    retained: Option<usize>,
    messages: Messages,
    dropped: BTreeMap<&'static str, u64>,
    topics: Vec<TopicItem>,
}

#[derive(Serialize)]
struct Sessions {
    online: u64,
    offline: u64,
}

#[derive(Serialize)]
struct Messages {
    received: u64,
    sent: u64,
}

#[derive(Serialize)]
struct TopicItem {
    topic: String,
    messages: u64,
}

async fn status(ops: web::Data<StatusOps>) -> HttpResponse {
    let ops = &ops.0;
    let (stats, topics) = match ops.router() {
        Some(router) => tokio::join!(super::routes::router_stats(&router), busiest(&router)),
        None => (None, Vec::new()),
    };
    let body = body(ops, stats.as_ref(), topics);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// The busiest topics; none when the router does not answer in time.
async fn busiest(router: &Addr<Router>) -> Vec<TopicItem> {
    let asked = router.send(TopTopics(TOP_TOPICS));
    match tokio::time::timeout(TOPICS_TIMEOUT, asked).await {
        Ok(Ok(BusiestTopics(top))) => top
            .into_iter()
            .map(|t| TopicItem {
                topic: t.topic,
                messages: t.messages,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn body(ops: &Ops, stats: Option<&RouterValues>, topics: Vec<TopicItem>) -> StatusBody {
    let counters = ops.metrics().status(stats);
    let online = counters.connections;
    let sessions = stats.map(|s| Sessions {
        online,
        offline: u64::try_from(s.sessions)
            .unwrap_or(u64::MAX)
            .saturating_sub(online),
    });
    let dropped = DropReason::ALL
        .iter()
        .map(|r| (r.label(), counters.dropped[*r as usize]))
        .collect();
    StatusBody {
        ready: ops.is_ready(),
        connections: counters.connections,
        sessions,
        subscriptions: stats.map(|s| s.subscriptions),
        retained: stats.map(|s| s.retained),
        messages: Messages {
            received: counters.received,
            sent: counters.sent,
        },
        dropped,
        topics,
    }
}
