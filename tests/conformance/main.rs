//! Conformance tests organised by specification section: one module per (spec,
//! section), `v3_*` for MQTT 3.1.1 and `v5_*` for MQTT 5.0. Each test names the
//! normative statements (`[MQTT-x.y.z-n]`) it checks in its doc comment. Every test
//! runs the broker binary and talks MQTT over loopback with the raw client of
//! `tests/common`. CONFORMANCE.md maps each statement to its tests, here and in the
//! feature suites (tests/*.rs, unit tests in src/).

#[path = "../common/mod.rs"]
mod common;

mod auth_fixture;
mod pub_acks;
mod support;
mod v3_3_10_unsubscribe;
mod v3_3_14_disconnect;
mod v3_3_1_connect;
mod v3_3_1_will;
mod v3_3_2_connack;
mod v3_3_3_publish;
mod v3_3_6_pubrel;
mod v3_3_8_subscribe;
mod v3_3_9_suback;
mod v3_4_1_session;
mod v3_4_3_qos;
mod v3_4_4_redelivery;
mod v3_4_7_topics;
#[cfg(feature = "fault-injection")]
mod v3_4_8_errors;
mod v5_3_10_unsubscribe;
mod v5_3_11_unsuback;
mod v5_3_12_pingreq;
mod v5_3_14_disconnect;
mod v5_3_15_auth;
mod v5_3_1_connect;
mod v5_3_1_connect_refused;
mod v5_3_2_connack;
mod v5_3_3_publish;
mod v5_3_3_publish_props;
mod v5_3_4_puback;
mod v5_3_5_pubrec;
mod v5_3_6_pubrel;
mod v5_3_7_pubcomp;
mod v5_3_8_subscribe;
mod v5_3_9_suback;
mod v5_4_3_qos;
mod v5_4_4_redelivery;
mod v5_4_7_topics;
mod v5_4_8_shared;
mod v5_4_9_flow;
