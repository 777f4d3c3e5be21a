//! Starts Starling inside an actix application, then publishes and receives one message
//! through it with an MQTT client (rumqttc).
//!
//! Run: `cargo run --example embedded`

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

fn main() -> anyhow::Result<()> {
    actix::System::new().block_on(async {
        let mut config = starling::Config::default();
        config.listeners[0].bind = "127.0.0.1:0".parse()?;
        config.storage.data_dir = std::env::temp_dir().join("starling-embedded-example");
        let broker = starling::Broker::new(config).workers(1).start().await?;
        let addr = broker.local_addrs()[0];
        println!("broker listening on {addr}");

        let mut opts = MqttOptions::new("embedded-example", addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut events) = AsyncClient::new(opts, 10);
        client.subscribe("greetings/#", QoS::AtLeastOnce).await?;
        let received = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match events.poll().await? {
                    Event::Incoming(Packet::SubAck(_)) => {
                        client
                            .publish("greetings/world", QoS::AtLeastOnce, false, "hello")
                            .await?;
                    }
                    Event::Incoming(Packet::Publish(p)) => return anyhow::Ok(p),
                    _ => {}
                }
            }
        })
        .await??;
        println!(
            "received {:?} on {}",
            String::from_utf8_lossy(&received.payload),
            received.topic
        );
        broker.stop().await;
        anyhow::Ok(())
    })
}
