//! MQTT 5.0 section 3.15 (AUTH) and the parts of 4.12 that need no authenticator. The
//! SCRAM-SHA-256 exchange, its refusals and re-authentication are in tests/auth.rs,
//! which runs a broker with a password file.

use starling::protocol::{Packet, Properties, ReasonCode};

use crate::common::{bounded, raw_packet, BrokerProcess, Event, RawClient, RECV_TIMEOUT};

/// [MQTT-3.15.1-1]: AUTH's fixed-header flags are 0; anything else is a Malformed
/// Packet: DISCONNECT 0x81, then the connection closes.
#[tokio::test]
async fn auth_with_flags_set_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c =
            RawClient::connected_v5(broker.addr(), "auth-flags", Properties::default()).await;
        // AUTH (type 15) with flag bit 0 set: reason 0x19, no properties.
        c.send_raw(&raw_packet(0xF1, &[0x19, 0x00])).await;
        let d = c.expect_closed().await.expect("DISCONNECT before close");
        assert_eq!(d.reason, ReasonCode::MALFORMED_PACKET);
    })
    .await;
}

/// [MQTT-4.12.0-6]: a CONNECT without an Authentication Method gets no AUTH and a
/// CONNACK without one; [MQTT-4.12.0-7] is the client's side of the rule, and a client
/// that breaks it gets DISCONNECT 0x82 (tests/auth.rs::misplaced_auth_is_a_protocol_error).
#[tokio::test]
async fn no_method_means_no_auth_and_no_method_in_connack() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut c = RawClient::open(broker.addr()).await;
        let ack = c
            .connect_v5("auth-none", true, 30, Properties::default())
            .await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
        assert_eq!(ack.properties.authentication_method, None);
        assert_eq!(ack.properties.authentication_data, None);
        c.send(Packet::PingReq).await;
        match c.next_event(RECV_TIMEOUT).await {
            Event::Packet(Packet::PingResp) => {}
            other => panic!("expected only PINGRESP, got {other:?}"),
        }
    })
    .await;
}
