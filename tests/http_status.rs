//! The status page of the operations listener: `GET /status.json` counts rumqttc
//! traffic, and `GET /` rendered by headless Chromium (`--dump-dom` after a virtual-time
//! budget, so the page polls a few times) shows the numbers, the busiest topic and a
//! drawn chart. Missing Chromium fails the test: run scripts/test.sh, which installs it.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::http::{http_get, http_request, poll_until, HttpResponse};
use common::{bounded, free_port, BrokerProcess};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::Value;

/// How long Chromium may take to load, run and dump the page.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// `/status.json`, parsed.
fn status(http: SocketAddr) -> Value {
    let HttpResponse {
        status: code,
        head,
        body,
    } = http_request(http, "GET", "/status.json", None, None);
    assert_eq!(code, 200, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("application/json"),
        "{head}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A broker with its HTTP listener on a free port; the listener's address.
fn start_broker() -> (BrokerProcess, SocketAddr) {
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let toml = format!("[server]\nworkers = 1\n[http]\nbind = \"{http}\"\n");
    (BrokerProcess::start_with_config(Some(&toml)), http)
}

/// A rumqttc 3.1.1 client, its CONNACK received.
async fn client(addr: SocketAddr, id: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 100);
    poll_until(&mut events, |e| {
        matches!(e, Event::Incoming(Packet::ConnAck(_)))
    })
    .await;
    (client, events)
}

/// Two connected clients (kept until the returned value drops): a subscriber to
/// `status/#` and a publisher that sent `busy` messages to `status/busy`, 3 to
/// `status/quiet` and one nobody subscribed to, all received by the subscriber.
struct Traffic {
    _clients: (AsyncClient, AsyncClient),
    drivers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.drivers.iter().for_each(|d| d.abort());
    }
}

async fn traffic(addr: SocketAddr, busy: usize) -> Traffic {
    let (sub, mut sub_events) = client(addr, "status-sub").await;
    sub.subscribe("status/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    poll_until(&mut sub_events, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_)))
    })
    .await;
    let (publisher, mut pub_events) = client(addr, "status-pub").await;
    let pub_driver = tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    let topics = std::iter::repeat_n("status/busy", busy)
        .chain(std::iter::repeat_n("status/quiet", 3))
        .chain(["nobody/listens"]);
    for topic in topics {
        publisher
            .publish(topic, QoS::AtLeastOnce, false, "x")
            .await
            .expect("publish");
    }
    let mut got = 0;
    poll_until(&mut sub_events, |e| {
        got += usize::from(matches!(e, Event::Incoming(Packet::Publish(_))));
        got == busy + 3
    })
    .await;
    let sub_driver = tokio::spawn(async move { while sub_events.poll().await.is_ok() {} });
    Traffic {
        _clients: (sub, publisher),
        drivers: vec![pub_driver, sub_driver],
    }
}

/// Polls `/status.json` until `done` holds; bounded by 10 s (the router's count of
/// unrouted publishes and the sessions' send tallies land shortly after the traffic).
async fn status_until(http: SocketAddr, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = status(http);
        if done(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "status.json never got there: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn status_json_counts_the_traffic() {
    bounded(async {
        let (broker, http) = start_broker();
        let idle = status(http);
        assert_eq!(idle["messages"]["received"], 0, "{idle}");
        assert_eq!(idle["topics"], serde_json::json!([]), "{idle}");
        let _traffic = traffic(broker.addr(), 12).await;
        let s = status_until(http, |s| {
            s["messages"]["sent"] == 15 && s["dropped"]["no_subscribers"] == 1
        })
        .await;
        assert_eq!(s["ready"], true, "{s}");
        assert_eq!(s["connections"], 2, "{s}");
        assert_eq!(s["sessions"]["online"], 2, "{s}");
        assert_eq!(s["sessions"]["offline"], 0, "{s}");
        assert_eq!(s["subscriptions"], 1, "{s}");
        // $SYS topics are retained.
        assert!(s["retained"].as_u64().is_some(), "{s}");
        assert_eq!(s["messages"]["received"], 16, "{s}");
        assert_eq!(s["dropped"]["queue_full"], 0, "{s}");
        let topics = serde_json::json!([
            {"topic": "status/busy", "messages": 12},
            {"topic": "status/quiet", "messages": 3},
            {"topic": "nobody/listens", "messages": 1},
        ]);
        assert_eq!(s["topics"], topics, "{s}");
        // /metrics counts the unrouted publish once, whoever asked the router first.
        let (_, metrics) = http_get(http, "/metrics");
        let line = "starling_messages_dropped_total{reason=\"no_subscribers\"} 1";
        assert!(metrics.lines().any(|l| l == line), "{metrics}");
    })
    .await;
}

/// Runs headless Chromium on `url` with a virtual-time budget and returns the DOM it
/// dumps; its process group is killed after [`BROWSER_TIMEOUT`].
fn dump_dom(url: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=6000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromium cannot be run ({e}): run scripts/test.sh, which installs it")
        });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        let _ = tx.send(dom);
    });
    let dom = rx.recv_timeout(BROWSER_TIMEOUT);
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
    dom.expect("chromium dumped the page in time")
}

