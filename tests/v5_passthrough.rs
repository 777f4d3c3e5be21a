//! MQTT 5.0 PUBLISH properties the broker forwards (user properties, content type,
//! payload format, request/response), the ones it computes per delivery (subscription
//! identifiers, the remaining message expiry) and the client's Maximum Packet Size,
//! over raw v5 clients.

mod common;

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use common::{
    bounded, filter, publish_packet, session_expiry, subscription_id, BrokerProcess, RawClient,
};
use starling::protocol::{
    Flow, Packet, PacketId, Properties, PropertyFields, Publish, QoS, ReasonCode, SubAck,
    SubscriptionOptions, UserProperty,
};

fn user(key: &str, value: &str) -> UserProperty {
    UserProperty {
        key: ByteString::from(key),
        value: ByteString::from(value),
    }
}

/// Sends `p` (its packet id is replaced by the next one at QoS 1) and, at QoS 1, waits for a successful
/// PUBACK.
async fn publish_with(c: &mut RawClient, mut p: Publish) {
    assert_ne!(p.qos(), QoS::ExactlyOnce, "helper covers QoS 0 and 1");
    let id = (p.qos() == QoS::AtLeastOnce).then(|| c.next_packet_id());
    if let Some(id) = id {
        p.flow = Flow::AtLeastOnce(id);
    }
    c.send(Packet::Publish(p)).await;
    let Some(id) = id else { return };
    match c
        .wait_for(
            "PUBACK",
            |p| matches!(p, Packet::PubAck(r) if r.packet_id == id),
        )
        .await
    {
        Packet::PubAck(r) => assert_eq!(r.reason, ReasonCode::SUCCESS, "PUBACK reason"),
        _ => unreachable!(),
    }
}

/// One SUBSCRIBE of one filter carrying a Subscription Identifier; returns its SUBACK.
async fn subscribe_with_id(c: &mut RawClient, f: &str, qos: QoS, id: u32) -> SubAck {
    let properties = subscription_id(id);
    c.subscribe_with(
        properties,
        vec![(filter(f), SubscriptionOptions::with_qos(qos))],
    )
    .await
}

// [MQTT-3.3.2-17] the server forwards all User Properties unaltered, keeping their order;
// [MQTT-3.3.2-20] it forwards the Content Type unaltered; [MQTT-3.3.2-4] and the
// Payload Format Indicator too.
#[tokio::test]
async fn user_properties_and_content_type_pass_through() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v5(addr, "up-sub", Properties::default()).await;
        let ack = sub.subscribe(&[("up/t", QoS::AtLeastOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
        let mut publ = RawClient::connected_v5(addr, "up-pub", Properties::default()).await;
        let users = vec![user("k", "second-first"), user("k", "first-second")];
        let mut p = publish_packet("up/t", QoS::AtLeastOnce, b"{\"a\":1}", PacketId::new(1));
        p.properties.user_properties = users.clone();
        p.properties.content_type = Some(ByteString::from("application/json"));
        p.properties.payload_format_indicator = Some(1);
        publish_with(&mut publ, p).await;

        let got = sub.recv_publish_acked().await;
        assert_eq!(got.topic.as_str(), "up/t");
        assert_eq!(got.payload.as_ref(), b"{\"a\":1}");
        assert_eq!(
            got.properties.user_properties, users,
            "same pairs, same order"
        );
        assert_eq!(
            got.properties.content_type.as_deref(),
            Some("application/json")
        );
        assert_eq!(got.properties.payload_format_indicator, Some(1));
        assert_eq!(got.properties.response_topic, None);
        assert_eq!(got.properties.correlation_data, None);
        assert!(got.properties.subscription_identifiers.is_empty());
        sub.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

// [MQTT-3.3.2-15] the server forwards the Response Topic unaltered; [MQTT-3.3.2-16] it
// forwards the Correlation Data unaltered. The responder then answers on the response
// topic and the requester receives the answer with the same correlation data.
#[tokio::test]
async fn request_response_properties_pass_through() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut responder = RawClient::connected_v5(addr, "rr-resp", Properties::default()).await;
        responder.subscribe(&[("rr/req/#", QoS::AtLeastOnce)]).await;
        let mut requester = RawClient::connected_v5(addr, "rr-req", Properties::default()).await;
        requester
            .subscribe(&[("rr/reply/rr-req", QoS::AtLeastOnce)])
            .await;

        let correlation = Bytes::from_static(b"\x00\x01corr\xff");
        let mut req = publish_packet(
            "rr/req/time",
            QoS::AtLeastOnce,
            b"what time?",
            PacketId::new(1),
        );
        req.properties.response_topic = Some(ByteString::from("rr/reply/rr-req"));
        req.properties.correlation_data = Some(correlation.clone());
        publish_with(&mut requester, req).await;

        let got = responder.recv_publish_acked().await;
        assert_eq!(got.topic.as_str(), "rr/req/time");
        assert_eq!(got.payload.as_ref(), b"what time?");
        let response_topic = got
            .properties
            .response_topic
            .clone()
            .expect("Response Topic forwarded");
        assert_eq!(&*response_topic, "rr/reply/rr-req");
        let corr = got
            .properties
            .correlation_data
            .clone()
            .expect("Correlation Data forwarded");
        assert_eq!(corr, correlation);

        let mut answer =
            publish_packet(&response_topic, QoS::AtLeastOnce, b"noon", PacketId::new(1));
        answer.properties.correlation_data = Some(corr);
        publish_with(&mut responder, answer).await;

        let reply = requester.recv_publish_acked().await;
        assert_eq!(reply.topic.as_str(), "rr/reply/rr-req");
        assert_eq!(reply.payload.as_ref(), b"noon");
        assert_eq!(reply.properties.correlation_data, Some(correlation));
        assert_eq!(reply.properties.response_topic, None);
        requester.expect_nothing(Duration::from_millis(300)).await;
        responder.expect_nothing(Duration::from_millis(100)).await;
    })
    .await;
}

