//! Starling with no listener at all, as an event bus between an application's own actix
//! actors: `Orders` publishes order events; two `Billing` actors share the placed orders
//! (a shared subscription: each order is billed once, by one of them); `Audit` sees every
//! order event (a wildcard). Each consumer forwards its `Subscription` into itself with
//! `ctx.add_stream`, so messages arrive as actor messages (`StreamHandler`).
//!
//! Run: `cargo run --example event_bus`. It plays a fixed scenario, prints
//! `event_bus ok orders=.. shipped=.. billing-a=.. billing-b=.. cents=.. audited=..`
//! and exits 0; on any mismatch it prints what was wrong and exits 1.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use starling::protocol::QoS;
use starling::{LocalClient, LocalMessage, Refused, Subscription};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Orders placed in the scenario (ids 1..=ORDERS); the even ones are shipped too.
const ORDERS: u32 = 6;
/// The longest the consumers may take to handle everything.
const WAIT: Duration = Duration::from_secs(10);

/// An order event's payload.
#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u32,
    cents: u64,
}

/// What a consumer reports for each message it handled.
#[derive(Debug)]
enum Handled {
    Billed {
        by: &'static str,
        order: Order,
    },
    Audited {
        topic: String,
    },
    /// A payload that was not an order.
    Malformed {
        by: &'static str,
        topic: String,
    },
}

/// Places an order: `orders/{id}/placed`. Answers how many subscribers it reached.
#[derive(Message)]
#[rtype(result = "Result<usize, Refused>")]
struct Place(Order);

/// Ships an order: `orders/{id}/shipped`.
#[derive(Message)]
#[rtype(result = "Result<usize, Refused>")]
struct Ship(u32);

/// Publishes the order events.
struct Orders {
    bus: LocalClient,
}

impl Actor for Orders {
    type Context = Context<Self>;
}

impl Orders {
    fn publish(&self, topic: String, payload: String) -> ResponseFuture<Result<usize, Refused>> {
        let bus = self.bus.clone();
        Box::pin(async move {
            let done = bus
                .publish(&topic, payload, QoS::AtLeastOnce, false)
                .await?;
            Ok(done.matched)
        })
    }
}

impl Handler<Place> for Orders {
    type Result = ResponseFuture<Result<usize, Refused>>;

    fn handle(&mut self, Place(order): Place, _: &mut Context<Self>) -> Self::Result {
        let payload = serde_json::to_string(&order).unwrap_or_default();
        self.publish(format!("orders/{}/placed", order.id), payload)
    }
}

impl Handler<Ship> for Orders {
    type Result = ResponseFuture<Result<usize, Refused>>;

    fn handle(&mut self, Ship(id): Ship, _: &mut Context<Self>) -> Self::Result {
        self.publish(format!("orders/{id}/shipped"), String::new())
    }
}

/// Bills the placed orders its share of the group hands it.
struct Billing {
    name: &'static str,
    report: UnboundedSender<Handled>,
}

impl Actor for Billing {
    type Context = Context<Self>;
}

impl StreamHandler<LocalMessage> for Billing {
    fn handle(&mut self, msg: LocalMessage, _: &mut Context<Self>) {
        let handled = match serde_json::from_slice::<Order>(&msg.payload) {
            Ok(order) => Handled::Billed {
                by: self.name,
                order,
            },
            Err(_) => Handled::Malformed {
                by: self.name,
                topic: msg.topic.to_string(),
            },
        };
        let _ = self.report.send(handled);
    }
}

/// Records every order event.
struct Audit {
    report: UnboundedSender<Handled>,
}

impl Actor for Audit {
    type Context = Context<Self>;
}

impl StreamHandler<LocalMessage> for Audit {
    fn handle(&mut self, msg: LocalMessage, _: &mut Context<Self>) {
        let topic = msg.topic.to_string();
        let _ = self.report.send(Handled::Audited { topic });
    }
}

