//! `[auth] acl_file` over the wire (the broker binary, raw 3.1.1 and 5.0 clients): who
//! may publish, subscribe and receive what; SIGHUP reloads; `$SYS` is the broker's;
//! a client's PUBLISH may not carry a Subscription Identifier.

mod common;

use std::path::Path;

use common::{bounded, connect_packet, publish_packet, subscription_id, BrokerProcess, RawClient};
use starling::protocol::{Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};

const RULES: &str = "\
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret
topic read shared/#
topic deny shared/hidden
user bob
topic readwrite bob/#
topic write shared/#
topic write inbox/#

pattern read inbox/%u/#
";

struct Fixture {
    broker: BrokerProcess,
    acl: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start(rules: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let acl = dir.path().join("acl");
    std::fs::write(&acl, rules).expect("write acl");
    let toml = format!("[auth]\nacl_file = {:?}\n", acl.display().to_string());
    let broker = BrokerProcess::start_with_config(Some(&toml));
    Fixture {
        broker,
        acl,
        _dir: dir,
    }
}

async fn login(f: &Fixture, id: &str, user: Option<&str>, version: ProtocolVersion) -> RawClient {
    let mut c = RawClient::open(f.broker.addr()).await;
    c.set_version(version);
    let mut connect = connect_packet(version, id, true, 0);
    connect.username = user.map(Into::into);
    let ack = c.connect(connect).await;
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "{id} connects");
    c
}

/// The reason code of the PUBACK to a QoS 1 publish.
async fn puback(c: &mut RawClient, topic: &str) -> ReasonCode {
    let id = c.next_packet_id();
    c.send(Packet::Publish(publish_packet(
        topic,
        QoS::AtLeastOnce,
        b"x",
        Some(id),
    )))
    .await;
    match c
        .wait_for(
            "PUBACK",
            |p| matches!(p, Packet::PubAck(r) if r.packet_id == id),
        )
        .await
    {
        Packet::PubAck(PubResponse { reason, .. }) => reason,
        _ => unreachable!(),
    }
}

/// Topics received (acknowledged) up to and including `last`.
async fn until(c: &mut RawClient, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        let p = c.recv_publish_acked().await;
        seen.push(p.topic.as_str().to_owned());
        if p.topic.as_str() == last {
            return seen;
        }
    }
    panic!("{last} never came: {seen:?}")
}

#[tokio::test]
async fn the_acl_decides_for_5_0_and_3_1_1_clients_alike() {
    let f = start(RULES);
    bounded(async {
        let v5 = ProtocolVersion::V5;
        let mut bob = login(&f, "b", Some("bob"), v5).await;
        // Retained before anyone subscribes: it obeys the read rules too.
        for t in ["shared/hidden", "shared/r"] {
            let mut p = publish_packet(t, QoS::AtLeastOnce, b"r", Some(bob.next_packet_id()));
            p.retain = true;
            bob.send(Packet::Publish(p)).await;
            bob.expect_packet("PUBACK").await;
        }
        let mut alice = login(&f, "a", Some("alice"), v5).await;
        let ack = alice
            .subscribe(&[
                ("shared/#", QoS::AtLeastOnce),
                ("bob/#", QoS::AtLeastOnce),
                ("alice/secret", QoS::AtLeastOnce),
                ("inbox/alice/#", QoS::AtLeastOnce),
                ("inbox/#", QoS::AtLeastOnce),
            ])
            .await;
        let denied = ReasonCode::NOT_AUTHORIZED;
        let one = ReasonCode::GRANTED_QOS_1;
        assert_eq!(ack.reasons, vec![one, denied, denied, one, denied]);
        assert_eq!(
            puback(&mut alice, "alice/x").await,
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        );
        assert_eq!(
            puback(&mut alice, "alice/secret").await,
            denied,
            "deny wins"
        );
        assert_eq!(puback(&mut alice, "bob/x").await, denied, "not alice's");
        assert_eq!(
            puback(&mut alice, "$SYS/broker/x").await,
            denied,
            "the broker's"
        );
        for t in [
            "shared/hidden",
            "inbox/carol/1",
            "shared/ok",
            "inbox/alice/1",
        ] {
            assert!(!puback(&mut bob, t).await.is_error(), "{t}");
        }
        assert_eq!(
            until(&mut alice, "inbox/alice/1").await,
            vec!["shared/r", "shared/ok", "inbox/alice/1"],
            "no shared/hidden (retained or live), no one else's inbox"
        );

        // 3.1.1, anonymous: the rules before the first `user` line.
        let v3 = ProtocolVersion::V311;
        let mut anon = login(&f, "n", None, v3).await;
        let ack = anon
            .subscribe(&[
                ("public/#", QoS::AtLeastOnce),
                ("shared/#", QoS::AtLeastOnce),
            ])
            .await;
        assert_eq!(ack.reasons[0], one);
        assert!(
            ack.reasons[1].is_error(),
            "0x80 in 3.1.1: {:?}",
            ack.reasons
        );
        assert_eq!(
            puback(&mut anon, "shared/from-anon").await,
            ReasonCode::SUCCESS
        );
        assert_eq!(puback(&mut bob, "shared/after").await, ReasonCode::SUCCESS);
        assert_eq!(
            until(&mut alice, "shared/after").await,
            vec!["shared/after"],
            "the anonymous publish was acknowledged and dropped"
        );
    })
    .await;
}

