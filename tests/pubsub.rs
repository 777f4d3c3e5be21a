//! Publish/subscribe through the broker with rumqttc (3.1.1 and 5.0) and the raw client.

mod common;

use common::{bounded, BrokerProcess, RawClient};
use starling::protocol::{QoS as RawQoS, ReasonCode};
use std::collections::{BTreeMap, HashMap};
use tokio::sync::mpsc;

/// The same small wrapper for both rumqttc modules: the event loop runs in a task and
/// its incoming packets come out of a channel, each wait bounded.
macro_rules! rumq_wrapper {
    () => {
        use std::collections::VecDeque;
        use std::time::Duration;

        use super::mpsc;

        pub struct Client {
            pub client: m::AsyncClient,
            rx: mpsc::UnboundedReceiver<Result<m::Event, String>>,
            stash: VecDeque<m::Incoming>,
            task: tokio::task::JoinHandle<()>,
        }

        impl Drop for Client {
            fn drop(&mut self) {
                self.task.abort();
            }
        }

        /// Starts the event loop and waits for a successful CONNACK.
        pub async fn connect(opts: m::MqttOptions) -> Client {
            let (client, mut eventloop) = m::AsyncClient::new(opts, 1000);
            let (tx, rx) = mpsc::unbounded_channel();
            let task = tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(ev) => {
                            if tx.send(Ok(ev)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                            break;
                        }
                    }
                }
            });
            let mut c = Client {
                client,
                rx,
                stash: VecDeque::new(),
                task,
            };
            match c.next_incoming().await {
                m::Incoming::ConnAck(a) => assert_eq!(a.code, ConnectReturnCode::Success),
                other => panic!("expected CONNACK, got {other:?}"),
            }
            c
        }

        impl Client {
            /// The next incoming packet within 5 s (outgoing events are skipped).
            pub async fn next_incoming(&mut self) -> m::Incoming {
                if let Some(p) = self.stash.pop_front() {
                    return p;
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                loop {
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Err(_) => panic!("no incoming packet within 5 s"),
                        Ok(None) => panic!("event loop ended"),
                        Ok(Some(Err(e))) => panic!("connection error: {e}"),
                        Ok(Some(Ok(m::Event::Incoming(p)))) => return p,
                        Ok(Some(Ok(m::Event::Outgoing(_)))) => {}
                    }
                }
            }

            /// Waits for a matching packet; the others are kept in order.
            pub async fn wait_for(
                &mut self,
                what: &str,
                pred: impl Fn(&m::Incoming) -> bool,
            ) -> m::Incoming {
                let mut kept = Vec::new();
                for _ in 0..10_000 {
                    let p = self.next_incoming().await;
                    if pred(&p) {
                        for k in kept.into_iter().rev() {
                            self.stash.push_front(k);
                        }
                        return p;
                    }
                    kept.push(p);
                }
                panic!("no {what} among 10,000 packets");
            }

            pub async fn next_publish(&mut self) -> Publish {
                loop {
                    match self.next_incoming().await {
                        m::Incoming::Publish(p) => return p,
                        other => {
                            let name = format!("{other:?}");
                            assert!(!name.starts_with("Disconnect"), "broker sent {name}");
                        }
                    }
                }
            }

            pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
                self.client.subscribe(filter, qos).await.expect("subscribe");
                self.wait_for("SUBACK", |p| matches!(p, m::Incoming::SubAck(_)))
                    .await;
            }
        }
    };
}

mod v4 {
    use rumqttc as m;
    pub use rumqttc::{ConnectReturnCode, Publish, QoS};
    rumq_wrapper!();

    pub async fn client(port: u16, id: &str) -> Client {
        let mut opts = m::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        connect(opts).await
    }
}

