// MQTT.js over WebSocket: QoS 0/1/2 round trip through the broker, and a retained
// message. Usage: node ws_roundtrip.mjs URL {4|5}  (URL like ws://127.0.0.1:PORT/mqtt).
// With MQTT_CA set (a PEM file), a wss:// URL is verified against that CA.
// Prints "ok" and exits 0, or prints FAIL and exits non-zero; bounded to 20 s.
import { readFileSync } from "node:fs";
import mqtt from "mqtt";

const [url, version] = process.argv.slice(2);
if (!url || !["4", "5"].includes(version)) {
  console.error("usage: node ws_roundtrip.mjs URL {4|5}");
  process.exit(64);
}
const protocolVersion = Number(version);
const fail = (msg) => {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
};
setTimeout(() => fail("exceeded 20 s"), 20_000).unref();

const tls = process.env.MQTT_CA ? { ca: readFileSync(process.env.MQTT_CA), rejectUnauthorized: true } : {};

const connect = (clientId) =>
  new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { clientId, protocolVersion, reconnectPeriod: 0, connectTimeout: 10_000, ...tls });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
    c.once("close", () => reject(new Error(`${clientId}: closed before CONNACK`)));
  });

const topic = `mqttjs/ws${version}`;
const sub = await connect(`mqttjs-sub-${version}`);
const pub = await connect(`mqttjs-pub-${version}`);
await pub.publishAsync(`${topic}/retained`, "kept", { qos: 1, retain: true });

const got = new Map();
const allIn = new Promise((resolve) => {
  sub.on("message", (t, payload, packet) => {
    got.set(t, `${packet.qos}:${payload.toString()}`);
    if (got.size === 4) resolve();
  });
});
const granted = await sub.subscribeAsync({ [`${topic}/#`]: { qos: 2 } });
if (granted.length !== 1 || granted[0].qos !== 2) fail(`SUBACK ${JSON.stringify(granted)}`);
for (const qos of [0, 1, 2]) {
  await pub.publishAsync(`${topic}/q${qos}`, `payload-${qos}`, { qos });
}
await allIn;
const want = {
  [`${topic}/retained`]: "1:kept",
  [`${topic}/q0`]: "0:payload-0",
  [`${topic}/q1`]: "1:payload-1",
  [`${topic}/q2`]: "2:payload-2",
};
for (const [t, v] of Object.entries(want)) {
  if (got.get(t) !== v) fail(`${t}: got ${got.get(t)}, wanted ${v}`);
}
await pub.publishAsync(`${topic}/retained`, "", { qos: 1, retain: true });
await pub.endAsync();
await sub.endAsync();
console.log("ok");
process.exit(0);
