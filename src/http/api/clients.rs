//! `GET /api/v1/clients`, `GET /api/v1/clients/{id}` and `DELETE
//! /api/v1/clients/{id}[?discard_session=true]`. In cluster mode each asks every node
//! (see [`super::peers`]).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::json::{ClientItem, PageBody};
use super::peers::{ask_others, client, PeerRequest};
use super::{query, Admin, ApiError, Paging};
use crate::message::ClientId;
use crate::router::admin::{KickClient, ListClients, Page};

/// `GET clients`: the registered sessions (connected or not), sorted by id.
pub(super) async fn list(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let window = query::<Paging>(&req)?.window()?;
    if admin.ops.peers().is_none() {
        let page = admin.ask(ListClients(window)).await?;
        return Ok(HttpResponse::Ok().json(PageBody::new(page, window, ClientItem::from)));
    }
    let request = PeerRequest::Clients;
    let mine = super::peers::local(&admin, PeerRequest::Clients).await?;
    let others = ask_others(&admin.ops, &request).await;
    let mut all: Vec<ClientItem> = others
        .into_iter()
        .flat_map(|a| a.clients)
        .chain(mine.clients)
        .collect();
    // A client id is held by one node; a connected copy wins over a stale one.
    all.sort_by(|a, b| (&a.client_id, !a.connected).cmp(&(&b.client_id, !b.connected)));
    all.dedup_by(|later, first| later.client_id == first.client_id);
    let page = Page::of(all, window);
    Ok(HttpResponse::Ok().json(PageBody::new(page, window, |c| c)))
}

/// `GET clients/{id}`: on this node, or else on the node that holds it.
pub(super) async fn show(admin: Admin, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = ClientId::new(id.into_inner());
    if let Some(body) = client(&admin, id.clone()).await? {
        return Ok(HttpResponse::Ok().json(body));
    }
    let request = PeerRequest::Client {
        client_id: id.as_str().to_owned(),
    };
    let found = ask_others(&admin.ops, &request)
        .await
        .into_iter()
        .find_map(|a| a.client);
    let body = found.ok_or_else(|| unknown(&id))?;
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

/// `DELETE clients/{id}`: closes its connection (5.0: DISCONNECT 0x98), wherever it
/// is; with `discard_session=true` its session ends too. Answers once the session was
/// told.
pub(super) async fn kick(
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let discard = query::<KickQuery>(&req)?.discard_session;
    let id = ClientId::new(id.into_inner());
    let client_id = id.clone();
    let mut kicked = admin.ask(KickClient { client_id, discard }).await?;
    if !kicked {
        let request = PeerRequest::Kick {
            client_id: id.as_str().to_owned(),
            discard,
        };
        kicked = ask_others(&admin.ops, &request)
            .await
            .iter()
            .any(|a| a.kicked);
    }
    if !kicked {
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
