//! `GET /api/v1/subscriptions`, `GET /api/v1/retained`, `DELETE
//! /api/v1/retained/{topic}` and `POST /api/v1/publish`.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::json::{PageBody, RetainedItem, SubscriptionItem};
use super::peers::{ask_others, local, PeerRequest};
use super::{bad, query, Admin, ApiError, Paging, ASK_TIMEOUT};
use crate::message::Message;
use crate::protocol::{Properties, QoS};
use crate::router::admin::{DeleteRetained, ListRetained, ListSubscriptions, Page};
use crate::router::messages::Route;
use crate::topic::{TopicFilter, TopicName};

#[derive(Deserialize)]
struct FilterQuery {
    filter: Option<String>,
}

/// `GET subscriptions[?filter=]`: every subscription, or those whose filter `filter`
/// covers (`a/#` lists `a/b` and `a/+/c`; an exact filter lists its own).
pub(super) async fn subscriptions(
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let window = query::<Paging>(&req)?.window()?;
    let filter = query::<FilterQuery>(&req)?
        .filter
        .map(|f| parse_filter(&f))
        .transpose()?;
    if admin.ops.peers().is_none() {
        let page = admin.ask(ListSubscriptions { filter, window }).await?;
        return Ok(HttpResponse::Ok().json(PageBody::new(page, window, SubscriptionItem::from)));
    }
    let filter = filter.map(|f| f.as_str().to_owned());
    let request = PeerRequest::Subscriptions { filter };
    let others = ask_others(&admin.ops, &request).await;
    let mine = local(&admin, request).await?;
    let mut all: Vec<SubscriptionItem> = others
        .into_iter()
        .flat_map(|a| a.subscriptions)
        .chain(mine.subscriptions)
        .collect();
    all.sort_by(|a, b| (&a.filter, &a.client_id).cmp(&(&b.filter, &b.client_id)));
    let page = Page::of(all, window);
    Ok(HttpResponse::Ok().json(PageBody::new(page, window, |s| s)))
}

#[derive(Deserialize)]
struct TopicQuery {
    topic: Option<String>,
}

/// `GET retained[?topic=<filter>]`: the retained messages whose topic matches (all
/// of them, `$` topics aside, without one).
pub(super) async fn retained(admin: Admin, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let window = query::<Paging>(&req)?.window()?;
    let topic = query::<TopicQuery>(&req)?.topic;
    let filter = parse_filter(topic.as_deref().unwrap_or("#"))?;
    if filter.share().is_some() {
        return Err(bad("topic must not be a $share filter"));
    }
    let page = admin.ask(ListRetained { filter, window }).await?;
    let body = PageBody::new(page, window, |m: Arc<Message>| RetainedItem::from(&*m));
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Serialize)]
struct Deleted {
    topic: String,
    deleted: bool,
}

/// `DELETE retained/{topic}`: the retained message goes (no subscriber is told); in
/// cluster mode on every node, through the cluster's retained stream.
pub(super) async fn delete_retained(
    admin: Admin,
    topic: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let topic =
        TopicName::new(topic.into_inner()).map_err(|e| bad(format!("not a topic name: {e}")))?;
    if !admin.ask(DeleteRetained(topic.clone())).await? {
        let why = format!("no retained message on {:?}", topic.as_str());
        return Err(ApiError::NotFound(why));
    }
    Ok(HttpResponse::Ok().json(Deleted {
        topic: topic.as_str().to_owned(),
        deleted: true,
    }))
}

/// The body of `POST publish`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    topic: String,
    #[serde(default)]
    payload: String,
    /// `"utf8"` (default) or `"base64"`.
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
}

#[derive(Serialize)]
struct Published {
    /// How many local sessions it was handed to.
    matched: usize,
}

/// `POST publish`: routed like a client's PUBLISH (no publisher: no-local does not
/// apply); a QoS 1/2 message is answered once stored copies are durable.
pub(super) async fn publish(admin: Admin, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: PublishBody =
        serde_json::from_slice(&body).map_err(|e| bad(format!("bad JSON body: {e}")))?;
    let msg = message(body)?;
    let qos = msg.qos;
    let routed = admin
        .ask(Route {
            msg: Arc::new(msg),
            inbound_qos2: None,
        })
        .await?;
    if let (Some(durable), true) = (routed.durable, qos != QoS::AtMostOnce) {
        match tokio::time::timeout(ASK_TIMEOUT, durable.wait()).await {
            Ok(true) => {}
            _ => return Err(ApiError::Unavailable("the store")),
        }
    }
    Ok(HttpResponse::Ok().json(Published {
        matched: routed.matched,
    }))
}

/// The message `body` asks for, or why not.
fn message(body: PublishBody) -> Result<Message, ApiError> {
    let topic = TopicName::new(body.topic).map_err(|e| bad(format!("not a topic name: {e}")))?;
    if topic.as_str().starts_with('$') {
        return Err(bad("topics starting with $ are the broker's"));
    }
    let payload = match body.encoding.as_deref() {
        None | Some("utf8") => Bytes::from(body.payload),
        Some("base64") => B64
            .decode(body.payload.as_bytes())
            .map(Bytes::from)
            .map_err(|e| bad(format!("payload is not base64: {e}")))?,
        Some(other) => return Err(bad(format!("unknown encoding {other:?}"))),
    };
    let qos = QoS::from_u8(body.qos).ok_or_else(|| bad("qos must be 0, 1 or 2"))?;
    Ok(Message {
        topic,
        payload,
        qos,
        retain: body.retain,
        properties: Properties::default(),
        expires_at: None,
        publisher: None,
        encoded: Default::default(),
    })
}

fn parse_filter(f: &str) -> Result<TopicFilter, ApiError> {
    TopicFilter::new(f).map_err(|e| bad(format!("not a topic filter: {e}")))
}
