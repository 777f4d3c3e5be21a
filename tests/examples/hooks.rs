//! The hook examples with mosquitto_pub and mosquitto_sub: `tenant_authorizer` keeps
//! tenants apart (SUBACK and PUBACK reason codes, what is delivered), `rewriting_hook`
//! moves legacy temperatures to their new topics and drops what it should. Refused or
//! dropped publishes are followed by one that is delivered, so their absence shows
//! without waiting for a timeout.

use std::net::SocketAddr;
use std::process::Command;

use super::process::{example, field, mosquitto_pub_with, mosquitto_sub_with, Running};

/// What mosquitto_pub prints for a PUBACK 0x87.
const REFUSED: &str = "Publish 1 failed: Not authorized.";

/// The example `name` with `args`, logging at info without colours; and its MQTT address.
fn start(name: &str, args: &[&str]) -> (Running, SocketAddr) {
    let mut cmd = Command::new(example(name));
    cmd.args(["--mqtt", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    let running = Running::spawn(cmd);
    let line = running.line();
    assert!(line.starts_with(&format!("{name} ")), "{line}");
    let mqtt = field(&line, "mqtt");
    (running, mqtt)
}

/// A 5.0 QoS 1 publish as `user` (`None`: no username); what mosquitto_pub printed.
fn publish_as(mqtt: SocketAddr, user: Option<&str>, topic: &str, payload: &str) -> String {
    let mut args = vec!["-V", "mqttv5", "-q", "1", "-t", topic];
    if let Some(user) = user {
        args.extend(["-u", user]);
    }
    mosquitto_pub_with(mqtt, &args, payload.as_bytes())
}

/// Alice gets her tenant's messages and nothing else; what others may not do is refused
/// with 0x87 (3.1.1 subscriptions: 0x80); only `admin` reads `$SYS`. The connection log
/// hook reports connects and disconnects; each tenant is looked up in the directory once.
#[test]
fn tenant_authorizer_keeps_tenants_apart() {
    let (mut broker, mqtt) = start("tenant_authorizer", &["--tenants", "alice,bob"]);
    let own = [
        "-V",
        "mqttv5",
        "-u",
        "alice",
        "-q",
        "1",
        "-t",
        "tenants/alice/#",
    ];
    let (alice, granted) = mosquitto_sub_with(mqtt, &[&own[..], &["-v", "-C", "2"]].concat());
    assert_eq!(granted, "1");
    broker.logged(&["connected", "username=\"alice\""]);
    broker.logged(&["directory answered", "\"alice\"", "known=true"]);

    // Other tenants' topics, every topic, `$SYS`: refused at subscribe time (so `#`
    // delivers nothing either), in both versions.
    let filters = [
        "tenants/bob/#",
        "#",
        "tenants/+/lights",
        "$SYS/#",
        "tenants/alice/#",
    ];
    for (version, refused) in [("mqttv5", "135"), ("mqttv311", "128")] {
        let mut args = vec!["-V", version, "-u", "alice"];
        args.extend(filters.iter().flat_map(|f| ["-t", f]));
        let (_sub, granted) = mosquitto_sub_with(mqtt, &args);
        let want = format!("{refused}, {refused}, {refused}, {refused}, 0");
        assert_eq!(granted, want, "{version} subscriptions of {filters:?}");
    }

    assert_eq!(publish_as(mqtt, Some("alice"), "tenants/alice/a", "1"), "");
    let refused = [
        (None, "tenants/alice/b"),
        (Some("bob"), "tenants/alice/c"),
        (Some("mallory"), "tenants/mallory/d"),
        (Some("alice"), "tenants/bob/e"),
        (Some("alice"), "$SYS/broker/version"),
    ];
    for (user, topic) in refused {
        let printed = publish_as(mqtt, user, topic, "no");
        assert!(
            printed.contains(REFUSED),
            "{user:?} to {topic}: {printed:?}"
        );
    }
    assert_eq!(publish_as(mqtt, Some("bob"), "tenants/bob/f", "2"), "");
    // 3.1.1 has no refusal to give: the publish is acknowledged and dropped.
    let anonymous = ["-q", "1", "-t", "tenants/alice/g"];
    assert_eq!(mosquitto_pub_with(mqtt, &anonymous, b"no"), "");
    assert_eq!(publish_as(mqtt, Some("alice"), "tenants/alice/h", "3"), "");
    let received: Vec<String> = (0..2).map(|_| alice.message()).collect();
    assert_eq!(received, ["tenants/alice/a 1", "tenants/alice/h 3"]);

    let args = ["-u", "admin", "-t", "$SYS/broker/version", "-v", "-C", "1"];
    let (admin, granted) = mosquitto_sub_with(mqtt, &args);
    assert_eq!(granted, "0");
    assert!(admin.message().starts_with("$SYS/broker/version starling "));
    broker.logged(&["disconnected"]);

    broker.signal("TERM");
    assert!(broker.wait().success(), "tenant_authorizer exit status");
    let log = broker.whole_log();
    let lookups = |who: &str| {
        let who = format!("username=\"{who}\"");
        log.iter()
            .filter(|l| l.contains("directory answered") && l.contains(&who))
            .count()
    };
    assert_eq!(
        (lookups("alice"), lookups("bob"), lookups("mallory")),
        (1, 1, 1)
    );
}

/// `legacy/{device}/temp_f` arrives as `sensors/{device}/temperature` in Celsius with a
/// `migrated-from` user property; a bad payload and `debug/#` are dropped.
#[test]
fn rewriting_hook_migrates_and_drops() {
    let (mut broker, mqtt) = start("rewriting_hook", &[]);
    let args = [
        "-V",
        "mqttv5",
        "-q",
        "1",
        "-t",
        "sensors/#",
        "-t",
        "legacy/#",
    ];
    let format = ["-t", "debug/#", "-F", "%t %p %P", "-C", "3"];
    let (sub, granted) = mosquitto_sub_with(mqtt, &[&args[..], &format].concat());
    assert_eq!(granted, "1, 1, 1");

    let publishes = [
        ("legacy/boiler/temp_f", "71.6"),
        ("legacy/x/temp_f", "hot"),
        ("debug/x", "trace"),
        ("legacy/freezer/temp_f", "-40"),
        ("sensors/x/humidity", "40"),
    ];
    for (topic, payload) in publishes {
        let printed = mosquitto_pub_with(mqtt, &["-q", "1", "-t", topic], payload.as_bytes());
        assert_eq!(printed, "", "{topic}");
    }
    let received: Vec<String> = (0..3)
        .map(|_| sub.message().trim_end().to_owned())
        .collect();
    assert_eq!(
        received,
        [
            "sensors/boiler/temperature 22.0 migrated-from:legacy/boiler/temp_f",
            "sensors/freezer/temperature -40.0 migrated-from:legacy/freezer/temp_f",
            "sensors/x/humidity 40",
        ]
    );
    broker.logged(&["not a temperature; dropped", "legacy/x/temp_f"]);

    broker.signal("TERM");
    assert!(broker.wait().success(), "rewriting_hook exit status");
}
