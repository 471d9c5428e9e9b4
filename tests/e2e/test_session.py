#!/usr/bin/python3
"""End-to-end sessions over MQTT 3.1.1 and MQTT 3.1: persistent sessions
(clean_session=False: subscriptions survive, QoS 1/2 messages published while
offline are delivered on return, session_present), unacknowledged messages re-sent
on reconnect, exactly-once for incoming QoS 2, session takeover, client
identifier rules, and the queue/in-flight limits from the config file.

Usage: /usr/bin/python3 tests/e2e/test_session.py build/cli/mqttb
"""
import sys

sys.dont_write_bytecode = True

from e2e_common import (CONNACK, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL,  # noqa: E402
                        SUBACK, DISCONNECT_PACKET, MQTTv31, MQTTv311, BrokerTestCase,
                        ack_packet, connect_packet, main, publish_packet, subscribe_packet,
                        unique)


class Session311(BrokerTestCase):
    PROTOCOL = MQTTv311
    LEVEL = 4

    def cl(self, cid=None, **kw):
        return self.client(cid or unique("c"), protocol=self.PROTOCOL, **kw)

    def assertSessionPresent(self, flag, expected, msg=None):
        if self.LEVEL == 3:
            # MQTT 3.1's CONNACK has no session-present flag: the byte is reserved (0).
            expected = False
        self.assertEqual(bool(flag), expected, msg)

    def test_session_present_flag(self):
        cid = unique("sp")
        c = self.cl(cid, clean_session=False)
        self.assertSessionPresent(c.session_present, False, "new session reported as present")
        c.disconnect()
        c = self.cl(cid, clean_session=False)
        self.assertSessionPresent(c.session_present, True, "stored session not reported as present")
        c.disconnect()
        c = self.cl(cid, clean_session=True)
        self.assertSessionPresent(c.session_present, False, "clean session must have session_present 0")
        c.disconnect()
        c = self.cl(cid, clean_session=False)
        self.assertSessionPresent(c.session_present, False, "clean session did not discard the stored session")
        c.disconnect()

    def test_session_present_after_abrupt_close(self):
        cid = unique("sa")
        c = self.cl(cid, clean_session=False)
        c.kill()
        c = self.cl(cid, clean_session=False)
        self.assertSessionPresent(c.session_present, True)

    def test_subscription_survives_reconnect(self):
        cid = unique("ss")
        topic = self.prefix + "keep"
        c = self.cl(cid, clean_session=False)
        c.subscribe(topic, 1)
        c.disconnect()
        c = self.cl(cid, clean_session=False)
        self.assertSessionPresent(c.session_present, True)
        pub = self.cl()
        pub.publish(topic, b"still subscribed", 1)
        self.assertEqual(c.get().payload, b"still subscribed")

    def test_offline_messages_delivered_on_return(self):
        cid = unique("so")
        p = self.prefix
        c = self.cl(cid, clean_session=False)
        c.subscribe([(p + "q0", 0), (p + "q1", 1), (p + "q2", 2)])
        c.disconnect()
        pub = self.cl()
        expected = []
        for i in range(5):
            for q in (1, 2):
                payload = b"offline q%d #%d" % (q, i)
                pub.publish(p + "q%d" % q, payload, q)
                expected.append((p + "q%d" % q, payload, q))
            # QoS 0 messages are not queued for offline clients (the default of both
            # Mosquitto's and mqttb's queue_qos0_messages).
            pub.publish(p + "q0", b"offline q0 #%d" % i, 0)
        c = self.cl(cid, clean_session=False)
        self.assertSessionPresent(c.session_present, True)
        got = c.get_n(len(expected))
        # Order is kept per topic (paho hands QoS 2 messages over only at PUBREL, so
        # the interleaving of the two topics is not observable here).
        for q in (1, 2):
            self.assertEqual([(m.topic, m.payload, m.qos) for m in got if m.qos == q],
                             [e for e in expected if e[2] == q])
        self.assertEqual(c.drain(0.5), [], "unexpected extra messages (QoS 0 queued?)")
        # The session is live again.
        pub.publish(p + "q0", b"online", 0)
        self.assertEqual(c.get().payload, b"online")

    def test_offline_message_qos_downgraded(self):
        cid = unique("sd")
        topic = self.prefix + "d"
        c = self.cl(cid, clean_session=False)
        c.subscribe(topic, 1)
        c.disconnect()
        self.cl().publish(topic, b"two", 2)
        c = self.cl(cid, clean_session=False)
        m = c.get()
        self.assertEqual((m.payload, m.qos), (b"two", 1))

    def test_offline_messages_not_kept_for_clean_session(self):
        cid = unique("sc")
        topic = self.prefix + "gone"
        c = self.cl(cid, clean_session=True)
        c.subscribe(topic, 1)
        c.disconnect()
        self.cl().publish(topic, b"nobody", 1)
        c = self.cl(cid, clean_session=False)
        self.assertSessionPresent(c.session_present, False)
        self.assertEqual(c.drain(0.5), [])

    def test_clean_session_discards_stored_messages(self):
        cid = unique("sx")
        topic = self.prefix + "x"
        c = self.cl(cid, clean_session=False)
        c.subscribe(topic, 1)
        c.disconnect()
        pub = self.cl()
        pub.publish(topic, b"stored", 1)
        c = self.cl(cid, clean_session=True)
        self.assertSessionPresent(c.session_present, False)
        self.assertEqual(c.drain(0.5), [], "clean session received messages of the old session")
        pub.publish(topic, b"after", 1)
        self.assertEqual(c.drain(0.5), [], "clean session inherited the old subscription")

    # -- re-sending unacknowledged messages [MQTT-4.4.0-1]
    def raw_session(self, cid, topic, qos):
        r = self.raw()
        sp, _ = r.connect(cid, clean=False, level=self.LEVEL)
        r.send(subscribe_packet(1, [(topic, qos)]))
        self.assertEqual(r.expect(SUBACK).body[2:], bytes([qos]))
        return r

    def reconnect(self, cid):
        r = self.raw()
        sp, _ = r.connect(cid, clean=False, level=self.LEVEL)
        self.assertSessionPresent(sp, True)
        return r

    def test_unacked_qos1_resent_with_dup(self):
        cid = unique("u1")
        topic = self.prefix + "u1"
        r = self.raw_session(cid, topic, 1)
        self.cl().publish(topic, b"ack me", 1)
        p = r.expect(PUBLISH)
        self.assertEqual((p.payload, p.qos, p.dup), (b"ack me", 1, False))
        r.close()  # no PUBACK
        r = self.reconnect(cid)
        p2 = r.expect(PUBLISH)
        self.assertEqual((p2.payload, p2.qos, p2.mid), (b"ack me", 1, p.mid))
        self.assertTrue(p2.dup, "re-sent PUBLISH must have DUP=1 [MQTT-3.3.1-1]")
        r.send(ack_packet(PUBACK, p2.mid))
        r.send(DISCONNECT_PACKET)
        r.wait_closed()
        r = self.reconnect(cid)
        self.assertTrue(not r.wait_closed(0.5) and r.received == [],
                        "acknowledged message re-sent again: %r" % getattr(r, "received", None))

    def test_unacked_qos2_publish_resent(self):
        cid = unique("u2")
        topic = self.prefix + "u2"
        r = self.raw_session(cid, topic, 2)
        self.cl().publish(topic, b"two", 2)
        p = r.expect(PUBLISH)
        self.assertEqual(p.qos, 2)
        r.close()  # no PUBREC
        r = self.reconnect(cid)
        p2 = r.expect(PUBLISH)
        self.assertEqual((p2.payload, p2.qos, p2.mid, p2.dup), (b"two", 2, p.mid, True))
        r.send(ack_packet(PUBREC, p2.mid))
        rel = r.expect(PUBREL)
        self.assertEqual(rel.mid, p.mid)
        self.assertEqual(rel.flags, 2)
        r.send(ack_packet(PUBCOMP, rel.mid))
        r.send(DISCONNECT_PACKET)
        r.wait_closed()

    def test_unacked_pubrel_resent(self):
        cid = unique("ur")
        topic = self.prefix + "ur"
        r = self.raw_session(cid, topic, 2)
        self.cl().publish(topic, b"rel", 2)
        p = r.expect(PUBLISH)
        r.send(ack_packet(PUBREC, p.mid))
        self.assertEqual(r.expect(PUBREL).mid, p.mid)
        r.close()  # no PUBCOMP
        r = self.reconnect(cid)
        rel = r.expect(PUBREL)
        self.assertEqual(rel.mid, p.mid, "PUBREL must be re-sent, not the PUBLISH")
        r.send(ack_packet(PUBCOMP, rel.mid))
        self.assertFalse(r.wait_closed(0.5))
        self.assertEqual(r.received, [], "message delivered again after PUBREC")

    def test_incoming_qos2_exactly_once(self):
        topic = self.prefix + "eo"
        w = self.cl()
        w.subscribe(topic, 2)
        cid = unique("eo")
        r = self.raw()
        r.connect(cid, clean=False, level=self.LEVEL)
        r.send(publish_packet(topic, b"once", qos=2, mid=7))
        self.assertEqual(r.expect(PUBREC).mid, 7)
        r.send(publish_packet(topic, b"once", qos=2, mid=7, dup=True))  # re-sent
        self.assertEqual(r.expect(PUBREC).mid, 7)
        r.close()  # connection lost before PUBREL
        r = self.reconnect(cid)
        r.send(publish_packet(topic, b"once", qos=2, mid=7, dup=True))
        self.assertEqual(r.expect(PUBREC).mid, 7)
        r.send(ack_packet(PUBREL, 7))
        self.assertEqual(r.expect(PUBCOMP).mid, 7)
        got = w.get_n(1) + w.drain(0.5)
        self.assertEqual([m.payload for m in got], [b"once"], "QoS 2 message not delivered exactly once")

    # -- takeover [MQTT-3.1.4-2]
    def test_takeover_disconnects_first_client(self):
        cid = unique("tk")
        first = self.cl(cid)
        second = self.cl(cid)
        rc = first.wait_disconnected()
        self.assertIsNotNone(rc, "first client was not disconnected")
        self.assertNotEqual(rc, 0)
        topic = self.prefix + "after"
        second.subscribe(topic, 1)
        self.cl().publish(topic, b"second works", 1)
        self.assertEqual(second.get().payload, b"second works")
        self.assertEqual(first.drain(0.2), [])

    def test_takeover_raw_socket_closed(self):
        cid = unique("tr")
        first = self.raw()
        first.connect(cid, level=self.LEVEL)
        second = self.raw()
        second.connect(cid, level=self.LEVEL)
        self.assertTrue(first.wait_closed(), "first connection still open after takeover")
        second.send(b"\xc0\x00")  # PINGREQ
        self.assertEqual(second.read_packet().type, 13)

    def test_takeover_keeps_persistent_session(self):
        cid = unique("tp")
        topic = self.prefix + "tp"
        first = self.cl(cid, clean_session=False)
        first.subscribe(topic, 1)
        second = self.cl(cid, clean_session=False)
        self.assertSessionPresent(second.session_present, True)
        self.assertIsNotNone(first.wait_disconnected())
        self.cl().publish(topic, b"inherited", 1)
        self.assertEqual(second.get().payload, b"inherited")

    def test_takeover_with_clean_session_discards(self):
        cid = unique("tc")
        topic = self.prefix + "tc"
        first = self.cl(cid, clean_session=False)
        first.subscribe(topic, 1)
        second = self.cl(cid, clean_session=True)
        self.assertSessionPresent(second.session_present, False)
        self.assertIsNotNone(first.wait_disconnected())
        self.cl().publish(topic, b"x", 1)
        self.assertEqual(second.drain(0.5), [])

    def test_takeover_repeated(self):
        cid = unique("tx")
        clients = [self.cl(cid) for _ in range(5)]
        for c in clients[:-1]:
            self.assertIsNotNone(c.wait_disconnected(), "a replaced client stayed connected")
        last = clients[-1]
        topic = self.prefix + "tx"
        last.subscribe(topic, 1)
        last.publish(topic, b"ok", 1)
        self.assertEqual(last.get().payload, b"ok")


