//! The admin API (`/api/v1` on the `[http]` listener, behind `[http] token_file`) of
//! the broker binary, against real clients: raw 3.1.1 and 5.0 clients and rumqttc.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::http_request;
use common::{bounded, free_port, BrokerProcess, RawClient};
use rumqttc::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};
use starling::protocol::{Properties, QoS, ReasonCode};

const TOKEN: &str = "0123456789abcdef-admin";

/// A broker with its HTTP listener on a free port (and the token file, when `token`).
struct Api {
    broker: BrokerProcess,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Api {
    fn start(token: bool) -> Api {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).expect("write token");
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let token_line = match token {
            true => format!("token_file = {:?}\n", path.display().to_string()),
            false => String::new(),
        };
        let toml = format!("[server]\nworkers = 1\n[http]\nbind = \"{http}\"\n{token_line}");
        let broker = BrokerProcess::start_with_config(Some(&toml));
        Api {
            broker,
            http,
            _dir: dir,
        }
    }

    fn mqtt(&self) -> SocketAddr {
        self.broker.addr()
    }

    /// One request with the right token: the status and the JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {TOKEN}");
        request(self.http, method, path, Some(&auth), body)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    /// GET `path` until `done` holds for its body (bounded by 5 s).
    fn get_until(&self, path: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = self.get(path);
            if done(status, &body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never as expected: {body}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One HTTP/1.1 request: the status code and the body as JSON (null when empty, a
/// string when not JSON).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let response = http_request(addr, method, path, auth, body.as_deref());
    let (status, text) = (response.status, response.body.as_str());
    let json = match text.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
    };
    (status, json)
}

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["client_id"].as_str().expect("client_id"))
        .collect()
}

/// A rumqttc 3.1.1 client, polled until its CONNACK; its event loop runs on a task
/// whose handle ends when the connection does.
async fn rumqttc_client(
    addr: SocketAddr,
    id: &str,
    subscribe: Option<&str>,
) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 10);
    if let Some(filter) = subscribe {
        client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe");
    }
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let want_suback = subscribe.is_some();
    let task = tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            let ready = match event {
                Event::Incoming(rumqttc::Packet::SubAck(_)) => true,
                Event::Incoming(rumqttc::Packet::ConnAck(_)) => !want_suback,
                _ => false,
            };
            if ready {
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), ready_rx)
        .await
        .expect("rumqttc ready in time")
        .expect("rumqttc connected");
    (client, task)
}

