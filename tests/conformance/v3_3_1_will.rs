//! MQTT 3.1.1 section 3.1.2, the session side of CONNECT: the Will Message (when it is
//! published, with which RETAIN flag, that it is published once) and retained messages
//! outliving the session that published them.

use std::time::Duration;

use bytes::Bytes;
use starling::protocol::{Connect, LastWill, Properties, ProtocolVersion, QoS};

use crate::common::{bounded, connect_packet, topic, BrokerProcess, RawClient};

/// No event marks "nothing was published": how long a test watches for it.
const SETTLE: Duration = Duration::from_millis(500);

fn with_will(id: &str, clean: bool, retain: bool) -> Connect {
    let mut c = connect_packet(ProtocolVersion::V311, id, clean, 60);
    c.will = Some(LastWill {
        topic: topic(&format!("will/{id}")),
        payload: Bytes::from(format!("{id} gone")),
        qos: QoS::AtLeastOnce,
        retain,
        properties: Properties::default(),
    });
    c
}

async fn observer(broker: &BrokerProcess, id: &str) -> RawClient {
    let mut obs = RawClient::connected_v311(broker.addr(), id, true).await;
    let ack = obs.subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
    assert!(!ack.reasons[0].is_error());
    obs
}

/// Connects with this CONNECT, asserting success, and returns the session-present flag.
async fn connect_ok(c: &mut RawClient, connect: Connect) -> bool {
    let ack = c.connect(connect).await;
    assert!(!ack.reason.is_error(), "{ack:?}");
    ack.session_present
}

/// [MQTT-3.1.2-12]: with Will Flag 0 nothing is published when the connection ends,
/// even abnormally (the socket dropped without DISCONNECT).
#[tokio::test]
async fn no_will_flag_publishes_nothing_on_abnormal_close() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = RawClient::connected_v311(broker.addr(), "nowill-obs", true).await;
        obs.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        let c = RawClient::connected_v311(broker.addr(), "nowill", true).await;
        drop(c);
        obs.expect_nothing(SETTLE).await;
    })
    .await;
}

/// [MQTT-3.1.2-16]: Will Retain 0: the will is published as a non-retained message (a
/// later subscriber gets nothing); [MQTT-3.1.2-17]: Will Retain 1: published retained
/// (a later subscriber gets it with RETAIN 1).
#[tokio::test]
async fn will_retain_flag_decides_whether_the_will_is_retained() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = observer(&broker, "wr-obs").await;
        for (id, retain) in [("wr-no", false), ("wr-yes", true)] {
            let mut c = RawClient::open(broker.addr()).await;
            connect_ok(&mut c, with_will(id, true, retain)).await;
            drop(c);
            let will = obs.recv_publish_acked().await;
            assert_eq!(will.topic.as_str(), format!("will/{id}"));
        }
        let mut late = RawClient::connected_v311(broker.addr(), "wr-late", true).await;
        late.subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
        let got = late.recv_publish_acked().await;
        assert_eq!(got.topic.as_str(), "will/wr-yes", "only the retained will");
        assert!(got.retain, "RETAIN 1 on the retained will: {got:?}");
        late.expect_nothing(SETTLE).await;
    })
    .await;
}

/// [MQTT-3.1.2-10], the "once published" half: a will is removed from the session once
/// published. A persistent session whose will went out, resumed without a will and
/// dropped again, publishes nothing the second time.
#[tokio::test]
async fn will_is_removed_from_the_session_once_published() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = observer(&broker, "wonce-obs").await;
        let mut c = RawClient::open(broker.addr()).await;
        connect_ok(&mut c, with_will("wonce", false, false)).await;
        drop(c);
        let will = obs.recv_publish_acked().await;
        assert_eq!(will.topic.as_str(), "will/wonce");
        let mut again = RawClient::open(broker.addr()).await;
        let resumed = again.connect_v311("wonce", false, 60).await;
        assert!(resumed.session_present, "the persistent session is resumed");
        drop(again);
        obs.expect_nothing(SETTLE).await;
    })
    .await;
}

/// [MQTT-3.1.2-7]: retained messages are not part of the session: they stay after the
/// session that published them ends (clean session closed, persistent session replaced
/// by a clean one).
#[tokio::test]
async fn retained_messages_outlive_the_publishing_session() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut clean = RawClient::connected_v311(broker.addr(), "keep-clean", true).await;
        clean
            .publish("keep/clean", QoS::AtLeastOnce, true, b"from clean")
            .await;
        clean.disconnect().await;
        let mut durable = RawClient::connected_v311(broker.addr(), "keep-durable", false).await;
        durable
            .publish("keep/durable", QoS::AtLeastOnce, true, b"from durable")
            .await;
        durable.disconnect().await;
        // Clean Session 1 discards the persistent session: it ends here.
        let ender = RawClient::connected_v311(broker.addr(), "keep-durable", true).await;
        ender.disconnect().await;
        let mut sub = RawClient::connected_v311(broker.addr(), "keep-sub", true).await;
        sub.subscribe(&[("keep/#", QoS::AtLeastOnce)]).await;
        let mut got = [
            sub.recv_publish_acked().await,
            sub.recv_publish_acked().await,
        ];
        got.sort_by(|a, b| a.topic.as_str().cmp(b.topic.as_str()));
        assert_eq!(got[0].topic.as_str(), "keep/clean");
        assert_eq!(got[0].payload.as_ref(), b"from clean");
        assert_eq!(got[1].topic.as_str(), "keep/durable");
        assert_eq!(got[1].payload.as_ref(), b"from durable");
        assert!(got.iter().all(|p| p.retain));
    })
    .await;
}
