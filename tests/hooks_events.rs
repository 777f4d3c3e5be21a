//! The rest of the embedding builder: event hooks, an authenticator that sees who
//! connects, a store the application gives, and local subscriptions delivered to an
//! actor of the application.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use common::{bounded, connect_packet, session_expiry, RawClient, RECV_TIMEOUT};
use starling::auth::{AuthExchange, Authenticator};
use starling::hooks::{Answer, ClientInfo, Event, Hook};
use starling::persistence::{MemoryStore, Op, Snapshot, Store, StoreError};
use starling::protocol::{Properties, ProtocolVersion, QoS, ReasonCode};
use starling::{Broker, BrokerHandle, Config, LocalMessage};
use tokio::sync::mpsc;

fn config() -> Config {
    let mut config = Config::default();
    config.listeners[0].bind = "127.0.0.1:0".parse().expect("address");
    config.storage.durability = starling::config::Durability::Memory;
    config
}

async fn start(configure: impl FnOnce(Broker) -> Broker) -> BrokerHandle {
    configure(Broker::new(config()).workers(1))
        .start()
        .await
        .expect("broker starts")
}

/// Sends every event into a channel, late (as a hook doing I/O would).
struct Recorder(mpsc::UnboundedSender<Event>);

impl Hook for Recorder {
    fn on_event(&self, event: &Event) -> Answer<()> {
        let (tx, event) = (self.0.clone(), event.clone());
        Answer::later(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let _ = tx.send(event);
        })
    }
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    let event = tokio::time::timeout(RECV_TIMEOUT, rx.recv()).await;
    event.expect("an event in time").expect("the hook is alive")
}

#[actix_rt::test]
async fn events_arrive_in_order_with_who_the_client_is() {
    bounded(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let broker = start(|b| b.hook(Recorder(tx))).await;
        let addr = broker.local_addrs()[0];
        let mut c = RawClient::open(addr).await;
        let mut connect = connect_packet(ProtocolVersion::V5, "ev", true, 0);
        connect.username = Some("alice".into());
        c.connect(connect).await;
        c.subscribe(&[("a/#", QoS::AtLeastOnce)]).await;
        let packet_id = c.next_packet_id();
        c.send(starling::protocol::Packet::Unsubscribe(
            starling::protocol::Unsubscribe {
                packet_id,
                properties: Properties::default(),
                filters: vec![common::filter("a/#")],
            },
        ))
        .await;
        c.expect_packet("UNSUBACK").await;
        c.disconnect().await;

        let Event::Connected {
            client,
            session_present,
        } = next_event(&mut rx).await
        else {
            panic!("Connected first");
        };
        assert!(!session_present);
        assert_eq!(client.client_id, "ev".into());
        assert_eq!(client.username.as_deref(), Some("alice"));
        assert_eq!(client.listener, Some(addr));
        assert_eq!(client.protocol, Some(ProtocolVersion::V5));
        assert!(client.remote_addr.is_some_and(|a| a.ip().is_loopback()));
        match next_event(&mut rx).await {
            Event::Subscribed { filter, qos, .. } => {
                assert_eq!((filter.as_str(), qos), ("a/#", QoS::AtLeastOnce));
            }
            other => panic!("Subscribed second, got {other:?}"),
        }
        match next_event(&mut rx).await {
            Event::Unsubscribed { filter, .. } => assert_eq!(filter.as_str(), "a/#"),
            other => panic!("Unsubscribed third, got {other:?}"),
        }
        match next_event(&mut rx).await {
            Event::Disconnected { client } => assert_eq!(client.client_id, "ev".into()),
            other => panic!("Disconnected last, got {other:?}"),
        }
        // In-process subscriptions are events too.
        let app = broker.client("app");
        let sub = app
            .subscribe("b/#", QoS::AtMostOnce)
            .await
            .expect("subscribed");
        match next_event(&mut rx).await {
            Event::Subscribed { client, .. } => assert!(client.is_local()),
            other => panic!("local Subscribed, got {other:?}"),
        }
        drop(sub);
        assert!(matches!(
            next_event(&mut rx).await,
            Event::Unsubscribed { .. }
        ));
        broker.stop().await;
    })
    .await;
}

/// Refuses the client id `banned`, and remembers where each client came from.
#[derive(Default)]
struct Gatekeeper(Mutex<Vec<Seen>>);

/// A client id, where it came from and the listener it reached.
type Seen = (String, Option<SocketAddr>, Option<SocketAddr>);

impl Authenticator for Gatekeeper {
    fn check_plain(&self, _: Option<&str>, _: Option<&[u8]>) -> Result<(), ReasonCode> {
        Ok(())
    }

    fn check_client(&self, client: &ClientInfo, _: Option<&[u8]>) -> Result<(), ReasonCode> {
        let seen = (
            client.client_id.to_string(),
            client.remote_addr,
            client.listener,
        );
        self.0.lock().expect("lock").push(seen);
        match client.client_id == "banned".into() {
            true => Err(ReasonCode::NOT_AUTHORIZED),
            false => Ok(()),
        }
    }

