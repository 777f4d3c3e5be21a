//! MQTT 3.1.1 section 3.8, SUBSCRIBE: the payload's format (UTF-8 filters, reserved
//! bits, QoS) and a SUBSCRIBE that repeats an existing filter.

use std::time::Duration;

use starling::protocol::{QoS, ReasonCode};

use crate::common::{bounded, mqtt_str, raw_packet, BrokerProcess, RawClient, Witness};

/// SUBSCRIBE with packet id 1 and one filter with this options byte.
fn raw_subscribe(filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    body.extend(mqtt_str(filter));
    body.push(options);
    raw_packet(0x82, &body)
}

/// [MQTT-3.8.3-1]: filters are UTF-8 strings, and [MQTT-3.8.3-4]: non-zero reserved
/// bits in the options byte or QoS 3 make the SUBSCRIBE malformed. Either way the
/// server closes the connection without a SUBACK.
#[tokio::test]
async fn malformed_subscribe_payload_is_closed() {
    let mut broker = BrokerProcess::start();
    bounded(async {
        let mut witness = Witness::new(broker.addr(), "w").await;
        let cases = [
            (
                "3.8.3-1 overlong '/'",
                raw_subscribe(&[b'a', 0xC0, 0xAF], 0x01),
            ),
            (
                "3.8.3-1 lone continuation byte",
                raw_subscribe(&[0x80], 0x00),
            ),
            ("3.8.3-4 qos 3", raw_subscribe(b"a/b", 0x03)),
            ("3.8.3-4 reserved bit 2", raw_subscribe(b"a/b", 0x05)),
            ("3.8.3-4 reserved bit 7", raw_subscribe(b"a/b", 0x80)),
        ];
        for (what, bytes) in &cases {
            let mut c = RawClient::connected_v311(broker.addr(), "bad-sub", true).await;
            c.send_raw(bytes).await;
            assert_eq!(c.expect_closed().await, None, "{what}");
        }
        witness.check().await;
        broker.assert_alive();
    })
    .await;
}

/// [MQTT-3.8.4-3]: a SUBSCRIBE with a filter identical to an existing subscription
/// replaces it (new maximum QoS, still one subscription: one copy per message) and
/// re-sends the retained messages matching it.
#[tokio::test]
async fn identical_filter_replaces_the_subscription_and_resends_retained() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut p = RawClient::connected_v311(broker.addr(), "same-pub", true).await;
        p.publish("same/r", QoS::AtLeastOnce, true, b"retained")
            .await;
        let mut s = RawClient::connected_v311(broker.addr(), "same-sub", true).await;
        let ack = s.subscribe(&[("same/#", QoS::ExactlyOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_2]);
        let first = s.recv_publish_acked().await;
        assert_eq!(
            (first.payload.as_ref(), first.retain),
            (&b"retained"[..], true)
        );

        let ack = s.subscribe(&[("same/#", QoS::AtMostOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GRANTED_QOS_0]);
        let again = s.expect_publish().await;
        assert_eq!(again.payload.as_ref(), b"retained", "retained re-sent");
        assert!(again.retain);
        assert_eq!(
            again.qos(),
            QoS::AtMostOnce,
            "at the new subscription's QoS"
        );

        p.publish("same/live", QoS::ExactlyOnce, false, b"live")
            .await;
        let live = s.expect_publish().await;
        assert_eq!(
            (live.payload.as_ref(), live.qos()),
            (&b"live"[..], QoS::AtMostOnce)
        );
        s.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}
