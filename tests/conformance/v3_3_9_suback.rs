//! MQTT 3.1.1 section 3.9, SUBACK: the return codes the server may send, read as raw
//! bytes so that the client codec does not judge them.

use std::time::Duration;

use crate::common::{bounded, mqtt_str, raw_connect, raw_packet, BrokerProcess, RawClient};

/// Connects, sends one SUBSCRIBE (packet id 0x0102) and a DISCONNECT in one write, and
/// returns the raw bytes the server sent after the CONNACK.
async fn suback_bytes(broker: &BrokerProcess, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut body = vec![0x01, 0x02];
    for (f, qos) in filters {
        body.extend(mqtt_str(f.as_bytes()));
        body.push(*qos);
    }
    let mut bytes = raw_connect(4, 0x02, "suback", None);
    bytes.extend(raw_packet(0x82, &body));
    bytes.extend([0xE0, 0x00]);
    let mut c = RawClient::open(broker.addr()).await;
    c.send_raw(&bytes).await;
    let reply = c.read_raw_until_closed(Duration::from_secs(5)).await;
    assert_eq!(
        reply[..4],
        [0x20, 0x02, 0x00, 0x00],
        "CONNACK: {reply:02x?}"
    );
    reply[4..].to_vec()
}

/// [MQTT-3.9.3-2]: SUBACK return codes are only 0x00, 0x01, 0x02 and 0x80, one per
/// filter in order: all three grants on a default broker; on a broker with Maximum QoS
/// 1 and no wildcards, a QoS 2 request granted 0x01 and a wildcard filter refused 0x80.
#[tokio::test]
async fn suback_uses_only_the_defined_return_codes() {
    let broker = BrokerProcess::start();
    bounded(async {
        let got = suback_bytes(&broker, &[("a", 0), ("b", 1), ("c", 2)]).await;
        assert_eq!(got, [0x90, 0x05, 0x01, 0x02, 0x00, 0x01, 0x02]);
    })
    .await;
    let limited = "[capabilities]\nmaximum_qos = 1\nwildcard_subscriptions = false\n";
    let broker = BrokerProcess::start_with_config(Some(limited));
    bounded(async {
        let filters = [("a", 0), ("b", 2), ("c/#", 1), ("d/+", 0)];
        let got = suback_bytes(&broker, &filters).await;
        assert_eq!(got, [0x90, 0x06, 0x01, 0x02, 0x00, 0x01, 0x80, 0x80]);
    })
    .await;
}
