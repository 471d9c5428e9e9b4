#!/usr/bin/env python3
"""End-to-end transports of mqttb besides plain TCP: Unix domain sockets
(`listener 0 PATH`, with mosquitto_pub/mosquitto_sub --unix) and the PROXY
protocol (`enable_proxy_protocol 1|2`, with hand-made headers).

Usage: test_transports.py /path/to/mqttb [unittest args]
SPDX-License-Identifier: MIT
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True

from e2e_common import connect_packet, free_ports  # noqa: E402
from e2e_common import HOST, Broker, BrokerError, is_mosquitto, main, scaled  # noqa: E402

MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
V2_SIG = bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])


def recv_some(s, timeout=2.0):
    s.settimeout(scaled(timeout))
    try:
        return s.recv(64)
    except (socket.timeout, ConnectionResetError):
        return b""


class TransportCase(unittest.TestCase):
    def setUp(self):
        if is_mosquitto():
            raise unittest.SkipTest("mqttb's listeners")
        self.brokers = []

    def tearDown(self):
        for b in self.brokers:
            if b.alive():
                b.stop()
            b.cleanup()

    def broker(self, lines):
        b = Broker(mqttb_config=list(lines))
        self.brokers.append(b)
        return b


class UnixSockets(TransportCase):
    def test_mosquitto_clients_over_a_unix_socket(self):
        b = self.broker([])
        path = os.path.join(b.dir, "mqttb.sock")
        b.mqttb_config = ["listener 0 " + path, "allow_anonymous true"]
        b.start()
        self.assertIn("listening on unix:" + path, b.log_text())
        sub = subprocess.Popen([MOSQUITTO_SUB, "--unix", path, "-t", "u/#", "-q", "1", "-C", "2",
                                "-v", "-W", "10"], stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            for i in range(2):
                subprocess.run([MOSQUITTO_PUB, "--unix", path, "-t", "u/%d" % i, "-m", "m%d" % i,
                                "-q", "1"], check=True, timeout=10)
            out, _ = sub.communicate(timeout=15)
        finally:
            if sub.poll() is None:
                sub.kill()
        self.assertEqual(out.split("\n")[:2], ["u/0 m0", "u/1 m1"])
        self.assertIn("from unix:" + path, b.log_text())
        # The socket file goes with a clean exit.
        self.assertEqual(b.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def test_a_stale_socket_is_replaced_and_anything_else_refused(self):
        b = self.broker([])
        path = os.path.join(b.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()  # the file stays, as after a crash
        b.mqttb_config = ["listener 0 " + path, "allow_anonymous true"]
        b.start()
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        c.sendall(connect_packet(b"u1"))
        self.assertEqual(recv_some(c)[:4], b"\x20\x02\x00\x00")
        c.close()
        b.stop()
        # A regular file there is not a stale socket: not touched, start refused.
        other = self.broker([])
        plain = os.path.join(other.dir, "not-a-socket")
        with open(plain, "w") as f:
            f.write("data\n")
        other.mqttb_config = ["listener 0 " + plain, "allow_anonymous true"]
        with self.assertRaises(BrokerError) as e:
            other.start()
        self.assertIn("exists and is not a socket", str(e.exception))
        with open(plain) as f:
            self.assertEqual(f.read(), "data\n")

    def test_port_0_needs_a_path(self):
        b = self.broker(["listener 0"])
        with self.assertRaises(BrokerError) as e:
            b.start()
        self.assertIn("must give a Unix socket path", str(e.exception))


class ProxyProtocol(TransportCase):
    def start(self, version, extra=()):
        port = free_ports(1)[0]
        b = self.broker(["listener %d %s" % (port, HOST), "enable_proxy_protocol %d" % version,
                         "allow_anonymous true", "connect_timeout 1"] + list(extra))
        b.start()
        return b, port

    def test_v1_gives_the_client_address(self):
        b, port = self.start(1)
        s = socket.create_connection((HOST, port))
        s.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 %d\r\n" % port + connect_packet(b"p1"))
        self.assertEqual(recv_some(s)[:4], b"\x20\x02\x00\x00")
        deadline = time.monotonic() + scaled(3)
        while "as p1" not in b.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("New client connected from 203.0.113.9:40000 as p1", b.log_text())
        s.close()

    def test_v2_in_pieces_and_local(self):
        b, port = self.start(2)
        addrs = socket.inet_aton("198.51.100.77") + socket.inet_aton("127.0.0.1")
        hdr = V2_SIG + bytes([0x21, 0x11, 0, 12]) + addrs + struct.pack(">HH", 5555, port)
        s = socket.create_connection((HOST, port))
        for k in range(0, len(hdr), 5):
            s.sendall(hdr[k:k + 5])
            time.sleep(0.02)
        s.sendall(connect_packet(b"p2"))
        self.assertEqual(recv_some(s)[:4], b"\x20\x02\x00\x00")
        # LOCAL (a health check): the connection's own address stands.
        s2 = socket.create_connection((HOST, port))
        s2.sendall(V2_SIG + bytes([0x20, 0x00, 0, 0]) + connect_packet(b"p3"))
        self.assertEqual(recv_some(s2)[:4], b"\x20\x02\x00\x00")
        deadline = time.monotonic() + scaled(3)
        while "as p3" not in b.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = b.log_text()
        self.assertIn("from 198.51.100.77:5555 as p2", log)
        self.assertIn("from 127.0.0.1:%d as p3" % s2.getsockname()[1], log)

    def test_v2_certificate_name_is_the_user_name(self):
        acl = os.path.join(tempfile.mkdtemp(prefix="mqttb-acl-"), "acl")
        self.addCleanup(lambda: os.path.exists(acl) and os.unlink(acl))
        with open(acl, "w") as f:
            f.write("user alice\ntopic readwrite alice/#\n")
        try:
            b, port = self.start(2, ["use_identity_as_username true", "acl_file " + acl])
        except BrokerError as e:
            if "needs TLS, which this build" in str(e):
                self.skipTest("mqttb built without TLS (use_identity_as_username is a TLS option)")
            raise
        addrs = socket.inet_aton("192.0.2.5") + socket.inet_aton("127.0.0.1")

        def header(cn, verified=True):
            ssl_tlv = bytes([0x07]) + struct.pack(">I", 0 if verified else 1)
            if cn is not None:
                ssl_tlv += bytes([0x22]) + struct.pack(">H", len(cn)) + cn
            body = addrs + struct.pack(">HH", 1234, port)
            body += bytes([0x20]) + struct.pack(">H", len(ssl_tlv)) + ssl_tlv
            return V2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(body)) + body

        def connack(cn, verified=True):
            s = socket.create_connection((HOST, port))
            s.sendall(header(cn, verified) + connect_packet(b"c-%d" % len(cn or b"")))
            got = recv_some(s)
            s.close()
            return got[:4]
        self.assertEqual(connack(b"alice"), b"\x20\x02\x00\x00")
        # No name, or one the proxy could not verify: refused (0x04).
        self.assertEqual(connack(None), b"\x20\x02\x00\x04")
        self.assertEqual(connack(b"alice", verified=False), b"\x20\x02\x00\x04")
        self.assertTrue(b.alive())

    def test_connections_without_a_valid_header_are_closed_alone(self):
        b, port = self.start(1)
        good = socket.create_connection((HOST, port))
        good.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 1000 %d\r\n" % port + connect_packet(b"ok"))
        self.assertEqual(recv_some(good)[:4], b"\x20\x02\x00\x00")
        bad_inputs = [connect_packet(b"plain"), b"GET / HTTP/1.1\r\n\r\n",
                      b"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n", b"PROXY " + b"x" * 200,
                      V2_SIG + bytes([0x21, 0x11, 0, 12]) + b"\x00" * 12]
        for data in bad_inputs:
            s = socket.create_connection((HOST, port))
            s.sendall(data)
            self.assertEqual(recv_some(s), b"", "closed without an answer: %r" % data[:20])
            s.close()
        # Half a header, then nothing: the connect timeout (1 s) closes it.
        s = socket.create_connection((HOST, port))
        s.sendall(b"PROXY TCP4 192.0.2.1")
        t0 = time.monotonic()
        self.assertEqual(recv_some(s, 5), b"")
        self.assertLess(time.monotonic() - t0, scaled(4))
        self.assertTrue(b.alive())
        log = b.log_text()
        self.assertIn("no PROXY protocol version 1 header", log)
        self.assertIn("bad address or port", log)
        # The good connection was not affected.
        good.sendall(b"\xc0\x00")  # PINGREQ
        self.assertEqual(recv_some(good), b"\xd0\x00")
        good.close()


if __name__ == "__main__":
    main()
