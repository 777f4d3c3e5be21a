//! MQTT 5.0 section 3.4, PUBACK sent by the server: PUBACK Reason Codes only, and
//! optional properties only within the client's Maximum Packet Size.

use starling::protocol::QoS;

use crate::pub_acks::{properties_fit_maximum_packet_size, reason_codes_are_listed};

/// [MQTT-3.4.2-1]: the server's PUBACKs use PUBACK Reason Codes: 0x00 when a
/// subscriber matched, 0x10 when none did, 0x99 for a payload marked UTF-8 that is not.
#[tokio::test]
async fn puback_reason_codes_are_puback_codes() {
    reason_codes_are_listed("pa", QoS::AtLeastOnce).await;
}

/// [MQTT-3.4.2-2], [MQTT-3.4.2-3]: an error PUBACK carries its Reason String when it
/// fits, but with a client Maximum Packet Size of 16 the PUBACK comes within 16 bytes
/// with no Reason String and no User Property.
#[tokio::test]
async fn puback_properties_never_exceed_the_clients_maximum_packet_size() {
    properties_fit_maximum_packet_size("pa", QoS::AtLeastOnce).await;
}
