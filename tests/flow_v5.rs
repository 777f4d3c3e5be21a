//! 5.0 session lifetime and retained-message flow over the raw client: will delay,
//! session expiry, DISCONNECT's session expiry and retain handling.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    bounded, connect_packet, filter, session_expiry, topic, BrokerProcess, Event, RawClient,
};
use starling::protocol::{
    Disconnect, LastWill, Packet, Properties, ProtocolVersion, QoS, ReasonCode, RetainHandling,
    SubAck, SubscriptionOptions,
};

/// Connects `id` with 5.0, clean start 0, session expiry 60 and a will on `will/{id}`
/// delayed by 2 s; returns the connection.
async fn delayed_will_client(addr: SocketAddr, id: &str) -> RawClient {
    let mut c = RawClient::open(addr).await;
    let mut connect = connect_packet(ProtocolVersion::V5, id, false, 60);
    connect.properties = session_expiry(60);
    connect.will = Some(LastWill {
        topic: topic(&format!("will/{id}")),
        payload: Bytes::from(format!("{id} gone")),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(2),
            ..Properties::default()
        },
    });
    assert_eq!(c.connect(connect).await.reason, ReasonCode::SUCCESS);
    c
}

async fn will_observer(addr: SocketAddr, id: &str) -> RawClient {
    let mut obs = RawClient::connected_v311(addr, id, true).await;
    obs.subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
    obs
}

// 5.0 [MQTT-3.1.3-9]: if a new network connection to the session is made before the will
// delay interval has passed, the server MUST NOT send the will message.
#[tokio::test]
async fn will_delay_cancelled_by_reconnect() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut obs = will_observer(addr, "wd-obs1").await;
        let w = delayed_will_client(addr, "wd1").await;
        drop(w); // no DISCONNECT: the will is pending, delayed by 2 s
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut again = RawClient::open(addr).await;
        let ack = again.connect_v5("wd1", false, 60, session_expiry(60)).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(ack.session_present, "the session (expiry 60) is present");
        obs.expect_nothing(Duration::from_secs(3)).await;
    })
    .await;
}

// 5.0 section 3.1.3.2.2 and [MQTT-3.1.2-8]: without a reconnect the will is published once
// the will delay interval (2 s, shorter than the session expiry) has passed, not before.
#[tokio::test]
async fn will_delay_elapses_without_reconnect() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut obs = will_observer(addr, "wd-obs2").await;
        let w = delayed_will_client(addr, "wd2").await;
        let dropped = Instant::now();
        drop(w);
        let p = match obs.next_event(Duration::from_secs(5)).await {
            Event::Packet(Packet::Publish(p)) => p,
            other => panic!("expected the will within 5 s, got {other:?}"),
        };
        let took = dropped.elapsed();
        obs.ack(&p).await;
        assert_eq!(p.topic.as_str(), "will/wd2");
        assert_eq!(p.payload.as_ref(), b"wd2 gone");
        assert!(
            took >= Duration::from_millis(1900),
            "will published after {took:?}, before its 2 s delay"
        );
    })
    .await;
}

/// Subscribes `id` (5.0, clean start 0, with `props`) to `{id}/t` at QoS 1, disconnects
/// normally, publishes a QoS 1 message there from another client.
async fn subscribe_leave_publish(addr: SocketAddr, id: &str, props: Properties) {
    let mut c = RawClient::open(addr).await;
    let ack = c.connect_v5(id, false, 60, props).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    c.subscribe(&[(&format!("{id}/t"), QoS::AtLeastOnce)]).await;
    c.disconnect().await;
    let mut publ = RawClient::connected_v311(addr, &format!("{id}-pub"), true).await;
    publ.publish(&format!("{id}/t"), QoS::AtLeastOnce, false, b"while away")
        .await;
}

/// Reconnects `id` with clean start 0 and asserts a new, empty session: session present 0
/// and nothing delivered within 1 s.
async fn assert_session_gone(addr: SocketAddr, id: &str) {
    let mut c = RawClient::open(addr).await;
    let ack = c.connect_v5(id, false, 60, session_expiry(60)).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(!ack.session_present, "the session of {id} must have ended");
    c.expect_nothing(Duration::from_secs(1)).await;
}

// 5.0 [MQTT-3.1.2-23] and section 3.1.2.11.2: session expiry 0 (absent) -> the session
// ends when the network connection closes; a later clean start 0 finds none.
#[tokio::test]
async fn session_expiry_zero_ends_session_v5() {
    let broker = BrokerProcess::start();
    bounded(async {
        subscribe_leave_publish(broker.addr(), "sx0", Properties::default()).await;
        assert_session_gone(broker.addr(), "sx0").await;
    })
    .await;
}

// 5.0 [MQTT-3.1.2-23]: the session is kept only for the session expiry interval (1 s)
// after the connection closes; after 2.5 s it is gone, with its queued message.
#[tokio::test]
async fn v5_session_expiry_elapses() {
    let broker = BrokerProcess::start();
    bounded(async {
        subscribe_leave_publish(broker.addr(), "sx1", session_expiry(1)).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_session_gone(broker.addr(), "sx1").await;
    })
    .await;
}

// 5.0 section 3.14.2.2.2: session expiry 0 in CONNECT and non-zero in the client's DISCONNECT
// is a protocol error; the server sends DISCONNECT 0x82 [MQTT-4.13.2-1] and closes.
#[tokio::test]
async fn disconnect_cannot_raise_zero_expiry_v5() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "raise", Properties::default()).await;
        c.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::NORMAL_DISCONNECTION,
            properties: session_expiry(30),
        }))
        .await;
        let d = c.expect_closed().await;
        assert_eq!(d.map(|d| d.reason), Some(ReasonCode::PROTOCOL_ERROR));
    })
    .await;
}

