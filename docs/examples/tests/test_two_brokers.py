#!/usr/bin/python3
"""docs/examples/two_brokers.c: mosquitto_pub on A to site/... reaches mosquitto_sub on B at
QoS 0, 1 and 2; other topics stay on A; a retained message on A reaches a later subscriber
on B; MQTT 5 properties (user properties, content type, response topic, correlation data,
payload format) survive the hop (paho v5); nothing published on B comes back to A or twice
to B; with --both, each message crosses once each way and nothing loops; input held back by
the work budget is served on both brokers. SIGTERM: exit 0.

"Nothing else arrives" is checked without sleeping: the example runs one thread, so copies
a loop would make are routed before a marker published afterwards, and a subscriber that
gets the marker next has got everything it was going to get.

Usage: /usr/bin/python3 docs/examples/tests/test_two_brokers.py PATH/TO/two_brokers
"""
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import examples_common as ex  # noqa: E402


def start(*extra):
    e = ex.Example(["0", "0"] + list(extra))
    a = int(e.wait_log(r"broker A listening on 127\.0\.0\.1:(\d+)").group(1))
    b = int(e.wait_log(r"broker B listening on 127\.0\.0\.1:(\d+)").group(1))
    e.wait_log(r"forwarding site/#")
    return e, a, b


class Base(unittest.TestCase):
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.example, cls.port_a, cls.port_b = start(*cls.EXTRA)

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
        self.assertTrue(self.example.alive(), self.example.log())
        self.a = ["-h", ex.HOST, "-p", str(self.port_a)]
        self.b = ["-h", ex.HOST, "-p", str(self.port_b)]
        self.site = "site/" + ex.unique("t")

    def client(self, port):
        c = ex.Client5(port)
        self.addCleanup(c.close)
        return c

    def until_marker(self, c, marker):
        """Messages c gets before the marker (a payload), which must come."""
        out = []
        while True:
            m = c.get()
            if m.payload == marker:
                return out
            out.append((m.topic, m.payload))


class OneWay(Base):
    def test_site_messages_reach_b(self):
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = "%s/q%d" % (self.site, qos)
                sub = ex.Sub(self.b, topic, 1, qos=2)
                ex.pub(self.a, topic, "over the bridge", qos=qos)
                rc, msgs = sub.finish()
                self.assertEqual((rc, msgs), (0, [(topic, qos, 0, "over the bridge")]),
                                 sub.output())

    def test_other_topics_stay_on_a(self):
        sub = ex.Sub(self.b, "#", 1, qos=1)
        ex.pub(self.a, "elsewhere/" + self.site, "not forwarded", qos=1)
        ex.pub(self.a, "sites/x", "not forwarded either", qos=1)
        ex.pub(self.a, self.site + "/marker", "marker", qos=1)
        rc, msgs = sub.finish()
        self.assertEqual((rc, msgs), (0, [(self.site + "/marker", 1, 0, "marker")]), sub.output())

    def test_retained_reaches_a_later_subscriber_on_b(self):
        topic = self.site + "/state"
        ex.pub(self.a, topic, "on", qos=1, extra=["-r"])
        sub = ex.Sub(self.b, topic, 1, qos=1, wait_suback=False)
        self.assertEqual(sub.finish(), (0, [(topic, 1, 1, "on")]))
        # An empty retained message on A clears it on B too.
        ex.pub(self.a, topic, None, qos=1, extra=["-r"])
        sub = ex.Sub(self.b, topic, 1, qos=1)  # a retained message would come first
        ex.pub(self.b, topic, "after subscribing", qos=1)
        rc, msgs = sub.finish()
        self.assertEqual((rc, msgs), (0, [(topic, 1, 0, "after subscribing")]), sub.output())

    def test_mqtt5_properties_survive(self):
        on_b = self.client(self.port_b)
        on_b.subscribe(self.site + "/#", 2)
        on_a = self.client(self.port_a)
        props = ex.props_publish(UserProperty=[("origin", "A"), ("unit", "°C")],
                                 ContentType="text/plain", ResponseTopic=self.site + "/reply",
                                 CorrelationData=b"\x01\x02", PayloadFormatIndicator=1,
                                 MessageExpiryInterval=3600)
        on_a.publish(self.site + "/temp", "21.5".encode(), qos=2, props=props)
        m = on_b.get()
        self.assertEqual((m.topic, m.payload, m.qos, m.retain),
                         (self.site + "/temp", b"21.5", 2, False))
        p = m.properties
        self.assertEqual(p.UserProperty, [("origin", "A"), ("unit", "°C")])
        self.assertEqual((p.ContentType, p.ResponseTopic, p.CorrelationData,
                          p.PayloadFormatIndicator),
                         ("text/plain", self.site + "/reply", b"\x01\x02", 1))
        self.assertTrue(3590 <= p.MessageExpiryInterval <= 3600, p.MessageExpiryInterval)

    def test_input_held_by_the_work_budget(self):
        for port in (self.port_a, self.port_b):
            c = ex.RawTcp(port)
            self.addCleanup(c.close)
            ex.check_work_budget(self, c)

    def test_no_way_back(self):
        on_a = self.client(self.port_a)
        on_a.subscribe("#", 1)
        on_b = self.client(self.port_b)
        on_b.subscribe("#", 1)
        on_b.publish(self.site + "/from-b", b"stays on B", qos=1)
        on_a.publish(self.site + "/marker", b"marker", qos=1)
        self.assertEqual(self.until_marker(on_a, b"marker"), [])
        self.assertEqual(self.until_marker(on_b, b"marker"), [(self.site + "/from-b", b"stays on B")])


class BothWays(Base):
    EXTRA = ("--both",)

    def test_each_message_crosses_once(self):
        on_a = self.client(self.port_a)
        on_a.subscribe("site/#", 1)
        on_b = self.client(self.port_b)
        on_b.subscribe("site/#", 1)
        on_a.publish(self.site + "/from-a", b"1", qos=1)
        on_b.publish(self.site + "/from-b", b"2", qos=1)
        on_a.publish(self.site + "/marker", b"marker", qos=1)
        expected = [(self.site + "/from-a", b"1"), (self.site + "/from-b", b"2")]
        self.assertEqual(self.until_marker(on_a, b"marker"), expected)
        self.assertEqual(self.until_marker(on_b, b"marker"), expected)
        self.assertNotIn("not forwarded", self.example.log())


if __name__ == "__main__":
    ex.require(ex.MOSQUITTO_PUB, ex.MOSQUITTO_SUB)
    ex.main()
