//! MQTT 5.0 section 3.12, PINGREQ: the server answers each one with a PINGRESP.

use std::time::Duration;

use starling::protocol::{Packet, Properties, QoS};

use crate::common::{bounded, BrokerProcess, RawClient};

/// [MQTT-3.12.4-1]: every PINGREQ (raw `C0 00` on a 5.0 connection) gets a PINGRESP,
/// also between other traffic, and nothing else is sent in reply.
#[tokio::test]
async fn pingreq_gets_pingresp() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::connected_v5(broker.addr(), "ping5", Properties::default()).await;
        for _ in 0..3 {
            c.send_raw(&[0xC0, 0x00]).await;
            assert!(matches!(
                c.expect_packet("PINGRESP").await,
                Packet::PingResp
            ));
        }
        c.subscribe(&[("ping/t", QoS::AtLeastOnce)]).await;
        c.send_raw(&[0xC0, 0x00]).await;
        assert!(matches!(
            c.expect_packet("PINGRESP").await,
            Packet::PingResp
        ));
        c.expect_nothing(Duration::from_millis(300)).await;
    })
    .await;
}
