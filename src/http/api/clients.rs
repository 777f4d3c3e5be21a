//! `GET /api/v1/clients`, `GET /api/v1/clients/{id}` and `DELETE
//! /api/v1/clients/{id}[?discard_session=true]`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::json::{ClientBody, ClientItem, PageBody};
use super::{query, Admin, ApiError, Paging, ASK_TIMEOUT};
use crate::message::ClientId;
use crate::router::admin::{FindClient, KickClient, ListClients};

/// `GET clients`: the registered sessions (connected or not), sorted by id.
pub(super) async fn list(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let window = query::<Paging>(&req)?.window()?;
    let page = admin.ask(ListClients(window)).await?;
    Ok(HttpResponse::Ok().json(PageBody::new(page, window, ClientItem::from)))
}

/// `GET clients/{id}`: the router's part, then the session's.
pub(super) async fn show(admin: Admin, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = ClientId::new(id.into_inner());
    let entry = admin
        .ask(FindClient(id.clone()))
        .await?
        .ok_or_else(|| unknown(&id))?;
    let details = match tokio::time::timeout(ASK_TIMEOUT, entry.describe()).await {
        Ok(Ok(details)) => details,
        // An in-process client, or a session actor that stopped meanwhile.
        Ok(Err(_)) => Default::default(),
        Err(_) => return Err(ApiError::Unavailable("the session")),
    };
    let body = ClientBody::new(entry.summary, entry.subscriptions, details);
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
struct KickQuery {
    #[serde(default)]
    discard_session: bool,
}

#[derive(Serialize)]
struct Kicked {
    client_id: String,
    disconnected: bool,
    session_discarded: bool,
}

/// `DELETE clients/{id}`: closes its connection (5.0: DISCONNECT 0x98); with
/// `discard_session=true` its session ends too. Answers once the session was told.
pub(super) async fn kick(
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let discard = query::<KickQuery>(&req)?.discard_session;
    let id = ClientId::new(id.into_inner());
    let client_id = id.clone();
    if !admin.ask(KickClient { client_id, discard }).await? {
        return Err(unknown(&id));
    }
    Ok(HttpResponse::Ok().json(Kicked {
        client_id: id.as_str().to_owned(),
        disconnected: true,
        session_discarded: discard,
    }))
}

fn unknown(id: &ClientId) -> ApiError {
    ApiError::NotFound(format!("no session with client id {:?}", id.as_str()))
}
