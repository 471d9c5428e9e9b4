#!/usr/bin/python3
"""End-to-end MQTT 5: paho-mqtt in MQTTv5 mode, hand-made MQTT 5 packets on raw
sockets, and `mosquitto_pub`/`mosquitto_sub -V 5`.

Covers CONNACK properties (Assigned Client Identifier, Topic Alias Maximum and
the configured limits), Session Expiry, Message Expiry, Will Delay, Receive
Maximum, Maximum Packet Size, topic aliases in both directions, subscription
options (No Local, Retain As Published, Retain Handling), Subscription
Identifiers, shared subscriptions, request/response properties, user
properties, content type, payload format indicator, mixed protocol versions and
reason codes (PUBACK/PUBREC 0x10, UNSUBACK 0x11, DISCONNECT 0x8E/0x94/0x82,
CONNACK 0x8C).

Usage: /usr/bin/python3 tests/e2e/test_v5.py build/cli/mqttb
"""
import struct
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.reasoncodes import ReasonCodes  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

from e2e_common import (CONNACK, DISCONNECT, PUBACK, PUBCOMP, PUBLISH, PUBREC,  # noqa: E402
                        PUBREL, SUBACK, HOST, MQTTv311, TIMEOUT, BrokerTestCase,
                        Client, RawClient, enc_len, enc_str, is_mosquitto, kill_process,
                        main, packet, scaled, unique)
from test_cli_clients import HAVE_CLIENTS, MOSQUITTO_PUB, MOSQUITTO_SUB, Sub  # noqa: E402

MQTTv5 = mqtt.MQTTv5
SUBSCRIBE, UNSUBSCRIBE = 8, 10

# --------------------------------------------------------------------------
# MQTT 5 properties on the wire

BYTE, U16, U32, VARINT, BINARY, STRING, PAIR = range(7)

PAYLOAD_FORMAT, MESSAGE_EXPIRY, CONTENT_TYPE = 1, 2, 3
RESPONSE_TOPIC, CORRELATION_DATA, SUBSCRIPTION_ID = 8, 9, 11
SESSION_EXPIRY, ASSIGNED_CLIENT_ID, SERVER_KEEP_ALIVE = 17, 18, 19
AUTH_METHOD, AUTH_DATA, WILL_DELAY = 21, 22, 24
REASON_STRING, RECEIVE_MAXIMUM, TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS = 31, 33, 34, 35
MAXIMUM_QOS, RETAIN_AVAILABLE, USER_PROPERTY, MAXIMUM_PACKET_SIZE = 36, 37, 38, 39

PROP_TYPES = {
    1: BYTE, 2: U32, 3: STRING, 8: STRING, 9: BINARY, 11: VARINT, 17: U32, 18: STRING,
    19: U16, 21: STRING, 22: BINARY, 23: BYTE, 24: U32, 25: BYTE, 26: STRING, 28: STRING,
    31: STRING, 33: U16, 34: U16, 35: U16, 36: BYTE, 37: BYTE, 38: PAIR, 39: U32, 40: BYTE,
    41: BYTE, 42: BYTE,
}


def enc_varint(n):
    return enc_len(n)


def dec_varint(buf, pos):
    mult, value = 1, 0
    while True:
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, pos


def enc_props(props):
    """props: [(identifier, value)], in order (repeats allowed)."""
    out = b""
    for pid, v in props:
        t = PROP_TYPES[pid]
        out += enc_varint(pid)
        if t == BYTE:
            out += bytes([v])
        elif t == U16:
            out += struct.pack("!H", v)
        elif t == U32:
            out += struct.pack("!I", v)
        elif t == VARINT:
            out += enc_varint(v)
        elif t in (BINARY, STRING):
            out += enc_str(v)
        else:
            out += enc_str(v[0]) + enc_str(v[1])
    return enc_varint(len(out)) + out


def dec_props(buf, pos):
    """Returns ([(identifier, value)], position after the properties)."""
    n, pos = dec_varint(buf, pos)
    end = pos + n
    out = []
    while pos < end:
        pid, pos = dec_varint(buf, pos)
        t = PROP_TYPES[pid]
        if t == BYTE:
            v, pos = buf[pos], pos + 1
        elif t == U16:
            v, pos = struct.unpack("!H", buf[pos:pos + 2])[0], pos + 2
        elif t == U32:
            v, pos = struct.unpack("!I", buf[pos:pos + 4])[0], pos + 4
        elif t == VARINT:
            v, pos = dec_varint(buf, pos)
        else:
            strs = []
            for _ in range(2 if t == PAIR else 1):
                ln = struct.unpack("!H", buf[pos:pos + 2])[0]
                s = bytes(buf[pos + 2:pos + 2 + ln])
                strs.append(s if t == BINARY else s.decode("utf-8"))
                pos += 2 + ln
            v = tuple(strs) if t == PAIR else strs[0]
        out.append((pid, v))
    return out, end


def prop(props, pid, default=None):
    for k, v in props:
        if k == pid:
            return v
    return default


def prop_all(props, pid):
    return [v for k, v in props if k == pid]


# --------------------------------------------------------------------------
# MQTT 5 packets


def connect5_packet(client_id, clean=True, keepalive=60, props=(), will=None, will_props=()):
    """will: (topic, payload, qos, retain)."""
    flags = 0x02 if clean else 0
    payload = enc_str(client_id)
    if will is not None:
        wt, wp = will[0], will[1]
        wq = will[2] if len(will) > 2 else 0
        wr = will[3] if len(will) > 3 else False
        flags |= 0x04 | (wq << 3) | (0x20 if wr else 0)
        payload += enc_props(will_props) + enc_str(wt) + enc_str(wp)
    body = (enc_str("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive)
            + enc_props(props) + payload)
    return packet(1, 0, body)


def publish5_packet(topic, payload=b"", qos=0, retain=False, dup=False, mid=1, props=()):
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = enc_str(topic)
    if qos:
        body += struct.pack("!H", mid)
    return packet(PUBLISH, flags, body + enc_props(props) + payload)


def subscribe5_packet(mid, filters, props=()):
    """filters: [(filter, options byte)]; options = QoS | NL 4 | RAP 8 | RH << 4."""
    body = struct.pack("!H", mid) + enc_props(props)
    for f, opts in filters:
        body += enc_str(f) + bytes([opts])
    return packet(SUBSCRIBE, 2, body)


def unsubscribe5_packet(mid, filters, props=()):
    body = struct.pack("!H", mid) + enc_props(props)
    for f in filters:
        body += enc_str(f)
    return packet(UNSUBSCRIBE, 2, body)


def ack5_packet(ptype, mid, reason=0, props=()):
    body = struct.pack("!H", mid)
    if reason or props:
        body += bytes([reason]) + enc_props(props)
    return packet(ptype, 2 if ptype == PUBREL else 0, body)


def disconnect5_packet(reason=0, props=()):
    return packet(DISCONNECT, 0, bytes([reason]) + enc_props(props))


class Pub5:
    """A PUBLISH received on a raw MQTT 5 connection."""

    def __init__(self, p):
        b = p.body
        self.qos = (p.flags >> 1) & 3
        self.retain = bool(p.flags & 1)
        self.dup = bool(p.flags & 8)
        tlen = struct.unpack("!H", b[:2])[0]
        self.topic = b[2:2 + tlen].decode("utf-8")
        pos = 2 + tlen
        self.mid = None
        if self.qos:
            self.mid = struct.unpack("!H", b[pos:pos + 2])[0]
            pos += 2
        self.props, pos = dec_props(b, pos)
        self.payload = bytes(b[pos:])

    def __repr__(self):
        return "Pub5(%r, %r, qos=%d, retain=%d, mid=%s, props=%r)" % (
            self.topic, self.payload, self.qos, self.retain, self.mid, self.props)


def ack_reason(p):
    """(packet id, reason code, properties) of a PUBACK/PUBREC/PUBREL/PUBCOMP."""
    mid = struct.unpack("!H", p.body[:2])[0]
    reason = p.body[2] if len(p.body) > 2 else 0
    props = dec_props(p.body, 3)[0] if len(p.body) > 3 else []
    return mid, reason, props


def sub_reasons(p):
    """(packet id, properties, [reason codes]) of a SUBACK/UNSUBACK."""
    mid = struct.unpack("!H", p.body[:2])[0]
    props, pos = dec_props(p.body, 2)
    return mid, props, list(p.body[pos:])


def disconnect_reason(p):
    reason = p.body[0] if p.body else 0
    props = dec_props(p.body, 1)[0] if len(p.body) > 1 else []
    return reason, props


class RawV5(RawClient):
    """A raw socket speaking hand-made MQTT 5."""

    def connect5(self, client_id, expect_reason=0, **kw):
        """Send CONNECT, read CONNACK; returns (session present, reason, properties)."""
        self.send(connect5_packet(client_id, **kw))
        p = self.expect(CONNACK)
        sp, reason = bool(p.body[0] & 1), p.body[1]
        props = dec_props(p.body, 2)[0]
        if expect_reason is not None and reason != expect_reason:
            raise AssertionError("CONNACK reason %#x, expected %#x (%r)" % (reason, expect_reason, props))
        return sp, reason, props

    def subscribe5(self, mid, filters, props=()):
        self.send(subscribe5_packet(mid, filters, props))
        p = self.expect(SUBACK)
        rmid, _props, codes = sub_reasons(p)
        if rmid != mid:
            raise AssertionError("SUBACK for packet id %d, expected %d" % (rmid, mid))
        return codes

    def publish5(self):
        return Pub5(self.expect(PUBLISH))

    def expect_disconnect(self, timeout=TIMEOUT, optional=False):
        """Reads up to a DISCONNECT (other packets are skipped); returns its reason code
        and whether the connection was then closed. With `optional`, a close without
        DISCONNECT gives (None, True)."""
        while True:
            p = self.read_packet(timeout)
            if p is None:
                if optional:
                    return None, True
                raise AssertionError("connection closed without DISCONNECT")
            if p.type == DISCONNECT:
                reason = disconnect_reason(p)[0]
                return reason, self.wait_closed(scaled(timeout))

    def quiet(self, seconds):
        """True if nothing arrives (and the connection stays open) for `seconds`."""
        return not self.wait_closed(seconds) and self.received == []


# --------------------------------------------------------------------------
# paho in MQTT 5 mode


def props_dict(p):
    out = {}
    if p is None:
        return out
    for name in p.names:
        key = name.replace(" ", "")
        if hasattr(p, key):
            out[key] = getattr(p, key)
    return out


def make_props(ptype, values):
    p = Properties(ptype)
    for k, v in (values or {}).items():
        setattr(p, k, v)
    return p


class Msg5:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)
        self.props = props_dict(getattr(m, "properties", None))
        self.time = time.monotonic()

    @property
    def sub_ids(self):
        return sorted(self.props.get("SubscriptionIdentifier", []))

    def __repr__(self):
        return "Msg5(%r, %r, qos=%d, retain=%d, props=%r)" % (
            self.topic, self.payload, self.qos, self.retain, self.props)