mod v5 {
    use rumqttc::v5 as m;
    pub use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Publish};
    pub use rumqttc::v5::mqttbytes::QoS;
    rumq_wrapper!();

    pub async fn client(port: u16, id: &str) -> Client {
        let mut opts = m::MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        connect(opts).await
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// [MQTT-4.3.1-1], [MQTT-4.3.2-1], [MQTT-4.3.3-1] (3.1.1): each QoS round trips.
#[tokio::test]
async fn qos_0_1_2_round_trip_v311() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = v4::client(broker.port(), "rt4-sub").await;
        let publ = v4::client(broker.port(), "rt4-pub").await;
        let levels = [
            v4::QoS::AtMostOnce,
            v4::QoS::AtLeastOnce,
            v4::QoS::ExactlyOnce,
        ];
        for (i, q) in levels.iter().enumerate() {
            sub.subscribe(&format!("rt4/q{i}"), *q).await;
        }
        for (i, q) in levels.iter().enumerate() {
            let payload = format!("payload-{i}");
            publ.client
                .publish(format!("rt4/q{i}"), *q, false, payload)
                .await
                .unwrap();
        }
        let mut got = BTreeMap::new();
        for _ in 0..3 {
            let p = sub.next_publish().await;
            got.insert(p.topic.clone(), (p.qos, text(&p.payload)));
        }
        for (i, q) in levels.iter().enumerate() {
            assert_eq!(
                got.get(&format!("rt4/q{i}")),
                Some(&(*q, format!("payload-{i}")))
            );
        }
    })
    .await;
}

// 5.0 [MQTT-4.3.1-1], [MQTT-4.3.2-1], [MQTT-4.3.3-1]: each QoS round trips.
#[tokio::test]
async fn qos_0_1_2_round_trip_v5() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = v5::client(broker.port(), "rt5-sub").await;
        let publ = v5::client(broker.port(), "rt5-pub").await;
        let levels = [
            v5::QoS::AtMostOnce,
            v5::QoS::AtLeastOnce,
            v5::QoS::ExactlyOnce,
        ];
        for (i, q) in levels.iter().enumerate() {
            sub.subscribe(&format!("rt5/q{i}"), *q).await;
        }
        for (i, q) in levels.iter().enumerate() {
            let payload = format!("payload-{i}");
            publ.client
                .publish(format!("rt5/q{i}"), *q, false, payload)
                .await
                .unwrap();
        }
        let mut got = BTreeMap::new();
        for _ in 0..3 {
            let p = sub.next_publish().await;
            got.insert(text(&p.topic), (p.qos, text(&p.payload)));
        }
        for (i, q) in levels.iter().enumerate() {
            assert_eq!(
                got.get(&format!("rt5/q{i}")),
                Some(&(*q, format!("payload-{i}")))
            );
        }
    })
    .await;
}

// [MQTT-4.6.0-6] ordered topic, [MQTT-4.3.2-1]: 1,000 QoS 1 messages, none lost, in order.
#[tokio::test]
async fn thousand_qos1_messages_arrive_in_order_without_loss() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = v4::client(broker.port(), "order-sub").await;
        sub.subscribe("order/t", v4::QoS::AtLeastOnce).await;
        let publ = v4::client(broker.port(), "order-pub").await;
        let sender = publ.client.clone();
        let send = tokio::spawn(async move {
            for i in 0..1000u32 {
                sender
                    .publish("order/t", v4::QoS::AtLeastOnce, false, i.to_string())
                    .await
                    .unwrap();
            }
        });
        let mut got = Vec::with_capacity(1000);
        while got.len() < 1000 {
            let p = sub.next_publish().await;
            assert_eq!(p.qos, v4::QoS::AtLeastOnce);
            got.push(text(&p.payload).parse::<u32>().expect("numeric payload"));
        }
        send.await.unwrap();
        let want: Vec<u32> = (0..1000).collect();
        assert_eq!(got, want, "messages lost, duplicated or reordered");
        drop(publ);
    })
    .await;
}

// 5.0 [MQTT-4.3.3-1] exactly once: 100 QoS 2 messages arrive exactly once each.
#[tokio::test]
async fn qos2_delivers_each_message_exactly_once() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = v5::client(broker.port(), "eo-sub").await;
        sub.subscribe("eo/t", v5::QoS::ExactlyOnce).await;
        let publ = v5::client(broker.port(), "eo-pub").await;
        for i in 0..100u32 {
            publ.client
                .publish("eo/t", v5::QoS::ExactlyOnce, false, i.to_string())
                .await
                .unwrap();
        }
        publ.client
            .publish("eo/t", v5::QoS::ExactlyOnce, false, "end")
            .await
            .unwrap();
        let mut counts: HashMap<String, u32> = HashMap::new();
        loop {
            let p = sub.next_publish().await;
            assert_eq!(p.qos, v5::QoS::ExactlyOnce);
            let s = text(&p.payload);
            if s == "end" {
                break;
            }
            *counts.entry(s).or_default() += 1;
        }
        assert_eq!(counts.len(), 100, "distinct messages received");
        assert!(counts.values().all(|&c| c == 1), "duplicates: {counts:?}");
    })
    .await;
}

