#!/usr/bin/python3
"""Hostile and malformed input from raw sockets.

For each malformed input the broker must close that connection (recv returns
b'' or the connection is reset within a timeout) while an already-connected
paho client keeps working (a publish/receive round trip after each case), and
the broker process must still be alive at the end (and exit cleanly on SIGTERM).
Also: max_packet_size, max_connections and max_keepalive from a config file,
and connect_timeout (mqttb only).

Usage: /usr/bin/python3 tests/e2e/test_hostile.py build/cli/mqttb
"""
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True

from e2e_common import (CONNACK, PINGRESP, PUBLISH, SUBACK, BrokerTestCase,  # noqa: E402
                        Client, PINGREQ_PACKET, RawClient, ack_packet, connect_packet, enc_len,
                        enc_str, is_mosquitto, main, packet, publish_packet, subscribe_packet,
                        unique)

MAX_PACKET_SIZE = 1024
CLOSE_TIMEOUT = 3.0


class Hostile(BrokerTestCase):
    CONFIG = ("max_packet_size %d" % MAX_PACKET_SIZE,)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.watcher = Client(cls.broker.port, client_id=unique("watch"))
            cls.watch_topic = unique("watch") + "/rt"
            cls.watcher.subscribe(cls.watch_topic, 1)
        except BaseException:
            cls.broker.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.watcher.close()
        finally:
            super().tearDownClass()

    def tearDown(self):
        # After every case, whatever it was: the watcher still works and the
        # broker is alive.
        self.assertBrokerAlive()
        self.assertTrue(self.watcher.disconnects.empty(), "the watching client was disconnected")
        payload = ("after " + self._testMethodName).encode()
        self.watcher.publish(self.watch_topic, payload, 1)
        m = self.watcher.get()
        self.assertEqual(m.payload, payload)

    # -- helpers
    def send_quietly(self, r, data):
        try:
            r.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # already closed by the broker: fine

    def assertClosed(self, data, connect=False, level=4, msg=None):
        """Send `data` (bytes or list of chunks) on a fresh socket and require the
        broker to close it. Returns the packets received before the close."""
        r = self.raw()
        if connect:
            r.connect(unique("h"), level=level)
        for chunk in (data if isinstance(data, list) else [data]):
            self.send_quietly(r, chunk)
        closed = r.wait_closed(CLOSE_TIMEOUT)
        self.assertTrue(closed, msg or "broker did not close the connection after %r" % (data,))
        return r.received

    def connected_raw(self):
        r = self.raw()
        r.connect(unique("h"))
        return r

    # -- before CONNECT
    def test_garbage_bytes(self):
        self.assertClosed(b"\xff\xfe\xfd\xfc garbage \x00\x01\x02" * 4)

    def test_non_connect_first_byte_closed_promptly(self):
        # [MQTT-3.1.0-1]: the first packet must be CONNECT, so a first byte other
        # than 0x10 is already a protocol violation; the broker must not keep the
        # connection open waiting for the rest of a bogus fixed header (here the
        # remaining length is still incomplete after 3 continuation bytes).
        for data in (b"\xff\xff\xff\xff", b"\x30\x80", b"\x82\xff\xff"):
            self.assertClosed(data, msg="connection starting with %r not closed within %.0f s "
                              "(first byte is not CONNECT)" % (data, CLOSE_TIMEOUT))

    def test_http_request(self):
        self.assertClosed(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    def test_zero_bytes(self):
        self.assertClosed(b"\x00" * 32)

    def test_publish_before_connect(self):
        self.assertClosed(publish_packet("a/b", b"early"))

    def test_subscribe_before_connect(self):
        self.assertClosed(subscribe_packet(1, [("#", 0)]))

    def test_pingreq_before_connect(self):
        self.assertClosed(PINGREQ_PACKET)

    def test_remaining_length_5_bytes(self):
        # The remaining length is at most 4 bytes [MQTT-2.2.3].
        self.assertClosed(b"\x10\xff\xff\xff\xff\x01" + b"\x00" * 16)

    def test_remaining_length_5_bytes_after_connect(self):
        self.assertClosed(b"\x30\xff\xff\xff\xff\x01" + b"\x00" * 16, connect=True)

    def test_connect_reserved_flag(self):
        # [MQTT-3.1.2-3]: the reserved CONNECT flag must be 0.
        got = self.assertClosed(connect_packet(unique("rf"), extra_flags=0x01))
        self.assertFalse(any(p.type == CONNACK and p.body[1:] == b"\x00" for p in got),
                         "connection accepted despite the reserved flag")

    def test_connect_bad_fixed_header_flags(self):
        data = connect_packet(unique("ff"))
        self.assertClosed(bytes([data[0] | 0x01]) + data[1:])

    def test_connect_bad_protocol_name(self):
        got = self.assertClosed(connect_packet(unique("pn"), proto_name="MQTX"))
        self.assertFalse(any(p.type == CONNACK and p.body[1] == 0 for p in got))

    def test_connect_unsupported_level(self):
        # [MQTT-3.1.2-2]: CONNACK 0x01 (unacceptable protocol level), then close.
        got = self.assertClosed(connect_packet(unique("lv"), level=42))
        self.assertEqual([(p.type, p.body[1]) for p in got], [(CONNACK, 1)])

    def test_connect_password_without_username(self):
        # [MQTT-3.1.2-22]
        self.assertClosed(connect_packet(unique("pw"), password=b"secret"))

    def test_connect_will_qos_3(self):
        # [MQTT-3.1.2-14]
        self.assertClosed(connect_packet(unique("w3"), will=("w/t", b"x", 3, False)))

    def test_connect_will_flags_without_will(self):
        # [MQTT-3.1.2-13], [MQTT-3.1.2-15]: will QoS / retain must be 0 without the will flag.
        self.assertClosed(connect_packet(unique("wq"), extra_flags=0x08))
        self.assertClosed(connect_packet(unique("wr"), extra_flags=0x20))

    def test_connect_truncated_body(self):
        # Remaining length covers the packet, but the client id length runs past it.
        body = enc_str("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + struct.pack("!H", 50) + b"abc"
        self.assertClosed(packet(1, 0, body))

    def test_connect_invalid_utf8_client_id(self):
        body = enc_str("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + struct.pack("!H", 2) + b"\xc3\x28"
        got = self.assertClosed(packet(1, 0, body))
        self.assertFalse(any(p.type == CONNACK and p.body[1] == 0 for p in got))

    def test_second_connect(self):
        # [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
        self.assertClosed(connect_packet(unique("c2")), connect=True)

    def test_second_connect_mqtt31(self):
        self.assertClosed(connect_packet(unique("c3"), level=3), connect=True, level=3)

    # -- after CONNECT
    def test_invalid_utf8_topic(self):
        # [MQTT-1.5.3-1]
        body = struct.pack("!H", 4) + b"a/\xff\xfe" + b"payload"
        self.assertClosed(packet(3, 0, body), connect=True)

    def test_overlong_utf8_topic(self):
        body = struct.pack("!H", 4) + b"a/\xc0\xaf" + b"payload"  # overlong "/"
        self.assertClosed(packet(3, 0, body), connect=True)

    def test_utf16_surrogate_topic(self):
        body = struct.pack("!H", 5) + b"a/\xed\xa0\x80" + b"payload"  # U+D800
        self.assertClosed(packet(3, 0, body), connect=True)

    def test_null_character_in_topic(self):
        # [MQTT-1.5.3-2]
        self.assertClosed(publish_packet("a/\x00/b", b"x"), connect=True)

    def test_invalid_utf8_subscribe_filter(self):
        body = struct.pack("!H", 1) + struct.pack("!H", 3) + b"a/\xff" + b"\x00"
        self.assertClosed(packet(8, 2, body), connect=True)

    def test_publish_wildcard_topic(self):
        # [MQTT-3.3.2-2]
        self.assertClosed(publish_packet("a/+/b", b"x"), connect=True)
        self.assertClosed(publish_packet("a/#", b"x"), connect=True)

    def test_publish_empty_topic(self):
        self.assertClosed(publish_packet("", b"x"), connect=True)

    def test_publish_qos_3(self):
        # [MQTT-3.3.1-4]
        self.assertClosed(packet(3, 0x06, enc_str("a/b") + b"\x00\x01x"), connect=True)

    def test_publish_qos1_packet_id_0(self):
        # [MQTT-2.3.1-1]: packet identifiers are non-zero.
        self.assertClosed(publish_packet("a/b", b"x", qos=1, mid=0), connect=True)

    def test_subscribe_bad_flags(self):
        # [MQTT-3.8.1-1]
        good = subscribe_packet(1, [("a/b", 0)])
        self.assertClosed(bytes([0x80]) + good[1:], connect=True)

    def test_subscribe_without_filters(self):
        # [MQTT-3.8.3-3]
        self.assertClosed(packet(8, 2, struct.pack("!H", 1)), connect=True)

    def test_subscribe_qos_3(self):
        # [MQTT-3-8.3-4]
        self.assertClosed(subscribe_packet(1, [("a/b", 3)]), connect=True)

    def test_invalid_subscription_filters(self):
        # [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1]: misplaced wildcards and
        # empty filters.
        for f in ("a/#/b", "a+", "#/", "a/b#", "+a/b", ""):
            self.assertClosed(subscribe_packet(5, [("ok/t", 1), (f, 1)]), connect=True,
                              msg="connection kept after SUBSCRIBE to %r" % f)

    def test_unsubscribe_bad_flags(self):
        self.assertClosed(packet(10, 0, struct.pack("!H", 1) + enc_str("a/b")), connect=True)

    def test_pubrel_bad_flags(self):
        self.assertClosed(packet(6, 0, struct.pack("!H", 1)), connect=True)

    def test_reserved_packet_types(self):
        self.assertClosed(b"\x00\x00", connect=True)
        self.assertClosed(b"\xf0\x00", connect=True)

    def test_server_only_packets_from_client(self):
        self.assertClosed(b"\x20\x02\x00\x00", connect=True)  # CONNACK
        if not is_mosquitto():  # mosquitto 2.0.11 silently accepts a SUBACK from a client
            self.assertClosed(b"\x90\x03\x00\x01\x00", connect=True)  # SUBACK
            self.assertClosed(b"\xb0\x02\x00\x01", connect=True)  # UNSUBACK
            self.assertClosed(b"\xd0\x00", connect=True)  # PINGRESP

    def test_disconnect_with_flags(self):
        self.assertClosed(b"\xe1\x00", connect=True)

    # -- max_packet_size
    def test_packet_larger_than_max_packet_size(self):
        topic = self.prefix + "big"
        self.watcher.subscribe(topic, 0)
        try:
            self.assertClosed(publish_packet(topic, b"x" * (MAX_PACKET_SIZE * 2)), connect=True)
            self.assertEqual([m for m in self.watcher.drain(0.3) if m.topic == topic], [],
                             "oversized message was delivered")
        finally:
            self.watcher.unsubscribe(topic)

    def test_declared_length_over_max_packet_size(self):
        # Only the fixed header announcing 1 MiB: the broker must not wait for the body.
        start = time.monotonic()
        self.assertClosed(b"\x30" + enc_len(1 << 20) + b"\x00\x03a/b", connect=True)
        self.assertLess(time.monotonic() - start, 2.5)

    def test_connect_larger_than_max_packet_size(self):
        self.assertClosed(connect_packet(unique("bc"), will=("w", b"x" * (2 * MAX_PACKET_SIZE), 0, False)))

    def test_packet_at_max_packet_size_accepted(self):
        topic = self.prefix + "fits"
        r = self.connected_raw()
        r.send(subscribe_packet(1, [(topic, 0)]))
        r.expect(SUBACK)
        # max_packet_size counts the whole packet: fixed header (1 + 2 bytes of
        # remaining length here) + topic + payload.
        fixed = 3
        payload = b"y" * (MAX_PACKET_SIZE - fixed - 2 - len(topic))
        data = publish_packet(topic, payload)
        self.assertEqual(len(data), MAX_PACKET_SIZE)
        r.send(data)
        p = r.expect(PUBLISH)
        self.assertEqual(p.payload, payload)

    # -- well-formed but awkward
    def test_connect_byte_by_byte(self):
        r = self.raw()
        data = connect_packet(unique("bb")) + PINGREQ_PACKET
        for i in range(len(data)):
            r.send(data[i:i + 1])
            time.sleep(0.005)
        self.assertEqual(r.expect(CONNACK).body, b"\x00\x00")
        self.assertEqual(r.read_packet().type, PINGRESP)

    def test_pipelined_packets(self):
        topic = self.prefix + "pipe"
        r = self.raw()
        r.send(connect_packet(unique("pp")) + subscribe_packet(1, [(topic, 1)]) +
               publish_packet(topic, b"one", qos=1, mid=2) + PINGREQ_PACKET)
        types = [r.read_packet().type for _ in range(5)]
        # CONNACK, SUBACK, then PUBACK / PUBLISH / PINGRESP in some order.
        self.assertEqual(types[:2], [CONNACK, SUBACK])
        self.assertEqual(sorted(types[2:]), sorted([4, PUBLISH, PINGRESP]))

    def test_half_closed_client(self):
        r = self.connected_raw()
        r.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(r.wait_closed(CLOSE_TIMEOUT))

    def test_many_bad_connections_at_once(self):
        socks = [RawClient(self.port) for _ in range(40)]
        try:
            for i, r in enumerate(socks):
                self.send_quietly(r, [b"\xff\xff\xff\xff\xff", publish_packet("x", b"y"),
                                      b"\x10\xff\xff\xff\xff\x01"][i % 3])
            for r in socks:
                self.assertTrue(r.wait_closed(CLOSE_TIMEOUT))
        finally:
            for r in socks:
                r.close()

    def test_abrupt_reset_mid_packet(self):
        r = self.connected_raw()
        r.send(publish_packet("a/b", b"z" * 500)[:100])
        r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        r.close()  # RST
        time.sleep(0.1)


class SlowConsumer(BrokerTestCase):
    """A subscriber that stops reading must not stall the broker or other clients."""

    def test_stalled_subscriber_does_not_block_others(self):
        topic = self.prefix + "flood"
        slow = self.raw()
        slow.connect(unique("slow"))
        slow.send(subscribe_packet(1, [(topic, 1)]))
        slow.expect(SUBACK)
        pub = self.client(unique("fp"))
        n, size = 2000, 10000  # 20 MB: far more than the socket buffers hold
        for i in range(n):
            pub.publish(topic, b"%06d" % i + b"x" * (size - 6), i % 2, wait=False)
        pub.publish(topic, b"sync", 1, timeout=30)
        # Meanwhile another client gets prompt service.
        other = self.client(unique("o"))
        rt = self.prefix + "rt"
        other.subscribe(rt, 1)
        start = time.monotonic()
        other.publish(rt, b"quick", 1)
        self.assertEqual(other.get().payload, b"quick")
        self.assertLess(time.monotonic() - start, 2.0, "broker stalled by a slow consumer")
        # The slow consumer now reads: what it gets is intact and in order (the
        # broker may drop messages beyond its queue limits, or disconnect it).
        seen = []
        while True:
            try:
                p = slow.read_packet(2.0)
            except AssertionError:
                break  # quiet for 2 s: drained
            if p is None:
                break
            if p.type == PUBLISH:
                if p.qos:
                    slow.send(ack_packet(4, p.mid))
                if p.payload == b"sync":
                    continue
                self.assertEqual(len(p.payload), size)
                self.assertEqual(p.payload[6:], b"x" * (size - 6))
                seen.append(int(p.payload[:6]))
        self.assertTrue(seen, "slow consumer got nothing")
        # Order is only kept among messages of the same QoS [MQTT-4.6.0-6].
        for q in (0, 1):
            same = [i for i in seen if i % 2 == q]
            self.assertEqual(same, sorted(set(same)), "QoS %d messages duplicated or out of order" % q)
        self.assertBrokerAlive()


class MaxKeepalive(BrokerTestCase):
    """max_keepalive from the config file: MQTT 3.x clients asking for more (or
    for 0 = no keep-alive) are refused with CONNACK 0x02. mqttb-only: Mosquitto
    2.0.11 accepts such MQTT 3.x clients (it only overrides v5 clients)."""
    MQTTB_ONLY = True
    MQTTB_CONFIG = ("max_keepalive 10",)

    def test_max_keepalive(self):
        r = self.raw()
        self.assertEqual(r.connect(unique("k"), keepalive=10, expect_rc=None)[1], 0)
        for ka in (11, 600):
            r = self.raw()
            rc = r.connect(unique("k"), keepalive=ka, expect_rc=None)[1]
            self.assertEqual(rc, 2, "keep-alive %d above max_keepalive accepted" % ka)
            self.assertTrue(r.wait_closed())

    def test_max_keepalive_zero_refused(self):
        # MQTT 3.x cannot tell the client another keep-alive, so 0 (= none) is refused.
        r = self.raw()
        rc = r.connect(unique("k"), keepalive=0, expect_rc=None)[1]
        self.assertEqual(rc, 2)



class MaxConnections(BrokerTestCase):
    CONFIG = ("max_connections 3",)

    def test_max_connections(self):
        # Connections that go away before CONNECT must not use up (or free) a slot.
        # (Skipped for mosquitto 2.0.11: after such connections it lets more than
        # max_connections clients in.)
        for data in (() if is_mosquitto() else (b"", b"\xff\xff\xff\xff\xff", publish_packet("x", b"y"))):
            r = RawClient(self.port)
            if data:
                r.send(data)
            r.close()
        time.sleep(0.3)
        clients = [self.raw() for _ in range(3)]
        for c in clients:
            c.connect(unique("m"), keepalive=10)
        extra = self.raw()
        try:
            extra.send(connect_packet(unique("m"), keepalive=10))
        except OSError:
            pass
        self.assertTrue(extra.wait_closed(), "4th connection accepted with max_connections 3")
        self.assertFalse([p for p in extra.received if p.type == CONNACK and p.body[1] == 0])
        clients[0].close()
        # The slot is free again (give the broker a moment to notice the close).
        deadline = time.monotonic() + 3
        while True:
            r = RawClient(self.port)
            try:
                r.send(connect_packet(unique("m"), keepalive=10))
                p = r.read_packet(1)
                if p is not None and p.type == CONNACK and p.body[1] == 0:
                    break
            except (OSError, AssertionError):
                pass
            finally:
                r.close()
            self.assertLess(time.monotonic(), deadline, "slot not freed after a client left")
            time.sleep(0.1)


class ConnectTimeout(BrokerTestCase):
    """mqttb's connect_timeout: time a new connection has to send CONNECT."""
    MQTTB_ONLY = True
    MQTTB_CONFIG = ("connect_timeout 1",)

    def test_silent_socket_closed(self):
        r = self.raw()
        start = time.monotonic()
        self.assertTrue(r.wait_closed(4), "silent connection not closed")
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertLess(elapsed, 2.5)
        self.assertEqual(r.received, [])

    def test_partial_connect_closed(self):
        r = self.raw()
        r.send(connect_packet(unique("pc"))[:5])
        start = time.monotonic()
        self.assertTrue(r.wait_closed(4), "connection with a partial CONNECT not closed")
        self.assertLess(time.monotonic() - start, 2.5)

    def test_connected_client_not_closed(self):
        r = self.raw()
        r.connect(unique("ok"), keepalive=60)
        self.assertFalse(r.wait_closed(2.0), "connected client closed by connect_timeout")
        r.send(PINGREQ_PACKET)
        self.assertEqual(r.read_packet().type, PINGRESP)

    def test_many_silent_sockets(self):
        socks = [RawClient(self.port) for _ in range(20)]
        try:
            for r in socks:
                self.assertTrue(r.wait_closed(4))
        finally:
            for r in socks:
                r.close()
        c = self.client(unique("ok"))
        c.subscribe(self.prefix + "x", 1)


if __name__ == "__main__":
    main()
