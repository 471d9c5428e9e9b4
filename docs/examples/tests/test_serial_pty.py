#!/usr/bin/python3
"""docs/examples/serial_pty.c over a pseudo-terminal pair made with os.openpty(): the
example opens the slave, this test speaks raw MQTT on the master. The line is left in the
pty's default (cooked) mode: only the example's raw mode keeps bytes such as 0x0a, 0x0d,
0x03, 0x04, 0x11, 0x13 and 0x7f intact.

Session 1 (clean session 0): CONNECT, SUBSCRIBE, a QoS 1 PUBLISH of all 256 byte values to
itself received back unchanged, DISCONNECT. Session 2 on the same line, after line noise
(including a false 0x10): CONNACK with session present, and the subscription of session 1
still delivers. Its DISCONNECT and session 3's CONNECT arrive in one write: session 3 gets
its CONNACK. SIGTERM: exit 0, and the tty's settings are restored. A burst of 8,000 packets
in one write. A protocol violation in a session closes it; the next CONNECT is served.

Usage: /usr/bin/python3 docs/examples/tests/test_serial_pty.py PATH/TO/serial_pty
"""
import os
import sys
import termios
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import examples_common as ex  # noqa: E402

ALL_BYTES = bytes(range(256))
NOISE = b"\x00\xff\x0a\x0d\x10\x02\xff\xff\x03\x04"  # a false CONNECT start among it


class SerialPty(unittest.TestCase):
    def setUp(self):
        self.master, slave = os.openpty()
        self.addCleanup(os.close, self.master)
        self.path = os.ttyname(slave)
        self.cooked = termios.tcgetattr(slave)
        self.assertTrue(self.cooked[3] & termios.ICANON and self.cooked[1] & termios.OPOST)
        self.example = ex.Example([self.path])
        self.addCleanup(self.example.close)
        # Ours is closed only once the example has the line open: a pty whose slave side
        # nobody holds open reads EIO on the master.
        self.example.wait_log(r"serving .* in raw mode")
        os.close(slave)
        self.line = ex.FdClient(self.master)

    def session(self, client_id, expect_present, prefix=b""):
        self.line.send(prefix + ex.connect_packet(client_id, clean=False))
        p = self.line.expect(ex.CONNACK)
        self.assertEqual((p.body[0] & 1, p.body[1]), (int(expect_present), 0))

    def publish_and_receive(self, topic, payload, mid):
        self.line.send(ex.publish_packet(topic, payload, qos=1, mid=mid))
        got = {p.type: p for p in self.line.read_packets(2)}
        self.assertEqual(sorted(got), [ex.PUBLISH, ex.PUBACK])
        self.assertEqual(got[ex.PUBACK].mid, mid)
        m = got[ex.PUBLISH]
        self.assertEqual((m.topic, m.qos), (topic, 1))
        self.assertTrue(m.payload == payload, "payload changed on the line: %r" % m.payload)
        self.line.send(ex.ack_packet(ex.PUBACK, m.mid))

    def test_sessions_on_one_line(self):
        # Session 1: a persistent session subscribes and talks to itself.
        self.session("device-1", expect_present=False)
        self.line.send(ex.subscribe_packet(1, [("sensor/#", 1)]))
        self.assertEqual(self.line.expect(ex.SUBACK).body[2:], b"\x01")
        self.publish_and_receive("sensor/raw", ALL_BYTES, mid=2)
        self.line.send(ex.DISCONNECT_PACKET)
        self.example.wait_log(r"session 1 ended: client disconnected")

        # Session 2, after noise: the same session is there, with its subscription.
        self.session("device-1", expect_present=True, prefix=NOISE)
        self.example.wait_log(r"skipped \d+ byte\(s\) of line noise")
        self.publish_and_receive("sensor/lines", b"line one\nline two\r\n\x0a\x0a", mid=3)

        # Its DISCONNECT and the next CONNECT in one write: bytes after a DISCONNECT are
        # the next session's, not lost.
        self.line.send(ex.DISCONNECT_PACKET + ex.connect_packet("device-2"))
        p = self.line.expect(ex.CONNACK)
        self.assertEqual((p.body[0] & 1, p.body[1]), (0, 0))
        self.line.send(ex.PINGREQ_PACKET)
        self.line.expect(ex.PINGRESP)
        self.example.wait_log(r"session 3 started")

        # SIGTERM: a clean exit, and the line's settings as they were.
        self.example.assert_clean_exit(self, self.example.stop())
        fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
        try:
            self.assertEqual(termios.tcgetattr(fd), self.cooked, "tty settings not restored")
        finally:
            os.close(fd)

    def test_burst(self):
        """8,000 PINGREQs in one write: more than the line buffer and the work budget."""
        ex.check_work_budget(self, self.line)
        self.line.send(ex.DISCONNECT_PACKET)
        self.example.wait_log(r"session 1 ended: client disconnected")
        self.example.assert_clean_exit(self, self.example.stop())

    def test_garbage_in_a_session_closes_it_and_the_next_connect_works(self):
        self.session("device-3", expect_present=False)
        self.line.send(b"\xf0\x00")  # reserved packet type: a protocol violation
        self.example.wait_log(r"session 1 ended")
        self.session("device-3", expect_present=True)
        self.line.send(ex.DISCONNECT_PACKET)
        self.example.wait_log(r"session 2 ended: client disconnected")
        self.example.assert_clean_exit(self, self.example.stop())


if __name__ == "__main__":
    ex.main()