def _code(rc):
    return rc.value if isinstance(rc, ReasonCodes) else int(rc)


class V5Client(Client):
    """e2e_common.Client in MQTT 5 mode: CONNECT/CONNACK properties, clean_start,
    will properties, subscribe options and identifiers, publish properties and the
    reason codes of SUBACK/UNSUBACK/DISCONNECT."""

    def __init__(self, port, client_id="", clean_start=True, session_expiry=None,
                 connect_props=None, will=None, will_props=None, keepalive=60, connect=True,
                 expect_reason=0):
        super().__init__(port, client_id=client_id, protocol=MQTTv5, keepalive=keepalive,
                         connect=False)
        self.clean_start = clean_start
        values = dict(connect_props or {})
        if session_expiry is not None:
            values["SessionExpiryInterval"] = session_expiry
        self.connect_props = make_props(PacketTypes.CONNECT, values) if values else None
        self.connack_props = {}
        self.reason = None
        self.c.on_connect = self._on_connect5
        self.c.on_message = self._on_message5
        self.c.on_subscribe = self._on_subscribe5
        self.c.on_unsubscribe = self._on_unsubscribe5
        self.c.on_disconnect = self._on_disconnect5
        if will is not None:
            topic, payload = will[0], will[1]
            qos = will[2] if len(will) > 2 else 0
            retain = will[3] if len(will) > 3 else False
            wp = make_props(PacketTypes.WILLMESSAGE, will_props) if will_props else None
            self.c.will_set(topic, payload, qos, retain, properties=wp)
        if connect:
            self.connect(expect_reason)

    def _on_connect5(self, client, userdata, flags, reason, props):
        self.connacks.put((_code(reason), bool(flags.get("session present", 0)), props_dict(props)))

    def _on_message5(self, client, userdata, m):
        self.messages.put(Msg5(m))

    def _on_subscribe5(self, client, userdata, mid, reasons, props):
        with self._cond:
            self._subacks[mid] = [_code(r) for r in reasons]
            self._cond.notify_all()

    def _on_unsubscribe5(self, client, userdata, mid, props, reasons):
        if not isinstance(reasons, list):
            reasons = [reasons]
        with self._cond:
            self._subacks[mid] = [_code(r) for r in reasons]
            self._cond.notify_all()

    def _on_disconnect5(self, client, userdata, rc, props=None):
        self.disconnects.put(_code(rc))

    def connect(self, expect_reason=0, timeout=TIMEOUT):
        self.c.connect(HOST, self.port, self.keepalive, clean_start=self.clean_start,
                       properties=self.connect_props)
        self.c.loop_start()
        self.started = True
        try:
            reason, sp, props = self.connacks.get(timeout=scaled(timeout))
        except Exception:
            raise AssertionError("client %r: no CONNACK" % self.client_id)
        if expect_reason is not None and reason != expect_reason:
            raise AssertionError("client %r: CONNACK reason %#x, expected %#x"
                                 % (self.client_id, reason, expect_reason))
        self.reason, self.session_present, self.connack_props = reason, sp, props
        return reason, sp

    def subscribe5(self, topic, qos=0, no_local=False, retain_as_published=False,
                   retain_handling=0, sub_id=None, props=None, timeout=TIMEOUT):
        """One filter with subscribe options; returns the SUBACK reason codes."""
        values = dict(props or {})
        if sub_id is not None:
            values["SubscriptionIdentifier"] = sub_id
        p = make_props(PacketTypes.SUBSCRIBE, values) if values else None
        opts = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=retain_as_published,
                                retainHandling=retain_handling)
        rc, mid = self.c.subscribe(topic, options=opts, properties=p)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("subscribe failed locally: rc=%d" % rc)
        return self._wait_ack(mid, timeout, "SUBACK")

    def unsubscribe5(self, topics, timeout=TIMEOUT):
        rc, mid = self.c.unsubscribe(topics)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("unsubscribe failed locally: rc=%d" % rc)
        return self._wait_ack(mid, timeout, "UNSUBACK")

    def publish5(self, topic, payload=b"", qos=0, retain=False, props=None, wait=True,
                 timeout=TIMEOUT):
        p = make_props(PacketTypes.PUBLISH, props) if props else None
        info = self.c.publish(topic, payload, qos, retain, properties=p)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("publish failed locally: rc=%d" % info.rc)
        if wait:
            info.wait_for_publish(scaled(timeout))
            if not info.is_published():
                raise AssertionError("client %r: QoS %d publish to %r not completed"
                                     % (self.client_id, qos, topic))
        return info

    def disconnect5(self, reason=0, props=None):
        """DISCONNECT with a reason code and properties (e.g. SessionExpiryInterval)."""
        if self.started:
            p = make_props(PacketTypes.DISCONNECT, props) if props else None
            self.c.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, identifier=reason),
                              properties=p)
            self._stop_loop()


class V5TestCase(BrokerTestCase):
    def v5(self, cid=None, **kw):
        c = V5Client(self.port, client_id=unique("v") if cid is None else cid, **kw)
        self._cleanups_clients.append(c)
        return c

    def v3(self, cid=None, **kw):
        return self.client(cid or unique("c"), protocol=MQTTv311, **kw)

    def raw5(self):
        r = RawV5(self.port)
        self._cleanups_clients.append(r)
        return r


# --------------------------------------------------------------------------
# CONNACK


class Connack(V5TestCase):
    def test_assigned_client_identifier(self):
        a = self.v5("")
        b = self.v5("")
        ida = a.connack_props.get("AssignedClientIdentifier")
        idb = b.connack_props.get("AssignedClientIdentifier")
        self.assertTrue(ida, "no Assigned Client Identifier for an empty client id: %r" % a.connack_props)
        self.assertTrue(idb)
        self.assertNotEqual(ida, idb, "two clients got the same assigned identifier")
        self.assertTrue(ida.startswith("auto-"), ida)  # auto_id_prefix default of both brokers
        # The assigned identifier is the client's: connecting with it takes the session over.
        c = self.v5(ida)
        self.assertIsNotNone(a.wait_disconnected(), "assigned id did not identify the first client")
        self.assertEqual(b.disconnects.qsize(), 0)
        c.disconnect()

    def test_no_assigned_identifier_when_given(self):
        c = self.v5(unique("given"))
        self.assertNotIn("AssignedClientIdentifier", c.connack_props)

    def test_assigned_identifier_raw(self):
        r = self.raw5()
        sp, reason, props = r.connect5("")
        self.assertEqual((sp, reason), (False, 0))
        self.assertTrue(prop(props, ASSIGNED_CLIENT_ID))

    def test_topic_alias_maximum_default(self):
        c = self.v5()
        self.assertEqual(c.connack_props.get("TopicAliasMaximum"), 10, c.connack_props)


class ConnackConfigured(V5TestCase):
    CONFIG = ("max_topic_alias 3", "max_packet_size 2048", "max_qos 1",
              "retain_available false", "max_keepalive 30")

    def test_connack_reflects_configuration(self):
        c = self.v5(keepalive=60)
        p = c.connack_props
        self.assertEqual(p.get("TopicAliasMaximum"), 3, p)
        self.assertEqual(p.get("MaximumPacketSize"), 2048, p)
        self.assertEqual(p.get("MaximumQoS"), 1, p)
        self.assertEqual(p.get("RetainAvailable"), 0, p)
        self.assertEqual(p.get("ServerKeepAlive"), 30, p)

    def test_subscription_granted_at_most_max_qos(self):
        c = self.v5()
        self.assertEqual(c.subscribe5(self.prefix + "q", qos=2), [1])

    def test_packet_above_maximum_packet_size(self):
        r = self.raw5()
        r.connect5(unique("mx"))
        r.send(publish5_packet(self.prefix + "big", b"B" * 3000, qos=1, mid=1))
        reason, closed = r.expect_disconnect(optional=True)
        self.assertTrue(closed, "connection kept after a packet above Maximum Packet Size")
        if reason is not None:
            self.assertEqual(reason, 0x95, "Packet too large expected")

    def test_topic_alias_above_configured_maximum(self):
        r = self.raw5()
        r.connect5(unique("ta"))
        r.send(publish5_packet(self.prefix + "x", b"4", props=[(TOPIC_ALIAS, 4)]))
        reason, closed = r.expect_disconnect()
        self.assertEqual(reason, 0x94, "alias 4 > Topic Alias Maximum 3: DISCONNECT 0x94 expected")
        self.assertTrue(closed)


