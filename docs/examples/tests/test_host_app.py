#!/usr/bin/python3
"""docs/examples/host_app.c: the application's own readings reach mosquitto_sub as retained
messages; commands/interval changes how often they come (and a bad value changes nothing);
commands/echo answers an MQTT 5 request (paho) on its response topic with its correlation
data; input held back by the work budget is served; SIGTERM: exit 0.

Usage: /usr/bin/python3 docs/examples/tests/test_host_app.py PATH/TO/host_app
"""
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import examples_common as ex  # noqa: E402

SLOW = 20000  # ms between readings at start: none comes by itself during a test


class HostApp(unittest.TestCase):
    def setUp(self):
        self.example = ex.Example(["0", str(SLOW)])
        self.addCleanup(self.example.close)
        m = self.example.wait_log(r"listening on 127\.0\.0\.1:(\d+)")
        self.port = int(m.group(1))
        self.conn = ["-h", ex.HOST, "-p", str(self.port)]

    def stop(self):
        self.example.assert_clean_exit(self, self.example.stop())

    def test_readings_are_retained(self):
        sub = ex.Sub(self.conn, "readings/#", 4, qos=1, wait_suback=False)
        rc, msgs = sub.finish()
        self.assertEqual(rc, 0, sub.output())
        got = {t: (q, r, p) for t, q, r, p in msgs}
        self.assertEqual(sorted(got), ["readings/clients", "readings/counter",
                                       "readings/interval", "readings/uptime"])
        self.assertEqual(got["readings/counter"], (0, 1, "1"))
        self.assertEqual(got["readings/interval"], (0, 1, str(SLOW)))
        self.assertEqual(got["readings/clients"], (0, 1, "0"))  # published before anyone came
        self.assertGreaterEqual(float(got["readings/uptime"][2]), 0.0)
        self.stop()

    def test_interval_command(self):
        c = ex.Client(self.port, client_id=ex.unique("ha"))
        self.addCleanup(c.close)
        c.subscribe([("readings/counter", 0), ("readings/interval", 0)])
        first = {m.topic: m.payload for m in c.get_n(2)}
        self.assertEqual(first, {"readings/counter": b"1", "readings/interval": str(SLOW).encode()})

        # Not a period: ignored, and said so.
        ex.pub(self.conn, "commands/interval", "soon", qos=1)
        self.example.wait_log(r"commands/interval: not a period in ms: 'soon'")

        started = time.monotonic()
        ex.pub(self.conn, "commands/interval", "100", qos=1)
        m = c.get()
        self.assertEqual((m.topic, m.payload, m.retain), ("readings/interval", b"100", False))
        counters = []
        while len(counters) < 5:
            m = c.get(timeout=ex.TIMEOUT)
            if m.topic == "readings/counter":
                counters.append(int(m.payload))
        elapsed = time.monotonic() - started
        self.assertEqual(counters, list(range(2, 7)))
        # Five readings at 100 ms; at the old period the first would take 20 s.
        self.assertLess(elapsed, 5.0 * ex.SCALE)
        self.stop()

    def test_input_held_by_the_work_budget(self):
        c = ex.RawTcp(self.port)
        self.addCleanup(c.close)
        ex.check_work_budget(self, c)
        c.close()
        self.stop()

    def test_echo_request_response(self):
        c = ex.Client5(self.port)
        self.addCleanup(c.close)
        reply_to = "replies/" + c.client_id
        c.subscribe(reply_to, 1)
        corr = b"\x00\x01request-42\xff"
        c.publish("commands/echo", b"ping \x00 pong", qos=1,
                  props=ex.props_publish(ResponseTopic=reply_to, CorrelationData=corr))
        m = c.get()
        self.assertEqual((m.topic, m.payload, m.qos), (reply_to, b"ping \x00 pong", 1))
        self.assertEqual(getattr(m.properties, "CorrelationData", None), corr)
        # Without a response topic there is nobody to answer.
        c.publish("commands/echo", b"lost", qos=1)
        self.example.wait_log(r"commands/echo without a response topic")
        self.stop()


if __name__ == "__main__":
    ex.require(ex.MOSQUITTO_PUB, ex.MOSQUITTO_SUB)
    ex.main()
