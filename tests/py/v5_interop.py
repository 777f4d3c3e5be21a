#!/usr/bin/env python3
"""MQTT 5.0 features with paho-mqtt 2.x: request/response (Response Topic, Correlation
Data), a shared subscription, and topic aliases both ways: v5_interop.py HOST PORT 5.

paho 2.x does not resolve inbound topic aliases (a PUBLISH that uses an alias reaches
on_message with an empty topic), so the script keeps the alias map itself, as a client
application must, and checks that every message resolves to its real topic."""

import time

from mqttutil import WAIT_SECS, Client, fail, mqtt, parse_args, run
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def connect_with(client, host, port, props):
    """Client.connect with a caller-built CONNECT property block."""
    client.c.connect(host, port, 30, clean_start=True, properties=props)
    client.c.loop_start()
    client.wait(lambda: client.connack is not None, "CONNACK")
    _flags, rc = client.connack
    if rc.is_failure:
        fail(f"{client.id}: CONNACK refused: {rc}")


def publish_props(client, topic, payload, qos, props):
    """Publishes with PUBLISH properties and waits for the QoS flow to complete."""
    info = client.c.publish(topic, payload, qos=qos, properties=props)
    info.wait_for_publish(WAIT_SECS)
    if not info.is_published():
        fail(f"{client.id}: publish to {topic!r} at QoS {qos} not acknowledged")


def request_response(host, port, proto):
    """[MQTT-3.3.2-15], [MQTT-3.3.2-16]: Response Topic and Correlation Data arrive
    unaltered; the answer on the response topic reaches the requester."""
    responder = Client("paho5-responder", proto)
    responder.connect(host, port)
    responder.subscribe([("req/#", 1)])
    requester = Client("paho5-requester", proto)
    requester.connect(host, port)
    reply_topic = "resp/paho5-requester"
    requester.subscribe([(reply_topic, 1)])

    corr = b"\x00corr-42\xff"
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = reply_topic
    props.CorrelationData = corr
    publish_props(requester, "req/time", b"what time?", 1, props)

    req = responder.wait_messages(1)[0]
    if req.topic != "req/time" or req.payload != b"what time?":
        fail(f"responder got {req.topic!r} {req.payload!r}")
    got_topic = getattr(req.properties, "ResponseTopic", None)
    got_corr = getattr(req.properties, "CorrelationData", None)
    if got_topic != reply_topic:
        fail(f"Response Topic {got_topic!r}, wanted {reply_topic!r}")
    if got_corr != corr:
        fail(f"Correlation Data {got_corr!r}, wanted {corr!r}")

    answer = Properties(PacketTypes.PUBLISH)
    answer.CorrelationData = got_corr
    publish_props(responder, got_topic, b"noon", 1, answer)

    reply = requester.wait_messages(1)[0]
    if reply.topic != reply_topic or reply.payload != b"noon":
        fail(f"requester got {reply.topic!r} {reply.payload!r}")
    if getattr(reply.properties, "CorrelationData", None) != corr:
        fail(f"reply Correlation Data {getattr(reply.properties, 'CorrelationData', None)!r}")
    requester.close()
    responder.close()


