#!/usr/bin/env python3
"""Receive Maximum exceeded, as paho-mqtt 2.x sees it: flow_control.py HOST PORT 5.

The broker under test advertises Receive Maximum 2. The client ignores it (paho keeps
up to max_inflight messages in flight) and publishes 300 QoS 2 messages of 1 KiB
without reading in between (no network thread: each publish() writes at once), as a
client busy sending does, and only then reads: the third PUBLISH exceeds the quota,
as no PUBREL follows a PUBREC the client has not read. It must read the DISCONNECT with
reason 0x93 (Receive Maximum exceeded) in on_disconnect, not fail a write with a broken
pipe: the broker drains what the client still sends after its DISCONNECT (2 s or
1 MiB at most) before it closes the socket."""

import time

from mqttutil import WAIT_SECS, fail, mqtt, parse_args, run

MESSAGES = 300
PAYLOAD = b"x" * 1024
PACE_SECS = 0.002


def main():
    host, port, proto = parse_args("flow_control.py")
    if proto != mqtt.MQTTv5:
        fail("flow_control.py is a 5.0 test")
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho5-flood", protocol=proto)
    c.max_inflight_messages_set(MESSAGES)
    c.max_queued_messages_set(0)
    events = {"connack": None, "disconnect": None}

    def on_connect(_c, _u, _flags, reason_code, _props):
        events["connack"] = reason_code

    def on_disconnect(_c, _u, _flags, reason_code, _props):
        if events["disconnect"] is None:
            events["disconnect"] = reason_code

    c.on_connect = on_connect
    c.on_disconnect = on_disconnect
    c.connect(host, port, 30)
    deadline = time.monotonic() + WAIT_SECS
    while events["connack"] is None and time.monotonic() < deadline:
        c.loop(0.1)
    if events["connack"] is None or events["connack"].is_failure:
        fail(f"no successful CONNACK: {events['connack']}")
    for i in range(MESSAGES):
        if events["disconnect"] is not None:
            fail(f"gave up while publishing (message {i}): {events['disconnect']}")
        c.publish("flood/t", PAYLOAD, qos=2)
        time.sleep(PACE_SECS)
    while events["disconnect"] is None and time.monotonic() < deadline:
        c.loop(0.1)
    reason = events["disconnect"]
    if reason is None:
        fail(f"not disconnected within {WAIT_SECS} s")
    if reason.value != 0x93:
        fail(f"disconnected with {reason} ({reason.value:#x}), want 0x93 Receive Maximum exceeded")
    print(f"disconnected with {reason} ({reason.value:#x})")


if __name__ == "__main__":
    run(main)