    fn plain_check_is_slow(&self, _: Option<&str>) -> bool {
        false
    }

    fn exchange(&self, _: &str, _: &str, _: Option<&str>) -> Option<Box<dyn AuthExchange>> {
        None
    }
}

#[actix_rt::test]
async fn the_authenticator_sees_client_id_address_and_listener() {
    bounded(async {
        let gate = Arc::new(Gatekeeper::default());
        let broker = start(|b| b.authenticator(gate.clone())).await;
        let addr = broker.local_addrs()[0];
        let mut banned = RawClient::open(addr).await;
        banned.set_version(ProtocolVersion::V5);
        let ack = banned
            .connect(connect_packet(ProtocolVersion::V5, "banned", true, 0))
            .await;
        assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED);
        RawClient::connected_v311(addr, "fine", true).await;
        let seen = gate.0.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2);
        for (i, (id, remote, listener)) in seen.into_iter().enumerate() {
            assert_eq!(id, ["banned", "fine"][i]);
            assert!(remote.is_some_and(|a| a.ip().is_loopback()));
            assert_eq!(listener, Some(addr));
        }
        broker.stop().await;
    })
    .await;
}

/// A store the test keeps a handle on: two brokers in turn use the same one.
#[derive(Clone, Default)]
struct SharedStore(Arc<Mutex<MemoryStore>>);

impl Store for SharedStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.0.lock().expect("lock").load()
    }
    fn apply(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.0.lock().expect("lock").apply(ops)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        self.0.lock().expect("lock").flush()
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[actix_rt::test]
async fn a_given_store_keeps_sessions_and_retained_messages_across_brokers() {
    bounded(async {
        let store = SharedStore::default();
        let mut config = config();
        config.storage.durability = starling::config::Durability::Sync;
        let dir = tempfile::tempdir().expect("tempdir");
        config.storage.data_dir = dir.path().join("unused");
        let first = Broker::new(config.clone()).store(store.clone());
        let broker = first.start().await.expect("starts");
        let addr = broker.local_addrs()[0];
        let mut c = RawClient::connected_v5(addr, "keeper", session_expiry(600)).await;
        c.subscribe(&[("k/#", QoS::AtLeastOnce)]).await;
        c.disconnect().await;
        let app = broker.client("app");
        for i in 0..3 {
            let topic = format!("k/{i}");
            app.publish(&topic, "v", QoS::AtLeastOnce, i == 0)
                .await
                .expect("ok");
        }
        broker.stop().await;
        assert!(!dir.path().join("unused").exists(), "sled was not opened");

        let broker = Broker::new(config)
            .store(store.clone())
            .start()
            .await
            .expect("starts");
        let addr = broker.local_addrs()[0];
        let mut c = RawClient::open(addr).await;
        c.set_version(ProtocolVersion::V5);
        let mut connect = connect_packet(ProtocolVersion::V5, "keeper", false, 0);
        connect.properties = session_expiry(600);
        assert!(c.connect(connect).await.session_present);
        for i in 0..3 {
            let p = c.recv_publish_acked().await;
            assert_eq!(
                p.topic.as_str(),
                format!("k/{i}"),
                "queued while away, in order"
            );
        }
        let mut late = RawClient::connected_v311(addr, "late", true).await;
        late.subscribe(&[("k/0", QoS::AtMostOnce)]).await;
        let p = late.expect_publish().await;
        assert!(
            p.retain,
            "the retained message came back from the given store"
        );
        broker.stop().await;
    })
    .await;
}

/// An actor of the application that collects what its subscription delivers.
struct Collector(mpsc::UnboundedSender<String>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<LocalMessage> for Collector {
    type Result = ();
    fn handle(&mut self, msg: LocalMessage, _: &mut Self::Context) {
        let _ = self.0.send(msg.topic.as_str().to_owned());
    }
}

#[actix_rt::test]
async fn a_subscription_delivers_to_an_actor_until_unsubscribed() {
    bounded(async {
        let broker = start(|b| b).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let collector = Collector(tx).start();
        let app = broker.client("app");
        let sub = app
            .subscribe("d/#", QoS::AtLeastOnce)
            .await
            .expect("subscribed");
        sub.deliver_to(collector.recipient());
        let mut order = BTreeMap::new();
        for i in 0..20 {
            app.publish(&format!("d/{i}"), "x", QoS::AtLeastOnce, false)
                .await
                .expect("ok");
            order.insert(i, format!("d/{i}"));
        }
        for want in order.values() {
            let got = tokio::time::timeout(RECV_TIMEOUT, rx.recv()).await;
            assert_eq!(&got.expect("in time").expect("open"), want);
        }
        assert!(app.unsubscribe("d/#").await);
        assert!(!app.unsubscribe("d/#").await, "only once");
        let after = app.publish("d/late", "x", QoS::AtLeastOnce, false).await;
        assert_eq!(
            after.expect("ok").matched,
            0,
            "no longer routed to the actor"
        );
        broker.stop().await;
    })
    .await;
}