def shared_subscription(host, port, proto):
    """Section 4.8.2: each message to a shared subscription goes to exactly one member."""
    count = 20
    members = [Client(f"paho5-share-{i}", proto) for i in range(2)]
    for m in members:
        m.connect(host, port)
        m.subscribe([("$share/g/work", 1)])
    pub = Client("paho5-share-pub", proto)
    pub.connect(host, port)
    for i in range(count):
        pub.publish("work", f"job{i}".encode(), 1)

    deadline = time.monotonic() + WAIT_SECS
    while sum(len(m.messages) for m in members) < count:
        if time.monotonic() > deadline:
            fail(f"shared: only {[len(m.messages) for m in members]} of {count} delivered")
        time.sleep(0.02)
    time.sleep(0.3)  # room for a duplicate to show up
    got = [[msg.payload.decode() for msg in m.messages] for m in members]
    for m, payloads in zip(members, got):
        if any(msg.topic != "work" for msg in m.messages):
            fail(f"shared: {m.id} got topics {[msg.topic for msg in m.messages]}")
        if len(payloads) != len(set(payloads)):
            fail(f"shared: {m.id} got duplicates {payloads}")
    a, b = set(got[0]), set(got[1])
    want = {f"job{i}" for i in range(count)}
    if a & b:
        fail(f"shared: delivered to both members: {sorted(a & b)}")
    if a | b != want or len(got[0]) + len(got[1]) != count:
        fail(f"shared: got {got}, wanted each of {sorted(want)} once")
    print(f"shared split: {len(got[0])} + {len(got[1])}")
    pub.close()
    for m in members:
        m.close()


def resolve_aliases(messages, alias_max):
    """Topics of `messages` with inbound aliases resolved ([MQTT-3.3.2-11]: no alias
    above our Topic Alias Maximum); also returns how many used an alias."""
    aliases, topics, used = {}, [], 0
    for msg in messages:
        alias = getattr(msg.properties, "TopicAlias", None)
        topic = msg.topic
        if alias is not None:
            used += 1
            if not 1 <= alias <= alias_max:
                fail(f"alias {alias} outside 1..{alias_max}")
            if topic:
                aliases[alias] = topic
            elif alias in aliases:
                topic = aliases[alias]
            else:
                fail(f"empty topic with unknown alias {alias}")
        elif not topic:
            fail("empty topic without a Topic Alias")
        topics.append(topic)
    return topics, used


def topic_aliases(host, port, proto):
    """Outbound aliases to a client with Topic Alias Maximum 5, and inbound aliases
    from a paho publisher (topic + alias, then empty topic + alias)."""
    count = 5
    sub = Client("paho5-alias-sub", proto)
    props = Properties(PacketTypes.CONNECT)
    props.TopicAliasMaximum = 5
    connect_with(sub, host, port, props)
    sub.subscribe([("alias/out", 1)])
    pub = Client("paho5-alias-pub", proto)
    pub.connect(host, port)
    for i in range(count):
        pub.publish("alias/out", f"a{i}".encode(), 1)
    msgs = sub.wait_messages(count)
    topics, used = resolve_aliases(msgs, 5)
    payloads = [m.payload.decode() for m in msgs]
    if topics != ["alias/out"] * count or payloads != [f"a{i}" for i in range(count)]:
        fail(f"aliased delivery: topics {topics}, payloads {payloads}")
    print(f"outbound: {used} of {count} deliveries used a topic alias")

    plain = Client("paho5-alias-plain", proto)
    plain.connect(host, port)
    plain.subscribe([("alias/in", 1)])
    first = Properties(PacketTypes.PUBLISH)
    first.TopicAlias = 3
    publish_props(pub, "alias/in", b"with-topic", 1, first)
    again = Properties(PacketTypes.PUBLISH)
    again.TopicAlias = 3
    publish_props(pub, "", b"alias-only", 1, again)
    msgs = plain.wait_messages(2)
    got = [(m.topic, m.payload.decode()) for m in msgs]
    if got != [("alias/in", "with-topic"), ("alias/in", "alias-only")]:
        fail(f"inbound aliases: subscriber got {got}")
    if any(getattr(m.properties, "TopicAlias", None) is not None for m in msgs):
        fail("a subscriber without Topic Alias Maximum received an alias [MQTT-3.1.2-27]")
    pub.close()
    plain.close()
    sub.close()


def main():
    host, port, proto = parse_args("v5_interop.py")
    if proto != mqtt.MQTTv5:
        fail("v5_interop.py needs protocol 5")
    request_response(host, port, proto)
    shared_subscription(host, port, proto)
    topic_aliases(host, port, proto)
    print("ok")


if __name__ == "__main__":
    run(main)
