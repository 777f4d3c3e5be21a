#!/usr/bin/env python3
"""QoS 0/1/2 round trip through the broker: roundtrip.py HOST PORT {311|5}."""

import sys

from mqttutil import Client, fail, parse_args, run


def main():
    host, port, proto = parse_args("roundtrip.py")
    tag = sys.argv[3]
    sub = Client(f"paho-rt-sub-{tag}", proto)
    sub.connect(host, port)
    sub.subscribe([(f"paho/rt{tag}/q{q}", q) for q in range(3)])
    pub = Client(f"paho-rt-pub-{tag}", proto)
    pub.connect(host, port)
    for q in range(3):
        pub.publish(f"paho/rt{tag}/q{q}", f"payload-{q}".encode(), q)
    got = {m.topic: (m.qos, m.payload.decode()) for m in sub.wait_messages(3)}
    want = {f"paho/rt{tag}/q{q}": (q, f"payload-{q}") for q in range(3)}
    if got != want:
        fail(f"received {got}, wanted {want}")
    if len(sub.messages) != 3:
        fail(f"extra messages: {[m.payload for m in sub.messages]}")
    pub.close()
    sub.close()
    print("ok")


if __name__ == "__main__":
    run(main)
