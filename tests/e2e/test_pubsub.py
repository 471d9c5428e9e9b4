#!/usr/bin/python3
"""End-to-end publish/subscribe: QoS 0/1/2 delivery, QoS downgrade, wildcards,
overlapping subscriptions and `$` topics, over MQTT 3.1.1 and MQTT 3.1.

Usage: /usr/bin/python3 tests/e2e/test_pubsub.py build/cli/mqttb
"""
import signal
import sys
import time
import unittest

sys.dont_write_bytecode = True

from e2e_common import (CONNACK, SUBACK, MQTTv31, MQTTv311, BrokerTestCase,  # noqa: E402
                        connect_packet, is_mosquitto, main, publish_packet, subscribe_packet,
                        unique)


class PubSub311(BrokerTestCase):
    PROTOCOL = MQTTv311

    def pair(self):
        sub = self.client(unique("s"), protocol=self.PROTOCOL)
        pub = self.client(unique("p"), protocol=self.PROTOCOL)
        return sub, pub

    def _deliver(self, sub_qos, pub_qos):
        sub, pub = self.pair()
        topic = self.prefix + "q"
        self.assertEqual(sub.subscribe(topic, sub_qos), [sub_qos])
        pub.publish(topic, b"payload-%d-%d" % (sub_qos, pub_qos), pub_qos)
        m = sub.get()
        self.assertEqual(m.topic, topic)
        self.assertEqual(m.payload, b"payload-%d-%d" % (sub_qos, pub_qos))
        self.assertEqual(m.qos, min(sub_qos, pub_qos), "delivered QoS must be min(pub, sub)")
        self.assertFalse(m.retain)
        self.assertFalse(m.dup)
        # Exactly once: nothing else arrives.
        self.assertEqual(sub.drain(0.3), [])

    def test_qos0_delivery(self):
        self._deliver(0, 0)

    def test_qos1_delivery(self):
        self._deliver(1, 1)

    def test_qos2_delivery(self):
        self._deliver(2, 2)

    def test_qos_downgrade_to_subscription(self):
        self._deliver(0, 2)
        self._deliver(1, 2)
        self._deliver(0, 1)

    def test_qos_not_upgraded(self):
        self._deliver(2, 0)
        self._deliver(2, 1)

    def test_granted_qos_list(self):
        sub = self.client(unique("s"), protocol=self.PROTOCOL)
        granted = sub.subscribe([(self.prefix + "a", 0), (self.prefix + "b", 1),
                                 (self.prefix + "c/#", 2)])
        self.assertEqual(granted, [0, 1, 2])

    def test_order_preserved(self):
        for qos in (0, 1, 2):
            sub, pub = self.pair()
            topic = self.prefix + "order%d" % qos
            sub.subscribe(topic, qos)
            n = 30
            for i in range(n):
                pub.publish(topic, b"%d" % i, qos, wait=False)
            got = sub.get_n(n)
            self.assertEqual([m.payload for m in got], [b"%d" % i for i in range(n)],
                             "QoS %d messages out of order" % qos)
            self.assertEqual(sub.drain(0.2), [])

    def test_publisher_receives_own_message(self):
        c = self.client(unique("s"), protocol=self.PROTOCOL)
        topic = self.prefix + "self"
        c.subscribe(topic, 1)
        c.publish(topic, b"me", 1)
        self.assertEqual(c.get().payload, b"me")

    def test_large_payload(self):
        sub, pub = self.pair()
        topic = self.prefix + "big"
        sub.subscribe(topic, 1)
        payload = bytes(range(256)) * 1024  # 256 KiB, every byte value
        pub.publish(topic, payload, 1)
        m = sub.get()
        self.assertEqual(len(m.payload), len(payload))
        self.assertEqual(m.payload, payload)

    def test_empty_payload(self):
        sub, pub = self.pair()
        topic = self.prefix + "empty"
        sub.subscribe(topic, 1)
        pub.publish(topic, b"", 1)
        self.assertEqual(sub.get().payload, b"")

    def test_wildcards(self):
        sub, pub = self.pair()
        p = self.prefix
        sub.subscribe([(p + "w/+/x", 1), (p + "h/#", 1), (p + "+", 1)])
        cases = {
            p + "w/a/x": True,
            p + "w//x": True,       # empty level matches +
            p + "w/a/b/x": False,
            p + "w/a": False,
            p + "h": True,          # parent level matches "h/#"
            p + "h/a": True,
            p + "h/a/b/c": True,
            p + "hh/a": False,
            p + "lvl": True,        # "+" right after the prefix
        }
        for t in cases:
            pub.publish(t, t.encode(), 1)
        # A marker published last: once it arrives, everything before it has.
        marker = p + "h/zz-marker"
        pub.publish(marker, b"end", 1)
        got = []
        while True:
            m = sub.get()
            if m.topic == marker:
                break
            got.append(m.topic)
        self.assertEqual(sorted(got), sorted(t for t, want in cases.items() if want))

    def test_empty_topic_levels(self):
        sub, pub = self.pair()
        p = self.prefix
        sub.subscribe([(p + "t/+", 1), (p + "u/#", 1), (p + "+/v", 1)])
        cases = {
            p + "t/": True,      # "+" matches an empty last level
            p + "t": False,
            p + "t//": False,
            p + "u/": True,
            p + "u//": True,
            p + "/v": True,      # empty level after the prefix
            p + "v": False,
        }
        for t in cases:
            pub.publish(t, b"x", 1)
        marker = p + "u/zz-marker"
        pub.publish(marker, b"end", 1)
        got = []
        while True:
            m = sub.get()
            if m.topic == marker:
                break
            got.append(m.topic)
        self.assertEqual(sorted(got), sorted(t for t, want in cases.items() if want))

    def test_unsubscribe_unknown_filter_acknowledged(self):
        # [MQTT-3.10.4-5]: UNSUBACK even if no subscription was deleted.
        c = self.client(unique("s"), protocol=self.PROTOCOL)
        self.assertEqual(c.unsubscribe(self.prefix + "never/subscribed"), "unsuback")

    def test_unsubscribe(self):
        sub, pub = self.pair()
        topic = self.prefix + "u"
        sub.subscribe(topic, 1)
        pub.publish(topic, b"1", 1)
        self.assertEqual(sub.get().payload, b"1")
        sub.unsubscribe(topic)
        pub.publish(topic, b"2", 1)
        self.assertEqual(sub.drain(0.5), [])

    def test_overlapping_subscriptions_one_copy(self):
        sub, pub = self.pair()
        p = self.prefix
        sub.subscribe([(p + "ov/#", 0), (p + "ov/+/x", 2), (p + "ov/a/x", 1), (p + "+/a/#", 0)])
        pub.publish(p + "ov/a/x", b"once", 2)
        m = sub.get()
        self.assertEqual(m.payload, b"once")
        extra = sub.drain(0.5)
        self.assertEqual(extra, [], "overlapping subscriptions delivered more than one copy")

    @unittest.skipIf(is_mosquitto(), "mosquitto 2.0.11 uses the QoS of the first matching "
                     "subscription in its tree walk, not the maximum")
    def test_overlapping_subscriptions_max_qos(self):
        # MQTT 3.1.1 [MQTT-3.3.5-1]: one copy, at the maximum QoS of all matching subscriptions.
        p = self.prefix
        for subs in ([(p + "ov/#", 0), (p + "ov/+/x", 2), (p + "ov/a/x", 1), (p + "+/a/#", 0)],
                     [(p + "ov/#", 2), (p + "ov/a/x", 0)],
                     [(p + "ov/a/x", 0), (p + "ov/#", 2)],
                     [(p + "ov/a/x", 1), (p + "ov/#", 0)]):
            sub, pub = self.pair()
            sub.subscribe(subs)
            pub.publish(p + "ov/a/x", b"once", 2)
            m = sub.get()
            self.assertEqual(m.qos, max(q for _, q in subs), "subscriptions %r" % (subs,))
            self.assertEqual(sub.drain(0.3), [], "more than one copy for %r" % (subs,))
            sub.close()
            pub.close()

    def test_resubscribe_replaces_qos(self):
        sub, pub = self.pair()
        topic = self.prefix + "rs"
        self.assertEqual(sub.subscribe(topic, 0), [0])
        self.assertEqual(sub.subscribe(topic, 2), [2])
        pub.publish(topic, b"x", 2)
        m = sub.get()
        self.assertEqual(m.qos, 2)
        self.assertEqual(sub.drain(0.3), [], "re-subscribing created a second subscription")

    def test_dollar_topics_not_matched_by_wildcards(self):
        # [MQTT-4.7.2-1]: "#" and "+" at the first level must not match topics starting with "$".
        wild = self.client(unique("w"), protocol=self.PROTOCOL)
        wild.subscribe([("#", 0), ("+/" + self.prefix + "x", 0), ("+", 0)])
        dollar = self.client(unique("d"), protocol=self.PROTOCOL)
        dtopic = "$e2e/" + self.prefix + "x"
        dollar.subscribe([("$e2e/#", 0)])
        pub = self.client(unique("p"), protocol=self.PROTOCOL)
        pub.publish(dtopic, b"dollar", 1)
        pub.publish("$e2e", b"dollar-root", 1)
        normal = "n/" + self.prefix + "x"
        pub.publish(normal, b"normal", 1)
        # The explicit "$e2e/#" subscriber gets both $ messages.
        got = sorted(m.topic for m in dollar.get_n(2))
        self.assertEqual(got, sorted([dtopic, "$e2e"]))
        # The "#" subscriber gets the normal message and (whatever else is
        # retained/published on this broker, but) nothing starting with "$".
        seen = []
        while True:
            m = wild.get()
            seen.append(m.topic)
            if m.topic == normal:
                break
        seen += [m.topic for m in wild.drain(0.5)]
        self.assertEqual([t for t in seen if t.startswith("$")], [],
                         "'#'/'+' matched a topic starting with '$'")

    def test_many_subscribers_fan_out(self):
        topic = self.prefix + "fan"
        subs = [self.client(unique("f"), protocol=self.PROTOCOL) for _ in range(8)]
        for i, s in enumerate(subs):
            s.subscribe(topic, i % 3)
        pub = self.client(unique("p"), protocol=self.PROTOCOL)
        pub.publish(topic, b"fan", 2)
        for i, s in enumerate(subs):
            m = s.get()
            self.assertEqual((m.payload, m.qos), (b"fan", i % 3))

    def test_large_bursts_from_several_publishers(self):
        """Input that piles up while the broker is stopped (more than one
        loop iteration reads before it writes) reaches a subscriber whole
        and in order from each publisher, while a second subscriber that
        never reads is cut off in the middle of it."""
        sub = self.client(unique("s"), protocol=self.PROTOCOL)
        sub.subscribe(self.prefix + "burst/#", 1)
        stuck = self.raw()
        stuck.send(connect_packet(unique("stuck")))
        self.assertEqual(stuck.read_packet().type, CONNACK)
        stuck.send(subscribe_packet(1, [(self.prefix + "burst/#", 0)]))
        self.assertEqual(stuck.read_packet().type, SUBACK)
        npub, nmsg, size = 6, 6, 100000
        pubs, pending = [], []
        for p in range(npub):
            raw = self.raw()
            raw.send(connect_packet(unique("bp")))
            self.assertEqual(raw.read_packet().type, CONNACK)
            raw.sock.setblocking(False)
            pubs.append(raw)
            pending.append(memoryview(b"".join(
                publish_packet(self.prefix + "burst/%d" % p, bytes([p, k]) * (size // 2),
                               qos=k % 2, mid=k + 1) for k in range(nmsg))))

        def push():
            for i, raw in enumerate(pubs):
                try:
                    while len(pending[i]):
                        pending[i] = pending[i][raw.sock.send(pending[i]):]
                except BlockingIOError:
                    pass

        self.broker.proc.send_signal(signal.SIGSTOP)
        try:
            push()  # as much as the sockets hold, all readable at once
        finally:
            self.broker.proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while any(len(b) for b in pending) and time.monotonic() < deadline:
            time.sleep(0.005)
            push()
        stuck.sock.close()
        got = sub.get_n(npub * nmsg, timeout=30)
        for p in range(npub):
            mine = [m.payload for m in got if m.topic == self.prefix + "burst/%d" % p]
            self.assertEqual(mine, [bytes([p, k]) * (size // 2) for k in range(nmsg)],
                             "publisher %d: messages lost, changed or out of order" % p)
        self.assertEqual(sub.drain(0.3), [])
        self.assertBrokerAlive()

    def test_utf8_topic(self):
        sub, pub = self.pair()
        topic = self.prefix + "\u00e9t\u00e9/\u6771\u4eac/\U0001F600"
        sub.subscribe(self.prefix + "+/\u6771\u4eac/#", 1)
        pub.publish(topic, b"u", 1)
        m = sub.get()
        self.assertEqual(m.topic, topic)


class PubSub31(PubSub311):
    """The same over MQTT 3.1 (protocol name MQIsdp, level 3)."""
    PROTOCOL = MQTTv31


class SysTopics(BrokerTestCase):
    """The broker's own $SYS tree (sys_interval 1, understood by both brokers)."""
    CONFIG = ("sys_interval 1",)

    def test_sys_version_is_retained(self):
        c = self.client(unique("v"))
        c.subscribe("$SYS/broker/version", 0)
        m = c.get(3)
        self.assertTrue(m.retain)
        self.assertTrue(m.payload, "empty $SYS/broker/version")

    def test_sys_clients_connected(self):
        c = self.client(unique("n"))
        c.subscribe("$SYS/broker/clients/connected", 0)
        # The retained value may be from the previous interval: within a few
        # intervals it counts this client.
        deadline = time.monotonic() + 4
        values = []
        while not values or int(values[-1]) < 1:
            self.assertLess(time.monotonic(), deadline, "clients/connected values: %r" % values)
            values.append(c.get(max(0.1, deadline - time.monotonic())).payload)

    def test_sys_not_matched_by_wildcards(self):
        wild = self.client(unique("w"))
        wild.subscribe([("#", 0), ("+/broker/#", 0), ("+/+/+", 0)])
        sysc = self.client(unique("s"))
        sysc.subscribe("$SYS/#", 0)
        time.sleep(2.5)  # more than one sys_interval
        self.assertTrue(sysc.drain(0), "no $SYS messages published with sys_interval 1")
        got = [m.topic for m in wild.drain(0) if m.topic.startswith("$")]
        self.assertEqual(got, [], "'#' or '+' matched $SYS topics")

    def test_clients_cannot_publish_to_sys(self):
        sysc = self.client(unique("s"))
        sysc.subscribe("$SYS/#", 0)
        pub = self.client(unique("p"))
        pub.publish("$SYS/broker/version", b"forged", 1, retain=True)
        pub.publish("$SYS/e2e/" + self.prefix, b"forged", 1)
        self.assertEqual([m for m in sysc.drain(1.5) if m.payload == b"forged"], [],
                         "a client's PUBLISH to $SYS was delivered")
        late = self.client(unique("l"))
        late.subscribe("$SYS/broker/version", 0)
        self.assertNotEqual(late.get(3).payload, b"forged")
        # The publisher is still connected and served.
        pub.subscribe(self.prefix + "rt", 1)
        pub.publish(self.prefix + "rt", b"ok", 1)
        self.assertEqual(pub.get().payload, b"ok")


if __name__ == "__main__":
    main()
