//! A blocking client of a running broker's admin API (`/api/v1`), for `starling inspect
//! --url`: the sessions with their state, queue depth and subscriptions, and the
//! retained count, as that node sees them.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Clients fetched per page (the API's largest `limit`).
const PAGE: usize = 1000;
/// Pages fetched at most (a million sessions).
const MAX_PAGES: usize = 1000;
/// Bound of each request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the admin API gave no report.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A 401: the bearer token is missing or wrong.
    #[error("the broker at {url} refused the token (401: {reason}); pass the admin token with --token-file")]
    Unauthorized {
        /// The base URL.
        url: String,
        /// The broker's error text.
        reason: String,
    },
    /// Any other error status.
    #[error("GET {path} answered {status}: {reason}")]
    Status {
        /// The request path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The broker's error text.
        reason: String,
    },
    /// No answer (refused, timed out, not HTTP) or an answer that is not the API's JSON.
    #[error("cannot ask {url}: {reason}")]
    Transport {
        /// The base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// What a running broker reports through its admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteReport {
    /// The base URL asked.
    pub url: String,
    /// Sessions, sorted by client id.
    pub sessions: Vec<RemoteSession>,
    /// Retained messages on that node.
    pub retained_count: usize,
}

/// One session, as `GET /api/v1/clients/{id}` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteSession {
    /// Client id.
    pub client_id: String,
    /// Whether a connection is open now.
    pub connected: bool,
    /// Whether the session outlives its connection.
    pub persistent: bool,
    /// `"3.1"`, `"3.1.1"` or `"5.0"` when known.
    pub protocol: Option<String>,
    /// Messages queued (in flight included).
    pub queued: usize,
    /// Messages sent and awaiting acknowledgement.
    pub inflight: usize,
    /// Subscriptions.
    pub subscriptions: Vec<RemoteSubscription>,
}

/// One subscription of a [`RemoteSession`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteSubscription {
    /// Topic filter.
    pub filter: String,
    /// Maximum QoS granted.
    pub qos: u8,
}

#[derive(Deserialize)]
struct Page<T> {
    total: usize,
    items: Vec<T>,
}

#[derive(Deserialize)]
struct ClientItem {
    client_id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// Asks the broker whose operations listener is at `url` (e.g. `http://127.0.0.1:8080`)
/// with the bearer `token`.
pub fn inspect_remote(url: &str, token: &str) -> Result<RemoteReport, ClientError> {
    let api = Api::new(url, token);
    let mut ids = Vec::new();
    for page in 0..MAX_PAGES {
        let path = format!("/api/v1/clients?offset={}&limit={PAGE}", page * PAGE);
        let got: Page<ClientItem> = api.get(&path)?;
        let last = got.items.len() < PAGE || (page + 1) * PAGE >= got.total;
        ids.extend(got.items.into_iter().map(|c| c.client_id));
        if last {
            break;
        }
    }
    let mut sessions = Vec::with_capacity(ids.len());
    for id in ids {
        match api.get(&format!("/api/v1/clients/{}", percent_encode(&id))) {
            Ok(s) => sessions.push(s),
            // Gone between the list and now.
            Err(ClientError::Status { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let retained: Page<serde_json::Value> = api.get("/api/v1/retained?limit=1")?;
    Ok(RemoteReport {
        url: api.base,
        sessions,
        retained_count: retained.total,
    })
}

struct Api {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(url: &str, token: &str) -> Api {
        Api {
            base: url.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {}", token.trim()),
            agent: ureq::AgentBuilder::new().timeout(TIMEOUT).build(),
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let transport = |reason: String| ClientError::Transport {
            url: self.base.clone(),
            reason,
        };
        let answer = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &self.auth)
            .call();
        match answer {
            Ok(response) => response
                .into_json()
                .map_err(|e| transport(format!("GET {path}: {e}"))),
            Err(ureq::Error::Status(status, response)) => {
                let text = response.into_string().unwrap_or_default();
                let reason = serde_json::from_str::<ErrorBody>(&text)
                    .map(|b| b.error)
                    .unwrap_or(text);
                Err(match status {
                    401 => ClientError::Unauthorized {
                        url: self.base.clone(),
                        reason,
                    },
                    _ => ClientError::Status {
                        path: path.to_owned(),
                        status,
                        reason,
                    },
                })
            }
            Err(ureq::Error::Transport(t)) => Err(transport(t.to_string())),
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (one path segment).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for RemoteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "broker {}", self.url)?;
        writeln!(f, "sessions: {}", self.sessions.len())?;
        for s in &self.sessions {
            let proto = s.protocol.as_deref().unwrap_or("?");
            let state = if s.connected { "online" } else { "offline" };
            let kind = if s.persistent { "persistent" } else { "clean" };
            writeln!(f, "  {:?}: MQTT {proto}, {kind}, {state}", s.client_id)?;
            writeln!(f, "    queue {} (in flight {})", s.queued, s.inflight)?;
            for sub in &s.subscriptions {
                writeln!(f, "    sub {:?} qos {}", sub.filter, sub.qos)?;
            }
        }
        write!(f, "retained messages: {}", self.retained_count)
    }
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn encodes_a_path_segment() {
        assert_eq!(percent_encode("abc-1.2_~"), "abc-1.2_~");
        assert_eq!(percent_encode("a/b c?#%"), "a%2Fb%20c%3F%23%25");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