// 3.1.1 section 4.7.1.2/4.7.1.3: `+` matches one level, `#` any number including the
// parent ("sport/#" matches "sport").
#[tokio::test]
async fn wildcards_plus_and_hash_match_as_specified() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut plus = v4::client(broker.port(), "wc-plus").await;
        plus.subscribe("sport/+/player", v4::QoS::AtLeastOnce).await;
        let mut hash = v4::client(broker.port(), "wc-hash").await;
        hash.subscribe("sport/#", v4::QoS::AtLeastOnce).await;
        let publ = v4::client(broker.port(), "wc-pub").await;
        let topics = [
            "sport",
            "sport/tennis/player",
            "sport/tennis/player/ranking",
            "sports/tennis/player",
            "sport/golf/player",
            "sport/end/player",
        ];
        for t in topics {
            publ.client
                .publish(t, v4::QoS::AtLeastOnce, false, t)
                .await
                .unwrap();
        }
        for (client, want) in [
            (
                &mut plus,
                vec![
                    "sport/tennis/player",
                    "sport/golf/player",
                    "sport/end/player",
                ],
            ),
            (
                &mut hash,
                vec![
                    "sport",
                    "sport/tennis/player",
                    "sport/tennis/player/ranking",
                    "sport/golf/player",
                    "sport/end/player",
                ],
            ),
        ] {
            let mut got = Vec::new();
            while got.last().map(String::as_str) != Some("sport/end/player") {
                got.push(client.next_publish().await.topic);
            }
            got.sort();
            let mut want: Vec<String> = want.into_iter().map(String::from).collect();
            want.sort();
            assert_eq!(got, want);
        }
    })
    .await;
}

// [MQTT-4.7.2-1]: filters starting with a wildcard do not match topics starting with `$`.
#[tokio::test]
async fn dollar_topics_not_matched_by_leading_wildcards() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = v4::client(broker.port(), "dollar-sub").await;
        sub.subscribe("#", v4::QoS::AtLeastOnce).await;
        sub.subscribe("+/x", v4::QoS::AtLeastOnce).await;
        let publ = v4::client(broker.port(), "dollar-pub").await;
        for t in ["$SYS/x", "$other/x", "end/x"] {
            publ.client
                .publish(t, v4::QoS::AtLeastOnce, false, t)
                .await
                .unwrap();
        }
        loop {
            let p = sub.next_publish().await;
            assert!(!p.topic.starts_with('$'), "`#`/`+/x` matched {}", p.topic);
            if p.topic == "end/x" {
                break;
            }
        }
    })
    .await;
}

// [MQTT-3.3.5-1] (3.1.1): overlapping subscriptions of one client: one copy, delivered at
// the maximum QoS of the matching subscriptions.
#[tokio::test]
async fn overlapping_subscriptions_deliver_one_copy_at_max_qos() {
    let broker = BrokerProcess::start();
    bounded(async {
        let addr = broker.addr();
        let mut sub = RawClient::connected_v311(addr, "ovl-sub", true).await;
        let ack = sub
            .subscribe(&[
                ("ovl/+", RawQoS::AtMostOnce),
                ("ovl/#", RawQoS::ExactlyOnce),
            ])
            .await;
        assert_eq!(
            ack.reasons,
            vec![ReasonCode::GRANTED_QOS_0, ReasonCode::GRANTED_QOS_2]
        );
        let mut publ = RawClient::connected_v311(addr, "ovl-pub", true).await;
        publ.publish("ovl/a", RawQoS::ExactlyOnce, false, b"one")
            .await;
        publ.publish("ovl/end/x", RawQoS::AtMostOnce, false, b"end")
            .await;
        let first = sub.recv_publish_acked().await;
        assert_eq!(first.payload.as_ref(), b"one");
        assert_eq!(
            first.qos(),
            RawQoS::ExactlyOnce,
            "delivered at the max granted QoS"
        );
        let next = sub.recv_publish_acked().await;
        assert_eq!(
            next.payload.as_ref(),
            b"end",
            "second copy of ovl/a delivered: {next:?}"
        );
    })
    .await;
}