/// The text of the element whose `id` is `id` (no nested elements).
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let rest = &dom[at..];
    let start = rest.find('>').expect("tag end") + 1;
    let end = rest[start..].find('<').expect("element end");
    rest[start..start + end].trim()
}

/// The value of `attr` in the tag of the element whose `id` is `id`.
fn attr_of<'a>(dom: &'a str, id: &str, attr: &str) -> &'a str {
    let at = dom.find(&format!("id=\"{id}\"")).expect("element");
    let open = dom[..at].rfind('<').expect("tag start");
    let tag = &dom[open..open + dom[open..].find('>').expect("tag end")];
    let key = format!("{attr}=\"");
    let start = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {attr} in {tag}"))
        + key.len();
    &tag[start..start + tag[start..].find('"').expect("quote")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_the_numbers_and_the_chart() {
    let (broker, http) = start_broker();
    let traffic = bounded(traffic(broker.addr(), 20)).await;
    bounded(status_until(http, |s| s["messages"]["sent"] == 23)).await;
    let HttpResponse {
        status: code,
        head,
        body: page,
    } = http_request(http, "GET", "/", None, None);
    assert_eq!(code, 200);
    assert!(head.contains("text/html"), "{head}");
    assert!(page.contains("<canvas id=\"chart\""), "{page}");

    let url = format!("http://{http}/");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&url))
        .await
        .expect("browser thread");
    drop(traffic);
    assert_eq!(text_of(&dom, "state"), "ready", "{dom}");
    assert_eq!(text_of(&dom, "connections"), "2", "{dom}");
    assert_eq!(text_of(&dom, "sessions-online"), "2", "{dom}");
    assert_eq!(text_of(&dom, "subscriptions"), "1", "{dom}");
    assert_eq!(text_of(&dom, "received"), "24", "{dom}");
    assert_eq!(text_of(&dom, "sent"), "23", "{dom}");
    let topics = &dom[dom.find("id=\"topics\"").expect("topics")..];
    let busiest = "<tr><td>status/busy</td><td class=\"n\">20</td></tr>";
    assert!(
        topics.starts_with(&format!("id=\"topics\">{busiest}")),
        "{topics}"
    );
    let drops = &dom[dom.find("id=\"dropped\"").expect("drops")..];
    let unrouted = "<tr><td>no_subscribers</td><td class=\"n\">1</td></tr>";
    assert!(drops.contains(unrouted), "{drops}");
    // The page polled more than once, and the lines coloured pixels of the canvas.
    let points: usize = attr_of(&dom, "chart", "data-points")
        .parse()
        .expect("points");
    let ink: usize = attr_of(&dom, "chart", "data-ink").parse().expect("ink");
    assert!(points >= 2, "{points} points drawn");
    // Two 2-pixel lines over at least one point's width (about 12 pixels).
    assert!(ink > 20, "{ink} pixels of lines ({points} points)");
}
