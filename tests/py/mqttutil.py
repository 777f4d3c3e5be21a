"""Helpers shared by the paho-mqtt (2.x API) interop scripts: bounded waits, and a
failure path that prints to stderr and exits non-zero. With MQTT_TRANSPORT=websockets
in the environment the clients speak MQTT over WebSocket (path MQTT_WS_PATH, default
/mqtt) instead of TCP; with MQTT_CAFILE they speak TLS, verifying the broker against
that CA (and presenting MQTT_CERTFILE/MQTT_KEYFILE when set)."""

import os
import signal
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

WAIT_SECS = 10


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def parse_args(usage):
    """HOST PORT {311|5} from argv; arms a 25 s alarm bounding the whole script."""
    if len(sys.argv) != 4 or sys.argv[3] not in ("311", "5"):
        fail(f"usage: {usage} HOST PORT {{311|5}}")

    def on_alarm(*_):
        print("FAIL: script exceeded 25 s", file=sys.stderr, flush=True)
        sys.stderr.flush()
        import os

        os._exit(2)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(25)
    proto = mqtt.MQTTv5 if sys.argv[3] == "5" else mqtt.MQTTv311
    return sys.argv[1], int(sys.argv[2]), proto


class Client:
    """A paho client whose callbacks feed a condition variable."""

    def __init__(self, client_id, proto, clean=True):
        self.id = client_id
        self.proto = proto
        self.clean = clean
        transport = os.environ.get("MQTT_TRANSPORT", "tcp")
        kwargs = {"client_id": client_id, "protocol": proto, "transport": transport}
        if proto != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        if transport == "websockets":
            self.c.ws_set_options(path=os.environ.get("MQTT_WS_PATH", "/mqtt"))
        if os.environ.get("MQTT_CAFILE"):
            self.c.tls_set(
                ca_certs=os.environ["MQTT_CAFILE"],
                certfile=os.environ.get("MQTT_CERTFILE"),
                keyfile=os.environ.get("MQTT_KEYFILE"),
            )
        self.cond = threading.Condition()
        self.connack = None
        self.subacks = {}
        self.messages = []
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message

    def _on_connect(self, _c, _u, flags, reason_code, _props):
        with self.cond:
            self.connack = (flags, reason_code)
            self.cond.notify_all()

    def _on_subscribe(self, _c, _u, mid, reason_codes, _props):
        with self.cond:
            self.subacks[mid] = reason_codes
            self.cond.notify_all()

    def _on_message(self, _c, _u, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait(self, pred, what):
        with self.cond:
            if not self.cond.wait_for(pred, WAIT_SECS):
                fail(f"{self.id}: no {what} within {WAIT_SECS} s")

    def connect(self, host, port, session_expiry=None):
        """Connects and returns the CONNACK session-present flag."""
        if self.proto == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            self.c.connect(host, port, 30, clean_start=self.clean, properties=props)
        else:
            self.c.connect(host, port, 30)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None, "CONNACK")
        flags, rc = self.connack
        if rc.is_failure:
            fail(f"{self.id}: CONNACK refused: {rc}")
        return bool(flags.session_present)

    def subscribe(self, pairs):
        result, mid = self.c.subscribe(pairs)
        if result != mqtt.MQTT_ERR_SUCCESS:
            fail(f"{self.id}: subscribe {pairs} not sent: {result}")
        self.wait(lambda: mid in self.subacks, "SUBACK")
        granted = [rc.value for rc in self.subacks[mid]]
        wanted = [q for _, q in pairs]
        if granted != wanted:
            fail(f"{self.id}: SUBACK granted {granted}, wanted {wanted}")

    def publish(self, topic, payload, qos):
        info = self.c.publish(topic, payload, qos=qos)
        info.wait_for_publish(WAIT_SECS)
        if not info.is_published():
            fail(f"{self.id}: publish to {topic} at QoS {qos} not acknowledged")

    def wait_messages(self, n):
        self.wait(lambda: len(self.messages) >= n, f"{n} messages (have {len(self.messages)})")
        return list(self.messages)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def run(main):
    """Runs main(); any exception becomes a FAIL line on stderr and exit code 1."""
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - report every failure the same way
        fail(f"{type(e).__name__}: {e}")
