//! MQTT over WebSocket in a real browser: headless Chromium loads tests/js/browser.html,
//! which uses MQTT.js's browser bundle to subscribe over a `ws` listener and publish, and
//! reports each step (`GET /report?what=data`) to a small HTTP server in this test that
//! also serves the page and the bundle. Missing Chromium or MQTT.js fail the test: run
//! scripts/test.sh, which installs both.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_port, repo_path, BrokerProcess, RawClient};
use starling::protocol::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The bound of the whole browser exchange (Chromium's start included).
const PAGE_TIMEOUT: Duration = Duration::from_secs(45);

/// Headless Chromium in its own process group, killed (the group) on drop.
struct Browser(Child);

impl Browser {
    fn open(url: &str, profile: &std::path::Path, log: &std::path::Path) -> Browser {
        let log = std::fs::File::create(log).expect("chromium log");
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromium cannot be run ({e}): run scripts/test.sh, which installs it")
            });
        Browser(child)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `%XX` escapes (what `encodeURIComponent` writes) decoded.
fn percent_decode(s: &str) -> String {
    let (bytes, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => (out.push(b), i += 3),
            (c, _) => (out.push(c), i += 1),
        };
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves the page, the bundle and `/report?what=data` (sent on `reports`), one request
/// per connection.
async fn serve_http(
    listener: TcpListener,
    bundle: Vec<u8>,
    reports: mpsc::UnboundedSender<(String, String)>,
) {
    let page = std::fs::read(repo_path("tests/js/browser.html")).expect("browser.html");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let target = read_target(stream).await;
        let Some((target, mut stream)) = target else {
            continue;
        };
        let (status, kind, body): (&str, &str, &[u8]) = match target.split_once('?') {
            Some(("/report", query)) => {
                let (what, data) = query.split_once('=').unwrap_or((query, ""));
                let _ = reports.send((percent_decode(what), percent_decode(data)));
                ("204 No Content", "text/plain", b"")
            }
            _ if target == "/mqtt.min.js" => ("200 OK", "application/javascript", &bundle),
            Some(("/", _)) => ("200 OK", "text/html; charset=utf-8", &page),
            _ => ("404 Not Found", "text/plain", b"not here"),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body).await;
        let _ = stream.shutdown().await;
    }
}

/// The request target of one HTTP request (its head read within 5 s, at most 16 KiB).
async fn read_target(mut stream: TcpStream) -> Option<(String, TcpStream)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()?
    {
        return None;
    }
    let line = String::from_utf8_lossy(&head).lines().next()?.to_owned();
    let target = line.split(' ').nth(1)?.to_owned();
    Some((target, stream))
}

// A browser page subscribes over ws, gets a retained and a live message, and publishes
// one that a TCP client receives.
#[actix_rt::test]
async fn a_browser_page_subscribes_and_publishes_over_websocket() {
    let bundle = repo_path("tests/js/node_modules/mqtt/dist/mqtt.min.js");
    let bundle = std::fs::read(&bundle).unwrap_or_else(|e| {
        panic!(
            "{} ({e}): run scripts/test.sh (npm ci in tests/js)",
            bundle.display()
        )
    });
    let ws_port = free_port();
    let toml = format!("[[listeners]]\nkind = \"ws\"\nbind = \"127.0.0.1:{ws_port}\"\n");
    let broker = BrokerProcess::start_with_config(Some(&toml));
    let mut tcp = RawClient::connected_v311(broker.addr(), "browser-peer", true).await;
    tcp.publish(
        "browser/retained",
        QoS::AtLeastOnce,
        true,
        b"retained-hello",
    )
    .await;
    tcp.subscribe(&[("browser/from-page", QoS::AtLeastOnce)])
        .await;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let http_port = listener.local_addr().expect("addr").port();
    let (tx, mut reports) = mpsc::unbounded_channel();
    actix_rt::spawn(serve_http(listener, bundle, tx));
    let dir = tempfile::tempdir().expect("tempdir");
    let (profile, log) = (dir.path().join("profile"), dir.path().join("chromium.log"));
    let url = format!("http://127.0.0.1:{http_port}/?ws=ws://127.0.0.1:{ws_port}/mqtt");
    let browser = Browser::open(&url, &profile, &log);

    let mut seen = Vec::new();
    let want = [
        "message browser/retained=retained-hello",
        "message browser/from-page=hello from the page",
        "message browser/live=live-hello",
    ];
    let exchange = async {
        while !want.iter().all(|w| seen.iter().any(|s| s == w)) {
            let (what, data) = reports.recv().await.expect("the server runs");
            if what == "subscribed" {
                tcp.publish("browser/live", QoS::AtLeastOnce, false, b"live-hello")
                    .await;
            }
            seen.push(format!("{what} {data}"));
        }
    };
    let done = tokio::time::timeout(PAGE_TIMEOUT, exchange).await;
    drop(browser);
    assert!(
        done.is_ok(),
        "the page reported only {seen:?}; chromium log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        seen.contains(&"subscribed browser/#:1".to_owned()),
        "{seen:?}"
    );
    let from_page = tcp.expect_publish().await;
    assert_eq!(from_page.payload.as_ref(), b"hello from the page");
}
