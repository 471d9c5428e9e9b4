#!/usr/bin/python3
"""docs/examples/stdio_broker.c: raw MQTT bytes over the process's stdin and stdout
(CONNECT/CONNACK, SUBSCRIBE/SUBACK, a QoS 1 PUBLISH to itself received back with every byte
value intact, DISCONNECT: exit 0, nothing else ever written to stdout); a burst of 8,000
packets (more than the work budget of one call); end of input without
DISCONNECT: exit 0; SIGTERM: exit 0; and behind `socat TCP-LISTEN:...,fork EXEC:stdio_broker`
with paho and mosquitto_pub: each TCP client gets its own broker process, which exits when
its client leaves.

Usage: /usr/bin/python3 docs/examples/tests/test_stdio_broker.py PATH/TO/stdio_broker
"""
import os
import socket
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import examples_common as ex  # noqa: E402

ALL_BYTES = bytes(range(256))


class OverPipes(unittest.TestCase):
    def start(self):
        e = ex.Example([], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(e.close)
        self.addCleanup(e.proc.stdout.close)
        self.addCleanup(lambda: e.proc.stdin.closed or e.proc.stdin.close())
        return e, ex.FdClient(e.proc.stdout.fileno(), e.proc.stdin.fileno())

    def test_session_then_disconnect(self):
        e, c = self.start()
        sp, rc = c.connect("stdio-1")
        self.assertEqual((sp, rc), (False, 0))
        c.send(ex.subscribe_packet(7, [("me/#", 1)]))
        suback = c.expect(ex.SUBACK)
        self.assertEqual((suback.mid, suback.body[2:]), (7, b"\x01"))
        c.send(ex.publish_packet("me/echo", ALL_BYTES, qos=1, mid=9))
        got = c.read_packets(2)
        by_type = {p.type: p for p in got}
        self.assertEqual(sorted(by_type), [ex.PUBLISH, ex.PUBACK], got)
        self.assertEqual(by_type[ex.PUBACK].mid, 9)
        m = by_type[ex.PUBLISH]
        self.assertEqual((m.topic, m.qos, m.payload), ("me/echo", 1, ALL_BYTES))
        c.send(ex.ack_packet(ex.PUBACK, m.mid))
        c.send(ex.DISCONNECT_PACKET)
        e.assert_clean_exit(self, e.wait())
        self.assertIsNone(c.read_packet(), "bytes after the last packet on stdout")
        self.assertEqual(c.pending, b"", "stdout carried more than MQTT")
        self.assertIn("connection ended: client disconnected", e.log().lower())

    def test_input_held_by_the_work_budget(self):
        e, c = self.start()
        ex.check_work_budget(self, c)
        c.send(ex.DISCONNECT_PACKET)
        e.assert_clean_exit(self, e.wait())

    def test_end_of_input(self):
        e, c = self.start()
        c.connect("stdio-2")
        e.proc.stdin.close()  # no DISCONNECT: the transport is gone
        e.assert_clean_exit(self, e.wait())
        self.assertIsNone(c.read_packet())

    def test_sigterm(self):
        e, c = self.start()
        c.connect("stdio-3")
        e.assert_clean_exit(self, e.stop())
        self.assertIsNone(c.read_packet())  # MQTT 3.1.1: no DISCONNECT, the stream ends


def children_of(pid):
    """Pids of the live (not zombie) children of pid, from /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(name))
    return out


@unittest.skipUnless(ex.have(ex.SOCAT), "socat not installed")
class BehindSocat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = ex.free_port()
        cmd = [ex.SOCAT, "TCP-LISTEN:%d,bind=%s,fork,reuseaddr" % (cls.port, ex.HOST),
               "EXEC:%s" % ex.EXAMPLE]
        if ex.VALGRIND:
            cmd[-1] = "EXEC:%s %s" % (" ".join(ex.VALGRIND_CMD), ex.EXAMPLE)
        cls.log_file = tempfile.NamedTemporaryFile(prefix="mqttb-socat-", suffix=".log")
        cls.socat = ex.spawn(cmd, stdin=subprocess.DEVNULL, stdout=cls.log_file,
                             stderr=cls.log_file)

        def listening():
            if cls.socat.poll() is not None:
                raise AssertionError("socat exited with %s" % cls.socat.returncode)
            try:
                with open("/proc/net/tcp") as f:
                    return (":%04X 00000000:0000 0A" % cls.port) in f.read()
            except OSError:
                return False
        ex.wait_until(listening, what="socat to listen on port %d" % cls.port)

    @classmethod
    def tearDownClass(cls):
        ex.kill_process(cls.socat)
        cls.log_file.close()

    def log(self):
        with open(self.log_file.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_no_brokers(self):
        try:
            ex.wait_until(lambda: not children_of(self.socat.pid),
                          what="the broker processes to exit")
        except AssertionError as e:
            raise AssertionError("%s; socat and broker log:\n%s" % (e, self.log()))
        if ex.VALGRIND:  # with -q valgrind only speaks of errors
            self.assertNotRegex(self.log(), r"==\d+==", "valgrind found errors")

    def test_paho_client_publishes_to_itself(self):
        c = ex.Client(self.port, client_id=ex.unique("socat"))
        self.addCleanup(c.close)
        self.assertEqual(len(children_of(self.socat.pid)), 1, "one broker process per client")
        c.subscribe("loop/#", 1)
        c.publish("loop/a", b"\x00\x0a\x0d\xff", qos=1, retain=True)
        m = c.get()
        self.assertEqual((m.topic, m.payload, m.qos), ("loop/a", b"\x00\x0a\x0d\xff", 1))
        # A second client at the same time has a broker process of its own: the retained
        # message of the first is not there.
        other = ex.Client(self.port, client_id=ex.unique("socat"))
        self.addCleanup(other.close)
        self.assertEqual(len(children_of(self.socat.pid)), 2)
        other.subscribe("loop/#", 1)
        other.publish("loop/b", b"mine", qos=1)
        self.assertEqual(other.get().payload, b"mine")  # a retained loop/a would come first
        c.disconnect()
        other.disconnect()
        self.wait_no_brokers()

    @unittest.skipUnless(ex.have(ex.MOSQUITTO_PUB), "mosquitto_pub not installed")
    def test_mosquitto_pub_qos2(self):
        r = ex.pub(["-h", ex.HOST, "-p", str(self.port), "-d"], "q2/x", "exactly once", qos=2)
        for packet in ("PUBREC", "PUBCOMP"):
            self.assertIn("received " + packet, r.stdout)
        self.wait_no_brokers()


if __name__ == "__main__":
    ex.main()