// [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8], [MQTT-3.3.1-9], [MQTT-3.3.1-10],
// [MQTT-3.3.1-11] (5.0: [MQTT-3.3.1-5..-7], [MQTT-3.3.1-9], [MQTT-3.3.1-12]): retained
// messages: sent on subscribe with RETAIN=1, replaced, cleared by an empty payload.
#[tokio::test]
async fn retained_message_sent_on_subscribe_and_cleared_by_empty_payload() {
    let broker = BrokerProcess::start();
    bounded(async {
        let port = broker.port();
        let publ = v5::client(port, "ret-pub").await;
        publ.client
            .publish("ret/a", v5::QoS::AtLeastOnce, true, "r1")
            .await
            .unwrap();
        // A QoS 1 round trip through a subscriber proves r1 was processed.
        let mut s1 = v5::client(port, "ret-s1").await;
        s1.subscribe("ret/#", v5::QoS::AtLeastOnce).await;
        let p = s1.next_publish().await;
        assert_eq!(
            (text(&p.payload).as_str(), p.retain),
            ("r1", true),
            "retained on subscribe"
        );

        publ.client
            .publish("ret/a", v5::QoS::AtLeastOnce, true, "r2")
            .await
            .unwrap();
        let p = s1.next_publish().await;
        assert_eq!(text(&p.payload), "r2");
        assert!(
            !p.retain,
            "RETAIN must be 0 towards an established subscription (3.1.1)"
        );

        let mut s2 = v5::client(port, "ret-s2").await;
        s2.subscribe("ret/#", v5::QoS::AtLeastOnce).await;
        let p = s2.next_publish().await;
        assert_eq!(
            (text(&p.payload).as_str(), p.retain),
            ("r2", true),
            "r2 replaced r1"
        );

        publ.client
            .publish("ret/a", v5::QoS::AtLeastOnce, true, "")
            .await
            .unwrap();
        let p = s1.next_publish().await;
        assert!(
            p.payload.is_empty(),
            "the clearing message is still delivered"
        );

        let mut s3 = v5::client(port, "ret-s3").await;
        s3.subscribe("ret/#", v5::QoS::AtLeastOnce).await;
        publ.client
            .publish("ret/end", v5::QoS::AtLeastOnce, false, "end")
            .await
            .unwrap();
        let p = s3.next_publish().await;
        assert_eq!(
            text(&p.topic),
            "ret/end",
            "a cleared retained message was sent: {p:?}"
        );
    })
    .await;
}

// [MQTT-3.10.4-2] (3.1.1): after UNSUBACK the server stops delivering for that filter.
#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = BrokerProcess::start();
    bounded(async {
        let mut sub = v4::client(broker.port(), "uns-sub").await;
        sub.subscribe("uns/a", v4::QoS::AtLeastOnce).await;
        sub.subscribe("uns/b", v4::QoS::AtLeastOnce).await;
        let publ = v4::client(broker.port(), "uns-pub").await;
        publ.client
            .publish("uns/a", v4::QoS::AtLeastOnce, false, "before")
            .await
            .unwrap();
        assert_eq!(sub.next_publish().await.topic, "uns/a");

        sub.client.unsubscribe("uns/a").await.unwrap();
        sub.wait_for("UNSUBACK", |p| matches!(p, rumqttc::Incoming::UnsubAck(_)))
            .await;
        publ.client
            .publish("uns/a", v4::QoS::AtLeastOnce, false, "after")
            .await
            .unwrap();
        publ.client
            .publish("uns/b", v4::QoS::AtLeastOnce, false, "end")
            .await
            .unwrap();
        let p = sub.next_publish().await;
        assert_eq!(
            (p.topic.as_str(), text(&p.payload).as_str()),
            ("uns/b", "end"),
            "a message for the removed subscription arrived"
        );
    })
    .await;
}
