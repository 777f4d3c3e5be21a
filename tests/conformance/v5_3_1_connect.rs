//! MQTT 5.0 section 3.1, CONNECT: what a well-formed CONNECT does to the session (Clean
//! Start, Client Identifier), the keep-alive it sets up, and the will it carries.
//! Malformed and refused CONNECTs are in `v5_3_1_connect_refused.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use starling::protocol::{
    LastWill, Packet, Properties, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions,
    UserProperty,
};

use crate::common::{
    bounded, connect_packet, filter, session_expiry, topic, BrokerProcess, RawClient,
};

/// A 5.0 CONNECT of `id` with a QoS 1 will on `will/{id}`.
fn with_will(id: &str, clean: bool, props: Properties, will: Properties, retain: bool) -> Packet {
    let mut connect = connect_packet(ProtocolVersion::V5, id, clean, 60);
    connect.properties = props;
    connect.will = Some(LastWill {
        topic: topic(&format!("will/{id}")),
        payload: Bytes::from(format!("{id} gone")),
        qos: QoS::AtLeastOnce,
        retain,
        properties: will,
    });
    Packet::Connect(Box::new(connect))
}

async fn connect_with_will(broker: &BrokerProcess, packet: Packet) -> RawClient {
    let Packet::Connect(connect) = packet else {
        unreachable!()
    };
    let mut c = RawClient::open(broker.addr()).await;
    let ack = c.connect(*connect).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    c
}

/// A 5.0 observer of `will/#` whose subscription keeps the RETAIN flag as published.
async fn will_observer(broker: &BrokerProcess, id: &str) -> RawClient {
    let mut obs = RawClient::connected_v5(broker.addr(), id, Properties::default()).await;
    let mut opts = SubscriptionOptions::with_qos(QoS::AtLeastOnce);
    opts.retain_as_published = true;
    let ack = obs
        .subscribe_with(Properties::default(), vec![(filter("will/#"), opts)])
        .await;
    assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
    obs
}

/// [MQTT-3.1.2-4], [MQTT-3.2.2-2], [MQTT-3.1.4-4], [MQTT-3.1.4-5]: a CONNECT with Clean
/// Start 1 discards the existing session (its subscription and the message queued for
/// it) and starts a new one: CONNACK 0x00 with Session Present 0, nothing delivered,
/// and a later publish on the old subscription's topic does not reach the client.
#[tokio::test]
async fn clean_start_discards_the_existing_session() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("cs-1", false, 60, session_expiry(300)).await;
        assert!(!ack.session_present);
        c.subscribe(&[("cs/t", QoS::AtLeastOnce)]).await;
        c.disconnect().await;
        let mut p = RawClient::connected_v5(broker.addr(), "cs-pub", Properties::default()).await;
        p.publish("cs/t", QoS::AtLeastOnce, false, b"queued").await;

        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("cs-1", true, 60, session_expiry(300)).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(!ack.session_present, "Clean Start 1: Session Present 0");
        c.expect_nothing(Duration::from_millis(500)).await;
        p.publish("cs/t", QoS::AtLeastOnce, false, b"after").await;
        c.expect_nothing(Duration::from_millis(500)).await;

        // The new session is a real one: Clean Start 0 now finds it (and not the old).
        c.disconnect().await;
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("cs-1", false, 60, session_expiry(300)).await;
        assert!(ack.session_present);
        c.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.1.3-2]: the Client Identifier names the session: a persistent session of
/// one id is not resumed by another id, and messages queued for it go to it only.
#[tokio::test]
async fn client_identifier_selects_the_session() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut a = RawClient::open(broker.addr()).await;
        a.connect_v5("id-a", false, 60, session_expiry(300)).await;
        a.subscribe(&[("ids/t", QoS::AtLeastOnce)]).await;
        a.disconnect().await;
        let mut p = RawClient::connected_v5(broker.addr(), "id-pub", Properties::default()).await;
        p.publish("ids/t", QoS::AtLeastOnce, false, b"for-a").await;

        let mut b = RawClient::open(broker.addr()).await;
        let ack = b.connect_v5("id-b", false, 60, session_expiry(300)).await;
        assert!(!ack.session_present, "id-b has no session");
        b.expect_nothing(Duration::from_millis(300)).await;
        let mut a = RawClient::open(broker.addr()).await;
        let ack = a.connect_v5("id-a", false, 60, session_expiry(300)).await;
        assert!(ack.session_present);
        assert_eq!(a.recv_publish_acked().await.payload.as_ref(), b"for-a");
    })
    .await;
}

/// [MQTT-3.1.3-5]: a 23-byte Client Identifier of the listed characters is accepted as
/// it is (no Assigned Client Identifier).
#[tokio::test]
async fn twenty_three_alphanumeric_bytes_are_a_valid_client_identifier() {
    let broker = BrokerProcess::start();
    bounded(async {
        let id = "0123456789abcdefghijXYZ";
        assert_eq!(id.len(), 23);
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5(id, true, 60, Properties::default()).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert_eq!(ack.properties.assigned_client_identifier, None);
    })
    .await;
}

