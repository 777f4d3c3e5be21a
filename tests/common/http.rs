//! A plain HTTP/1.1 client for the operations listener's tests (one request per
//! connection, bounded), and the rumqttc event-loop wait they share.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An HTTP response: status code, head (status line and headers) and body.
pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One request with `Connection: close`; `auth` is an `Authorization` value, `body`
/// is sent as JSON.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> HttpResponse {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = body.unwrap_or_default();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    HttpResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A GET: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = http_request(addr, "GET", path, None, None);
    (r.status, r.body)
}

/// Polls a rumqttc event loop until `done` says so for one event; bounded by 10 s.
pub async fn poll_until(
    events: &mut rumqttc::EventLoop,
    mut done: impl FnMut(&rumqttc::Event) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.poll())
            .await
            .expect("event in time")
            .expect("connection stays up");
        if done(&event) {
            return;
        }
    }
}
