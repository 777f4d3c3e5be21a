//! MQTT 5.0 section 3.15 (AUTH) and the parts of 4.12 that need no authenticator. The
//! SCRAM-SHA-256 exchange, its refusals and re-authentication are in tests/auth.rs,
//! which runs a broker with a password file.

use bytes::Bytes;
use starling::protocol::{Packet, Properties, ProtocolVersion, ReasonCode};

use crate::auth_fixture::PasswordBroker;
use crate::common::{
    bounded, connect_packet, raw_packet, BrokerProcess, Event, RawClient, RECV_TIMEOUT,
};

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

/// [MQTT-3.15.2-1]: AUTH carries one of the Authenticate Reason Codes (0x00, 0x18,
/// 0x19); any other value is a Malformed Packet: DISCONNECT 0x81, then close.
#[tokio::test]
async fn auth_with_an_unknown_reason_code_is_malformed() {
    let broker = BrokerProcess::start();
    bounded(async {
        for reason in [0x01u8, 0x80, 0x87] {
            let mut c =
                RawClient::connected_v5(broker.addr(), "auth-rc", Properties::default()).await;
            c.send_raw(&raw_packet(0xF0, &[reason, 0x00])).await;
            let d = c.expect_closed().await.expect("DISCONNECT before close");
            assert_eq!(
                d.reason,
                ReasonCode::MALFORMED_PACKET,
                "reason {reason:#04x}"
            );
        }
    })
    .await;
}

/// [MQTT-3.15.2-2] [MQTT-3.15.2-3]: the server's AUTH must fit the client's Maximum
/// Packet Size without Reason String or User Properties. Starling's AUTH never carries
/// either; with a 100-byte maximum, server-first (about 90 bytes with the method)
/// still arrives whole, carrying only Authentication Method and Data.
#[tokio::test]
async fn server_auth_carries_no_optional_properties_and_fits() {
    let f = PasswordBroker::start();
    bounded(async {
        let mut c = RawClient::open(f.broker.addr()).await;
        let mut p = connect_packet(ProtocolVersion::V5, "auth-size", true, 30);
        p.properties = Properties {
            authentication_method: Some("SCRAM-SHA-256".into()),
            authentication_data: Some(Bytes::from_static(b"n,,n=alice,r=abcdefgh")),
            maximum_packet_size: Some(100),
            ..Properties::default()
        };
        c.set_version(ProtocolVersion::V5);
        c.send(Packet::Connect(Box::new(p))).await;
        let auth = match c.next_event(RECV_TIMEOUT).await {
            Event::Packet(Packet::Auth(a)) => a,
            other => panic!("expected AUTH, got {other:?}"),
        };
        assert_eq!(auth.reason, ReasonCode::CONTINUE_AUTHENTICATION);
        assert_eq!(auth.properties.reason_string, None);
        assert!(auth.properties.user_properties.is_empty());
        let packet = Packet::Auth(auth);
        let len = starling::protocol::encoded_len(&packet, ProtocolVersion::V5);
        assert!(len <= 100, "AUTH of {len} bytes over the client's 100");
    })
    .await;
}