# --------------------------------------------------------------------------
# Session Expiry


class SessionExpiry(V5TestCase):
    INTERVAL = 2

    def persistent(self, cid, clean_start=True, interval=None):
        return self.v5(cid, clean_start=clean_start,
                       session_expiry=self.INTERVAL if interval is None else interval)

    def test_resumed_within_interval(self):
        cid = unique("se")
        topic = self.prefix + "se"
        c = self.persistent(cid)
        self.assertFalse(c.session_present)
        self.assertEqual(c.subscribe5(topic, qos=1), [1])
        c.disconnect()
        pub = self.v5()
        for i in range(3):
            pub.publish5(topic, b"queued %d" % i, qos=1)
        c = self.persistent(cid, clean_start=False)
        self.assertTrue(c.session_present, "session not present within the expiry interval")
        got = c.get_n(3)
        self.assertEqual([(m.payload, m.qos) for m in got],
                         [(b"queued %d" % i, 1) for i in range(3)])
        # The subscription is live again.
        pub.publish5(topic, b"live", qos=1)
        self.assertEqual(c.get().payload, b"live")

    def test_resumed_after_abrupt_close(self):
        cid = unique("sk")
        topic = self.prefix + "sk"
        c = self.persistent(cid)
        c.subscribe5(topic, qos=1)
        c.kill()
        self.v5().publish5(topic, b"while away", qos=1)
        c = self.persistent(cid, clean_start=False)
        self.assertTrue(c.session_present)
        self.assertEqual(c.get().payload, b"while away")

    def test_gone_after_interval(self):
        cid = unique("sg")
        topic = self.prefix + "sg"
        c = self.persistent(cid)
        c.subscribe5(topic, qos=1)
        c.disconnect()
        pub = self.v5()
        pub.publish5(topic, b"lost with the session", qos=1)
        time.sleep(self.INTERVAL + 1.5)
        c = self.persistent(cid, clean_start=False)
        self.assertFalse(c.session_present, "session still present after its expiry interval")
        self.assertEqual(c.drain(0.5), [], "messages of an expired session delivered")
        pub.publish5(topic, b"after", qos=1)
        self.assertEqual(c.drain(0.5), [], "subscription of an expired session kept")

    def test_interval_counts_from_disconnect(self):
        cid = unique("sc")
        c = self.persistent(cid)
        time.sleep(self.INTERVAL + 0.5)  # connected longer than the interval
        c.disconnect()
        c = self.persistent(cid, clean_start=False)
        self.assertTrue(c.session_present, "session expired while the client was connected")

    def test_zero_interval_ends_session_at_disconnect(self):
        cid = unique("s0")
        c = self.persistent(cid, interval=0)
        c.subscribe5(self.prefix + "s0", qos=1)
        c.disconnect()
        c = self.persistent(cid, clean_start=False, interval=0)
        self.assertFalse(c.session_present, "Session Expiry Interval 0 kept the session")

    def test_disconnect_sets_interval_to_zero(self):
        cid = unique("sd")
        c = self.persistent(cid, interval=60)
        c.subscribe5(self.prefix + "sd", qos=1)
        c.disconnect5(0, {"SessionExpiryInterval": 0})
        c = self.persistent(cid, clean_start=False, interval=60)
        self.assertFalse(c.session_present, "DISCONNECT with Session Expiry Interval 0 kept the session")

    def test_disconnect_raises_interval(self):
        cid = unique("sr")
        topic = self.prefix + "sr"
        c = self.persistent(cid, interval=1)
        c.subscribe5(topic, qos=1)
        c.disconnect5(0, {"SessionExpiryInterval": 5})
        time.sleep(2.5)
        self.v5().publish5(topic, b"kept longer", qos=1)
        c = self.persistent(cid, clean_start=False, interval=0)
        self.assertTrue(c.session_present, "Session Expiry Interval from DISCONNECT ignored")
        self.assertEqual(c.get().payload, b"kept longer")

    def test_disconnect_cannot_set_interval_after_zero(self):
        # [MQTT-3.14.2-2]: non-zero Session Expiry Interval at DISCONNECT after 0 in
        # CONNECT is a Protocol Error; the session must not be kept.
        cid = unique("sz")
        r = self.raw5()
        r.connect5(cid)
        r.subscribe5(1, [(self.prefix + "sz", 1)])
        r.send(disconnect5_packet(0, [(SESSION_EXPIRY, 60)]))
        self.assertTrue(r.wait_closed(scaled(TIMEOUT)))
        c = self.persistent(cid, clean_start=False, interval=0)
        self.assertFalse(c.session_present, "session kept after an invalid DISCONNECT")

    def test_clean_start_discards_session(self):
        cid = unique("sx")
        topic = self.prefix + "sx"
        c = self.persistent(cid, interval=60)
        c.subscribe5(topic, qos=1)
        c.disconnect()
        self.v5().publish5(topic, b"old", qos=1)
        c = self.persistent(cid, clean_start=True, interval=60)
        self.assertFalse(c.session_present)
        self.assertEqual(c.drain(0.5), [])


# --------------------------------------------------------------------------
# Message Expiry


class MessageExpiry(V5TestCase):
    def test_expires_while_subscriber_offline(self):
        cid = unique("me")
        topic = self.prefix + "me"
        c = self.v5(cid, session_expiry=60)
        c.subscribe5(topic, qos=1)
        c.disconnect()
        pub = self.v5()
        pub.publish5(topic, b"short", qos=1, props={"MessageExpiryInterval": 1})
        pub.publish5(topic, b"forever", qos=1)
        pub.publish5(topic, b"long", qos=1, props={"MessageExpiryInterval": 60})
        sent = time.monotonic()
        time.sleep(2.5)
        c = self.v5(cid, clean_start=False, session_expiry=60)
        got = c.get_n(2)
        elapsed = time.monotonic() - sent
        self.assertEqual(c.drain(0.5), [], "expired message delivered")
        self.assertEqual([m.payload for m in got], [b"forever", b"long"])
        self.assertNotIn("MessageExpiryInterval", got[0].props)
        left = got[1].props.get("MessageExpiryInterval")
        self.assertIsNotNone(left, "remaining Message Expiry Interval not forwarded")
        # 60 s minus the time spent in the queue (at least 2 s).
        self.assertLessEqual(left, 58, "expiry interval not reduced by the time queued")
        self.assertGreaterEqual(left, 60 - int(elapsed) - 2)

    def test_live_delivery_carries_interval(self):
        topic = self.prefix + "ml"
        c = self.v5()
        c.subscribe5(topic, qos=1)
        self.v5().publish5(topic, b"x", qos=1, props={"MessageExpiryInterval": 30})
        m = c.get()
        left = m.props.get("MessageExpiryInterval")
        self.assertIsNotNone(left, m)
        self.assertTrue(28 <= left <= 30, "Message Expiry Interval %r, expected 28..30" % left)

    def test_expires_while_waiting_behind_receive_maximum(self):
        # Queued (onward delivery not started) messages expire too [MQTT-3.3.2-5].
        topic = self.prefix + "mq"
        r = self.raw5()
        r.connect5(unique("mq"), props=[(RECEIVE_MAXIMUM, 1)])
        r.subscribe5(1, [(topic, 1)])
        pub = self.v5()
        pub.publish5(topic, b"first", qos=1)
        pub.publish5(topic, b"expiring", qos=1, props={"MessageExpiryInterval": 1})
        pub.publish5(topic, b"last", qos=1)
        p = r.publish5()
        self.assertEqual(p.payload, b"first")
        time.sleep(2.5)
        r.send(ack5_packet(PUBACK, p.mid))
        if is_mosquitto() and r.quiet(2.0):
            self.skipTest("Mosquitto 2.0.11 drops the expired message but then stalls: the "
                          "next queued message is never sent (a Mosquitto bug)")
        p = Pub5(r.received[0]) if is_mosquitto() else r.publish5()
        self.assertEqual(p.payload, b"last", "message expired in the queue was delivered")
        r.send(ack5_packet(PUBACK, p.mid))
        self.assertTrue(r.quiet(0.5), "%r" % r.received)

    def test_inflight_message_resent_after_expiry(self):
        # Onward delivery had started: the unacknowledged message is re-sent on
        # reconnect [MQTT-4.4.0-1]; a forwarded interval must not have wrapped around.
        cid = unique("mi")
        topic = self.prefix + "mi"
        props = [(SESSION_EXPIRY, 60)]
        r = self.raw5()
        r.connect5(cid, props=props)
        r.subscribe5(1, [(topic, 1)])
        self.v5().publish5(topic, b"in flight", qos=1, props={"MessageExpiryInterval": 1})
        p = r.publish5()
        self.assertLessEqual(prop(p.props, MESSAGE_EXPIRY, 0), 1)
        r.close()  # no PUBACK
        time.sleep(2.5)
        r = self.raw5()
        sp, _, _ = r.connect5(cid, clean=False, props=props)
        self.assertTrue(sp)
        packets = [] if r.quiet(1.0) else r.received
        for q in packets:
            self.assertEqual(q.type, PUBLISH, "%r" % packets)
            q = Pub5(q)
            self.assertEqual((q.payload, q.mid, q.dup), (b"in flight", p.mid, True), q)
            self.assertLessEqual(prop(q.props, MESSAGE_EXPIRY, 0), 1, "expiry interval wrapped: %r" % q)
            r.send(ack5_packet(PUBACK, q.mid))
        if is_mosquitto() and not packets:
            self.skipTest("Mosquitto 2.0.11 drops an unacknowledged message that expired while "
                          "the client was away instead of re-sending it")
        self.assertEqual(len(packets), 1, "unacknowledged message not re-sent after its expiry")
        r.send(disconnect5_packet(0, [(SESSION_EXPIRY, 0)]))

    def test_retained_message_expires(self):
        topic = self.prefix + "mr"
        self.v5().publish5(topic, b"soon gone", qos=1, retain=True,
                           props={"MessageExpiryInterval": 1})
        c = self.v5()
        c.subscribe5(topic, qos=1)
        m = c.get()
        self.assertEqual((m.payload, m.retain), (b"soon gone", True))
        self.assertLessEqual(m.props.get("MessageExpiryInterval", 99), 1)
        time.sleep(2.5)
        late = self.v5()
        late.subscribe5(topic, qos=1)
        self.assertEqual(late.drain(0.5), [], "expired retained message still sent")


