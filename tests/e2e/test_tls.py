#!/usr/bin/env python3
"""End-to-end TLS of mqttb: mosquitto_pub/mosquitto_sub with --cafile, client
certificates (require_certificate, use_identity_as_username with an ACL
file), paho-mqtt with tls_set, a certificate renewed by SIGHUP, and hostile
or plain input on a TLS port. Certificates are made by tests/tls/make_certs.sh
(the openssl command). Skipped when mqttb was built without TLS.

Usage: test_tls.py /path/to/mqttb [unittest args]
SPDX-License-Identifier: MIT
"""
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True

import paho.mqtt.client as mqtt  # noqa: E402

from e2e_common import connect_packet, free_ports  # noqa: E402
from e2e_common import HOST, Broker, BrokerError, is_mosquitto, main, scaled  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_CERTS = os.path.join(HERE, "..", "tls", "make_certs.sh")
PUB, SUB = "/usr/bin/mosquitto_pub", "/usr/bin/mosquitto_sub"


class TlsCase(unittest.TestCase):
    def setUp(self):
        if is_mosquitto():
            raise unittest.SkipTest("mqttb's listeners")
        self.b = Broker()
        self.addCleanup(self._cleanup)
        self.certs = os.path.join(self.b.dir, "certs")
        os.mkdir(self.certs)
        r = subprocess.run(["sh", MAKE_CERTS, self.certs], capture_output=True, text=True)
        if r.returncode != 0:
            raise unittest.SkipTest("no test certificates: %s" % r.stderr[-300:])

    def _cleanup(self):
        if self.b.alive():
            self.b.stop()
        self.b.cleanup()

    def cert(self, name):
        return os.path.join(self.certs, name)

    def start(self, lines):
        self.port = free_ports(1)[0]
        self.b.mqttb_config = ["listener %d %s" % (self.port, HOST),
                               "certfile " + self.cert("server.pem"),
                               "keyfile " + self.cert("server.key")] + list(lines)
        try:
            self.b.start()
        except BrokerError as e:
            if "needs TLS, which this build" in str(e):
                raise unittest.SkipTest("mqttb built without TLS")
            raise

    def tls_args(self, *extra):
        return ["-h", "localhost", "-p", str(self.port), "--cafile", self.cert("ca.pem")] + list(extra)

    def sub_pub(self, sub_extra, pub_extra, topic, payload, qos=1):
        sub = subprocess.Popen([SUB] + self.tls_args(*sub_extra) +
                               ["-t", topic, "-q", str(qos), "-C", "1", "-W", "10"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.6)
            r = subprocess.run([PUB] + self.tls_args(*pub_extra) +
                               ["-t", topic, "-m", payload, "-q", str(qos)],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            out, err = sub.communicate(timeout=15)
        finally:
            if sub.poll() is None:
                sub.kill()
        return out.strip(), err


class ServerTls(TlsCase):
    def test_mosquitto_clients_with_cafile_at_every_qos(self):
        self.start(["allow_anonymous true"])
        for qos in (0, 1, 2):
            out, err = self.sub_pub([], [], "tls/q%d" % qos, "over tls %d" % qos, qos)
            self.assertEqual(out, "over tls %d" % qos, err)
        self.assertIn("TLSv1.3", self.b.log_text())

    def test_paho_with_tls_set(self):
        self.start(["allow_anonymous true"])
        got = []
        c = mqtt.Client(client_id="paho-tls", protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=self.cert("ca.pem"))
        c.on_message = lambda cl, u, m: got.append(m.payload)
        c.connect("localhost", self.port, 30)
        c.loop_start()
        try:
            c.subscribe("p/t", 1)
            time.sleep(0.3)
            c.publish("p/t", b"paho over tls", 1)
            deadline = time.monotonic() + scaled(5)
            while not got and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            c.disconnect()
            c.loop_stop()
        self.assertEqual(got, [b"paho over tls"])

    def test_plain_and_garbage_on_a_tls_port_close_only_that_connection(self):
        self.start(["allow_anonymous true"])
        ctx = ssl.create_default_context(cafile=self.cert("ca.pem"))
        good = ctx.wrap_socket(socket.create_connection((HOST, self.port)),
                               server_hostname="localhost")
        good.sendall(connect_packet(b"good"))
        self.assertEqual(good.recv(4), b"\x20\x02\x00\x00")
        for data in (connect_packet(b"plain"), b"\x16\x03\x01\x00\x05hello", os.urandom(300),
                     b"\x16\x03\x01\x02\x00" + b"\x01" * 100):
            s = socket.create_connection((HOST, self.port))
            s.settimeout(scaled(5))
            s.sendall(data)
            try:
                got = s.recv(100)
            except (ConnectionResetError, socket.timeout):
                got = b""
            s.close()
            self.assertNotIn(b"\x20\x02", got[:2], "no CONNACK for %r" % data[:8])
        # A handshake started and left: the connect timeout ends it.
        stalled = socket.create_connection((HOST, self.port))
        stalled.sendall(b"\x16\x03\x01\x02\x00\x01")
        self.assertTrue(self.b.alive())
        good.sendall(b"\xc0\x00")
        self.assertEqual(good.recv(2), b"\xd0\x00", "the good connection is not affected")
        good.close()
        stalled.close()
        log = self.b.log_text()
        self.assertIn("plain MQTT instead of TLS", log)
        self.assertIn("TLS handshake with", log)

    def test_a_renewed_certificate_is_used_after_sighup(self):
        self.start(["allow_anonymous true"])

        def server_cn():
            ctx = ssl.create_default_context(cafile=self.cert("ca.pem"))
            ctx.check_hostname = False
            with ctx.wrap_socket(socket.create_connection((HOST, self.port))) as s:
                subject = dict(x[0] for x in s.getpeercert()["subject"])
                return subject["commonName"]
        self.assertEqual(server_cn(), "localhost")
        # The files are replaced in place, as certbot's renewal does.
        for ext in ("pem", "key"):
            with open(self.cert("server2." + ext), "rb") as f, \
                    open(self.cert("server." + ext), "wb") as g:
                g.write(f.read())
        self.b.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline and server_cn() != "localhost-2":
            time.sleep(0.1)
        self.assertEqual(server_cn(), "localhost-2")
        # A broken file on the next reload keeps the working certificate.
        with open(self.cert("server.pem"), "w") as f:
            f.write("not a certificate\n")
        self.b.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertIn("Reloading TLS certificates failed", self.b.log_text())
        self.assertEqual(server_cn(), "localhost-2")


class ClientCertificates(TlsCase):
    def test_identity_as_user_name_with_an_acl(self):
        acl = os.path.join(self.b.dir, "acl")
        with open(acl, "w") as f:
            f.write("user test client\ntopic readwrite mine/#\n")
        self.start(["cafile " + self.cert("ca.pem"), "require_certificate true",
                    "use_identity_as_username true", "acl_file " + acl,
                    "allow_anonymous false"])
        client = ["--cert", self.cert("client.pem"), "--key", self.cert("client.key")]
        out, err = self.sub_pub(client, client, "mine/x", "allowed by the ACL")
        self.assertEqual(out, "allowed by the ACL", err)
        # The ACL names the certificate's CN: other topics are not readable.
        out, _err = self.sub_pub(client, client, "other/x", "refused")
        self.assertEqual(out, "")
        # No certificate, a revoked one, one from another CA: no session.
        for extra in ([], ["--cert", self.cert("rogue.pem"), "--key", self.cert("rogue.key")],
                      ["--cert", self.cert("expired.pem"), "--key", self.cert("expired.key")]):
            r = subprocess.run([PUB] + self.tls_args(*extra) + ["-t", "mine/x", "-m", "x"],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(r.returncode, 0, "refused: %r" % extra)
        self.assertTrue(self.b.alive())
        deadline = time.monotonic() + scaled(3)
        while ("peer did not return a certificate" not in self.b.log_text()
               and time.monotonic() < deadline):
            time.sleep(0.05)
        log = self.b.log_text()
        self.assertIn("certificate of test client", log)
        self.assertIn("peer did not return a certificate", log)

    def test_a_revoked_certificate_is_refused(self):
        self.start(["cafile " + self.cert("ca.pem"), "require_certificate true",
                    "crlfile " + self.cert("crl.pem"), "allow_anonymous true"])
        ok = ["--cert", self.cert("client.pem"), "--key", self.cert("client.key")]
        out, err = self.sub_pub(ok, ok, "c/t", "still trusted")
        self.assertEqual(out, "still trusted", err)
        r = subprocess.run([PUB] + self.tls_args("--cert", self.cert("revoked.pem"), "--key",
                                                 self.cert("revoked.key")) +
                           ["-t", "c/t", "-m", "x"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        deadline = time.monotonic() + scaled(3)
        while "certificate revoked" not in self.b.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("certificate revoked", self.b.log_text())


if __name__ == "__main__":
    main()
