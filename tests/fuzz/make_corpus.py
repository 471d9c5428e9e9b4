#!/usr/bin/env python3
"""Write the seed corpus: valid packets of every type (codec), and scripted
sessions in the broker target's step format (broker)."""
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))


def s(b):
    return struct.pack(">H", len(b)) + b


def varint(n):
    out = b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out


def pkt(first, body):
    return bytes([first]) + varint(len(body)) + body


def props(*items):
    body = b"".join(items)
    return varint(len(body)) + body


def connect(cid, clean=True, ka=60, will=None, user=None, pw=None, level=4, cprops=b"", wprops=b""):
    name = b"MQIsdp" if level == 3 else b"MQTT"
    flags = 0x02 if clean else 0
    payload = s(cid)
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
        payload = payload + (props(wprops) if level == 5 else b"") + s(will[0]) + s(will[1])
    if user is not None:
        flags |= 0x80
        payload += s(user)
    if pw is not None:
        flags |= 0x40
        payload += s(pw)
    vh = s(name) + bytes([level, flags]) + struct.pack(">H", ka)
    if level == 5:
        vh += props(cprops)
    return pkt(0x10, vh + payload)


def publish5(topic, payload, qos=0, pid=1, pprops=b""):
    body = s(topic) + (struct.pack(">H", pid) if qos else b"") + props(pprops) + payload
    return pkt(0x30 | (qos << 1), body)


def subscribe5(pid, sprops, *filters):
    return pkt(0x82, struct.pack(">H", pid) + props(sprops) + b"".join(s(f) + bytes([o]) for f, o in filters))


def publish(topic, payload, qos=0, retain=False, dup=False, pid=1):
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    body = s(topic) + (struct.pack(">H", pid) if qos else b"") + payload
    return pkt(first, body)


def subscribe(pid, *filters):
    return pkt(0x82, struct.pack(">H", pid) + b"".join(s(f) + bytes([q]) for f, q in filters))


def unsubscribe(pid, *filters):
    return pkt(0xA2, struct.pack(">H", pid) + b"".join(s(f) for f in filters))


def ack(t, pid):
    return pkt(t, struct.pack(">H", pid))


packets = {
    "connect": connect(b"c1"),
    "connect31": connect(b"c31", level=3),
    "connect_will": connect(b"w", will=(b"will/t", b"bye", 1, True), user=b"u", pw=b"p"),
    "connack": pkt(0x20, b"\x00\x00"),
    "publish0": publish(b"a/b", b"hello"),
    "publish1": publish(b"a/b", b"x", 1, pid=7),
    "publish2": publish(b"a/b", b"y", 2, retain=True, pid=8),
    "puback": ack(0x40, 1),
    "pubrec": ack(0x50, 1),
    "pubrel": ack(0x62, 1),
    "pubcomp": ack(0x70, 1),
    "subscribe": subscribe(1, (b"a/#", 1), (b"+/b", 2)),
    "suback": pkt(0x90, b"\x00\x01\x01\x80"),
    "unsubscribe": unsubscribe(2, b"a/#"),
    "unsuback": ack(0xB0, 2),
    "pingreq": pkt(0xC0, b""),
    "pingresp": pkt(0xD0, b""),
    "disconnect": pkt(0xE0, b""),
}


def step_feed(conn, data):
    # op: (op >> 2) % 6 == 0 feeds; op % 4 picks the connection.
    out = b""
    for i in range(0, len(data), 255):
        chunk = data[i:i + 255]
        out += bytes([conn, len(chunk)]) + chunk
    return out


def step_time(arg):
    return bytes([2 << 2, arg])


def step_drain(conn):
    return bytes([(5 << 2) | conn, 0])


def step_drop(conn):
    return bytes([(3 << 2) | conn, 0])


sessions = {
    "pubsub": step_feed(0, connect(b"s", clean=False) + subscribe(1, (b"t/#", 2)))
    + step_feed(1, connect(b"p") + publish(b"t/1", b"a", 1, pid=3) + publish(b"t/2", b"b", 2, pid=4)
                + ack(0x62, 4))
    + step_drain(0) + step_drop(0) + step_feed(1, publish(b"t/3", b"c", 1, pid=5))
    + step_feed(2, connect(b"s", clean=False)) + step_drain(2),
    "will_keepalive": step_feed(0, connect(b"w", ka=1, will=(b"w/t", b"x", 2, True)))
    + step_feed(1, connect(b"o") + subscribe(1, (b"#", 2))) + step_time(10) + step_drain(1),
    "retained": step_feed(0, connect(b"r") + publish(b"r/a", b"1", 1, retain=True, pid=1)
                          + publish(b"r/b", b"", 0, retain=True))
    + step_feed(1, connect(b"q") + subscribe(1, (b"r/+", 1), (b"#", 0)) + unsubscribe(2, b"#"))
    + step_drain(1),
    "takeover": step_feed(0, connect(b"same", clean=False, will=(b"x", b"y", 0, False)))
    + step_feed(1, connect(b"same", clean=False)) + step_drain(0) + step_drain(1),
}