// [MQTT-3.3.4-3] a message matching subscriptions with identifiers carries them;
// [MQTT-3.3.4-4] when one client has several overlapping subscriptions and the server
// sends one copy, that copy carries all their identifiers. (Section 3.3.4 lets the
// server send one copy per subscription instead, but then each copy carries its own id;
// Starling sends one copy, which this test requires.)
#[tokio::test]
async fn subscription_identifiers_on_delivery() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v5(addr, "sid-sub", Properties::default()).await;
        let ack = subscribe_with_id(&mut sub, "a/+", QoS::AtMostOnce, 1).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_0]);
        let ack = subscribe_with_id(&mut sub, "a/#", QoS::AtMostOnce, 2).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_0]);

        let mut publ = RawClient::connected_v5(addr, "sid-pub", Properties::default()).await;
        publ.publish("a/b", QoS::AtLeastOnce, false, b"both").await;

        let p = sub.expect_publish().await;
        assert_eq!(p.topic.as_str(), "a/b");
        assert_eq!(p.payload.as_ref(), b"both");
        let mut ids = p.properties.subscription_identifiers.clone();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2], "one copy carrying both identifiers");
        sub.expect_nothing(Duration::from_millis(400)).await;

        // Only `a/#` matches `a/b/c`: one identifier.
        publ.publish("a/b/c", QoS::AtLeastOnce, false, b"deep")
            .await;
        let p = sub.expect_publish().await;
        assert_eq!(p.topic.as_str(), "a/b/c");
        assert_eq!(p.properties.subscription_identifiers, vec![2]);
        sub.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}

// [MQTT-3.3.2-5] a message whose expiry interval has passed is not delivered to a
// subscriber it has not started to reach; [MQTT-3.3.2-6] the Message Expiry Interval
// forwarded is the received one minus the time the message waited in the server.
#[tokio::test]
async fn message_expiry_is_decremented_and_expired_not_delivered() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::open(addr).await;
        let ack = sub
            .connect_v5("exp-sub", false, 60, session_expiry(60))
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        let ack = sub.subscribe(&[("exp/t", QoS::AtLeastOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_1]);
        sub.disconnect().await;

        let mut publ = RawClient::connected_v5(addr, "exp-pub", Properties::default()).await;
        for (payload, expiry) in [(&b"short"[..], 1u32), (&b"long"[..], 60)] {
            let mut p = publish_packet("exp/t", QoS::AtLeastOnce, payload, PacketId::new(1));
            p.properties.message_expiry_interval = Some(expiry);
            publish_with(&mut publ, p).await;
        }
        tokio::time::sleep(Duration::from_millis(2200)).await;

        let mut sub = RawClient::open(addr).await;
        let ack = sub
            .connect_v5("exp-sub", false, 60, session_expiry(60))
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert!(ack.session_present, "the session was kept");
        let p = sub.recv_publish_acked().await;
        assert_eq!(
            p.payload.as_ref(),
            b"long",
            "the expired message is dropped"
        );
        let left = p
            .properties
            .message_expiry_interval
            .expect("Message Expiry Interval forwarded");
        assert!(
            (57..=59).contains(&left),
            "expiry decremented by the ~2.2 s waited: got {left}"
        );
        sub.expect_nothing(Duration::from_millis(500)).await;
    })
    .await;
}

// [MQTT-3.1.2-24] the server does not send a packet larger than the client's Maximum
// Packet Size; [MQTT-3.1.2-25] it discards such a message as if delivered, and goes on
// serving the client.
#[tokio::test]
async fn oversized_message_dropped_for_small_client() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let small_props = Properties::from(PropertyFields {
            maximum_packet_size: Some(100),
            ..PropertyFields::default()
        });
        let mut small = RawClient::connected_v5(addr, "mps-small", small_props).await;
        small.subscribe(&[("big/t", QoS::AtMostOnce)]).await;
        let mut large = RawClient::connected_v5(addr, "mps-large", Properties::default()).await;
        large.subscribe(&[("big/t", QoS::AtMostOnce)]).await;
        let mut publ = RawClient::connected_v5(addr, "mps-pub", Properties::default()).await;

        let big = vec![b'x'; 500];
        publ.publish("big/t", QoS::AtLeastOnce, false, &big).await;
        let p = large.expect_publish().await;
        assert_eq!(p.payload.len(), 500);

        publ.publish("big/t", QoS::AtLeastOnce, false, b"0123456789")
            .await;
        let p = large.expect_publish().await;
        assert_eq!(p.payload.as_ref(), b"0123456789");
        let p = small.expect_publish().await;
        assert_eq!(
            p.payload.as_ref(),
            b"0123456789",
            "the 500-byte message was skipped, the small one delivered"
        );
        small.expect_nothing(Duration::from_millis(300)).await;
        large.expect_nothing(Duration::from_millis(100)).await;
    })
    .await;
}