# --------------------------------------------------------------------------
# Will Delay


class WillDelay(V5TestCase):
    def watcher(self, topic):
        w = self.v5()
        w.subscribe5(topic, qos=1)
        return w

    def will_client(self, cid, topic, delay, session_expiry=30, clean_start=True, payload=b"will"):
        return self.v5(cid, clean_start=clean_start, session_expiry=session_expiry,
                       will=(topic, payload, 1), will_props={"WillDelayInterval": delay})

    def test_published_after_delay(self):
        topic = self.prefix + "wd"
        w = self.watcher(topic)
        c = self.will_client(unique("wd"), topic, 2)
        c.kill()
        lost = time.monotonic()
        self.assertEqual(w.drain(1.2), [], "will published before its delay")
        m = w.get(4)
        self.assertEqual(m.payload, b"will")
        self.assertGreaterEqual(m.time - lost, 1.5, "will published too early")

    def test_cancelled_by_reconnect(self):
        cid = unique("wc")
        topic = self.prefix + "wc"
        w = self.watcher(topic)
        c = self.will_client(cid, topic, 2)
        c.kill()
        time.sleep(0.5)
        c = self.will_client(cid, topic, 2, clean_start=False)
        self.assertTrue(c.session_present)
        self.assertEqual(w.drain(3.0), [], "will published although the client came back in time")
        c.disconnect()  # normal DISCONNECT: no will either
        self.assertEqual(w.drain(0.5), [])

    def test_session_end_publishes_will_before_delay(self):
        # The will is sent when the delay passes or the session ends, whichever is first.
        topic = self.prefix + "ws"
        w = self.watcher(topic)
        c = self.will_client(unique("ws"), topic, 30, session_expiry=1)
        c.kill()
        m = w.get(5)
        self.assertEqual(m.payload, b"will")

    def test_takeover_within_delay_no_will(self):
        # [MQTT-3.1.3-9]: a new connection to the session before the delay has passed
        # means no will, also when it takes over a live connection.
        cid = unique("wt")
        topic = self.prefix + "wt"
        w = self.watcher(topic)
        self.will_client(cid, topic, 2)
        c2 = self.will_client(cid, topic, 2, clean_start=False, payload=b"second will")
        self.assertTrue(c2.session_present)
        self.assertEqual(w.drain(3.0), [], "will published although the session was taken over")
        c2.disconnect()
        self.assertEqual(w.drain(0.5), [])

    def test_no_delay_immediate(self):
        topic = self.prefix + "wn"
        w = self.watcher(topic)
        c = self.will_client(unique("wn"), topic, 0)
        c.kill()
        self.assertEqual(w.get(2).payload, b"will")

    def test_disconnect_with_will_message(self):
        topic = self.prefix + "w4"
        w = self.watcher(topic)
        c = self.will_client(unique("w4"), topic, 0, session_expiry=0)
        c.disconnect5(0x04)
        self.assertEqual(w.get().payload, b"will", "DISCONNECT 0x04 did not publish the will")

    def test_normal_disconnect_no_will(self):
        topic = self.prefix + "w0"
        w = self.watcher(topic)
        c = self.will_client(unique("w0"), topic, 0, session_expiry=0)
        c.disconnect5(0)
        self.assertEqual(w.drain(1.0), [])

    def test_will_properties_forwarded(self):
        topic = self.prefix + "wp"
        w = self.watcher(topic)
        c = self.v5(unique("wp"), will=(topic, b"{}", 1),
                    will_props={"ContentType": "application/json",
                                "ResponseTopic": self.prefix + "reply",
                                "CorrelationData": b"\x00\x01will",
                                "MessageExpiryInterval": 100,
                                "UserProperty": [("k1", "v1"), ("k2", "v2")]})
        c.kill()
        m = w.get()
        self.assertTrue(97 <= m.props.get("MessageExpiryInterval", 0) <= 100, m)
        self.assertEqual(m.props.get("ContentType"), "application/json", m)
        self.assertEqual(m.props.get("ResponseTopic"), self.prefix + "reply", m)
        self.assertEqual(m.props.get("CorrelationData"), b"\x00\x01will", m)
        self.assertEqual(m.props.get("UserProperty"), [("k1", "v1"), ("k2", "v2")], m)


# --------------------------------------------------------------------------
# Receive Maximum, Maximum Packet Size


class FlowControl(V5TestCase):
    def raw_subscriber(self, topic, qos, props):
        r = self.raw5()
        r.connect5(unique("rm"), props=props)
        self.assertEqual(r.subscribe5(1, [(topic, qos)]), [qos])
        return r

    def test_receive_maximum_qos1(self):
        topic = self.prefix + "rm1"
        r = self.raw_subscriber(topic, 1, [(RECEIVE_MAXIMUM, 2)])
        pub = self.v5()
        for i in range(6):
            pub.publish5(topic, b"%d" % i, qos=1)
        first = [r.publish5() for _ in range(2)]
        self.assertEqual([p.payload for p in first], [b"0", b"1"])
        self.assertTrue(r.quiet(1.0), "more than Receive Maximum (2) unacknowledged: %r" % r.received)
        if is_mosquitto():
            self.skipTest("Mosquitto 2.0.11 sends two queued messages per PUBACK: after the "
                          "first PUBACK 3 are unacknowledged with Receive Maximum 2 (a Mosquitto bug)")
        r.send(ack5_packet(PUBACK, first[0].mid))
        third = r.publish5()
        self.assertEqual(third.payload, b"2")
        self.assertTrue(r.quiet(0.5), "window exceeded after one PUBACK: %r" % r.received)
        got = [third]
        for p in first[1:] + [third]:
            r.send(ack5_packet(PUBACK, p.mid))
        while len(got) < 4:
            p = r.publish5()
            got.append(p)
            r.send(ack5_packet(PUBACK, p.mid))
        self.assertEqual([p.payload for p in got], [b"2", b"3", b"4", b"5"])

    def test_receive_maximum_qos2_until_pubcomp(self):
        topic = self.prefix + "rm2"
        r = self.raw_subscriber(topic, 2, [(RECEIVE_MAXIMUM, 1)])
        pub = self.v5()
        for i in range(2):
            pub.publish5(topic, b"%d" % i, qos=2)
        p = r.publish5()
        self.assertEqual((p.payload, p.qos), (b"0", 2))
        self.assertTrue(r.quiet(0.7), "second QoS 2 message sent before the first was acknowledged")
        r.send(ack5_packet(PUBREC, p.mid))
        rel = r.expect(PUBREL)
        self.assertEqual(ack_reason(rel)[0], p.mid)
        self.assertTrue(r.quiet(0.7), "QoS 2 message sent before PUBCOMP freed the window: %r"
                        % r.received)
        r.send(ack5_packet(PUBCOMP, p.mid))
        p2 = r.publish5()
        self.assertEqual(p2.payload, b"1")

    def test_error_acks_complete_the_flow(self):
        # A PUBACK, or a PUBREC with a reason >= 0x80, ends the exchange and frees the
        # Receive Maximum window; no PUBREL follows such a PUBREC.
        topic = self.prefix + "ea"
        r = self.raw_subscriber(topic, 2, [(RECEIVE_MAXIMUM, 1)])
        pub = self.v5()
        pub.publish5(topic, b"q1", qos=1)
        pub.publish5(topic, b"q2", qos=2)
        pub.publish5(topic, b"q2 again", qos=2)
        p1 = r.publish5()
        self.assertEqual(p1.payload, b"q1")
        r.send(ack5_packet(PUBACK, p1.mid, 0x80))
        p2 = r.publish5()
        self.assertEqual((p2.payload, p2.qos), (b"q2", 2))
        r.send(ack5_packet(PUBREC, p2.mid, 0x80))
        p3 = r.publish5()
        self.assertEqual((p3.payload, p3.qos), (b"q2 again", 2),
                         "PUBREC 0x80 did not free the window (or PUBREL sent)")
        r.send(ack5_packet(PUBREC, p3.mid))
        self.assertEqual(ack_reason(r.expect(PUBREL))[0], p3.mid)
        r.send(ack5_packet(PUBCOMP, p3.mid))
        self.assertTrue(r.quiet(0.5), "%r" % r.received)

    def test_client_maximum_packet_size(self):
        # Messages too large for the client are not sent to it (dropped for it only).
        topic = self.prefix + "mp"
        r = self.raw_subscriber(topic, 1, [(MAXIMUM_PACKET_SIZE, 200)])
        other = self.v5()
        other.subscribe5(topic, qos=1)
        pub = self.v5()
        pub.publish5(topic, b"small", qos=1)
        pub.publish5(topic, b"L" * 500, qos=1)
        pub.publish5(topic, b"small again", qos=1)
        got = []
        for _ in range(2):
            p = r.publish5()
            got.append(p.payload)
            r.send(ack5_packet(PUBACK, p.mid))
        self.assertEqual(got, [b"small", b"small again"])
        self.assertTrue(r.quiet(0.5), "%r" % r.received)
        self.assertEqual([m.payload for m in other.get_n(3)], [b"small", b"L" * 500, b"small again"])