SESSION_EXPIRY = b"\x11\x00\x00\x00\x3c"
RECV_MAX = b"\x21\x00\x02"
ALIAS_MAX = b"\x22\x00\x05"
USER = b"\x26" + s(b"k") + s(b"v")
WILL_DELAY = b"\x18\x00\x00\x00\x01"
EXPIRY = b"\x02\x00\x00\x00\x05"
ALIAS1 = b"\x23\x00\x01"
SUBID = b"\x0b\x07"
AUTH_METHOD = b"\x15" + s(b"SCRAM")
packets["connect5"] = connect(b"v5", level=5, cprops=SESSION_EXPIRY + RECV_MAX + ALIAS_MAX + USER)
packets["publish5"] = publish5(b"a/b", b"x", 1, 2, EXPIRY + ALIAS1 + USER)
packets["subscribe5"] = subscribe5(3, SUBID, (b"a/#", 0x2D), (b"$share/g/a", 1))
packets["auth5"] = pkt(0xF0, b"\x18" + props(AUTH_METHOD))
packets["disconnect5"] = pkt(0xE0, b"\x04" + props(SESSION_EXPIRY))
sessions["v5_features"] = (
    step_feed(0, connect(b"s5", clean=False, level=5, cprops=SESSION_EXPIRY + RECV_MAX + ALIAS_MAX)
              + subscribe5(1, SUBID, (b"t/#", 0x2E), (b"$share/g/t/+", 1)))
    + step_feed(1, connect(b"p5", level=5, will=(b"w", b"x", 1, False), wprops=WILL_DELAY + USER)
                + publish5(b"t/1", b"a", 1, 3, EXPIRY + ALIAS1 + USER) + publish5(b"", b"b", 2, 4, ALIAS1)
                + ack(0x62, 4) + pkt(0xE0, b"\x04\x00"))
    + step_drain(0) + step_time(8) + step_drop(0)
    + step_feed(2, connect(b"s5", clean=False, level=5)) + step_drain(2))
sessions["v5_auth"] = step_feed(0, connect(b"a5", level=5, cprops=AUTH_METHOD) + pkt(0xF0, b"\x18" + props(AUTH_METHOD)))



