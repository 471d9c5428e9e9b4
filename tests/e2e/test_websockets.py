#!/usr/bin/env python3
"""End-to-end MQTT over WebSockets (`protocol websockets`): MQTT.js (the npm
package `mqtt`, pinned in tests/e2e/js/package.json, installed with
`npm ci --prefix tests/e2e/js`) over ws:// and wss:// at QoS 0, 1 and 2 with
MQTT 3.1.1 and 5; paho-mqtt's websockets transport; MQTT.js's browser build
in headless Chromium, which connects, subscribes, publishes and reports the
round trip to an HTTP server of this test; and hostile WebSocket input, which
closes that connection only.

Usage: test_websockets.py /path/to/mqttb [unittest args]
SPDX-License-Identifier: MIT
"""
import base64
import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.dont_write_bytecode = True

import paho.mqtt.client as mqtt  # noqa: E402

from e2e_common import connect_packet, free_ports  # noqa: E402
from e2e_common import HOST, Broker, BrokerError, is_mosquitto, main, scaled  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "js")
MQTT_JS = os.path.join(JS, "node_modules", "mqtt")
MAKE_CERTS = os.path.join(HERE, "..", "tls", "make_certs.sh")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def handshake(port, extra=b"", protocol=b"mqtt"):
    s = socket.create_connection((HOST, port))
    s.settimeout(scaled(5))
    key = base64.b64encode(os.urandom(16))
    req = (b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
           b"Sec-WebSocket-Version: 13\r\n")
    if protocol:
        req += b"Sec-WebSocket-Protocol: " + protocol + b"\r\n"
    s.sendall(req + extra + b"\r\n")
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
    return s, resp


def frame(payload, opcode=0x2, fin=True, mask=True, rsv=0):
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_all(s, wait=2.0):
    s.settimeout(scaled(wait))
    out = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def closed_by_peer(s, wait):
    """Whether the broker closed s (EOF or reset) within wait seconds."""
    s.settimeout(scaled(wait))
    try:
        while True:
            b = s.recv(4096)
            if not b:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


class WsCase(unittest.TestCase):
    def setUp(self):
        if is_mosquitto():
            raise unittest.SkipTest("mqttb's listeners")
        self.b = Broker()
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        if self.b.alive():
            self.b.stop()
        self.b.cleanup()

    def start(self, tls=False):
        self.port = free_ports(1)[0]
        lines = ["listener %d %s" % (self.port, HOST), "protocol websockets",
                 "allow_anonymous true", "connect_timeout 2"]
        if tls:
            certs = os.path.join(self.b.dir, "certs")
            os.mkdir(certs)
            r = subprocess.run(["sh", MAKE_CERTS, certs], capture_output=True, text=True)
            if r.returncode != 0:
                raise unittest.SkipTest("no test certificates: %s" % r.stderr[-200:])
            self.ca = os.path.join(certs, "ca.pem")
            lines += ["certfile " + os.path.join(certs, "server.pem"),
                      "keyfile " + os.path.join(certs, "server.key")]
        self.b.mqttb_config = lines
        try:
            self.b.start()
        except BrokerError as e:
            if "needs TLS, which this build" in str(e):
                raise unittest.SkipTest("mqttb built without TLS")
            raise


class MqttJs(WsCase):
    def setUp(self):
        super().setUp()
        if not shutil.which("node") or not os.path.isdir(MQTT_JS):
            raise unittest.SkipTest("MQTT.js not installed (npm ci --prefix tests/e2e/js)")

    def node(self, url, version, ca=None):
        cmd = ["node", os.path.join(JS, "roundtrip.js"), url, str(version)] + ([ca] if ca else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def check(self, result):
        got = sorted((m["topic"], m["qos"], m["len"]) for m in result["got"])
        self.assertEqual(got, [("js/q0", 0, 8), ("js/q1", 1, 8), ("js/q2", 2, 100000)])

    def test_ws_mqtt311_and_5(self):
        self.start()
        for v in (4, 5):
            self.check(self.node("ws://127.0.0.1:%d/mqtt" % self.port, v))

    def test_wss_mqtt311_and_5(self):
        self.start(tls=True)
        for v in (4, 5):
            self.check(self.node("wss://localhost:%d/mqtt" % self.port, v, self.ca))


class Paho(WsCase):
    def test_paho_websockets_transport(self):
        self.start()
        got = []
        c = mqtt.Client(client_id="paho-ws", transport="websockets", protocol=mqtt.MQTTv5)
        c.on_message = lambda cl, u, m: got.append(m.payload)
        c.connect(HOST, self.port, 30)
        c.loop_start()
        try:
            c.subscribe("pw/t", 2)
            time.sleep(0.3)
            c.publish("pw/t", b"p" * 70000, 2)
            deadline = time.monotonic() + scaled(5)
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            c.disconnect()
            c.loop_stop()
        self.assertEqual(got, [b"p" * 70000])


class Browser(WsCase):
    def test_mqttjs_in_headless_chromium(self):
        if not os.path.exists(CHROMIUM):
            raise unittest.SkipTest("no chromium")
        if not os.path.isdir(MQTT_JS):
            raise unittest.SkipTest("MQTT.js not installed (npm ci --prefix tests/e2e/js)")
        self.start()
        results = []
        done = threading.Event()
        page = open(os.path.join(JS, "browser.html"), "rb").read()
        lib = open(os.path.join(MQTT_JS, "dist", "mqtt.min.js"), "rb").read()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                if url.path == "/result":
                    results.append(urllib.parse.parse_qs(url.query).get("result", [""])[0])
                    done.set()
                    body, ctype = b"ok", "text/plain"
                elif url.path == "/mqtt.min.js":
                    body, ctype = lib, "application/javascript"
                else:
                    body, ctype = page, "text/html"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        profile = tempfile.mkdtemp(prefix="mqttb-chromium-")
        url = "http://127.0.0.1:%d/?port=%d" % (httpd.server_address[1], self.port)
        proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                                 "--disable-quic", "--no-first-run",
                                 "--disable-background-networking", "--disable-component-update",
                                 "--disable-sync", "--user-data-dir=" + profile,
                                 "--remote-debugging-port=0", url],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            done.wait(scaled(30))
        finally:
            proc.kill()
            proc.wait()
            httpd.shutdown()
            httpd.server_close()
            shutil.rmtree(profile, ignore_errors=True)
        self.assertTrue(results, "the page reported nothing")
        self.assertTrue(results[0].startswith("ok browser/echo round trip from"), results[0])
        self.assertIn("as browser-", self.b.log_text())