# --------------------------------------------------------------------------
# Topic aliases


class TopicAlias(V5TestCase):
    def test_alias_from_client(self):
        t1, t2 = self.prefix + "alias/one", self.prefix + "alias/two"
        s5 = self.v5()
        s5.subscribe5(self.prefix + "alias/#", qos=1)
        s3 = self.v3()
        s3.subscribe(self.prefix + "alias/#", 1)
        pub = self.v5()
        pub.publish5(t1, b"a", qos=1, props={"TopicAlias": 1})
        pub.publish5("", b"b", qos=1, props={"TopicAlias": 1})
        pub.publish5("", b"c", qos=0, props={"TopicAlias": 1})
        pub.publish5(t2, b"d", qos=1, props={"TopicAlias": 1})  # remapped
        pub.publish5("", b"e", qos=1, props={"TopicAlias": 1})
        pub.publish5(t1, b"f", qos=1, props={"TopicAlias": 2})
        pub.publish5("", b"g", qos=1, props={"TopicAlias": 2})
        pub.publish5("", b"h", qos=1, props={"TopicAlias": 1})
        expected = [(t1, b"a"), (t1, b"b"), (t1, b"c"), (t2, b"d"), (t2, b"e"), (t1, b"f"),
                    (t1, b"g"), (t2, b"h")]
        got5 = s5.get_n(len(expected))
        self.assertEqual([(m.topic, m.payload) for m in got5], expected)
        for m in got5:
            self.assertNotIn("TopicAlias", m.props, "client did not allow aliases: %r" % m)
        got3 = s3.get_n(len(expected))
        self.assertEqual([(m.topic, m.payload) for m in got3], expected)

    def test_retained_via_alias(self):
        topic = self.prefix + "ret"
        pub = self.v5()
        pub.publish5(topic, b"first", qos=1, retain=True, props={"TopicAlias": 4})
        pub.publish5("", b"second", qos=1, retain=True,
                     props={"TopicAlias": 4, "UserProperty": [("via", "alias")]})
        c = self.v5()
        c.subscribe5(self.prefix + "#", qos=1)
        m = c.get()
        self.assertEqual((m.topic, m.payload, m.retain, m.props.get("UserProperty")),
                         (topic, b"second", True, [("via", "alias")]))
        self.assertEqual(c.drain(0.3), [])
        pub.publish5("", b"", qos=1, retain=True, props={"TopicAlias": 4})  # clear
        late = self.v5()
        late.subscribe5(topic, qos=1)
        self.assertEqual(late.drain(0.5), [], "retained message not cleared through the alias")

    def test_alias_above_maximum(self):
        r = self.raw5()
        r.connect5(unique("ar"))
        r.send(publish5_packet(self.prefix + "x", b"1", props=[(TOPIC_ALIAS, 11)]))
        reason, closed = r.expect_disconnect()
        self.assertEqual(reason, 0x94, "Topic Alias 11 > maximum 10: DISCONNECT 0x94 expected")
        self.assertTrue(closed)

    def test_alias_zero(self):
        # [MQTT-3.3.2-8] forbids alias 0 without naming a reason code: mqttb says
        # Protocol Error (0x82), Mosquitto Malformed Packet (0x81); 0x94 would fit too.
        r = self.raw5()
        r.connect5(unique("az"))
        r.send(publish5_packet(self.prefix + "x", b"1", props=[(TOPIC_ALIAS, 0)]))
        reason, closed = r.expect_disconnect()
        self.assertIn(reason, (0x81, 0x82, 0x94), "Topic Alias 0: reason %#x" % reason)
        self.assertTrue(closed)

    def test_unknown_alias_with_empty_topic(self):
        r = self.raw5()
        r.connect5(unique("au"))
        r.send(publish5_packet("", b"1", props=[(TOPIC_ALIAS, 5)]))
        reason, closed = r.expect_disconnect()
        self.assertEqual(reason, 0x82, "empty topic with an unmapped alias: Protocol Error expected")
        self.assertTrue(closed)

    def test_aliases_are_per_connection(self):
        topic = self.prefix + "pc"
        r = self.raw5()
        r.connect5(unique("ap"))
        r.send(publish5_packet(topic, b"1", props=[(TOPIC_ALIAS, 1)]))
        r.send(DISCONNECT_V5)
        r.wait_closed()
        r = self.raw5()
        r.connect5(unique("ap"))
        r.send(publish5_packet("", b"2", props=[(TOPIC_ALIAS, 1)]))
        reason, _ = r.expect_disconnect()
        self.assertEqual(reason, 0x82)

    def resolve(self, r, n, maximum):
        aliases = {}
        out = []
        for _ in range(n):
            p = r.publish5()
            alias = prop(p.props, TOPIC_ALIAS)
            if alias is not None:
                self.assertTrue(1 <= alias <= maximum, "outbound alias %d above client's maximum %d"
                                % (alias, maximum))
                if p.topic:
                    aliases[alias] = p.topic
                else:
                    self.assertIn(alias, aliases, "empty topic with an alias never set: %r" % p)
            else:
                self.assertTrue(p.topic, "empty topic without alias: %r" % p)
            out.append((aliases[alias] if alias is not None and not p.topic else p.topic, p))
            if p.qos:
                r.send(ack5_packet(PUBACK, p.mid))
        return out

    def test_outbound_aliases_resolve(self):
        topics = [self.prefix + "out/%d" % i for i in range(3)]
        r = self.raw5()
        r.connect5(unique("ao"), props=[(TOPIC_ALIAS_MAXIMUM, 2)])
        r.subscribe5(1, [(self.prefix + "out/#", 1)])
        pub = self.v5()
        sent = []
        for rnd in range(3):
            for t in topics:
                pub.publish5(t, b"%d" % rnd, qos=1)
                sent.append((t, b"%d" % rnd))
        got = self.resolve(r, len(sent), 2)
        self.assertEqual([(t, p.payload) for t, p in got], sent)
        if not is_mosquitto():
            # mqttb assigns aliases when the client allows them: repeats go without the name.
            self.assertTrue(any(not p.topic for _, p in got),
                            "mqttb never used an outbound alias: %r" % [p for _, p in got])

    def test_outbound_aliases_mixed_subscribers(self):
        # One message goes to subscribers that allow aliases (with different maxima)
        # and to ones that do not: each must get a frame valid for its own connection.
        ta, tb = self.prefix + "mix/a", self.prefix + "mix/b"
        flt = self.prefix + "mix/+"
        big = self.raw5()
        big.connect5(unique("a5"), props=[(TOPIC_ALIAS_MAXIMUM, 5)])
        big.subscribe5(1, [(flt, 1)])
        none = self.raw5()
        none.connect5(unique("a0"))
        none.subscribe5(1, [(flt, 1)], props=[(SUBSCRIPTION_ID, 3)])
        one = self.raw5()
        one.connect5(unique("a1"), props=[(TOPIC_ALIAS_MAXIMUM, 1)])
        one.subscribe5(1, [(flt, 1)])
        v3 = self.v3()
        v3.subscribe(flt, 1)
        pub = self.v5()
        sent = []
        for rnd in range(3):
            for t in (ta, tb):
                pub.publish5(t, b"%s%d" % (t[-1:].encode(), rnd), qos=1)
                sent.append((t, b"%s%d" % (t[-1:].encode(), rnd)))
        for name, r, maximum in (("max 5", big, 5), ("max 1", one, 1), ("none", none, 0)):
            with self.subTest(subscriber=name):
                got = self.resolve(r, len(sent), maximum)
                self.assertEqual([(t, p.payload) for t, p in got], sent)
                if maximum == 0:
                    self.assertTrue(all(prop(p.props, TOPIC_ALIAS) is None for _, p in got),
                                    "alias sent to a client that allows none: %r" % got)
                    self.assertTrue(all(prop_all(p.props, SUBSCRIPTION_ID) == [3] for _, p in got),
                                    "%r" % got)
                else:
                    self.assertTrue(all(prop(p.props, SUBSCRIPTION_ID) is None for _, p in got),
                                    "another subscriber's identifier leaked: %r" % got)
        self.assertEqual([(m.topic, m.payload) for m in v3.get_n(len(sent))], sent)

    def test_outbound_aliases_reset_on_reconnect(self):
        # Aliases belong to one network connection: a resumed session starts without any,
        # also for the re-sent unacknowledged message.
        cid = unique("ax")
        topic = self.prefix + "rc"
        props = [(TOPIC_ALIAS_MAXIMUM, 5), (SESSION_EXPIRY, 60)]
        r = self.raw5()
        r.connect5(cid, props=props)
        r.subscribe5(1, [(topic, 1)])
        pub = self.v5()
        for i in range(3):
            pub.publish5(topic, b"%d" % i, qos=1)
        self.resolve(r, 2, 5)
        unacked = r.publish5()
        self.assertEqual(unacked.payload, b"2")
        r.close()  # no PUBACK
        pub.publish5(topic, b"3", qos=1)
        r = self.raw5()
        sp, _, _ = r.connect5(cid, clean=False, props=props)
        self.assertTrue(sp)
        got = self.resolve(r, 2, 5)
        self.assertEqual([(t, p.payload) for t, p in got], [(topic, b"2"), (topic, b"3")])
        self.assertTrue(got[0][1].dup, "re-sent PUBLISH without DUP")
        r.send(disconnect5_packet(0, [(SESSION_EXPIRY, 0)]))

    def test_no_outbound_alias_without_maximum(self):
        topic = self.prefix + "noalias"
        r = self.raw5()
        r.connect5(unique("an"))
        r.subscribe5(1, [(topic, 0)])
        pub = self.v5()
        for i in range(3):
            pub.publish5(topic, b"%d" % i)
        for i in range(3):
            p = r.publish5()
            self.assertEqual((p.topic, prop(p.props, TOPIC_ALIAS)), (topic, None))