#[test]
fn token_required() {
    let api = Api::start(true);
    let path = "/api/v1/clients";
    let (status, body) = request(api.http, "GET", path, None, None);
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let wrong = Some("Bearer 0123456789abcdef-wrong");
    assert_eq!(request(api.http, "GET", path, wrong, None).0, 401);
    let basic = Some("Basic YWRtaW46YWRtaW4=");
    assert_eq!(request(api.http, "GET", path, basic, None).0, 401);
    assert_eq!(api.get(path).0, 200);
    assert_eq!(api.get("/api/v1/nothing").0, 404);
    // The operations routes stay open.
    assert_eq!(request(api.http, "GET", "/health", None, None).0, 200);

    let off = Api::start(false);
    let auth = format!("Bearer {TOKEN}");
    let (status, body) = request(off.http, "GET", path, Some(&auth), None);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn clients_listed_shown_and_paged() {
    bounded(async {
        let api = Api::start(true);
        let (_a, _task) = rumqttc_client(api.mqtt(), "api-a", Some("t/a")).await;
        let mut b = RawClient::connected_v5(api.mqtt(), "api-b", Properties::default()).await;
        b.subscribe(&[("t/b/#", QoS::AtMostOnce)]).await;

        let (status, page) = api.get("/api/v1/clients");
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 2, "{page}");
        assert_eq!(ids(&page), ["api-a", "api-b"]);
        assert_eq!(page["items"][0]["connected"], true);
        assert_eq!(page["items"][0]["subscriptions"], 1);
        let (_, second) = api.get("/api/v1/clients?page=2&limit=1");
        assert_eq!((ids(&second), &second["total"]), (vec!["api-b"], &json!(2)));
        let (_, second) = api.get("/api/v1/clients?offset=1&limit=5");
        assert_eq!(ids(&second), ["api-b"]);
        for bad in [
            "limit=0",
            "limit=1001",
            "page=0",
            "page=1&offset=1",
            "limit=x",
        ] {
            let (status, body) = api.get(&format!("/api/v1/clients?{bad}"));
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body["error"].is_string());
        }

        let (status, a) = api.get("/api/v1/clients/api-a");
        assert_eq!(status, 200, "{a}");
        assert_eq!(a["protocol"], "3.1.1");
        assert!(
            a["address"]
                .as_str()
                .is_some_and(|s| s.starts_with("127.0.0.1:")),
            "{a}"
        );
        assert!(a["connected_since"].is_string(), "{a}");
        assert_eq!((&a["queued"], &a["inflight"]), (&json!(0), &json!(0)));
        assert_eq!(a["subscriptions"][0]["filter"], "t/a");
        assert_eq!(a["subscriptions"][0]["qos"], 1);
        let (_, b_info) = api.get("/api/v1/clients/api-b");
        assert_eq!(b_info["protocol"], "5.0");
        assert_eq!(b_info["address"], b.local_addr().to_string());
        let (status, body) = api.get("/api/v1/clients/nobody");
        assert_eq!(status, 404, "{body}");
        assert!(body["error"].is_string());

        let (_, subs) = api.get("/api/v1/subscriptions?filter=t/%23");
        assert_eq!(subs["total"], 2, "{subs}");
        let (_, subs) = api.get("/api/v1/subscriptions?filter=t/a");
        assert_eq!(ids(&subs), ["api-a"]);
        let (_, subs) = api.get("/api/v1/subscriptions");
        assert_eq!(subs["items"][1]["filter"], "t/b/#", "{subs}");
        assert_eq!(api.get("/api/v1/subscriptions?filter=a/%23/b").0, 400);
    })
    .await;
}

#[tokio::test]
async fn delete_kicks_v5_and_v311_clients() {
    bounded(async {
        let api = Api::start(true);
        let mut v5 = RawClient::connected_v5(api.mqtt(), "kick-5", Properties::default()).await;
        let (status, body) = api.call("DELETE", "/api/v1/clients/kick-5", None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["disconnected"], true);
        let disconnect = v5.expect_closed().await.expect("a DISCONNECT first");
        assert_eq!(disconnect.reason, ReasonCode::ADMINISTRATIVE_ACTION);

        let (_client, task) = rumqttc_client(api.mqtt(), "kick-3", None).await;
        let (status, _) = api.call("DELETE", "/api/v1/clients/kick-3", None);
        assert_eq!(status, 200);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the 3.1.1 connection closed in time")
            .expect("event loop task");

        let (status, body) = api.call("DELETE", "/api/v1/clients/nobody", None);
        assert_eq!(status, 404, "{body}");
    })
    .await;
}

#[tokio::test]
async fn discard_session_removes_a_persistent_session() {
    bounded(async {
        let api = Api::start(true);
        let mut c = RawClient::connected_v311(api.mqtt(), "keep-me", false).await;
        c.subscribe(&[("k/1", QoS::AtLeastOnce)]).await;
        // Without discard_session, the session stays.
        assert_eq!(api.call("DELETE", "/api/v1/clients/keep-me", None).0, 200);
        assert_eq!(c.expect_closed().await, None);
        let info = api.get_until("/api/v1/clients/keep-me", |s, b| {
            s == 200 && b["connected"] == false
        });
        assert_eq!(info["persistent"], true, "{info}");
        assert_eq!(info["subscriptions"][0]["filter"], "k/1");
        let mut c = RawClient::open(api.mqtt()).await;
        assert!(c.connect_v311("keep-me", false, 60).await.session_present);

        let path = "/api/v1/clients/keep-me?discard_session=true";
        let (status, body) = api.call("DELETE", path, None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["session_discarded"], true);
        assert_eq!(c.expect_closed().await, None);
        api.get_until("/api/v1/clients/keep-me", |s, _| s == 404);
        let mut c = RawClient::open(api.mqtt()).await;
        assert!(!c.connect_v311("keep-me", false, 60).await.session_present);
        let (_, subs) = api.get("/api/v1/subscriptions?filter=k/1");
        assert_eq!(subs["total"], 0, "{subs}");
    })
    .await;
}