async fn subscribe_rh(c: &mut RawClient, f: &str, rh: RetainHandling) -> SubAck {
    let mut options = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
    options.retain_handling = rh;
    c.subscribe_with(Properties::default(), vec![(filter(f), options)])
        .await
}

/// Subscribes with `rh` and asserts whether the retained message of `rh/t` arrives.
async fn subscribe_expect_retained(c: &mut RawClient, rh: RetainHandling, want: bool) {
    let ack = subscribe_rh(c, "rh/t", rh).await;
    assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
    match c.next_event(Duration::from_secs(1)).await {
        Event::Packet(Packet::Publish(p)) if want => {
            c.ack(&p).await;
            assert_eq!(p.payload.as_ref(), b"kept");
            assert!(p.retain, "retained on subscribe: RETAIN = 1 [MQTT-3.3.1-9]");
        }
        Event::Timeout if !want => {}
        other => panic!("{rh:?}: want retained = {want}, got {other:?}"),
    }
}

// 5.0 section 3.8.3.1 [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]: retain handling 0
// sends retained messages on every subscribe, 1 only when the subscription is new, 2 never.
#[tokio::test]
async fn retained_delivered_with_retain_handling() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut publ = RawClient::connected_v311(addr, "rh-pub", true).await;
        publ.publish("rh/t", QoS::AtLeastOnce, true, b"kept").await;

        let mut c2 = RawClient::connected_v5(addr, "rh2", Properties::default()).await;
        subscribe_expect_retained(&mut c2, RetainHandling::DoNotSend, false).await;

        let mut c1 = RawClient::connected_v5(addr, "rh1", Properties::default()).await;
        subscribe_expect_retained(&mut c1, RetainHandling::SendIfNew, true).await;
        subscribe_expect_retained(&mut c1, RetainHandling::SendIfNew, false).await;

        let mut c0 = RawClient::connected_v5(addr, "rh0", Properties::default()).await;
        subscribe_expect_retained(&mut c0, RetainHandling::SendAtSubscribe, true).await;
        subscribe_expect_retained(&mut c0, RetainHandling::SendAtSubscribe, true).await;
    })
    .await;
}

// 5.0 section 3.14.2.2.2: a client that connected with a non-zero Session Expiry may
// lower it to 0 in DISCONNECT; the session then ends with the connection.
#[tokio::test]
async fn disconnect_can_lower_expiry_to_zero() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut c = RawClient::open(addr).await;
        let ack = c.connect_v5("lower", false, 60, session_expiry(60)).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        c.subscribe(&[("lower/t", QoS::AtLeastOnce)]).await;
        c.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::NORMAL_DISCONNECTION,
            properties: session_expiry(0),
        }))
        .await;
        assert!(c.expect_closed().await.is_none(), "no DISCONNECT back");
        let mut publ = RawClient::connected_v311(addr, "lower-pub", true).await;
        publ.publish("lower/t", QoS::AtLeastOnce, false, b"while away")
            .await;
        assert_session_gone(addr, "lower").await;
    })
    .await;
}

// 5.0 section 3.1.3.2.2: the will is published when the will delay passes or the
// session ends, whichever comes first; here the session (expiry 1 s) ends long before
// the 30 s delay.
#[tokio::test]
async fn will_sent_when_the_session_ends_before_its_delay() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut obs = will_observer(addr, "wse-obs").await;
        let mut c = RawClient::open(addr).await;
        let mut connect = connect_packet(ProtocolVersion::V5, "wse", false, 60);
        connect.properties = session_expiry(1);
        connect.will = Some(LastWill {
            topic: topic("will/wse"),
            payload: Bytes::from_static(b"wse gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties {
                will_delay_interval: Some(30),
                ..Properties::default()
            },
        });
        assert_eq!(c.connect(connect).await.reason, ReasonCode::SUCCESS);
        let dropped = Instant::now();
        drop(c);
        let p = match obs.next_event(Duration::from_secs(6)).await {
            Event::Packet(Packet::Publish(p)) => p,
            other => panic!("expected the will when the session ended, got {other:?}"),
        };
        obs.ack(&p).await;
        assert_eq!(p.topic.as_str(), "will/wse");
        let took = dropped.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(6),
            "will after {took:?}; the session expiry is 1 s"
        );
    })
    .await;
}

// 5.0 section 3.2.2.3.14 (Server Keep Alive): with `max_keepalive_secs` set, a client
// asking for more (or for none) is told the server's value in CONNACK and held to it;
// a client within the limit keeps its own and gets no property.
#[tokio::test]
async fn server_keep_alive_caps_the_clients() {
    let broker = BrokerProcess::start_with_config(Some("[limits]\nmax_keepalive_secs = 1\n"));
    bounded(async {
        let addr = broker.addr();
        for asked in [60, 0] {
            let mut c = RawClient::open(addr).await;
            let ack = c
                .connect_v5("ska", true, asked, Properties::default())
                .await;
            assert_eq!(ack.properties.server_keep_alive, Some(1), "asked {asked}");
        }
        let mut c = RawClient::open(addr).await;
        let ack = c.connect_v5("ska-ok", true, 1, Properties::default()).await;
        assert_eq!(ack.properties.server_keep_alive, None);
        // Held to 1 s: silence past 1.5 s closes with Keep Alive timeout.
        let mut c = RawClient::open(addr).await;
        c.connect_v5("ska-idle", true, 60, Properties::default())
            .await;
        let started = Instant::now();
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    })
    .await;
}
