//! Interoperability with Python paho-mqtt 2.x: runs tests/py/*.py against the broker.
//! Missing python3 or paho fails the tests: run scripts/test.sh to install paho-mqtt.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_child, BrokerProcess};

fn require_paho() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import paho.mqtt.client; assert hasattr(paho.mqtt.client, 'CallbackAPIVersion')",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Err(e) => panic!("python3 cannot be run ({e}); install python3, then run scripts/test.sh"),
        Ok(s) if !s.success() => panic!(
            "python3 has no paho-mqtt 2.x; run scripts/test.sh, which installs it \
             (python3 -m pip install 'paho-mqtt>=2,<3')"
        ),
        Ok(_) => {}
    }
}

/// `python3 tests/py/SCRIPT 127.0.0.1 PORT VERSION` with a 30 s bound; asserts exit 0.
fn run_script(script: &str, version: &str) {
    require_paho();
    let broker = BrokerProcess::start();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new("python3")
        .arg(&path)
        .arg("127.0.0.1")
        .arg(broker.port().to_string())
        .arg(version)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn python3");
    let status = wait_child(&mut child, Duration::from_secs(30));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "{script} {version} failed ({status:?}).\nstdout:\n{}\nstderr:\n{}",
        read(&out),
        read(&err)
    );
}

// 3.1.1 QoS 0/1/2 round trip with paho ([MQTT-4.3.1-1]..[MQTT-4.3.3-1]).
#[test]
fn paho_round_trip_v311() {
    run_script("roundtrip.py", "311");
}

// 5.0 QoS 0/1/2 round trip with paho.
#[test]
fn paho_round_trip_v5() {
    run_script("roundtrip.py", "5");
}

// 3.1.1 [MQTT-3.1.2-4], [MQTT-3.1.2-5], [MQTT-3.2.2-2]: persistent session with paho.
#[test]
fn paho_persistent_session_v311() {
    run_script("persistent_session.py", "311");
}

// 5.0 [MQTT-3.1.2-4], [MQTT-3.2.2-3]: clean start 0 + session expiry with paho.
#[test]
fn paho_persistent_session_v5() {
    run_script("persistent_session.py", "5");
}

// 5.0 features with paho: [MQTT-3.3.2-15], [MQTT-3.3.2-16] request/response properties
// forwarded; section 4.8.2 a shared subscription delivers each message to exactly one
// member; [MQTT-3.3.2-11], [MQTT-3.1.2-27] outbound topic aliases within the client's
// maximum, and inbound aliases (topic + alias, then alias only) resolved by the broker.
#[test]
fn paho_v5_request_response_shared_and_aliases() {
    run_script("v5_interop.py", "5");
}
