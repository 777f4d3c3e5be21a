//! Conformance tests organised by specification section: one module per (spec,
//! section), `v3_*` for MQTT 3.1.1 and `v5_*` for MQTT 5.0. Each test names the
//! normative statements (`[MQTT-x.y.z-n]`) it checks in its doc comment. Every test
//! runs the broker binary and talks MQTT over loopback with the raw client of
//! `tests/common`. CONFORMANCE.md maps each statement to its tests, here and in the
//! feature suites (tests/*.rs, unit tests in src/).

#[path = "../common/mod.rs"]
mod common;

mod auth_fixture;
mod v5_3_12_pingreq;
mod v5_3_14_disconnect;
mod v5_3_1_connect;
mod v5_3_1_connect_refused;
mod v5_3_2_connack;
mod v5_4_4_redelivery;
mod v5_4_8_shared;
mod v5_4_9_flow;
