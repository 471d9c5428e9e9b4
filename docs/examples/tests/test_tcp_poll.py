#!/usr/bin/python3
"""docs/examples/tcp_poll.c: mosquitto_sub/mosquitto_pub round trips at QoS 0, 1 and 2, a
retained message, a paho client's will when it drops, a reader with a tiny receive buffer
(partial writes), input held back by the work budget, and SIGTERM: exit 0 after the rest of
the clients' tests, MQTT 5 clients told DISCONNECT 0x8B.

Usage: /usr/bin/python3 docs/examples/tests/test_tcp_poll.py PATH/TO/tcp_poll
"""
import os
import struct
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import examples_common as ex  # noqa: E402


def start():
    e = ex.Example(["0"])
    port = int(e.wait_log(r"listening on 127\.0\.0\.1:(\d+)").group(1))
    return e, port


class TcpPoll(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.example, cls.port = start()

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.example.stop()
            if rc != 0:
                raise AssertionError("exit status %s after SIGTERM (99: valgrind errors); log:\n%s"
                                     % (rc, cls.example.log()))
        finally:
            cls.example.close()

    def setUp(self):
        self.assertTrue(self.example.alive(), "example died:\n" + self.example.log())
        self.conn = ["-h", ex.HOST, "-p", str(self.port)]
        self.prefix = ex.unique("tcp") + "/"

    def test_qos_round_trip(self):
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = self.prefix + "q%d" % qos
                sub = ex.Sub(self.conn, topic, 2, qos=qos)
                ex.pub(self.conn, topic, "first at %d" % qos, qos=qos)
                ex.pub(self.conn, topic, "second at %d" % qos, qos=qos)
                rc, msgs = sub.finish()
                self.assertEqual(rc, 0, sub.output())
                self.assertEqual(msgs, [(topic, qos, 0, "first at %d" % qos),
                                        (topic, qos, 0, "second at %d" % qos)])

    def test_retained(self):
        topic = self.prefix + "kept"
        ex.pub(self.conn, topic, "the value", qos=1, extra=["-r"])
        sub = ex.Sub(self.conn, topic, 1, qos=1, wait_suback=False)
        rc, msgs = sub.finish()
        self.assertEqual((rc, msgs), (0, [(topic, 1, 1, "the value")]), sub.output())

    def test_will_when_a_client_drops(self):
        topic = self.prefix + "will"
        watcher = ex.Client(self.port, client_id=ex.unique("w"))
        self.addCleanup(watcher.close)
        watcher.subscribe(topic, 1)
        dropper = ex.Client(self.port, client_id=ex.unique("d"), will=(topic, b"gone", 1, False))
        self.addCleanup(dropper.close)
        dropper.kill()  # the TCP connection closes without DISCONNECT
        m = watcher.get()
        self.assertEqual((m.topic, m.payload, m.qos), (topic, b"gone", 1))

    def test_partial_writes(self):
        """A 6 MiB message to a subscriber with a 4 KiB receive buffer that does not read yet:
        more than any socket send buffer takes (Linux caps it at tcp_wmem's 4 MiB), so the
        broker's writes are short and the rest waits for POLLOUT. Every byte arrives."""
        topic = self.prefix + "bulk"
        slow = ex.RawTcp(self.port, rcvbuf=4096)
        self.addCleanup(slow.close)
        slow.connect(ex.unique("slow"))
        slow.send(ex.subscribe_packet(1, [(topic, 0)]))
        slow.expect(ex.SUBACK)
        publisher = ex.RawTcp(self.port)
        self.addCleanup(publisher.close)
        publisher.connect(ex.unique("fast"))
        big = os.urandom(6 << 20)
        publisher.send(ex.publish_packet(topic, big) + ex.PINGREQ_PACKET)
        publisher.expect(ex.PINGRESP, timeout=ex.TIMEOUT * 2)  # the broker has read it all
        p = slow.expect(ex.PUBLISH, timeout=ex.TIMEOUT * 2)
        self.assertTrue(p.payload == big, "the 6 MiB payload arrived changed (%d bytes)"
                        % len(p.payload))
        publisher.send(ex.publish_packet(topic, b"after"))  # the connection still works
        self.assertEqual(slow.expect(ex.PUBLISH).payload, b"after")

    def test_input_held_by_the_work_budget(self):
        c = ex.RawTcp(self.port)
        self.addCleanup(c.close)
        ex.check_work_budget(self, c)


class Shutdown(unittest.TestCase):
    def test_sigterm(self):
        e, port = start()
        self.addCleanup(e.close)
        # An MQTT 5 client, connected when the signal comes.
        v5 = ex.RawClient(port)
        self.addCleanup(v5.close)
        props = b"\x00"  # no CONNECT properties
        body = ex.enc_str("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 60) + props + \
            ex.enc_str(ex.unique("v5"))
        v5.send(ex.packet(ex.CONNECT, 0, body))
        self.assertEqual(v5.expect(ex.CONNACK).body[1], 0)
        rc = e.stop()
        e.assert_clean_exit(self, rc)
        p = v5.read_packet()
        self.assertIsNotNone(p, "connection closed without DISCONNECT")
        self.assertEqual((p.type, p.body[:1]), (ex.DISCONNECT, b"\x8b"))
        self.assertTrue(v5.wait_closed(ex.TIMEOUT))


if __name__ == "__main__":
    ex.require(ex.MOSQUITTO_PUB, ex.MOSQUITTO_SUB)
    ex.main()