/// [MQTT-3.1.2-22], [MQTT-3.2.2-22]: with no Server Keep Alive in CONNACK the server
/// uses the client's Keep Alive (1 s here): a client that sends PINGREQs stays
/// connected well past 1.5 s; one that goes quiet is closed after 1.5 s (Starling
/// checks every half period, so by 2 s; the test allows 3.5 s on a loaded machine)
/// as if the network had failed: its will is published. Starling tells a 5.0 client
/// why (DISCONNECT 0x8D, allowed by 4.13).
#[tokio::test]
async fn keep_alive_of_the_client_closes_a_silent_connection() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = will_observer(&broker, "ka-obs").await;
        let mut busy = RawClient::open(broker.addr()).await;
        let ack = busy
            .connect_v5("ka-busy", true, 1, Properties::default())
            .await;
        assert_eq!(ack.properties.server_keep_alive, None);
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            busy.send(Packet::PingReq).await;
            assert!(matches!(
                busy.expect_packet("PINGRESP").await,
                Packet::PingResp
            ));
        }

        let Packet::Connect(mut connect) = with_will(
            "ka-idle",
            true,
            Properties::default(),
            Properties::default(),
            false,
        ) else {
            unreachable!()
        };
        connect.keep_alive = 1;
        let mut idle = RawClient::open(broker.addr()).await;
        let ack = idle.connect(*connect).await;
        assert_eq!(ack.properties.server_keep_alive, None);
        let start = Instant::now();
        let disconnect = idle.expect_closed_within(Duration::from_secs(5)).await;
        let after = start.elapsed();
        assert!(
            after >= Duration::from_millis(1400),
            "closed after {after:?}"
        );
        assert!(
            after <= Duration::from_millis(3500),
            "closed after {after:?}"
        );
        if let Some(d) = disconnect {
            assert_eq!(d.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
        }
        let will = obs.recv_publish_acked().await;
        assert_eq!(will.topic.as_str(), "will/ka-idle");
    })
    .await;
}

/// [MQTT-3.1.2-22] with a Server Keep Alive: a broker whose `max_keepalive_secs` is 1
/// answers a Keep Alive of 60 with Server Keep Alive 1 and closes the silent
/// connection after 1.5 s of it, not 90 s.
#[tokio::test]
async fn server_keep_alive_is_the_one_enforced() {
    let broker = BrokerProcess::start_with_limits(&[("max_keepalive_secs", 1)]);
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("ska", true, 60, Properties::default()).await;
        assert_eq!(ack.properties.server_keep_alive, Some(1));
        let start = Instant::now();
        let disconnect = c.expect_closed_within(Duration::from_secs(5)).await;
        assert!(start.elapsed() >= Duration::from_millis(1400));
        assert_eq!(
            disconnect.map(|d| d.reason),
            Some(ReasonCode::KEEP_ALIVE_TIMEOUT)
        );
    })
    .await;
}

/// [MQTT-3.1.2-14], [MQTT-3.1.2-15]: Will Retain 0 publishes the will non-retained
/// (RETAIN 0 to a Retain-As-Published subscriber, and no retained copy for a later
/// subscriber); Will Retain 1 publishes it retained (RETAIN 1, and a later subscriber
/// gets it as a retained message).
#[tokio::test]
async fn will_retain_flag_decides_whether_the_will_is_retained() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = will_observer(&broker, "wr-obs").await;
        for (id, retain) in [("wr-0", false), ("wr-1", true)] {
            let c = connect_with_will(
                &broker,
                with_will(
                    id,
                    true,
                    Properties::default(),
                    Properties::default(),
                    retain,
                ),
            )
            .await;
            drop(c);
            let will = obs.recv_publish_acked().await;
            assert_eq!(will.topic.as_str(), format!("will/{id}"));
            assert_eq!(will.retain, retain, "RETAIN of the will of {id}");
        }
        let mut late =
            RawClient::connected_v5(broker.addr(), "wr-late", Properties::default()).await;
        late.subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
        let retained = late.recv_publish_acked().await;
        assert_eq!(retained.topic.as_str(), "will/wr-1");
        assert!(retained.retain);
        late.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

/// [MQTT-3.1.3-10]: the server keeps the order of the Will's User Properties when it
/// publishes the will (repeated keys included).
#[tokio::test]
async fn will_user_properties_keep_their_order() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = will_observer(&broker, "wu-obs").await;
        let pairs = [("k", "1"), ("a", "2"), ("k", "3"), ("b", "4")];
        let will_props = Properties {
            user_properties: pairs
                .iter()
                .map(|(k, v)| UserProperty {
                    key: ByteString::from(*k),
                    value: ByteString::from(*v),
                })
                .collect(),
            ..Properties::default()
        };
        let c = connect_with_will(
            &broker,
            with_will("wu", true, Properties::default(), will_props, false),
        )
        .await;
        drop(c);
        let will = obs.recv_publish_acked().await;
        let got: Vec<(&str, &str)> = will
            .properties
            .user_properties
            .iter()
            .map(|u| (&u.key[..], &u.value[..]))
            .collect();
        assert_eq!(got, pairs);
    })
    .await;
}

/// [MQTT-3.1.2-10]: once published, the will is removed from the session state: a
/// persistent session whose will went out on a lost connection does not publish it
/// again when its client, back without a will, loses the connection a second time.
#[tokio::test]
async fn published_will_is_removed_from_the_session() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = will_observer(&broker, "wo-obs").await;
        let c = connect_with_will(
            &broker,
            with_will(
                "wo",
                false,
                session_expiry(300),
                Properties::default(),
                false,
            ),
        )
        .await;
        drop(c);
        assert_eq!(obs.recv_publish_acked().await.topic.as_str(), "will/wo");
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c.connect_v5("wo", false, 60, session_expiry(300)).await;
        assert!(ack.session_present);
        drop(c);
        obs.expect_nothing(Duration::from_millis(800)).await;
    })
    .await;
}