DISCONNECT_V5 = disconnect5_packet(0)


# --------------------------------------------------------------------------
# Subscription options


class SubscriptionOptions(V5TestCase):
    def test_no_local(self):
        topic = self.prefix + "nl"
        me = self.v5()
        me.subscribe5(topic, qos=1, no_local=True)
        watcher = self.v5()
        watcher.subscribe5(topic, qos=1)
        other = self.v5()
        me.publish5(topic, b"mine", qos=1)
        other.publish5(topic, b"theirs", qos=1)
        self.assertEqual([m.payload for m in me.get_n(1) + me.drain(0.5)], [b"theirs"],
                         "No Local subscriber got its own message")
        self.assertEqual(sorted(m.payload for m in watcher.get_n(2)), [b"mine", b"theirs"])

    def test_no_local_off_gets_own(self):
        topic = self.prefix + "nl0"
        me = self.v5()
        me.subscribe5(topic, qos=1, no_local=False)
        me.publish5(topic, b"echo", qos=1)
        self.assertEqual(me.get().payload, b"echo")

    def test_retain_as_published_live(self):
        topic = self.prefix + "rap"
        rap = self.v5()
        rap.subscribe5(topic, qos=1, retain_as_published=True)
        plain = self.v5()
        plain.subscribe5(topic, qos=1)
        pub = self.v5()
        pub.publish5(topic, b"kept", qos=1, retain=True)
        pub.publish5(topic, b"not kept", qos=1, retain=False)
        self.assertEqual([(m.payload, m.retain) for m in rap.get_n(2)],
                         [(b"kept", True), (b"not kept", False)])
        self.assertEqual([(m.payload, m.retain) for m in plain.get_n(2)],
                         [(b"kept", False), (b"not kept", False)])
        pub.publish5(topic, b"", qos=1, retain=True)  # clear

    def test_retained_on_subscribe_always_flagged(self):
        topic = self.prefix + "rs"
        self.v5().publish5(topic, b"r", qos=1, retain=True)
        for rap in (False, True):
            with self.subTest(retain_as_published=rap):
                c = self.v5()
                c.subscribe5(topic, qos=1, retain_as_published=rap)
                m = c.get()
                self.assertEqual((m.payload, m.retain), (b"r", True))

    def test_retain_handling(self):
        topic = self.prefix + "rh"
        self.v5().publish5(topic, b"retained", qos=1, retain=True)
        # 0: on every subscribe, also a repeated one.
        c = self.v5()
        c.subscribe5(topic, qos=1, retain_handling=0)
        self.assertEqual(c.get().payload, b"retained")
        c.subscribe5(topic, qos=1, retain_handling=0)
        self.assertEqual(c.get().payload, b"retained", "RH 0: not re-sent on re-subscribe")
        # 1: only when the subscription is new.
        c = self.v5()
        c.subscribe5(topic, qos=1, retain_handling=1)
        self.assertEqual(c.get().payload, b"retained", "RH 1: not sent for a new subscription")
        c.subscribe5(topic, qos=1, retain_handling=1)
        self.assertEqual(c.drain(0.5), [], "RH 1: re-sent for an existing subscription")
        # 2: never.
        c = self.v5()
        c.subscribe5(topic, qos=1, retain_handling=2)
        self.assertEqual(c.drain(0.5), [], "RH 2: retained message sent")
        # The subscription itself works.
        self.v5().publish5(topic, b"live", qos=1)
        self.assertEqual([(m.payload, m.retain) for m in c.get_n(1)], [(b"live", False)])


# --------------------------------------------------------------------------
# Subscription Identifiers


class SubscriptionIdentifiers(V5TestCase):
    def collect(self, c, n):
        return c.get_n(n) + c.drain(0.5)

    def assert_ids(self, msgs, payload, ids):
        """mqttb sends one copy carrying every matching identifier; the specification
        also allows one copy per subscription [MQTT-3.3.4-3..5], which Mosquitto does."""
        self.assertTrue(msgs, "no message")
        self.assertTrue(all(m.payload == payload for m in msgs), msgs)
        if is_mosquitto():
            got = sorted(i for m in msgs for i in m.sub_ids)
        else:
            self.assertEqual(len(msgs), 1, "overlapping subscriptions: one copy expected: %r" % msgs)
            got = msgs[0].sub_ids
        self.assertEqual(got, sorted(ids), msgs)

    def test_overlapping_subscriptions(self):
        p = self.prefix
        c = self.v5()
        c.subscribe5(p + "a/+", qos=1, sub_id=1)
        c.subscribe5(p + "#", qos=1, sub_id=2)
        c.subscribe5(p + "nid/#", qos=1)
        pub = self.v5()
        pub.publish5(p + "a/b", b"both", qos=1)
        self.assert_ids(self.collect(c, 1), b"both", [1, 2])
        pub.publish5(p + "x", b"one", qos=1)
        self.assert_ids(self.collect(c, 1), b"one", [2])
        # A subscription without identifier adds none.
        pub.publish5(p + "nid/x", b"with none", qos=1)
        msgs = self.collect(c, 1)
        self.assert_ids(msgs, b"with none", [2])

    def test_identifier_replaced_on_resubscribe(self):
        topic = self.prefix + "r"
        c = self.v5()
        c.subscribe5(topic, qos=1, sub_id=5)
        c.subscribe5(topic, qos=1, sub_id=268435455)  # largest Variable Byte Integer
        self.v5().publish5(topic, b"x", qos=1)
        self.assert_ids(self.collect(c, 1), b"x", [268435455])
        c.subscribe5(topic, qos=1)  # no identifier any more
        self.v5().publish5(topic, b"y", qos=1)
        m = self.collect(c, 1)
        self.assertEqual([(x.payload, x.sub_ids) for x in m], [(b"y", [])])

    def test_identifier_kept_in_session(self):
        cid = unique("si")
        topic = self.prefix + "si"
        c = self.v5(cid, session_expiry=60)
        c.subscribe5(topic, qos=1, sub_id=77)
        c.disconnect()
        self.v5().publish5(topic, b"offline", qos=1)
        c = self.v5(cid, clean_start=False, session_expiry=60)
        m = c.get()
        self.assertEqual((m.payload, m.sub_ids), (b"offline", [77]))
        c.disconnect5(0, {"SessionExpiryInterval": 0})

    def test_identifier_zero_is_protocol_error(self):
        r = self.raw5()
        r.connect5(unique("s0"))
        r.send(subscribe5_packet(1, [(self.prefix + "z", 1)], props=[(SUBSCRIPTION_ID, 0)]))
        reason, closed = r.expect_disconnect(optional=is_mosquitto())
        self.assertTrue(closed)
        if reason is not None:
            # Mosquitto 2.0.11 says Malformed Packet (0x81).
            self.assertIn(reason, (0x81, 0x82) if is_mosquitto() else (0x82,),
                          "Subscription Identifier 0: Protocol Error expected")

    def test_retained_carries_identifier(self):
        topic = self.prefix + "sr"
        self.v5().publish5(topic, b"ret", qos=1, retain=True)
        c = self.v5()
        c.subscribe5(topic, qos=1, sub_id=9)
        m = c.get()
        self.assertEqual((m.payload, m.retain, m.sub_ids), (b"ret", True, [9]))


# --------------------------------------------------------------------------
# Shared subscriptions


