//! The authorizer and the interceptor hooks (embedding issue): what a client may
//! publish, subscribe to and receive, over raw MQTT 3.1.1 and 5.0 clients and for
//! in-process clients; late answers within the hook budget and what happens past it.

mod common;

use std::time::{Duration, Instant};

use common::{bounded, connect_packet, publish_packet, RawClient};
use starling::hooks::{
    Access, Answer, Authorizer, ClientInfo, Decision, Hook, Intercept, Publication,
};
use starling::protocol::{
    LastWill, Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode,
};
use starling::topic::TopicName;
use starling::{Broker, BrokerHandle, Config};

/// Hook budget in these tests: short, so running out is quick to see.
const BUDGET: Duration = Duration::from_millis(300);
/// How long a late answer takes (well within the budget).
const LATE: Duration = Duration::from_millis(30);
/// Longer than any wait here: answers that never come in time.
const STUCK: Duration = Duration::from_secs(60);

/// The rules: nobody publishes under `secret/` or subscribes to `secret/#`; only the
/// client `owner` receives what is under `private/`. Under `late/` every answer comes
/// late (within budget); under `stuck/` never in time.
struct Rules;

impl Authorizer for Rules {
    fn authorize(&self, client: &ClientInfo, access: Access, topic: &str) -> Answer<Decision> {
        let allowed = match access {
            Access::Publish => !topic.starts_with("secret/"),
            Access::Subscribe => !topic.starts_with("secret/"),
            Access::Receive => !topic.starts_with("private/") || client.client_id == "owner".into(),
        };
        let decision = if allowed {
            Decision::Allow
        } else {
            Decision::Deny
        };
        if topic.starts_with("late/") {
            return Answer::later(async move {
                tokio::time::sleep(LATE).await;
                decision
            });
        }
        if topic.starts_with("stuck/") {
            return Answer::later(async move {
                tokio::time::sleep(STUCK).await;
                Decision::Allow
            });
        }
        Answer::ready(decision)
    }
}

/// Rewrites `legacy/x` to `v2/x` with the payload upper-cased, drops `drop/...`, and
/// never answers in time for `hang/...`.
struct Rewriter;

impl Hook for Rewriter {
    fn intercept(&self, _client: &ClientInfo, mut p: Publication) -> Answer<Intercept> {
        let topic = p.topic.as_str().to_owned();
        if topic.starts_with("drop/") {
            return Answer::ready(Intercept::Drop);
        }
        if topic.starts_with("hang/") {
            return Answer::later(async move {
                tokio::time::sleep(STUCK).await;
                Intercept::Publish(p)
            });
        }
        if let Some(rest) = topic.strip_prefix("legacy/") {
            p.topic = TopicName::new(format!("v2/{rest}")).expect("a topic name");
            p.payload = p.payload.to_ascii_uppercase().into();
        }
        Answer::ready(Intercept::Publish(p))
    }
}

async fn start(configure: impl FnOnce(Broker) -> Broker) -> BrokerHandle {
    let mut config = Config::default();
    config.listeners[0].bind = "127.0.0.1:0".parse().expect("address");
    config.storage.durability = starling::config::Durability::Memory;
    configure(Broker::new(config).workers(1).hook_budget(BUDGET))
        .start()
        .await
        .expect("broker starts")
}

async fn v5(broker: &BrokerHandle, id: &str) -> RawClient {
    RawClient::connected_v5(broker.local_addrs()[0], id, Properties::default()).await
}

async fn v311(broker: &BrokerHandle, id: &str) -> RawClient {
    RawClient::connected_v311(broker.local_addrs()[0], id, true).await
}

/// Publishes at QoS 1 or 2 and returns the reason code of the PUBACK or PUBREC
/// (completing a QoS 2 flow that was not refused).
async fn publish_reason(c: &mut RawClient, topic: &str, qos: QoS) -> ReasonCode {
    let id = c.next_packet_id();
    c.send(Packet::Publish(publish_packet(topic, qos, b"x", Some(id))))
        .await;
    let ack = c
        .wait_for("PUBACK or PUBREC", |p| match p {
            Packet::PubAck(r) | Packet::PubRec(r) => r.packet_id == id,
            _ => false,
        })
        .await;
    match ack {
        Packet::PubAck(r) => r.reason,
        Packet::PubRec(r) if r.reason.is_error() => r.reason,
        Packet::PubRec(r) => {
            c.send(Packet::PubRel(PubResponse::new(id))).await;
            c.wait_for("PUBCOMP", |p| matches!(p, Packet::PubComp(_)))
                .await;
            r.reason
        }
        _ => unreachable!(),
    }
}

/// The topics of the next PUBLISHes `c` receives (acknowledged), up to `last`.
async fn topics_until(c: &mut RawClient, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let p = c.recv_publish_acked().await;
        seen.push(p.topic.as_str().to_owned());
        if p.topic.as_str() == last {
            return seen;
        }
    }
    panic!("{last} never arrived; got {seen:?}");
}