fn main() -> ExitCode {
    let outcome = System::new().block_on(async {
        let mut config = starling::Config::default();
        config.listeners.clear();
        config.storage.durability = starling::config::Durability::Memory;
        let broker = starling::Broker::new(config).workers(1).start().await?;
        let outcome = scenario(&broker).await;
        broker.stop().await;
        outcome
    });
    match outcome {
        Ok(summary) => {
            println!("event_bus ok {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("event_bus failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the actors, places and ships the orders, and checks what the consumers did.
async fn scenario(broker: &starling::BrokerHandle) -> anyhow::Result<String> {
    let (report, mut handled) = unbounded_channel();
    // Subscribed before anything is published; each consumer is a client of its own.
    for name in ["billing-a", "billing-b"] {
        let billed = subscribe(broker, name, "$share/billing/orders/+/placed").await?;
        let report = report.clone();
        Billing::create(move |ctx| {
            ctx.add_stream(billed);
            Billing { name, report }
        });
    }
    let events = subscribe(broker, "audit", "orders/#").await?;
    Audit::create(move |ctx| {
        ctx.add_stream(events);
        Audit { report }
    });
    let orders = Orders {
        bus: broker.client("orders"),
    }
    .start();

    let mut shipped = 0;
    for id in 1..=ORDERS {
        let order = Order {
            id,
            cents: cents(id),
        };
        // One billing actor and the audit.
        expect(
            "subscribers of a placed order",
            orders.send(Place(order)).await??,
            2,
        )?;
        if id % 2 == 0 {
            // The audit only.
            expect(
                "subscribers of a shipment",
                orders.send(Ship(id)).await??,
                1,
            )?;
            shipped += 1;
        }
    }
    let tally = tokio::time::timeout(WAIT, collect(&mut handled, ORDERS + shipped))
        .await
        .map_err(|_| anyhow::anyhow!("the consumers did not handle every event in {WAIT:?}"))??;
    tally.check(shipped)?;
    Ok(tally.summary(shipped))
}

async fn subscribe(
    broker: &starling::BrokerHandle,
    id: &str,
    filter: &str,
) -> anyhow::Result<Subscription> {
    Ok(broker
        .client(id)
        .subscribe(filter, QoS::AtLeastOnce)
        .await?)
}

/// What order `id` costs.
fn cents(id: u32) -> u64 {
    u64::from(id) * 250
}

fn expect(what: &str, got: usize, want: usize) -> anyhow::Result<()> {
    anyhow::ensure!(got == want, "{what}: {got}, expected {want}");
    Ok(())
}

/// What the consumers reported.
#[derive(Default)]
struct Tally {
    /// Order id → (billing actor, cents), and any order billed twice.
    billed: BTreeMap<u32, (&'static str, u64)>,
    billed_twice: Vec<u32>,
    /// Topics in the order the audit saw them.
    audited: Vec<String>,
}

/// Reads reports until every order is billed and `audits` events are audited.
async fn collect(handled: &mut UnboundedReceiver<Handled>, audits: u32) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    while tally.billed.len() < ORDERS as usize || tally.audited.len() < audits as usize {
        let Some(report) = handled.recv().await else {
            anyhow::bail!("the consumers stopped");
        };
        match report {
            Handled::Billed { by, order } => {
                if tally.billed.insert(order.id, (by, order.cents)).is_some() {
                    tally.billed_twice.push(order.id);
                }
            }
            Handled::Audited { topic } => tally.audited.push(topic),
            Handled::Malformed { by, topic } => anyhow::bail!("{by}: not an order on {topic}"),
        }
    }
    Ok(tally)
}

impl Tally {
    fn check(&self, shipped: u32) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.billed_twice.is_empty(),
            "billed twice: {:?}",
            self.billed_twice
        );
        let ids: Vec<u32> = self.billed.keys().copied().collect();
        anyhow::ensure!(ids == (1..=ORDERS).collect::<Vec<_>>(), "billed {ids:?}");
        let wrong: Vec<_> = self
            .billed
            .iter()
            .filter(|(id, (_, c))| *c != cents(**id))
            .collect();
        anyhow::ensure!(wrong.is_empty(), "billed the wrong amounts: {wrong:?}");
        let audited = self.audited.len();
        expect("audited events", audited, (ORDERS + shipped) as usize)?;
        // Per order, the audit saw the placement before the shipment.
        for id in (2..=ORDERS).step_by(2) {
            let at = |kind: &str| {
                let topic = format!("orders/{id}/{kind}");
                self.audited.iter().position(|t| *t == topic)
            };
            match (at("placed"), at("shipped")) {
                (Some(placed), Some(shipped)) if placed < shipped => {}
                other => anyhow::bail!("order {id}: placed/shipped at {other:?}"),
            }
        }
        Ok(())
    }

    fn summary(&self, shipped: u32) -> String {
        let by = |name| self.billed.values().filter(|(b, _)| *b == name).count();
        let cents: u64 = self.billed.values().map(|(_, c)| c).sum();
        format!(
            "orders={ORDERS} shipped={shipped} billing-a={} billing-b={} cents={cents} audited={}",
            by("billing-a"),
            by("billing-b"),
            self.audited.len()
        )
    }
}