# ---- store records (lib/store.h, docs/persistence.md), for fuzz_store:
# each record preceded by its length in one byte.
def field(tag, value):
    if isinstance(value, int):
        value = value.to_bytes((value.bit_length() + 7) // 8, "little")
    return bytes([tag]) + varint(len(value)) + value


def rec(rtype, *fields):
    body = bytes([rtype, 1]) + b"".join(field(t, v) for t, v in fields)
    assert len(body) < 256
    return bytes([len(body)]) + body


MSG, MSG_DEL, SESSION, SESSION_END, SUB, UNSUB, DLV, DLV_SENT, DLV_DEL = range(1, 10)
QOS2_IN, QOS2_IN_DEL, RETAIN, RETAIN_DEL, COMMIT = range(10, 15)
base = (rec(SESSION, (1, 1), (2, b"s1"), (3, 0xFFFFFFFF))
        + rec(SUB, (1, 1), (2, b"a/#"), (3, 2), (4, 0))
        + rec(SUB, (1, 1), (2, b"$share/g/b"), (3, 1), (5, 7))
        + rec(MSG, (1, 2), (2, 1), (4, b"a/1"), (5, b"one"))
        + rec(MSG, (1, 3), (2, 2), (3, 1), (4, b"a/2"), (5, b"two"), (7, 5000), (8, 5))
        + rec(DLV, (1, 4), (2, 1), (3, 2), (4, 1), (7, 1), (8, 1))
        + rec(DLV, (1, 5), (2, 1), (3, 3), (4, 2), (6, b"\x07\x00\x00\x00"), (9, b"g/b"))
        + rec(DLV, (1, 6), (2, 1), (3, 3), (4, 2), (7, 2), (8, 2))
        + rec(DLV_SENT, (1, 6), (7, 2), (8, 3))
        + rec(RETAIN, (1, 3))
        + rec(QOS2_IN, (1, 1), (2, 9), (3, 3)))
stores = {
    "base": base,
    "deletes": base + rec(DLV_DEL, (1, 4)) + rec(MSG_DEL, (1, 2)) + rec(RETAIN_DEL, (4, b"a/2"))
    + rec(QOS2_IN_DEL, (1, 1), (2, 9)) + rec(UNSUB, (1, 1), (2, b"a/#")),
    "end": base + rec(SESSION_END, (1, 1)),
    "offline_will": rec(MSG, (1, 1), (2, 1), (4, b"will"), (5, b"gone"))
    + rec(SESSION, (1, 2), (2, b"w"), (3, 60), (4, 90000), (5, 1), (6, 30000), (7, 1)),
    "pending": rec(SESSION, (1, 1), (2, b"p"), (3, 10))
    + rec(MSG, (1, 2), (2, 2), (4, b"t"), (5, b"x"), (9, 1))
    + rec(DLV, (1, 3), (2, 1), (3, 2), (4, 2)) + rec(COMMIT, (1, 2)),
}

for name, data in packets.items():
    with open(os.path.join(here, "corpus", "codec", name), "wb") as f:
        f.write(data)
for name, data in sessions.items():
    with open(os.path.join(here, "corpus", "broker", name), "wb") as f:
        f.write(data)
os.makedirs(os.path.join(here, "corpus", "store"), exist_ok=True)
for name, data in stores.items():
    with open(os.path.join(here, "corpus", "store", name), "wb") as f:
        f.write(data)

# fuzz_ws: a flags byte, then steps of [length][write size][bytes] (see
# tests/fuzz/fuzz_ws.c). Client frames are masked with a fixed key.
WS_REQUEST = (b"GET /mqtt HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n")


def wsframe(b0, payload, masked=True, key=b"\x12\x34\x56\x78"):
    n = len(payload)
    m = 0x80 if masked else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n <= 0xFFFF:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not masked:
        return h + payload
    return h + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def wssteps(flags, data, chunk=200, wsize=255):
    out = bytes([flags])
    for i in range(0, len(data), chunk):
        part = data[i:i + chunk]
        out += bytes([len(part), wsize]) + part
    return out


mqtt_connect = connect(b"ws-client")
ws_seeds = {
    "handshake_then_connect": wssteps(0, WS_REQUEST + wsframe(0x82, mqtt_connect), 97, 40),
    "fragmented_with_ping": wssteps(1, wsframe(0x02, mqtt_connect[:5]) + wsframe(0x89, b"ping")
                                    + wsframe(0x80, mqtt_connect[5:]) + wsframe(0x8A, b"")
                                    + wsframe(0x82, publish(b"a/b", b"x" * 300)), 31, 3),
    "server_close": wssteps(9, wsframe(0x82, mqtt_connect) + wsframe(0x82, b"\xc0\x00") * 5, 11, 9),
    "client_close": wssteps(1, wsframe(0x82, b"\xe0\x00") + wsframe(0x88, b"\x03\xe8bye")),
    "bad_version": wssteps(0, WS_REQUEST.replace(b"Version: 13", b"Version: 8")),
    "no_subprotocol": wssteps(0, WS_REQUEST.replace(b"Sec-WebSocket-Protocol: mqtt\r\n", b"")),
    "oversize_frame": wssteps(3, wsframe(0x82, b"y" * 65) + wsframe(0x82, b"z" * 70000)[:300]),
    "small_writes": wssteps(5, b"".join(wsframe(0x82, bytes([0x30, 3, 0, 1, 0x61 + i]))
                                       for i in range(40)), 13, 1),
    "unmasked": wssteps(1, wsframe(0x82, b"abc", masked=False)),
    "text": wssteps(1, wsframe(0x81, b"hello")),
    "long_frame": wssteps(1, wsframe(0x82, bytes(range(256)) * 40), 255, 200),
    "retry_held_writes": wssteps(17, wsframe(0x82, mqtt_connect) + wsframe(0x89, b"p")
                                 + wsframe(0x82, b"\xc0\x00") * 8, 9, 0x47),
    "frame_64bit_length_streamed": wssteps(1, wsframe(0x82, b"z" * 70000)[:600], 50, 7),
}
os.makedirs(os.path.join(here, "corpus", "ws"), exist_ok=True)
for name, data in ws_seeds.items():
    with open(os.path.join(here, "corpus", "ws", name), "wb") as f:
        f.write(data)
print(f"{len(packets)} codec seeds, {len(sessions)} broker seeds, {len(stores)} store seeds, "
      f"{len(ws_seeds)} ws seeds", file=sys.stderr)
