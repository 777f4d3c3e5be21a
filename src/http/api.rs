//! The admin API, `/api/v1`: JSON over HTTP, behind the bearer token of `[http]
//! token_file` (`Authorization: Bearer <token>`). Without a `token_file` every route
//! answers 403; a missing or wrong token answers 401. Errors are `{"error": "..."}`
//! with 400 (bad parameters), 401, 403, 404 (unknown client or retained message) or
//! 503 (the broker is not started, or did not answer in time).
//!
//! | route | answer |
//! |---|---|
//! | `GET clients?page=&limit=` (or `?offset=&limit=`) | `{"total", "offset", "limit", "items": [{"client_id", "connected", "persistent", "subscriptions"}]}` |
//! | `GET clients/{id}` | `{"client_id", "connected", "persistent", "address", "protocol", "username", "connected_since", "queued", "inflight", "subscriptions": [...]}` |
//! | `DELETE clients/{id}[?discard_session=true]` | `{"client_id", "disconnected": true, "session_discarded"}` |
//! | `GET subscriptions[?filter=]` (paged) | `{"total", ..., "items": [{"client_id", "filter", "qos", "no_local", "retain_as_published", "retain_handling", "subscription_id"}]}` |
//! | `GET retained[?topic=<filter>]` (paged) | `{"total", ..., "items": [{"topic", "payload", "encoding", "qos", "size"}]}` |
//! | `DELETE retained/{topic}` | `{"topic", "deleted": true}` |
//! | `POST publish` `{"topic", "payload", "encoding"?, "qos"?, "retain"?}` | `{"matched"}` |
//!
//! Lists are sorted (clients by id, subscriptions by filter then client, retained
//! messages by topic) and paged: `limit` 1 to 1000 (default 100), `page` from 1 or
//! `offset` from 0. In cluster mode the answers are cluster-wide: `clients`,
//! `clients/{id}`, its `DELETE` and `subscriptions` ask every node ([`peers`], with a
//! bounded wait: a node that does not answer in time is left out); retained messages
//! are the same on every node, and `DELETE retained` deletes them on all of them;
//! `POST publish` goes cluster-wide, like any publish.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

use super::Ops;
use crate::router::admin::Window;
use crate::router::Router;

mod clients;
mod json;
pub(crate) mod peers;
mod topics;

/// How long a request waits for the router (or a session) before it answers 503.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// The page size without `limit`.
const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
const MAX_LIMIT: usize = 1000;

/// Mounts `/api/v1` for the broker `ops` reports on.
pub(super) fn configure(cfg: &mut web::ServiceConfig, ops: &Ops) {
    cfg.app_data(web::Data::new(ApiOps(ops.clone()))).service(
        web::scope("/api/v1")
            .route("/clients", web::get().to(clients::list))
            .route("/clients/{id}", web::get().to(clients::show))
            .route("/clients/{id}", web::delete().to(clients::kick))
            .route("/subscriptions", web::get().to(topics::subscriptions))
            .route("/retained", web::get().to(topics::retained))
            .route(
                "/retained/{topic:.*}",
                web::delete().to(topics::delete_retained),
            )
            .route("/publish", web::post().to(topics::publish))
            .default_service(web::to(not_found)),
    );
}

async fn not_found(_: Admin) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

/// A failed admin request, answered as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the admin API is off: no http.token_file is configured")]
    Off,
    #[error("{0}")]
    NotFound(String),
    #[error("the broker did not answer: {0}")]
    Unavailable(&'static str),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Off => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Unauthorized = self {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(ErrorBody {
            error: &self.to_string(),
        })
    }
}

/// An authorised admin request: the router of the started broker to ask.
pub(crate) struct Admin {
    router: Addr<Router>,
    ops: Ops,
}

impl Admin {
    /// Sends `msg` to the router, waiting at most [`ASK_TIMEOUT`].
    async fn ask<M>(&self, msg: M) -> Result<M::Result, ApiError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Router: actix::Handler<M>,
    {
        match tokio::time::timeout(ASK_TIMEOUT, self.router.send(msg)).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => Err(ApiError::Unavailable("the router")),
        }
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let admin = authorise(req);
        Box::pin(async move { admin })
    }
}

/// Checks the bearer token against the configured one.
fn authorise(req: &HttpRequest) -> Result<Admin, ApiError> {
    let ops = req
        .app_data::<web::Data<ApiOps>>()
        .ok_or(ApiError::Unavailable("not mounted"))?;
    let expected = ops.0.api_token().ok_or(ApiError::Off)?;
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    if !same_secret(given.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    let router = ops
        .0
        .router()
        .ok_or(ApiError::Unavailable("the broker is starting"))?;
    Ok(Admin {
        router,
        ops: ops.0.clone(),
    })
}

/// Compares without stopping at the first difference (no timing hint on the token).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The broker's `Ops`, under a type of this module (see `routes::OpsData`).
#[derive(Clone)]
pub(super) struct ApiOps(pub(super) Ops);

/// `?page=&limit=` or `?offset=&limit=` (other parameters are the route's).
#[derive(Debug, Default, Deserialize)]
struct Paging {
    page: Option<usize>,
    offset: Option<usize>,
    limit: Option<usize>,
}

impl Paging {
    fn window(&self) -> Result<Window, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(bad(format!("limit must be 1 to {MAX_LIMIT}")));
        }
        let offset = match (self.page, self.offset) {
            (Some(_), Some(_)) => return Err(bad("give page or offset, not both")),
            (Some(0), None) => return Err(bad("page counts from 1")),
            (Some(page), None) => (page - 1).saturating_mul(limit),
            (None, offset) => offset.unwrap_or(0),
        };
        Ok(Window { offset, limit })
    }
}

/// A 400 answer.
fn bad(why: impl Into<String>) -> ApiError {
    ApiError::BadRequest(why.into())
}

/// The query string as `T`; a 400 when it does not parse.
fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| bad(format!("bad query: {e}")))
}
