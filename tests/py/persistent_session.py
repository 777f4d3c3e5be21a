#!/usr/bin/env python3
"""A persistent session (3.1.1 clean session 0 / 5.0 clean start 0 + session expiry)
receives the QoS 1 messages queued while it was offline, in order:
persistent_session.py HOST PORT {311|5}."""

import sys

from mqttutil import Client, fail, parse_args, run

COUNT = 5


def main():
    host, port, proto = parse_args("persistent_session.py")
    tag = sys.argv[3]
    cid, topic = f"paho-persist-{tag}", f"paho/persist{tag}"
    sub = Client(cid, proto, clean=False)
    if sub.connect(host, port, session_expiry=60):
        fail("first CONNACK reported a session present")
    sub.subscribe([(topic, 1)])
    sub.close()

    pub = Client(f"{cid}-pub", proto)
    pub.connect(host, port)
    for i in range(COUNT):
        pub.publish(topic, f"m{i}".encode(), 1)
    pub.close()

    again = Client(cid, proto, clean=False)
    if not again.connect(host, port, session_expiry=60):
        fail("reconnect CONNACK did not report the session present")
    got = [m.payload.decode() for m in again.wait_messages(COUNT)]
    want = [f"m{i}" for i in range(COUNT)]
    if got != want:
        fail(f"queued messages {got}, wanted {want}")
    again.close()
    print("ok")


if __name__ == "__main__":
    run(main)