#[actix_rt::test]
async fn v5_clients_are_refused_0x87_and_others_keep_being_served() {
    bounded(async {
        let broker = start(|b| b.authorizer(Rules)).await;
        let mut watcher = v5(&broker, "owner").await;
        watcher.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        let mut c = v5(&broker, "c5").await;

        assert_eq!(
            publish_reason(&mut c, "secret/a", QoS::AtLeastOnce).await,
            ReasonCode::NOT_AUTHORIZED
        );
        assert_eq!(
            publish_reason(&mut c, "secret/b", QoS::ExactlyOnce).await,
            ReasonCode::NOT_AUTHORIZED,
            "PUBREC 0x87 ends the QoS 2 flow"
        );
        let ack = c
            .subscribe(&[("secret/#", QoS::AtLeastOnce), ("open/#", QoS::AtLeastOnce)])
            .await;
        assert_eq!(
            ack.reasons,
            vec![ReasonCode::NOT_AUTHORIZED, ReasonCode::GRANTED_QOS_1]
        );
        assert_eq!(
            publish_reason(&mut c, "open/1", QoS::ExactlyOnce).await,
            ReasonCode::SUCCESS
        );
        assert_eq!(topics_until(&mut watcher, "open/1").await, vec!["open/1"]);
        broker.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn v311_refusals_are_acknowledged_and_dropped_and_suback_says_0x80() {
    bounded(async {
        let broker = start(|b| b.authorizer(Rules)).await;
        let mut watcher = v311(&broker, "owner").await;
        watcher.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        let mut c = v311(&broker, "c3").await;

        let reason = publish_reason(&mut c, "secret/a", QoS::AtLeastOnce).await;
        assert_eq!(reason, ReasonCode::SUCCESS, "3.1.1 cannot say no: PUBACK");
        let ack = c
            .subscribe(&[("secret/#", QoS::AtMostOnce), ("open/#", QoS::AtMostOnce)])
            .await;
        // Encoded as 0x80 for 3.1.1; decoded back as the failure code.
        assert!(ack.reasons[0].is_error(), "{:?}", ack.reasons);
        assert_eq!(ack.reasons[1], ReasonCode::GRANTED_QOS_0);
        c.publish("open/after", QoS::AtLeastOnce, false, b"y").await;
        assert_eq!(
            topics_until(&mut watcher, "open/after").await,
            vec!["open/after"],
            "the refused publish was dropped"
        );
        broker.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn receipt_is_authorized_per_message_retained_ones_included() {
    bounded(async {
        let broker = start(|b| b.authorizer(Rules)).await;
        let mut publisher = v5(&broker, "pub").await;
        publisher
            .publish("private/kept", QoS::AtLeastOnce, true, b"r")
            .await;
        publisher
            .publish("open/kept", QoS::AtLeastOnce, true, b"r")
            .await;
        let mut other = v5(&broker, "other").await;
        let mut owner = v5(&broker, "owner").await;
        other.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        owner.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        for t in ["private/live", "open/live"] {
            publisher.publish(t, QoS::AtLeastOnce, false, b"l").await;
        }
        let mut got = topics_until(&mut owner, "open/live").await;
        got.sort();
        assert_eq!(
            got,
            vec!["open/kept", "open/live", "private/kept", "private/live"]
        );
        let mut got = topics_until(&mut other, "open/live").await;
        got.sort();
        assert_eq!(got, vec!["open/kept", "open/live"], "no private/ for other");
        broker.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn late_answers_keep_the_order_and_a_stuck_one_is_denied_within_the_budget() {
    bounded(async {
        let broker = start(|b| b.authorizer(Rules)).await;
        let mut watcher = v5(&broker, "watcher").await;
        watcher.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        let mut c = v5(&broker, "c").await;
        // Pipelined: each waits for the authorizer, and they still arrive in order.
        let mut ids = Vec::new();
        for i in 0..5 {
            let id = c.next_packet_id();
            let p = publish_packet(&format!("late/{i}"), QoS::AtLeastOnce, b"x", Some(id));
            c.send(Packet::Publish(p)).await;
            ids.push(id);
        }
        for id in ids {
            let ack = c.expect_packet("PUBACK").await;
            assert!(
                matches!(&ack, Packet::PubAck(r) if r.packet_id == id),
                "{ack:?}"
            );
        }
        let want: Vec<String> = (0..5).map(|i| format!("late/{i}")).collect();
        assert_eq!(topics_until(&mut watcher, "late/4").await, want);

        let t0 = Instant::now();
        let stuck = publish_reason(&mut c, "stuck/1", QoS::AtLeastOnce).await;
        let waited = t0.elapsed();
        assert_eq!(
            stuck,
            ReasonCode::NOT_AUTHORIZED,
            "denied when the budget ran out"
        );
        assert!(waited >= BUDGET && waited < STUCK / 2, "waited {waited:?}");
        // The stuck subscribe of another client holds up no one else.
        let mut d = v5(&broker, "d").await;
        let id = d.next_packet_id();
        let mut sub = starling::protocol::Subscribe {
            packet_id: id,
            properties: Properties::default(),
            filters: Vec::new(),
        };
        sub.filters.push((
            common::filter("stuck/#"),
            starling::protocol::SubscriptionOptions::with_qos(QoS::AtLeastOnce),
        ));
        d.send(Packet::Subscribe(sub)).await;
        c.publish("open/meanwhile", QoS::AtLeastOnce, false, b"m")
            .await;
        assert_eq!(
            topics_until(&mut watcher, "open/meanwhile").await,
            vec!["open/meanwhile"]
        );
        let ack = d.expect_packet("SUBACK").await;
        let Packet::SubAck(ack) = ack else {
            panic!("{ack:?}")
        };
        assert_eq!(ack.reasons, vec![ReasonCode::NOT_AUTHORIZED]);
        broker.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn an_interceptor_rewrites_drops_and_refuses_what_it_cannot_vet_in_time() {
    bounded(async {
        let broker = start(|b| b.hook(Rewriter)).await;
        let mut watcher = v5(&broker, "watcher").await;
        watcher.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        let mut c = v5(&broker, "c").await;

        c.publish("legacy/temp", QoS::AtLeastOnce, false, b"warm")
            .await;
        let p = watcher.recv_publish_acked().await;
        assert_eq!(
            (p.topic.as_str(), &p.payload[..]),
            ("v2/temp", &b"WARM"[..])
        );

        let dropped = publish_reason(&mut c, "drop/x", QoS::AtLeastOnce).await;
        assert_eq!(dropped, ReasonCode::NO_MATCHING_SUBSCRIBERS);
        let hung = publish_reason(&mut c, "hang/x", QoS::AtLeastOnce).await;
        assert_eq!(hung, ReasonCode::NOT_AUTHORIZED, "fails closed");
        c.publish("open/last", QoS::AtLeastOnce, false, b"l").await;
        assert_eq!(
            topics_until(&mut watcher, "open/last").await,
            vec!["open/last"],
            "neither the dropped nor the unvetted one was routed"
        );

        let local = broker.client("app");
        let done = local.publish("drop/local", "gone", QoS::AtLeastOnce, false);
        assert_eq!(done.await.expect("published").matched, 0);
        let done = local.publish("legacy/l", "quiet", QoS::AtLeastOnce, false);
        assert_eq!(done.await.expect("published").matched, 1);
        let metrics = broker.ops().metrics_text().await;
        assert!(
            metrics.contains("starling_messages_dropped_total{reason=\"hook\"} 2"),
            "the network and the in-process drop are counted:\n{metrics}"
        );
        let p = watcher.recv_publish_acked().await;
        assert_eq!((p.topic.as_str(), &p.payload[..]), ("v2/l", &b"QUIET"[..]));
        broker.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn a_will_obeys_the_authorizer() {
    bounded(async {
        let broker = start(|b| b.authorizer(Rules)).await;
        let mut watcher = v5(&broker, "owner").await;
        watcher.subscribe(&[("#", QoS::AtLeastOnce)]).await;
        for (id, will_topic) in [("w1", "secret/will"), ("w2", "open/will")] {
            let mut connect = connect_packet(ProtocolVersion::V5, id, true, 0);
            connect.will = Some(LastWill {
                topic: common::topic(will_topic),
                payload: "gone".into(),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::default(),
            });
            let mut c = RawClient::open(broker.local_addrs()[0]).await;
            c.connect(connect).await;
            drop(c); // closed without DISCONNECT: the will goes out if allowed
        }
        assert_eq!(
            topics_until(&mut watcher, "open/will").await,
            vec!["open/will"]
        );
        broker.stop().await;
    })
    .await;
}

#[actix_rt::test]
async fn in_process_clients_obey_the_authorizer() {
    bounded(async {
        let broker = start(|b| b.authorizer(Rules)).await;
        let app = broker.client("app");
        let refused = app.publish("secret/x", "s", QoS::AtLeastOnce, false).await;
        assert_eq!(
            refused.expect_err("denied").reason,
            ReasonCode::NOT_AUTHORIZED
        );
        let refused = app.subscribe("secret/#", QoS::AtLeastOnce).await;
        assert_eq!(
            refused.err().expect("denied").reason,
            ReasonCode::NOT_AUTHORIZED
        );

        let mut all = app.subscribe("#", QoS::AtLeastOnce).await.expect("allowed");
        let mut owner = broker
            .client("owner")
            .subscribe("#", QoS::AtLeastOnce)
            .await
            .expect("allowed");
        for t in ["private/p", "late/l", "open/o"] {
            app.publish(t, "x", QoS::AtLeastOnce, false)
                .await
                .expect("allowed");
        }
        use futures::StreamExt;
        let mut got = Vec::new();
        for _ in 0..2 {
            let m = tokio::time::timeout(common::RECV_TIMEOUT, all.next()).await;
            got.push(
                m.expect("in time")
                    .expect("a message")
                    .topic
                    .as_str()
                    .to_owned(),
            );
        }
        assert_eq!(
            got,
            vec!["late/l", "open/o"],
            "no private/ for app, late/ in order"
        );
        let first = tokio::time::timeout(common::RECV_TIMEOUT, owner.next()).await;
        assert_eq!(
            first.expect("in time").expect("a message").topic.as_str(),
            "private/p"
        );
        broker.stop().await;
    })
    .await;
}