class SharedSubscriptions(V5TestCase):
    def members(self, flt, n, qos=1):
        out = []
        for _ in range(n):
            c = self.v5()
            self.assertEqual(c.subscribe5(flt, qos=qos), [qos])
            out.append(c)
        return out

    def gather(self, clients, total):
        deadline = time.monotonic() + scaled(TIMEOUT)
        got = [[] for _ in clients]
        while sum(map(len, got)) < total and time.monotonic() < deadline:
            for i, c in enumerate(clients):
                got[i] += c.drain(0.05)
        for i, c in enumerate(clients):
            got[i] += c.drain(0.3 if i == 0 else 0)
        return [[m.payload for m in g] for g in got]

    def test_round_robin_three_members(self):
        topic = self.prefix + "t"
        members = self.members("$share/g/" + topic, 3)
        pub = self.v5()
        sent = [b"m%d" % i for i in range(9)]
        for m in sent:
            pub.publish5(topic, m, qos=1)
        got = self.gather(members, 9)
        flat = [p for g in got for p in g]
        self.assertEqual(sorted(flat), sorted(sent), "lost or duplicated: %r" % got)
        for g in got:
            self.assertTrue(g, "a member got nothing: %r" % got)
            self.assertEqual(g, sorted(g, key=sent.index), "order per member: %r" % got)
        self.assertEqual([len(g) for g in got], [3, 3, 3], "not round robin: %r" % got)

    def test_groups_and_plain_subscribers(self):
        topic = self.prefix + "gp"
        g1 = self.members("$share/one/" + topic, 2)
        g2 = self.members("$share/two/" + topic, 2)
        plain = self.v5()
        plain.subscribe5(topic, qos=1)
        pub = self.v5()
        sent = [b"%d" % i for i in range(6)]
        for m in sent:
            pub.publish5(topic, m, qos=1)
        for g in (g1, g2):
            got = self.gather(g, 6)
            self.assertEqual(sorted(p for x in got for p in x), sorted(sent), got)
        self.assertEqual([m.payload for m in plain.get_n(6)], sent)

    def test_wildcard_share_and_mixed_versions(self):
        topic = self.prefix + "w/x"
        members = self.members("$share/gw/" + self.prefix + "w/+", 2)
        v3 = self.v3()
        self.assertEqual(v3.subscribe("$share/gw/" + self.prefix + "w/+", 1), [1])
        members.append(v3)
        pub = self.v5()
        sent = [b"%d" % i for i in range(6)]
        for m in sent:
            pub.publish5(topic, m, qos=1)
        got = self.gather(members, 6)
        self.assertEqual(sorted(p for g in got for p in g), sorted(sent), got)
        self.assertTrue(all(got), "a member got nothing: %r" % got)

    def test_member_leaving(self):
        topic = self.prefix + "ml"
        flt = "$share/gl/" + topic
        a, b, c = self.members(flt, 3)
        self.assertEqual(b.unsubscribe5(flt), [0])
        pub = self.v5()
        sent = [b"%d" % i for i in range(4)]
        for m in sent:
            pub.publish5(topic, m, qos=1)
        got = self.gather([a, c], 4)
        self.assertEqual(sorted(got[0] + got[1]), sent, got)
        self.assertEqual(b.drain(0.3), [], "unsubscribed member still served")
        a.disconnect()
        for i in range(4, 8):
            pub.publish5(topic, b"%d" % i, qos=1)
        self.assertEqual([m.payload for m in c.get_n(4)], [b"4", b"5", b"6", b"7"],
                         "the remaining member did not get everything")
        self.assertEqual(b.drain(0.3), [])

    def test_inflight_message_moves_when_member_session_ends(self):
        # MQTT 5 4.8.2: if a member's session ends before it acknowledged a message,
        # the Server SHOULD send it to another member.
        topic = self.prefix + "mv"
        flt = "$share/gm/" + topic
        a = self.raw5()
        a.connect5(unique("ma"))  # Session Expiry 0: the session ends with the connection
        a.subscribe5(1, [(flt, 1)])
        b = self.v5()
        b.subscribe5(flt, qos=1)
        pub = self.v5()
        pub.publish5(topic, b"x", qos=1)
        pub.publish5(topic, b"y", qos=1)
        p = a.publish5()  # one of the two, not acknowledged
        a.close()
        got = sorted(m.payload for m in b.get_n(1) + b.drain(1.0))
        if is_mosquitto() and got != [b"x", b"y"]:
            self.skipTest("a SHOULD; Mosquitto 2.0.11 drops the message (other member got %r)" % got)
        self.assertEqual(got, [b"x", b"y"], "message in flight to a departed member lost (or "
                         "duplicated); the departed member had %r" % p.payload)

    def test_connected_members_preferred(self):
        topic = self.prefix + "off"
        flt = "$share/go/" + topic
        cid = unique("mo")
        off = self.v5(cid, session_expiry=60)
        off.subscribe5(flt, qos=1)
        off.disconnect()
        on = self.v5()
        on.subscribe5(flt, qos=1)
        pub = self.v5()
        for i in range(4):
            pub.publish5(topic, b"%d" % i, qos=1)
        got_on = [m.payload for m in on.drain(1.0)]
        off = self.v5(cid, clean_start=False, session_expiry=0)
        got_off = [m.payload for m in off.drain(0.7)]
        self.assertEqual(sorted(got_on + got_off), [b"0", b"1", b"2", b"3"],
                         "lost or duplicated: connected %r, offline %r" % (got_on, got_off))
        if is_mosquitto():
            self.skipTest("the specification leaves the choice of member open; Mosquitto 2.0.11 "
                          "also queues for offline members (connected %r, offline %r)"
                          % (got_on, got_off))
        self.assertEqual(got_on, [b"0", b"1", b"2", b"3"],
                         "mqttb prefers connected members: offline member got %r" % got_off)

    def test_no_local_on_shared_is_protocol_error(self):
        # [MQTT-3.8.3-4]
        r = self.raw5()
        r.connect5(unique("nl"))
        r.send(subscribe5_packet(1, [("$share/gn/" + self.prefix + "x", 1 | 4)]))
        p = r.read_packet()
        if is_mosquitto() and p is not None and p.type == SUBACK:
            self.skipTest("Mosquitto 2.0.11 accepts No Local on a shared subscription (SUBACK %r)"
                          % sub_reasons(p)[2])
        self.assertIsNotNone(p, "connection closed without DISCONNECT")
        self.assertEqual(p.type, DISCONNECT, "No Local on a shared subscription: %r" % p)
        self.assertEqual(disconnect_reason(p)[0], 0x82)
        self.assertTrue(r.wait_closed(scaled(TIMEOUT)))

    def test_no_retained_messages_for_shared(self):
        # MQTT 5 3.3.1.3: retained messages are sent when a new *non-shared* subscription
        # is made.
        if is_mosquitto():
            self.skipTest("Mosquitto 2.0.11 sends retained messages to new shared subscriptions")
        topic = self.prefix + "sr"
        self.v5().publish5(topic, b"retained", qos=1, retain=True)
        c = self.v5()
        c.subscribe5("$share/gr/" + topic, qos=1)
        self.assertEqual(c.drain(0.7), [], "retained message sent to a shared subscription")
        plain = self.v5()
        plain.subscribe5(topic, qos=1)
        self.assertEqual(plain.get().payload, b"retained")


# --------------------------------------------------------------------------
# Request/response, user properties, content type, payload format


class PublishProperties(V5TestCase):
    def test_request_response(self):
        req_topic = self.prefix + "req"
        resp_topic = self.prefix + "resp/" + unique("r")
        responder = self.v5()
        responder.subscribe5(req_topic, qos=1)
        requester = self.v5()
        requester.subscribe5(resp_topic, qos=1)
        corr = b"\x00\xffcorr\x01"
        requester.publish5(req_topic, b"question", qos=1,
                           props={"ResponseTopic": resp_topic, "CorrelationData": corr})
        q = responder.get()
        self.assertEqual((q.payload, q.props.get("ResponseTopic"), q.props.get("CorrelationData")),
                         (b"question", resp_topic, corr))
        responder.publish5(q.props["ResponseTopic"], b"answer", qos=1,
                           props={"CorrelationData": q.props["CorrelationData"]})
        a = requester.get()
        self.assertEqual((a.topic, a.payload, a.props.get("CorrelationData")),
                         (resp_topic, b"answer", corr))

    def test_user_properties_in_order(self):
        topic = self.prefix + "up"
        c = self.v5()
        c.subscribe5(topic, qos=2)
        ups = [("a", "1"), ("b", "2"), ("a", "3"), ("ünï", "wert mit leerzeichen"), ("", ""),
               ("z", "last")]
        pub = self.v5()
        for qos in (0, 1, 2):
            pub.publish5(topic, b"q%d" % qos, qos=qos, props={"UserProperty": list(ups)})
            m = c.get()
            self.assertEqual(m.payload, b"q%d" % qos)
            self.assertEqual(m.props.get("UserProperty"), ups, "QoS %d" % qos)

    def test_user_properties_on_retained_and_queued(self):
        topic = self.prefix + "uq"
        ups = [("x", "1"), ("y", "2")]
        self.v5().publish5(topic, b"r", qos=1, retain=True, props={"UserProperty": list(ups)})
        c = self.v5()
        c.subscribe5(topic, qos=1)
        self.assertEqual(c.get().props.get("UserProperty"), ups, "retained message lost its properties")
        cid = unique("uq")
        s = self.v5(cid, session_expiry=60)
        s.subscribe5(topic, qos=1, retain_handling=2)
        s.disconnect()
        self.v5().publish5(topic, b"q", qos=1, props={"UserProperty": list(ups), "ContentType": "t/p"})
        s = self.v5(cid, clean_start=False, session_expiry=60)
        m = s.get()
        self.assertEqual((m.payload, m.props.get("UserProperty"), m.props.get("ContentType")),
                         (b"q", ups, "t/p"))
        s.disconnect5(0, {"SessionExpiryInterval": 0})

    def test_content_type_and_payload_format(self):
        topic = self.prefix + "ct"
        c = self.v5()
        c.subscribe5(topic, qos=1)
        pub = self.v5()
        pub.publish5(topic, "grüße".encode(), qos=1,
                     props={"ContentType": "text/plain; charset=utf-8", "PayloadFormatIndicator": 1})
        pub.publish5(topic, b"\x00\xff", qos=1, props={"PayloadFormatIndicator": 0})
        m1, m2 = c.get_n(2)
        self.assertEqual((m1.props.get("ContentType"), m1.props.get("PayloadFormatIndicator")),
                         ("text/plain; charset=utf-8", 1))
        self.assertEqual(m2.payload, b"\x00\xff")
        self.assertEqual(m2.props.get("PayloadFormatIndicator", 0), 0)
        self.assertNotIn("ContentType", m2.props)

    def test_invalid_utf8_payload_rejected(self):
        if is_mosquitto():
            self.skipTest("checking the payload against the Payload Format Indicator is optional "
                          "(a receiver MAY, section 3.3.2.3.2); Mosquitto 2.0.11 accepts invalid UTF-8")
        topic = self.prefix + "pf"
        c = self.v5()
        c.subscribe5(topic, qos=1)
        r = self.raw5()
        r.connect5(unique("pf"))
        r.send(publish5_packet(topic, b"\xff\xfe bad", qos=1, mid=3, props=[(PAYLOAD_FORMAT, 1)]))
        mid, reason, _ = ack_reason(r.expect(PUBACK))
        self.assertEqual((mid, reason), (3, 0x99), "invalid UTF-8 with format indicator 1: 0x99 expected")
        self.assertEqual(c.drain(0.5), [], "invalid payload delivered")
        r.send(publish5_packet(topic, "ok ✓", qos=1, mid=4, props=[(PAYLOAD_FORMAT, 1)]))
        self.assertEqual(ack_reason(r.expect(PUBACK))[:2], (4, 0))
        self.assertEqual(c.get().payload, "ok ✓".encode())