#[tokio::test]
async fn retained_listed_and_deleted() {
    bounded(async {
        let api = Api::start(true);
        let mut c = RawClient::connected_v311(api.mqtt(), "retainer", true).await;
        c.publish("r/a", QoS::AtLeastOnce, true, b"one").await;
        c.publish("r/b/c", QoS::AtMostOnce, true, &[0xff, 0x00])
            .await;
        c.publish("other", QoS::AtLeastOnce, true, b"x").await;

        let page = api.get_until("/api/v1/retained?topic=r/%23", |s, b| {
            s == 200 && b["total"] == 2
        });
        let item = &page["items"][0];
        assert_eq!(
            (&item["topic"], &item["payload"]),
            (&json!("r/a"), &json!("one"))
        );
        assert_eq!(
            (&item["encoding"], &item["qos"]),
            (&json!("utf8"), &json!(1))
        );
        let item = &page["items"][1];
        assert_eq!(
            (&item["payload"], &item["encoding"]),
            (&json!("/wA="), &json!("base64"))
        );
        let (_, all) = api.get("/api/v1/retained");
        assert_eq!(all["total"], 3, "{all}");

        let (status, body) = api.call("DELETE", "/api/v1/retained/r/b/c", None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(api.call("DELETE", "/api/v1/retained/r/b/c", None).0, 404);
        let (_, page) = api.get("/api/v1/retained?topic=r/%23");
        assert_eq!(page["total"], 1, "{page}");
        // A new subscriber gets the remaining one only.
        let mut s = RawClient::connected_v311(api.mqtt(), "late", true).await;
        s.subscribe(&[("r/#", QoS::AtMostOnce)]).await;
        assert_eq!(s.expect_publish().await.topic.as_str(), "r/a");
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

#[tokio::test]
async fn publish_reaches_a_subscriber() {
    bounded(async {
        let api = Api::start(true);
        let mut s = RawClient::connected_v5(api.mqtt(), "listener", Properties::default()).await;
        s.subscribe(&[("p/#", QoS::AtLeastOnce)]).await;

        let msg = json!({"topic": "p/1", "payload": "hello", "qos": 1});
        let (status, body) = api.call("POST", "/api/v1/publish", Some(msg));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["matched"], 1);
        let p = s.recv_publish_acked().await;
        assert_eq!((p.topic.as_str(), &p.payload[..]), ("p/1", &b"hello"[..]));

        let msg = json!({"topic": "p/2", "payload": "/wA=", "encoding": "base64", "retain": true});
        assert_eq!(api.call("POST", "/api/v1/publish", Some(msg)).0, 200);
        let p = s.expect_publish().await;
        assert_eq!(
            (p.topic.as_str(), &p.payload[..]),
            ("p/2", &[0xff, 0x00][..])
        );
        let (_, page) = api.get("/api/v1/retained?topic=p/2");
        assert_eq!(page["total"], 1, "{page}");

        for bad in [
            json!({"topic": "p/+", "payload": "x"}),
            json!({"topic": "$SYS/x", "payload": "x"}),
            json!({"topic": "p/3", "payload": "x", "qos": 3}),
            json!({"topic": "p/3", "payload": "!", "encoding": "base64"}),
            json!({"payload": "x"}),
        ] {
            let (status, body) = api.call("POST", "/api/v1/publish", Some(bad.clone()));
            assert_eq!(status, 400, "{bad}: {body}");
        }
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}