class Session31(Session311):
    PROTOCOL = MQTTv31
    LEVEL = 3


class ClientIdentifier(BrokerTestCase):
    def refused(self, cid, level, clean):
        r = self.raw()
        r.send(connect_packet(cid, clean=clean, level=level))
        p = r.expect(CONNACK)
        closed = r.wait_closed()
        return p.body[1], closed

    def test_empty_id_with_clean_session_accepted_311(self):
        r = self.raw()
        sp, rc = r.connect("", clean=True, level=4)
        self.assertEqual((sp, rc), (False, 0))

    def test_empty_id_without_clean_session_rejected_311(self):
        # [MQTT-3.1.3-8]: CONNACK 0x02 (identifier rejected), then close.
        self.assertEqual(self.refused("", 4, False), (2, True))

    def test_empty_id_rejected_31(self):
        self.assertEqual(self.refused("", 3, True), (2, True))

    def test_long_id_311(self):
        r = self.raw()
        sp, rc = r.connect("x" * 100 + unique(), level=4)
        self.assertEqual(rc, 0)


class Limits(BrokerTestCase):
    """max_inflight_messages / max_queued_messages / queue_qos0_messages, which
    both brokers understand."""
    CONFIG = ("max_inflight_messages 3", "max_queued_messages 4", "queue_qos0_messages true")

    def test_inflight_window(self):
        topic = self.prefix + "win"
        r = self.raw()
        r.connect(unique("iw"))
        r.send(subscribe_packet(1, [(topic, 1)]))
        r.expect(SUBACK)
        pub = self.client(unique("p"))
        for i in range(6):
            pub.publish(topic, b"%d" % i, 1)
        first = [r.expect(PUBLISH) for _ in range(3)]
        self.assertEqual([p.payload for p in first], [b"0", b"1", b"2"])
        self.assertFalse(r.wait_closed(0.5))
        self.assertEqual(r.received, [], "more than max_inflight_messages unacknowledged")
        r.send(ack_packet(PUBACK, first[0].mid))
        self.assertEqual(r.expect(PUBLISH).payload, b"3")
        for p in first[1:]:
            r.send(ack_packet(PUBACK, p.mid))
        rest = [r.expect(PUBLISH) for _ in range(2)]
        self.assertEqual([p.payload for p in rest], [b"4", b"5"])

    def test_offline_queue_limit_and_qos0(self):
        cid = unique("ql")
        topic = self.prefix + "ql"
        c = self.client(cid, clean_session=False)
        c.subscribe(topic, 1)
        c.disconnect()
        pub = self.client(unique("p"))
        pub.publish(topic, b"q0", 0)
        for i in range(12):
            pub.publish(topic, b"%d" % i, 1)
        c = self.client(cid, clean_session=False)
        got = [m.payload for m in c.drain(1.0)]
        # Offline, everything is queued (in flight only once connected); with
        # queue_qos0_messages the QoS 0 message is queued too. Messages beyond the
        # limit are dropped, the oldest are kept.
        self.assertIn(b"q0", got, "queue_qos0_messages true did not queue the QoS 0 message")
        self.assertGreaterEqual(len(got), 4)
        self.assertLessEqual(len(got), 4 + 3, "max_queued_messages not enforced: %r" % got)
        self.assertEqual(got, sorted(got, key=lambda p: -1 if p == b"q0" else int(p)),
                         "queued messages out of order")


if __name__ == "__main__":
    main()
