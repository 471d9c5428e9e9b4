#!/usr/bin/python3
"""End-to-end wills (last-will messages) over MQTT 3.1.1 and MQTT 3.1: published
on an abrupt socket close, on keep-alive timeout, on a protocol error and on
session takeover; not after DISCONNECT; retained wills; will QoS.

Usage: /usr/bin/python3 tests/e2e/test_will.py build/cli/mqttb
"""
import sys
import time

sys.dont_write_bytecode = True

from e2e_common import (MQTTv31, MQTTv311, BrokerTestCase, DISCONNECT_PACKET,  # noqa: E402
                        PINGREQ_PACKET, PINGRESP, connect_packet, is_mosquitto, main, unique)


class Will311(BrokerTestCase):
    PROTOCOL = MQTTv311
    LEVEL = 4

    def watcher(self, filt, qos=2):
        w = self.client(unique("w"), protocol=self.PROTOCOL)
        w.subscribe(filt, qos)
        return w

    def will_client(self, will, keepalive=60, client_id=None, clean=True):
        r = self.raw()
        r.connect(client_id or unique("wc"), will=will, keepalive=keepalive, level=self.LEVEL,
                  clean=clean)
        return r

    def test_will_on_abrupt_close(self):
        for qos in (0, 1, 2):
            topic = self.prefix + "abrupt%d" % qos
            w = self.watcher(topic)
            r = self.will_client((topic, b"gone %d" % qos, qos, False))
            r.close()  # no DISCONNECT
            m = w.get()
            self.assertEqual((m.topic, m.payload, m.qos, m.retain),
                             (topic, b"gone %d" % qos, qos, False))
            self.assertEqual(w.drain(0.2), [])

    def test_will_via_paho_abrupt_close(self):
        topic = self.prefix + "paho"
        w = self.watcher(topic)
        c = self.client(unique("pw"), protocol=self.PROTOCOL, will=(topic, b"paho will", 1, False))
        c.kill()
        m = w.get()
        self.assertEqual((m.payload, m.qos), (b"paho will", 1))

    def test_will_qos_downgraded_to_subscription(self):
        topic = self.prefix + "down"
        w = self.watcher(topic, qos=1)
        r = self.will_client((topic, b"w", 2, False))
        r.close()
        self.assertEqual(w.get().qos, 1)

    def test_empty_will_payload(self):
        topic = self.prefix + "empty"
        w = self.watcher(topic)
        r = self.will_client((topic, b"", 1, False))
        r.close()
        m = w.get()
        self.assertEqual((m.topic, m.payload), (topic, b""))

    def test_will_on_keepalive_timeout(self):
        topic = self.prefix + "ka"
        w = self.watcher(topic)
        r = self.will_client((topic, b"timed out", 1, False), keepalive=1)
        start = time.monotonic()
        # Send nothing: the broker must close the connection after 1.5 x keep-alive.
        # (Mosquitto 2.0 only checks keep-alives every few seconds: allow it more.)
        limit = 10.0 if is_mosquitto() else 3.5
        self.assertTrue(r.wait_closed(limit + 1), "connection not closed after keep-alive expired")
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 1.0, "closed before the keep-alive period expired")
        self.assertLess(elapsed, limit)
        m = w.get(3)
        self.assertEqual((m.payload, m.qos), (b"timed out", 1))

    def test_pingreq_keeps_connection_alive(self):
        topic = self.prefix + "ping"
        w = self.watcher(topic)
        r = self.will_client((topic, b"should not", 1, False), keepalive=1)
        for _ in range(5):  # 2.5 s, well beyond 1.5 x keep-alive
            time.sleep(0.5)
            r.send(PINGREQ_PACKET)
            self.assertEqual(r.expect(PINGRESP).type, PINGRESP)
        self.assertEqual(w.drain(0.1), [])
        r.send(DISCONNECT_PACKET)
        self.assertTrue(r.wait_closed())
        self.assertEqual(w.drain(0.5), [])

    def test_no_will_after_disconnect(self):
        topic = self.prefix + "clean"
        w = self.watcher(topic)
        r = self.will_client((topic, b"must not appear", 1, False))
        r.send(DISCONNECT_PACKET)
        self.assertTrue(r.wait_closed(), "broker did not close the connection after DISCONNECT")
        r.close()
        c = self.client(unique("pw"), protocol=self.PROTOCOL, will=(topic, b"paho: must not", 1))
        c.disconnect()
        self.assertEqual(w.drain(1.0), [], "will published after DISCONNECT")

    def test_retained_will(self):
        topic = self.prefix + "ret"
        w = self.watcher(topic)
        r = self.will_client((topic, b"retained will", 1, True))
        r.close()
        m = w.get()
        self.assertEqual(m.payload, b"retained will")
        self.assertFalse(m.retain, "live subscriber must get RETAIN=0")
        late = self.client(unique("l"), protocol=self.PROTOCOL)
        late.subscribe(topic, 1)
        m = late.get()
        self.assertEqual((m.payload, m.qos, m.retain), (b"retained will", 1, True))

    def test_will_on_protocol_error(self):
        topic = self.prefix + "perr"
        w = self.watcher(topic)
        r = self.will_client((topic, b"protocol error", 0, False))
        r.send(b"\x00\x00")  # packet type 0 is reserved
        self.assertTrue(r.wait_closed(), "broker did not close after a reserved packet type")
        self.assertEqual(w.get().payload, b"protocol error")

    def test_will_on_session_takeover(self):
        # The old connection is closed by the server without DISCONNECT.
        topic = self.prefix + "take"
        w = self.watcher(topic)
        cid = unique("tk")
        old = self.will_client((topic, b"taken over", 1, False), client_id=cid)
        new = self.raw()
        new.connect(cid, level=self.LEVEL)
        self.assertTrue(old.wait_closed(), "old connection not closed on takeover")
        self.assertEqual(w.get().payload, b"taken over")

    def test_will_not_sent_for_refused_connect(self):
        topic = self.prefix + "refused"
        w = self.watcher(topic)
        r = self.raw()
        r.send(connect_packet(
            unique("rf"), will=(topic, b"x", 0, False), level=42))
        self.assertTrue(r.wait_closed())
        self.assertEqual(w.drain(0.5), [])

    def test_will_topic_delivered_to_wildcard(self):
        topic = self.prefix + "a/b/c"
        w = self.watcher(self.prefix + "+/b/#", qos=1)
        r = self.will_client((topic, b"wild", 1, False))
        r.close()
        m = w.get()
        self.assertEqual((m.topic, m.payload), (topic, b"wild"))


class Will31(Will311):
    PROTOCOL = MQTTv31
    LEVEL = 3


if __name__ == "__main__":
    main()