class Hostile(WsCase):
    def test_bad_frames_close_that_connection_only(self):
        self.start()
        good, resp = handshake(self.port)
        self.assertIn(b"101", resp.split(b"\r\n")[0])
        good.sendall(frame(connect_packet(b"good")))
        self.assertEqual(good.recv(6)[2:6], b"\x20\x02\x00\x00")
        cases = {
            "unmasked": frame(connect_packet(b"x"), mask=False),
            "reserved bits": frame(connect_packet(b"x"), rsv=0x40),
            "text frame": frame(b"hello", opcode=0x1),
            "fragmented ping": frame(b"p", opcode=0x9, fin=False),
            "long ping": frame(b"p" * 200, opcode=0x9),
            "64-bit length, top bit set": b"\x82\xff" + b"\x80" + b"\x00" * 7 + b"\x00" * 4,
            "continuation with nothing to continue": frame(b"x", opcode=0x0),
            "unknown opcode": frame(b"x", opcode=0x3),
            "garbage MQTT inside": frame(b"\xff\xff\xff\xff\xff"),
        }
        for what, data in cases.items():
            s, resp = handshake(self.port)
            self.assertIn(b"101", resp.split(b"\r\n")[0], what)
            s.sendall(data)
            rest = read_all(s)
            s.close()
            # A close frame (opcode 8) or nothing, and the socket ends.
            self.assertTrue(rest == b"" or rest[0] == 0x88, "%s: %r" % (what, rest[:10]))
        # Handshakes that are refused: an HTTP error, then the close.
        for what, (extra, proto) in {"no mqtt subprotocol": (b"", b"chat"),
                                     "huge header": (b"X-Pad: " + b"a" * 20000 + b"\r\n", b"mqtt")
                                     }.items():
            s, resp = handshake(self.port, extra, proto)
            self.assertRegex(resp.split(b"\r\n")[0].decode(), r"^HTTP/1\.1 4\d\d", what)
            s.close()
        s = socket.create_connection((HOST, self.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"405", read_all(s))
        # A handshake flood: many connections that never finish, all closed
        # by the connect timeout (2 s) while the good client is served.
        flood = []
        for _ in range(50):
            f = socket.create_connection((HOST, self.port))
            f.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            flood.append(f)
        good.sendall(frame(b"\xc0\x00"))  # PINGREQ
        self.assertEqual(good.recv(4), b"\x82\x02\xd0\x00")
        time.sleep(scaled(3))
        closed = sum(1 for f in flood if closed_by_peer(f, 1.0))
        for f in flood:
            f.close()
        self.assertEqual(closed, 50, "every unfinished handshake was closed")
        self.assertTrue(self.b.alive())
        good.sendall(frame(b"\xc0\x00"))
        self.assertEqual(good.recv(4), b"\x82\x02\xd0\x00", "the good connection is unaffected")
        # Ping is answered with pong, close with close.
        good.sendall(frame(b"hi", opcode=0x9))
        self.assertEqual(good.recv(4), b"\x8a\x02hi")
        good.sendall(frame(struct.pack(">H", 1000), opcode=0x8))
        self.assertEqual(read_all(good)[:4], b"\x88\x02\x03\xe8")
        good.close()
        log = self.b.log_text()
        self.assertIn("WebSocket from", log)


if __name__ == "__main__":
    main()
