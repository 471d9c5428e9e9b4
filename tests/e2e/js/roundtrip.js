// MQTT.js against mqttb over WebSockets: connect to URL with protocol
// version V, subscribe, publish at QoS 0, 1 and 2, and print what came back
// as one JSON line. Usage: node roundtrip.js URL VERSION [CAFILE]
// SPDX-License-Identifier: MIT
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');

const [url, version, cafile] = process.argv.slice(2);
const opts = {
  protocolVersion: Number(version),
  clientId: 'mqttjs-' + version + '-' + process.pid,
  reconnectPeriod: 0,
  connectTimeout: 5000,
};
if (cafile) opts.ca = fs.readFileSync(cafile);
const c = mqtt.connect(url, opts);
const got = [];
const timer = setTimeout(() => finish('timeout'), 10000);
function finish(error) {
  clearTimeout(timer);
  console.log(JSON.stringify({ error: error || null, got }));
  c.end(true, () => process.exit(error ? 1 : 0));
}
c.on('error', (e) => finish(String(e)));
c.on('message', (topic, payload, packet) => {
  got.push({ topic, qos: packet.qos, len: payload.length, first: payload.toString('utf8', 0, 8) });
  if (got.length === 3) finish(null);
});
c.on('connect', () => {
  c.subscribe('js/#', { qos: 2 }, (err) => {
    if (err) return finish(String(err));
    c.publish('js/q0', 'qos-zero', { qos: 0 });
    c.publish('js/q1', 'qos-one!', { qos: 1 });
    c.publish('js/q2', Buffer.alloc(100000, 'z'), { qos: 2 });
  });
});