# --------------------------------------------------------------------------
# Mixed protocol versions


@unittest.skipUnless(HAVE_CLIENTS, "mosquitto_pub/mosquitto_sub not installed")
class MixedVersions(V5TestCase):
    FORMAT = "MSG|%t|%q|%r|%p|P=%P|C=%C|R=%R|E=%E|S=%S"

    def test_v5_publisher_v311_subscriber(self):
        topic = self.prefix + "53"
        s = self.v3()
        s.subscribe(topic, 2)
        pub = self.v5()
        pub.publish5(topic, b"to 3.1.1", qos=1,
                     props={"UserProperty": [("k", "v")], "ContentType": "c", "MessageExpiryInterval": 60,
                            "ResponseTopic": "r", "CorrelationData": b"c", "TopicAlias": 3})
        pub.publish5("", b"by alias", qos=1, props={"TopicAlias": 3})
        got = s.get_n(2)
        self.assertEqual([(m.topic, m.payload, m.qos) for m in got],
                         [(topic, b"to 3.1.1", 1), (topic, b"by alias", 1)])

    def test_v311_publisher_v5_subscriber(self):
        topic = self.prefix + "35"
        s = self.v5()
        s.subscribe5(topic, qos=2)
        self.v3().publish(topic, b"from 3.1.1", 2, retain=False)
        m = s.get()
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), (topic, b"from 3.1.1", 2, False))
        self.assertEqual({k: v for k, v in m.props.items() if k != "SubscriptionIdentifier"}, {},
                         "properties invented for a 3.1.1 message")

    def test_v311_retained_to_v5(self):
        topic = self.prefix + "35r"
        self.v3().publish(topic, b"kept", 1, retain=True)
        s = self.v5()
        s.subscribe5(topic, qos=1)
        m = s.get()
        self.assertEqual((m.payload, m.retain), (b"kept", True))

    def cli_sub(self, topic, count, version="5", extra=()):
        cmd = [MOSQUITTO_SUB, "-h", HOST, "-p", str(self.port), "-V", version, "-i", unique("ms"),
               "-t", topic, "-q", "1", "-C", str(count), "-W", "%d" % scaled(5), "-d",
               "-F", self.FORMAT] + list(extra)
        s = Sub(cmd)
        self.addCleanup(kill_process, s.proc)
        s.wait_for("SUBACK", timeout=scaled(5))
        return s

    def cli_pub(self, topic, message, version, extra=()):
        cmd = [MOSQUITTO_PUB, "-h", HOST, "-p", str(self.port), "-V", version, "-i", unique("mp"),
               "-t", topic, "-q", "1", "-m", message] + list(extra)
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=scaled(10))
        self.assertEqual(r.returncode, 0, "%s:\n%s" % (" ".join(cmd), r.stdout))

    def finish(self, s):
        try:
            rc = s.proc.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            raise AssertionError("mosquitto_sub did not exit; output:\n" + s.output())
        s.thread.join(2)
        lines = [line for line in s.all if line.startswith("MSG|")]
        self.assertEqual(rc, 0, s.output())
        return [dict(zip(("topic", "qos", "retain", "payload", "P", "C", "R", "E", "S"),
                         [f.split("=", 1)[1] if i >= 4 else f for i, f in enumerate(line.split("|")[1:])]))
                for line in lines]

    def test_cli_v5_sub_from_v311_pub(self):
        topic = self.prefix + "cli35"
        s = self.cli_sub(topic, 1)
        self.cli_pub(topic, "plain old", "mqttv311")
        (m,) = self.finish(s)
        self.assertEqual((m["topic"], m["qos"], m["retain"], m["payload"]), (topic, "1", "0", "plain old"))
        self.assertEqual((m["P"], m["C"], m["R"], m["E"]), ("", "", "", ""), m)

    def test_cli_v5_properties(self):
        topic = self.prefix + "cli55"
        s = self.cli_sub(topic, 1, extra=["-D", "SUBSCRIBE", "subscription-identifier", "42"])
        self.cli_pub(topic, "with props", "5", extra=[
            "-D", "PUBLISH", "user-property", "key1", "value1",
            "-D", "PUBLISH", "content-type", "text/plain",
            "-D", "PUBLISH", "response-topic", self.prefix + "back",
            "-D", "PUBLISH", "message-expiry-interval", "100"])
        (m,) = self.finish(s)
        self.assertEqual(m["payload"], "with props")
        self.assertEqual(m["P"], "key1:value1", m)
        self.assertEqual(m["C"], "text/plain", m)
        self.assertEqual(m["R"], self.prefix + "back", m)
        self.assertTrue(m["E"] and 98 <= int(m["E"]) <= 100, m)
        self.assertEqual(m["S"], "42", m)

    def test_cli_v311_sub_from_v5_pub(self):
        topic = self.prefix + "cli53"
        s = self.cli_sub(topic, 1, version="mqttv311")
        self.cli_pub(topic, "from five", "5", extra=["-D", "PUBLISH", "user-property", "a", "b"])
        (m,) = self.finish(s)
        self.assertEqual((m["topic"], m["payload"], m["P"]), (topic, "from five", ""))


# --------------------------------------------------------------------------
# Reason codes


class ReasonCodesTest(V5TestCase):
    def test_puback_no_matching_subscribers(self):
        topic = self.prefix + "nobody"
        r = self.raw5()
        r.connect5(unique("rc"))
        r.send(publish5_packet(topic, b"x", qos=1, mid=11))
        self.assertEqual(ack_reason(r.expect(PUBACK))[:2], (11, 0x10),
                         "PUBACK for a message nobody receives: 0x10 expected")
        c = self.v5()
        c.subscribe5(topic, qos=1)
        r.send(publish5_packet(topic, b"y", qos=1, mid=12))
        self.assertEqual(ack_reason(r.expect(PUBACK))[:2], (12, 0x00))
        self.assertEqual(c.get().payload, b"y")

    def test_pubrec_no_matching_subscribers(self):
        if is_mosquitto():
            self.skipTest("0x10 is optional (the Server MAY use it); Mosquitto 2.0.11 uses it in "
                          "PUBACK but answers 0x00 in PUBREC")
        r = self.raw5()
        r.connect5(unique("rq"))
        r.send(publish5_packet(self.prefix + "nobody2", b"x", qos=2, mid=21))
        self.assertEqual(ack_reason(r.expect(PUBREC))[:2], (21, 0x10))
        r.send(ack5_packet(PUBREL, 21))
        self.assertEqual(ack_reason(r.expect(PUBCOMP))[:2], (21, 0x00))

    def test_unsuback_no_subscription_existed(self):
        p = self.prefix
        c = self.v5()
        c.subscribe5(p + "a", qos=1)
        self.assertEqual(c.unsubscribe5([p + "a", p + "never"]), [0x00, 0x11])
        self.assertEqual(c.unsubscribe5([p + "a"]), [0x11], "second UNSUBSCRIBE: 0x11 expected")

    def test_suback_granted_qos(self):
        r = self.raw5()
        r.connect5(unique("sq"))
        p = self.prefix
        self.assertEqual(r.subscribe5(3, [(p + "0", 0), (p + "1", 1), (p + "2", 2)]), [0, 1, 2])

    def test_takeover_disconnect_0x8e(self):
        if is_mosquitto():
            self.skipTest("Mosquitto 2.0.11 closes the old connection without DISCONNECT 0x8E "
                          "(sending it is optional, section 4.13)")
        cid = unique("tk")
        first = self.raw5()
        first.connect5(cid)
        second = self.raw5()
        second.connect5(cid)
        reason, closed = first.expect_disconnect()
        self.assertEqual(reason, 0x8E, "session taken over: DISCONNECT 0x8E expected")
        self.assertTrue(closed)

    def test_connect_receive_maximum_zero(self):
        # "It is a Protocol Error ... for it to have the value 0" (3.1.2.11.3).
        r = self.raw5()
        r.send(connect5_packet(unique("r0"), props=[(RECEIVE_MAXIMUM, 0)]))
        p = r.read_packet()
        if p is not None:
            self.assertEqual(p.type, CONNACK, "%r" % p)
            self.assertEqual(p.body[1], 0x82, "CONNACK reason for Receive Maximum 0")
        self.assertTrue(r.wait_closed(scaled(TIMEOUT)))

    def test_unsupported_authentication_method(self):
        r = self.raw5()
        r.send(connect5_packet(unique("au"), props=[(AUTH_METHOD, "SCRAM-SHA-1")]))
        p = r.expect(CONNACK)
        self.assertEqual(p.body[1], 0x8C, "CONNACK reason for an unknown auth method")
        self.assertTrue(r.wait_closed(scaled(TIMEOUT)))

    def test_duplicate_property_is_protocol_error(self):
        r = self.raw5()
        r.connect5(unique("dp"))
        r.send(publish5_packet(self.prefix + "d", b"x", qos=1, mid=1,
                               props=[(MESSAGE_EXPIRY, 10), (MESSAGE_EXPIRY, 20)]))
        # The DISCONNECT before the close is optional (section 4.13); Mosquitto 2.0.11
        # just closes, mqttb documents DISCONNECT 0x82.
        reason, closed = r.expect_disconnect(optional=is_mosquitto())
        self.assertTrue(closed)
        if reason is not None:
            self.assertEqual(reason, 0x82, "duplicate Message Expiry Interval: Protocol Error expected")


if __name__ == "__main__":
    main()
