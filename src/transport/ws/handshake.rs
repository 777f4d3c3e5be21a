//! The HTTP side of a WebSocket connection (RFC 6455 section 4.2), without I/O: whether
//! a request head is complete, whether it asks for MQTT over WebSocket on the
//! listener's path, and the answer to write.

use httparse::{Request, Status, EMPTY_HEADER};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The largest request head read; a longer one is refused.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header lines in a request head.
const MAX_HEADERS: usize = 64;
/// The one subprotocol a server may select [MQTT-6.0.0-4].
const SUBPROTOCOL: &str = "mqtt";

/// The HTTP status of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpStatus {
    /// 400: not a WebSocket upgrade the broker can take.
    BadRequest,
    /// 404: a request for another path.
    NotFound,
}

impl HttpStatus {
    /// The status code.
    pub fn code(self) -> u16 {
        match self {
            HttpStatus::BadRequest => 400,
            HttpStatus::NotFound => 404,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            HttpStatus::BadRequest => "Bad Request",
            HttpStatus::NotFound => "Not Found",
        }
    }
}

/// A request the broker answers with an HTTP error, and why (the response body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {}: {why}", status.code())]
pub struct Refusal {
    /// The status answered.
    pub status: HttpStatus,
    /// Why, in words for the person reading the response or the log.
    pub why: String,
}

fn bad(why: impl Into<String>) -> Refusal {
    Refusal {
        status: HttpStatus::BadRequest,
        why: why.into(),
    }
}

/// An upgrade request that passed: what the 101 answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// `Sec-WebSocket-Accept`.
    accept: String,
    /// The client offered `mqtt`, so the answer selects it.
    mqtt: bool,
}

/// The length of the request head at the start of `buf`: `Ok(None)` while more is
/// needed; a refusal as soon as the bytes cannot be an HTTP request (raw MQTT, TLS).
pub fn head_len(buf: &[u8]) -> Result<Option<usize>, Refusal> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    match Request::new(&mut headers).parse(buf) {
        Ok(Status::Complete(n)) if n <= MAX_HEAD => Ok(Some(n)),
        Ok(Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(_) => Err(bad("request head over 8 KiB")),
        Err(httparse::Error::TooManyHeaders) => Err(bad("over 64 header lines")),
        Err(e) => Err(bad(format!("not an HTTP request ({e})"))),
    }
}

/// Checks a complete request head: a GET for `path` (any query string) over HTTP/1.1
/// asking for a version 13 WebSocket that offers the `mqtt` subprotocol, or no
/// subprotocol at all (lenient towards clients that omit it [MQTT-6.0.0-3]).
pub fn check(head: &[u8], path: &str) -> Result<Upgrade, Refusal> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let mut req = Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(Status::Complete(_))) {
        return Err(bad("not an HTTP request"));
    }
    let target = req.path.unwrap_or_default();
    if target.split('?').next() != Some(path) {
        return Err(Refusal {
            status: HttpStatus::NotFound,
            why: format!("no MQTT endpoint at {target:?}: it is at {path:?}"),
        });
    }
    let method = req.method.unwrap_or_default();
    if method != "GET" {
        return Err(bad(format!("a WebSocket handshake is a GET, not {method}")));
    }
    if req.version != Some(1) {
        return Err(bad("a WebSocket handshake needs HTTP/1.1"));
    }
    if !has_token(&req, "upgrade", "websocket") || !has_token(&req, "connection", "upgrade") {
        return Err(bad(
            "not a WebSocket upgrade request: this is an MQTT over WebSocket \
             endpoint, for a WebSocket client offering the mqtt subprotocol",
        ));
    }
    if header(&req, "sec-websocket-version").map(str::trim) != Some("13") {
        return Err(bad("Sec-WebSocket-Version must be 13"));
    }
    let key = header(&req, "sec-websocket-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("no Sec-WebSocket-Key"))?;
    let offered: Vec<&str> = tokens(&req, "sec-websocket-protocol").collect();
    if !offered.is_empty() && !offered.contains(&SUBPROTOCOL) {
        return Err(bad(format!(
            "the mqtt subprotocol is required [MQTT-6.0.0-3]; offered: {}",
            offered.join(", ")
        )));
    }
    Ok(Upgrade {
        accept: derive_accept_key(key.as_bytes()),
        mqtt: !offered.is_empty(),
    })
}

/// The first header named `name` (any case), if it is text.
fn header<'a>(req: &Request<'_, 'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// The comma-separated tokens of every header named `name`.
fn tokens<'r, 'a>(req: &'r Request<'_, 'a>, name: &'r str) -> impl Iterator<Item = &'a str> + 'r {
    req.headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn has_token(req: &Request<'_, '_>, name: &str, token: &str) -> bool {
    tokens(req, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// The 101 answer to an accepted upgrade.
pub fn switching_protocols(upgrade: &Upgrade) -> String {
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        upgrade.accept
    );
    if upgrade.mqtt {
        answer.push_str("Sec-WebSocket-Protocol: mqtt\r\n");
    }
    answer.push_str("\r\n");
    answer
}

/// The HTTP error answering a refused request; the connection closes after it.
pub fn refusal_response(refusal: &Refusal) -> String {
    let body = format!("{}\n", refusal.why);
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Sec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n{body}",
        refusal.status.code(),
        refusal.status.reason(),
        body.len()
    )
}