fn hup(pid: u32) {
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
}

fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).expect("rewrite acl");
}

#[tokio::test]
async fn sighup_reloads_the_acl_and_drops_subscriptions_no_longer_allowed() {
    let f = start(RULES);
    bounded(async {
        let v5 = ProtocolVersion::V5;
        let mut alice = login(&f, "a", Some("alice"), v5).await;
        alice
            .subscribe(&[
                ("shared/#", QoS::AtLeastOnce),
                ("inbox/alice/#", QoS::AtLeastOnce),
            ])
            .await;
        let mut bob = login(&f, "b", Some("bob"), v5).await;

        // A broken file: the rules in force stay.
        rewrite(&f.acl, "user alice\ntopic read a/#/b\n");
        hup(f.broker.pid());
        f.broker.logged("ACL file not reloaded", 1).await;
        assert_eq!(puback(&mut bob, "shared/1").await, ReasonCode::SUCCESS);
        assert_eq!(until(&mut alice, "shared/1").await, vec!["shared/1"]);

        // Alice loses `read shared/#`: her subscription goes, her inbox stays.
        rewrite(&f.acl, &RULES.replace("topic read shared/#\n", ""));
        hup(f.broker.pid());
        f.broker
            .logged("subscriptions no longer authorized", 1)
            .await;
        let dropped = puback(&mut bob, "shared/2").await;
        assert_eq!(
            dropped,
            ReasonCode::NO_MATCHING_SUBSCRIBERS,
            "nobody holds shared/# now"
        );
        assert_eq!(puback(&mut bob, "inbox/alice/2").await, ReasonCode::SUCCESS);
        assert_eq!(
            until(&mut alice, "inbox/alice/2").await,
            vec!["inbox/alice/2"]
        );
        let ack = alice.subscribe(&[("shared/#", QoS::AtLeastOnce)]).await;
        assert_eq!(ack.reasons, vec![ReasonCode::NOT_AUTHORIZED]);
    })
    .await;
}

#[tokio::test]
async fn no_client_publishes_to_sys_and_a_subscription_identifier_is_a_protocol_error() {
    let f = start("user u\ntopic readwrite #\ntopic readwrite $SYS/#\ntopic $SYSTEM/#\n");
    bounded(async {
        let v5 = ProtocolVersion::V5;
        let mut c = login(&f, "c", Some("u"), v5).await;
        assert_eq!(
            puback(&mut c, "$SYS/broker/clients/connected").await,
            ReasonCode::NOT_AUTHORIZED
        );
        assert_eq!(puback(&mut c, "$SYS").await, ReasonCode::NOT_AUTHORIZED);
        assert_eq!(
            puback(&mut c, "$SYSTEM/x").await,
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        );

        let mut p = publish_packet("a/b", QoS::AtLeastOnce, b"x", Some(c.next_packet_id()));
        p.properties = subscription_id(7);
        c.send(Packet::Publish(p)).await;
        let d = c.expect_closed().await.expect("DISCONNECT");
        assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR, "[MQTT-3.3.4-6]");
        let mut other = login(&f, "o", Some("u"), v5).await;
        assert_eq!(
            puback(&mut other, "a/b").await,
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        );
    })
    .await;
}

// The router fails while telling sessions to recheck their subscriptions: the broker
// asks again, and the subscription that lost its rule still goes.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_failed_recheck_is_asked_again() {
    let rules = format!("topic write $fault/#\n{RULES}");
    let f = start(&rules);
    bounded(async {
        let v5 = ProtocolVersion::V5;
        let mut alice = login(&f, "a", Some("alice"), v5).await;
        alice.subscribe(&[("shared/#", QoS::AtLeastOnce)]).await;
        let mut arm = login(&f, "arm", None, v5).await;
        assert!(!puback(&mut arm, "$fault/router/RecheckSubscriptions")
            .await
            .is_error());
        rewrite(&f.acl, &rules.replace("topic read shared/#\n", ""));
        hup(f.broker.pid());
        f.broker
            .logged("injected fault in router RecheckSubscriptions", 1)
            .await;
        f.broker
            .logged("subscriptions no longer authorized", 1)
            .await;
        let mut bob = login(&f, "b", Some("bob"), v5).await;
        let dropped = puback(&mut bob, "shared/x").await;
        assert_eq!(dropped, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    })
    .await;
}
