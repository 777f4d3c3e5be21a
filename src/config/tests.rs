//! Tests of the configuration file format.

use std::time::Duration;

use super::*;

#[test]
fn shipped_file_equals_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/starling.toml");
    assert_eq!(Config::from_file(&path).unwrap(), Config::default());
}

#[test]
fn rejects_unknown_keys_and_bad_values() {
    assert!(toml::from_str::<Config>("[limits]\nmax_pakcet_size = 5").is_err());
    let c: Config = toml::from_str("[limits]\nmax_inflight = 0").unwrap();
    assert!(c.validate().is_err());
    let c: Config = toml::from_str("[capabilities]\nmaximum_qos = 3").unwrap();
    assert!(c.validate().is_err());
}

#[test]
fn server_and_capabilities_sections_parse() {
    let text = "[server]\nserver_reference = \"other:1883\"\nserver_moved = true\n\
                [capabilities]\nmaximum_qos = 1\nretain_available = false\n";
    let c: Config = toml::from_str(text).unwrap();
    assert_eq!(c.server.server_reference.as_deref(), Some("other:1883"));
    assert!(c.server.server_moved);
    assert_eq!(c.capabilities.max_qos(), QoS::AtLeastOnce);
    assert!(!c.capabilities.retain_available);
    assert!(c.capabilities.wildcard_subscriptions);
}

#[test]
fn auth_section_parses() {
    let c: Config =
        toml::from_str("[auth]\nallow_anonymous = false\npassword_file = \"pw\"\n").unwrap();
    assert_eq!(c.auth.allow_anonymous, Some(false));
    assert!(!c.allow_anonymous());
    assert_eq!(c.auth.password_file.as_deref(), Some(Path::new("pw")));
    assert_eq!(Config::default().auth.allow_anonymous, None);
    assert!(Config::default().allow_anonymous(), "loopback by default");
    assert_eq!(c.auth.max_login_failures, 10);
    assert_eq!(c.auth.login_failure_window_secs, 60);
    assert!("[auth]\nlogin_failure_window_secs = 0"
        .parse::<Config>()
        .is_err());
}

/// Mosquitto 2's default: anonymous clients only while every listener is on loopback,
/// unless `allow_anonymous` says otherwise.
#[test]
fn anonymous_default_follows_the_listeners() {
    let with = |binds: &[&str], key: &str| -> Config {
        let mut text = format!("[auth]\n{key}\n");
        for b in binds {
            text.push_str(&format!("[[listeners]]\nbind = \"{b}\"\n"));
        }
        text.parse().unwrap()
    };
    for local in [
        &["127.0.0.1:1883"][..],
        &["[::1]:1883", "127.0.0.2:1884"],
        &[],
    ] {
        let c = with(local, "");
        assert!(c.allow_anonymous(), "{local:?}");
        assert_eq!(c.exposed_listener(), None);
        assert!(!with(local, "allow_anonymous = false").allow_anonymous());
    }
    for exposed in [
        &["0.0.0.0:1883"][..],
        &["127.0.0.1:1883", "192.168.1.5:1884"],
        &["[::]:1883"],
    ] {
        let c = with(exposed, "");
        assert!(!c.allow_anonymous(), "{exposed:?}");
        assert!(c.exposed_listener().is_some());
        assert!(with(exposed, "allow_anonymous = true").allow_anonymous());
    }
}

#[test]
fn cluster_section_parses_and_validates() {
    let text = "[cluster]\nenabled = true\nurls = [\"nats://a:1\", \"nats://b:2\"]\n\
                node_id = \"n1\"\nreplicas = 1\nisolation_grace_ms = 500\n";
    let c: Config = toml::from_str(text).unwrap();
    assert!(c.cluster.enabled);
    assert_eq!(c.cluster.urls.len(), 2);
    assert_eq!(c.cluster.node_id, "n1");
    assert_eq!(c.cluster.isolation_grace(), Duration::from_millis(500));
    assert!(c.validate().is_ok());
    let c: Config = toml::from_str("[cluster]\nenabled = true\n").unwrap();
    assert!(c.validate().is_err(), "node_id is required");
    assert!(!Config::default().cluster.enabled);
    assert_eq!(Config::default().cluster.isolation_grace_ms, 2000);
}

#[test]
fn parses_from_a_string_and_validates() {
    let c: Config = "[limits]\nmax_inflight = 8\n".parse().unwrap();
    assert_eq!(c.limits.max_inflight, 8);
    assert!(matches!(
        "[limits]\nmax_inflight = 0\n".parse::<Config>(),
        Err(ConfigError::Invalid(_))
    ));
    assert!(matches!(
        "[limits]\nmax_pakcet_size = 5\n".parse::<Config>(),
        Err(ConfigError::Toml(_))
    ));
}

#[test]
fn storage_backend_needs_a_url_of_its_scheme() {
    let c: Config = "[storage]\nbackend = \"postgres\"\nurl = \"postgres://u@127.0.0.1:5432/db\"\n"
        .parse()
        .unwrap();
    assert_eq!(c.storage.backend, Backend::Postgres);
    let err = "[storage]\nbackend = \"redis\"\n"
        .parse::<Config>()
        .unwrap_err();
    assert!(err.to_string().contains("storage.url must be set"), "{err}");
    let err = "[storage]\nbackend = \"redis\"\nurl = \"postgres://secret@h/db\"\n"
        .parse::<Config>()
        .unwrap_err();
    assert!(err.to_string().contains("not a redis URL"), "{err}");
    assert!(
        !err.to_string().contains("secret"),
        "the URL may hold a password: {err}"
    );
    assert!("[storage]\nbackend = \"mongo\"\n"
        .parse::<Config>()
        .is_err());
    assert_eq!(Config::default().storage.backend, Backend::Sled);
}
