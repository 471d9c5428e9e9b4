#!/usr/bin/python3
"""End-to-end retained messages over MQTT 3.1.1 and MQTT 3.1: stored, sent
with the retain flag to new subscribers (also through wildcards), replaced,
cleared by an empty retained publish; plus `retain_available false` (mqttb).

Usage: /usr/bin/python3 tests/e2e/test_retain.py build/cli/mqttb
"""
import sys

sys.dont_write_bytecode = True

from e2e_common import MQTTv31, MQTTv311, BrokerTestCase, main, unique  # noqa: E402


class Retain311(BrokerTestCase):
    PROTOCOL = MQTTv311

    def cl(self):
        return self.client(unique("r"), protocol=self.PROTOCOL)

    def test_retained_sent_to_new_subscriber(self):
        pub = self.cl()
        topic = self.prefix + "r"
        pub.publish(topic, b"kept", 1, retain=True)
        sub = self.cl()
        sub.subscribe(topic, 1)
        m = sub.get()
        self.assertEqual((m.topic, m.payload, m.qos), (topic, b"kept", 1))
        self.assertTrue(m.retain, "retained message sent on SUBSCRIBE must have RETAIN=1")
        self.assertEqual(sub.drain(0.3), [])

    def test_retained_qos0_is_stored(self):
        pub = self.cl()
        topic = self.prefix + "r0"
        pub.publish(topic, b"zero", 0, retain=True)
        round_trip_marker = self.prefix + "marker"
        # Make sure the QoS 0 publish has been processed before subscribing.
        pub.subscribe(round_trip_marker, 1)
        pub.publish(round_trip_marker, b"m", 1)
        pub.get()
        sub = self.cl()
        sub.subscribe(topic, 2)
        m = sub.get()
        self.assertEqual((m.payload, m.qos, m.retain), (b"zero", 0, True))

    def test_retained_qos_is_min_of_message_and_subscription(self):
        pub = self.cl()
        p = self.prefix
        pub.publish(p + "q2", b"two", 2, retain=True)
        pub.publish(p + "q1", b"one", 1, retain=True)
        for sub_qos in (0, 1, 2):
            sub = self.cl()
            sub.subscribe([(p + "q2", sub_qos), (p + "q1", sub_qos)])
            got = {m.payload: m for m in sub.get_n(2)}
            self.assertEqual(got[b"two"].qos, min(2, sub_qos))
            self.assertEqual(got[b"one"].qos, min(1, sub_qos))
            self.assertTrue(got[b"two"].retain and got[b"one"].retain)
            sub.close()

    def test_live_subscriber_gets_retain_flag_cleared(self):
        # [MQTT-3.3.1-9]: a message sent because of an existing subscription has RETAIN=0.
        sub = self.cl()
        topic = self.prefix + "live"
        sub.subscribe(topic, 1)
        pub = self.cl()
        pub.publish(topic, b"now", 1, retain=True)
        m = sub.get()
        self.assertEqual(m.payload, b"now")
        self.assertFalse(m.retain)

    def test_retained_through_wildcards(self):
        pub = self.cl()
        p = self.prefix
        topics = [p + "a/t", p + "b/t", p + "a/u", p + "a/t/deep"]
        for t in topics:
            pub.publish(t, t.encode(), 1, retain=True)
        for filt, want in ((p + "+/t", [p + "a/t", p + "b/t"]),
                           (p + "a/#", [p + "a/t", p + "a/u", p + "a/t/deep"]),
                           (p + "#", topics),
                           (p + "+/+/+", [p + "a/t/deep"]),
                           (p + "c/#", [])):
            sub = self.cl()
            sub.subscribe(filt, 1)
            got = sub.get_n(len(want)) if want else []
            got += sub.drain(0.3)
            self.assertEqual(sorted(m.topic for m in got), sorted(want), "filter %r" % filt)
            for m in got:
                self.assertTrue(m.retain, "filter %r: %r without RETAIN" % (filt, m))
                self.assertEqual(m.payload, m.topic.encode())
            sub.close()

    def test_retained_replaced(self):
        pub = self.cl()
        topic = self.prefix + "rep"
        pub.publish(topic, b"old", 1, retain=True)
        pub.publish(topic, b"new", 1, retain=True)
        sub = self.cl()
        sub.subscribe(topic, 1)
        self.assertEqual(sub.get().payload, b"new")
        self.assertEqual(sub.drain(0.3), [])

    def test_non_retained_publish_keeps_retained(self):
        pub = self.cl()
        topic = self.prefix + "keep"
        pub.publish(topic, b"kept", 1, retain=True)
        pub.publish(topic, b"transient", 1, retain=False)
        sub = self.cl()
        sub.subscribe(topic, 1)
        m = sub.get()
        self.assertEqual((m.payload, m.retain), (b"kept", True))
        self.assertEqual(sub.drain(0.3), [])

    def test_empty_retained_publish_clears(self):
        pub = self.cl()
        live = self.cl()
        topic = self.prefix + "clr"
        pub.publish(topic, b"soon gone", 1, retain=True)
        live.subscribe(topic, 1)
        self.assertEqual(live.get().payload, b"soon gone")
        pub.publish(topic, b"", 1, retain=True)
        # The zero-byte retained message is still forwarded to current subscribers.
        m = live.get()
        self.assertEqual((m.payload, m.retain), (b"", False))
        sub = self.cl()
        sub.subscribe(topic, 1)
        sub.subscribe(self.prefix + "#", 1)
        self.assertEqual(sub.drain(0.5), [], "retained message not cleared")

    def test_clear_then_set_again(self):
        pub = self.cl()
        topic = self.prefix + "again"
        pub.publish(topic, b"1", 1, retain=True)
        pub.publish(topic, b"", 1, retain=True)
        pub.publish(topic, b"2", 1, retain=True)
        sub = self.cl()
        sub.subscribe(topic, 1)
        self.assertEqual(sub.get().payload, b"2")
        self.assertEqual(sub.drain(0.3), [])

    def test_resubscribe_resends_retained(self):
        # [MQTT-3.8.4-3]: a repeated SUBSCRIBE re-sends matching retained messages.
        pub = self.cl()
        topic = self.prefix + "resub"
        pub.publish(topic, b"r", 1, retain=True)
        sub = self.cl()
        sub.subscribe(topic, 1)
        self.assertTrue(sub.get().retain)
        sub.subscribe(topic, 1)
        m = sub.get()
        self.assertEqual((m.payload, m.retain), (b"r", True))

    def test_retained_between_protocol_versions(self):
        other = MQTTv31 if self.PROTOCOL == MQTTv311 else MQTTv311
        pub = self.client(unique("o"), protocol=other)
        topic = self.prefix + "x"
        pub.publish(topic, b"cross", 2, retain=True)
        sub = self.cl()
        sub.subscribe(topic, 2)
        m = sub.get()
        self.assertEqual((m.payload, m.qos, m.retain), (b"cross", 2, True))


class Retain31(Retain311):
    PROTOCOL = MQTTv31


class RetainUnavailable(BrokerTestCase):
    """mqttb with `retain_available false` accepts retained publishes, forwards them
    and does not store them. (Mosquitto 2 instead disconnects a v3 client that
    publishes with RETAIN=1, so this class is mqttb-only.)"""
    MQTTB_ONLY = True
    MQTTB_CONFIG = ("retain_available false",)

    def test_retained_not_stored_but_forwarded(self):
        live = self.client(unique("l"))
        topic = self.prefix + "nr"
        live.subscribe(topic, 1)
        pub = self.client(unique("p"))
        pub.publish(topic, b"not kept", 1, retain=True)
        m = live.get()
        self.assertEqual((m.payload, m.retain), (b"not kept", False))
        self.assertTrue(pub.is_connected())
        sub = self.client(unique("s"))
        sub.subscribe(topic, 1)
        self.assertEqual(sub.drain(0.5), [])


if __name__ == "__main__":
    main()
