#!/usr/bin/python3
"""docs/examples/unix_socket.c: `mosquitto_sub --unix` / `mosquitto_pub --unix` round trips,
the socket file's mode, a stale socket file replaced at start, a live one or a regular file
left alone (exit 1), input held back by the work budget served, and the socket file removed
at exit (SIGTERM, exit 0).

Usage: /usr/bin/python3 docs/examples/tests/test_unix_socket.py PATH/TO/unix_socket
"""
import os
import shutil
import socket
import stat
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import examples_common as ex  # noqa: E402


class UnixSocket(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mqttb-unix-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "broker.sock")
        self.conn = ["--unix", self.path]

    def start(self, *args):
        e = ex.Example([self.path] + list(args))
        self.addCleanup(e.close)
        e.wait_log(r"listening on ")
        return e

    def stop(self, e):
        e.assert_clean_exit(self, e.stop())
        self.assertFalse(os.path.lexists(self.path), "socket file left behind")

    def round_trip(self, tag):
        topic = "unix/" + ex.unique(tag)
        sub = ex.Sub(self.conn, topic, 2, qos=1)
        ex.pub(self.conn, topic, "one", qos=1)
        ex.pub(self.conn, topic, "two", qos=2)
        rc, msgs = sub.finish()
        self.assertEqual((rc, msgs), (0, [(topic, 1, 0, "one"), (topic, 1, 0, "two")]),
                         sub.output())

    def test_round_trip_and_removed_at_exit(self):
        e = self.start()
        st = os.lstat(self.path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, "default mode")
        self.round_trip("rt")
        # A retained message, to a later subscriber.
        topic = "unix/" + ex.unique("ret")
        ex.pub(self.conn, topic, "kept", qos=1, extra=["-r"])
        sub = ex.Sub(self.conn, topic, 1, qos=1, wait_suback=False)
        self.assertEqual(sub.finish(), (0, [(topic, 1, 1, "kept")]))
        self.stop(e)

    def test_input_held_by_the_work_budget(self):
        e = self.start()
        c = ex.RawUnix(self.path)
        self.addCleanup(c.close)
        ex.check_work_budget(self, c)
        c.close()
        self.stop(e)

    def test_mode_argument(self):
        e = self.start("0660")
        self.assertEqual(stat.S_IMODE(os.lstat(self.path).st_mode), 0o660)
        self.stop(e)

    def test_stale_socket_is_replaced(self):
        # What a crashed broker leaves: a socket file nobody listens on.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        s.close()
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.path).st_mode))
        e = self.start()
        self.assertIn("removing the stale socket", e.log())
        self.round_trip("stale")
        self.stop(e)

    def test_live_socket_is_left_alone(self):
        first = self.start()
        second = ex.Example([self.path])
        self.addCleanup(second.close)
        self.assertEqual(second.wait(), 1, second.log())
        self.assertIn("listening on %s already" % self.path, second.log())
        self.round_trip("live")  # the first still serves
        self.stop(first)

    def test_regular_file_is_left_alone(self):
        with open(self.path, "w") as f:
            f.write("not a socket\n")
        e = ex.Example([self.path])
        self.addCleanup(e.close)
        self.assertEqual(e.wait(), 1, e.log())
        with open(self.path) as f:
            self.assertEqual(f.read(), "not a socket\n")


if __name__ == "__main__":
    ex.require(ex.MOSQUITTO_PUB, ex.MOSQUITTO_SUB)
    ex.main()
