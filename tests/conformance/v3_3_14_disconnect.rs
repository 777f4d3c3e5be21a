//! MQTT 3.1.1 section 3.14, DISCONNECT: the reserved fixed-header flags.

use bytes::Bytes;
use starling::protocol::{LastWill, Properties, ProtocolVersion, QoS};

use crate::common::{bounded, connect_packet, topic, BrokerProcess, RawClient};

/// [MQTT-3.14.1-1]: the server validates DISCONNECT's reserved flags and disconnects
/// the client when they are not zero. Such a packet is not a DISCONNECT that deletes
/// the will ([MQTT-3.1.2-8], [MQTT-3.14.4-3] apply only to a valid one): the
/// connection closes abnormally and the will is published.
#[tokio::test]
async fn disconnect_with_reserved_flags_closes_and_publishes_the_will() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut obs = RawClient::connected_v311(broker.addr(), "dflags-obs", true).await;
        obs.subscribe(&[("will/#", QoS::AtLeastOnce)]).await;
        for first_byte in [0xE1u8, 0xE2, 0xE8] {
            let id = format!("dflags-{first_byte:02x}");
            let mut connect = connect_packet(ProtocolVersion::V311, &id, true, 60);
            connect.will = Some(LastWill {
                topic: topic(&format!("will/{id}")),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::default(),
            });
            let mut c = RawClient::open(broker.addr()).await;
            assert!(!c.connect(connect).await.reason.is_error());
            c.send_raw(&[first_byte, 0x00]).await;
            assert_eq!(c.expect_closed().await, None, "flags of {first_byte:02x}");
            let will = obs.recv_publish_acked().await;
            assert_eq!(will.topic.as_str(), format!("will/{id}"));
        }
    })
    .await;
}
