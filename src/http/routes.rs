//! The handlers of `/health`, `/ready` and `/metrics`.

use std::time::Duration;

use actix::Addr;
use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};

use super::Ops;
use crate::metrics::RouterValues;
use crate::router::messages::GetStats;
use crate::router::Router;

/// How long `/metrics` waits for the router's values before it answers without them.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// The broker's `Ops`, under a type of this module so that it cannot collide with the
/// application's own `web::Data`.
#[derive(Clone)]
struct OpsData(Ops);

pub(super) fn configure(cfg: &mut web::ServiceConfig, ops: &Ops) {
    cfg.app_data(web::Data::new(OpsData(ops.clone())))
        .route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("ok\n")
}

async fn ready(ops: web::Data<OpsData>) -> HttpResponse {
    let (mut response, body) = match ops.0.is_ready() {
        true => (HttpResponse::Ok(), "ready\n"),
        false => (HttpResponse::ServiceUnavailable(), "not ready\n"),
    };
    response.content_type(ContentType::plaintext()).body(body)
}

async fn metrics(ops: web::Data<OpsData>) -> HttpResponse {
    let text = ops.0.metrics_text().await;
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text)
}

/// The router's counters, or `None` when it does not answer within [`STATS_TIMEOUT`].
pub(super) async fn router_stats(router: &Addr<Router>) -> Option<RouterValues> {
    match tokio::time::timeout(STATS_TIMEOUT, router.send(GetStats)).await {
        Ok(Ok(stats)) => Some(RouterValues {
            sessions: stats.sessions,
            subscriptions: stats.subscriptions,
            retained: stats.retained,
            unrouted: stats.unrouted,
            restarts: stats.restarts,
        }),
        _ => {
            tracing::warn!("the router did not give its counters to /metrics");
            None
        }
    }
}
