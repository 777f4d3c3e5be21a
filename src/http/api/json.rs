//! The JSON bodies of the admin API, built from the router's and sessions' plain
//! answers (`crate::router::admin`).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::message::Message;
use crate::protocol::ProtocolVersion;
use crate::router::admin::{ClientSummary, Page, SessionDetails, SubscriptionInfo, Window};

/// A page of a list.
#[derive(Serialize)]
pub(super) struct PageBody<T> {
    total: usize,
    offset: usize,
    limit: usize,
    items: Vec<T>,
}

impl<T> PageBody<T> {
    pub(super) fn new<S>(page: Page<S>, window: Window, f: impl FnMut(S) -> T) -> PageBody<T> {
        PageBody {
            total: page.total,
            offset: window.offset,
            limit: window.limit,
            items: page.items.into_iter().map(f).collect(),
        }
    }
}

/// One client in `GET clients`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ClientItem {
    pub client_id: String,
    pub connected: bool,
    persistent: bool,
    subscriptions: usize,
}

impl From<ClientSummary> for ClientItem {
    fn from(c: ClientSummary) -> ClientItem {
        ClientItem {
            client_id: c.client_id.as_str().to_owned(),
            connected: c.connected,
            persistent: c.persistent,
            subscriptions: c.subscriptions,
        }
    }
}

/// `GET clients/{id}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ClientBody {
    client_id: String,
    connected: bool,
    persistent: bool,
    /// `ip:port`; null for an in-process client or without a connection.
    address: Option<String>,
    /// `"3.1"`, `"3.1.1"` or `"5.0"`; null for an in-process client.
    protocol: Option<String>,
    username: Option<String>,
    /// RFC 3339 (UTC); null without a connection.
    connected_since: Option<String>,
    /// Messages queued for the client.
    queued: usize,
    /// Messages sent to it and not yet acknowledged.
    inflight: usize,
    subscriptions: Vec<SubscriptionItem>,
}

impl ClientBody {
    pub(super) fn new(
        summary: ClientSummary,
        subs: Vec<SubscriptionInfo>,
        details: SessionDetails,
    ) -> ClientBody {
        ClientBody {
            client_id: summary.client_id.as_str().to_owned(),
            connected: summary.connected,
            persistent: summary.persistent,
            address: details.address.map(|a| a.to_string()),
            protocol: details.protocol.map(|p| protocol_name(p).to_owned()),
            username: details.username,
            connected_since: details.connected_since.map(rfc3339),
            queued: details.queued,
            inflight: details.inflight,
            subscriptions: subs.into_iter().map(SubscriptionItem::from).collect(),
        }
    }
}

fn protocol_name(p: ProtocolVersion) -> &'static str {
    match p {
        ProtocolVersion::V31 => "3.1",
        ProtocolVersion::V311 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(super) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The date of a day counted from 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One subscription.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SubscriptionItem {
    pub client_id: String,
    pub filter: String,
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
    subscription_id: Option<u32>,
}

impl From<SubscriptionInfo> for SubscriptionItem {
    fn from(s: SubscriptionInfo) -> SubscriptionItem {
        let o = s.entry.options;
        SubscriptionItem {
            client_id: s.client_id.as_str().to_owned(),
            filter: s.filter.as_str().to_owned(),
            qos: o.qos as u8,
            no_local: o.no_local,
            retain_as_published: o.retain_as_published,
            retain_handling: o.retain_handling as u8,
            subscription_id: s.entry.id,
        }
    }
}

/// One retained message: its payload as text when it is UTF-8, else base64.
#[derive(Serialize)]
pub(super) struct RetainedItem {
    topic: String,
    payload: String,
    /// `"utf8"` or `"base64"`.
    encoding: &'static str,
    qos: u8,
    /// The payload's length in bytes.
    size: usize,
}

impl From<&Message> for RetainedItem {
    fn from(m: &Message) -> RetainedItem {
        let (payload, encoding) = match std::str::from_utf8(&m.payload) {
            Ok(text) => (text.to_owned(), "utf8"),
            Err(_) => (B64.encode(&m.payload), "base64"),
        };
        RetainedItem {
            topic: m.topic.as_str().to_owned(),
            payload,
            encoding,
            qos: m.qos as u8,
            size: m.payload.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }
}
