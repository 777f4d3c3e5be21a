//! A [`Hook`] whose interceptor rewrites and drops publishes before they are routed: a
//! topic migration, for clients that still speak the legacy scheme.
//!
//! - `legacy/{device}/temp_f` with a Fahrenheit number as its payload (`71.6`) is
//!   published as `sensors/{device}/temperature` with the Celsius value, one decimal
//!   (`22.0`), and a user property `migrated-from` naming the old topic (seen by MQTT
//!   5.0 subscribers). QoS and RETAIN stay as they were.
//! - A `legacy/{device}/temp_f` payload that is not a number is dropped, with a warning
//!   in the log; so is everything under `debug/` (logged at debug level).
//! - Everything else passes unchanged.
//!
//! The publisher is acknowledged as usual either way: a dropped publish reaches nobody,
//! a rewritten one reaches the subscribers of its new topic only. Subscribing to
//! `legacy/#` therefore sees nothing that has a new home.
//!
//! Run: `cargo run --example rewriting_hook -- --mqtt 127.0.0.1:1883` (port 0 picks a
//! free port). It prints `rewriting_hook mqtt=ADDR` on stdout once it listens; logs go
//! to stderr. Ctrl-C or SIGTERM stops it.
//!
//! ```text
//! mosquitto_sub -p 1883 -V mqttv5 -t 'sensors/#' -F '%t %p %P' &
//! mosquitto_pub -p 1883 -t legacy/boiler/temp_f -m 71.6
//! # sensors/boiler/temperature 22.0 migrated-from:legacy/boiler/temp_f
//! ```

use std::net::SocketAddr;

use bytestring::ByteString;
use clap::Parser;
use starling::hooks::{Answer, ClientInfo, Hook, Intercept, Publication};
use starling::protocol::UserProperty;
use starling::topic::TopicName;
use tracing::{debug, warn};

#[derive(Parser)]
struct Args {
    /// The MQTT listener's address.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,
}

/// Moves `legacy/{device}/temp_f` to `sensors/{device}/temperature` and drops `debug/#`.
struct Migration;

impl Hook for Migration {
    fn intercept(&self, client: &ClientInfo, p: Publication) -> Answer<Intercept> {
        let topic = p.topic.as_str();
        if topic == "debug" || topic.starts_with("debug/") {
            debug!(%client, topic, "debug message dropped");
            return Answer::ready(Intercept::Drop);
        }
        let Some(device) = legacy_device(topic) else {
            return Answer::ready(Intercept::Publish(p));
        };
        let Some(celsius) = celsius(&p.payload) else {
            warn!(%client, topic, payload = ?p.payload, "not a temperature; dropped");
            return Answer::ready(Intercept::Drop);
        };
        let Ok(new_topic) = TopicName::new(format!("sensors/{device}/temperature")) else {
            warn!(%client, topic, "no new topic for this device; dropped");
            return Answer::ready(Intercept::Drop);
        };
        Answer::ready(Intercept::Publish(migrate(p, new_topic, celsius)))
    }
}

/// `{device}` of `legacy/{device}/temp_f`.
fn legacy_device(topic: &str) -> Option<&str> {
    let device = topic.strip_prefix("legacy/")?.strip_suffix("/temp_f")?;
    (!device.is_empty() && !device.contains('/')).then_some(device)
}

/// A Fahrenheit payload in Celsius, one decimal (`-0.0` written `0.0`).
fn celsius(payload: &[u8]) -> Option<String> {
    let fahrenheit: f64 = std::str::from_utf8(payload).ok()?.trim().parse().ok()?;
    if !fahrenheit.is_finite() {
        return None;
    }
    let tenths = ((fahrenheit - 32.0) * 50.0 / 9.0).round();
    Some(format!("{:.1}", tenths / 10.0 + 0.0))
}

/// The publication at its new topic, with its new payload and where it came from.
fn migrate(mut p: Publication, topic: TopicName, celsius: String) -> Publication {
    let old = ByteString::from(p.topic.as_str());
    p.properties.user_properties.push(UserProperty {
        key: ByteString::from_static("migrated-from"),
        value: old,
    });
    // The payload is no longer what any content type the publisher gave described.
    p.properties.content_type = None;
    p.properties.payload_format_indicator = Some(1);
    p.topic = topic;
    p.payload = celsius.into();
    p
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    actix_rt::System::new().block_on(serve(args.mqtt))
}

async fn serve(mqtt: SocketAddr) -> anyhow::Result<()> {
    let mut config = starling::Config::default();
    config.listeners[0].bind = mqtt;
    config.storage.durability = starling::config::Durability::Memory;
    let broker = starling::Broker::new(config)
        .hook(Migration)
        .start()
        .await?;
    println!("rewriting_hook mqtt={}", broker.local_addrs()[0]);
    terminated().await?;
    broker.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn terminated() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = term.recv() => Ok(()),
    }
}
