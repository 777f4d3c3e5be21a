//! Helpers shared by the section modules.

use starling::protocol::{Properties, ReasonCode};

use crate::common::{BrokerProcess, RawClient};

/// Strings that are not well-formed UTF-8 for MQTT: an ill-formed sequence, a UTF-16
/// surrogate, U+0000 ([MQTT-1.5.4-1], [MQTT-1.5.4-2]) and a byte never valid in UTF-8.
pub const BAD_UTF8: [&[u8]; 4] = [
    &[b'a', 0xC3, 0x28],
    &[0xED, 0xA0, 0x80],
    &[b'a', 0, b'b'],
    &[0xFF],
];

/// Connects a 5.0 client `id`, sends `bytes`, and asserts the server answers with
/// DISCONNECT `reason` and closes.
pub async fn assert_refused(broker: &BrokerProcess, id: &str, bytes: &[u8], reason: ReasonCode) {
    let mut c = RawClient::connected_v5(broker.addr(), id, Properties::default()).await;
    c.send_raw(bytes).await;
    let d = c.expect_closed().await;
    assert_eq!(d.map(|d| d.reason), Some(reason), "reply to {bytes:02x?}");
}
