#!/usr/bin/env python3
# Attacks: a bystander's latency, mqttb against Mosquitto (see docs/benchmarks.md).
#
# For every attack and for each broker (a fresh broker process each time, on a
# free port of 127.0.0.1) this program starts an attacker (a subprocess: this
# same file with --attacker), lets it set up, connects a bystander, and then
# measures the bystander's round trips while the attack runs:
#
#   held-qos2       the attacker sends QoS 2 PUBLISHes with packet ids
#                   1..65535 and never PUBRELs them (65535 held inbound ids),
#                   then loops over k = 1..65535: PUBLISH k again (DUP, a held
#                   id: PUBREC'd, not delivered), PUBREL k (PUBCOMP), PUBLISH k
#                   (held again). At most --window (1000) packets unanswered.
#                   Rate: answered packets/s.
#   fanout-offline  1000 persistent sessions (clean session 0, QoS 1
#                   subscription to one topic) are created and disconnected;
#                   the attacker publishes QoS 1 to that topic as fast as the
#                   broker acknowledges, 100 PUBLISHes unacknowledged at most.
#                   Rate: PUBACKed messages/s (each is queued 1000 times).
#   sub-bomb        the attacker sends 100 SUBSCRIBEs of 1000 distinct filters
#                   each (100,000 filters), then 100 UNSUBSCRIBEs of the same,
#                   back to back, and repeats (the next round goes out as soon
#                   as the SUBACKs of the previous one are in). Rate:
#                   acknowledged filters/s (subscribed + unsubscribed).
#   retained-sweep  100,000 retained messages (QoS 1, 16-byte payloads) are
#                   published first; then the attacker subscribes to
#                   PREFIX/# at QoS 0, reads all 100,000, unsubscribes, and
#                   repeats. Rate: retained messages received/s.
#
# The bystander (MQTT 3.1.1, clean session, its own connection in this
# process) subscribes to its own topic at QoS 0 and, every --interval ms
# (5), publishes a QoS 0 message to it and waits for it to come back. A
# round trip that is still out at the next tick delays the next one (one is
# out at a time). Only round trips sent inside the measured period count
# (-d, default 10 s, after -w seconds, default 2, of warm-up during which
# the attack already runs). One that does not come back within
# --rtt-timeout (10 s) counts as lost, with the time waited as its latency.
# A stalled bystander sends fewer round trips (the count is reported), so
# p50 and p99 describe only those that got through; each line also gives
# them with every skipped tick added back as a sample (r - k * interval for
# a round trip of r: HdrHistogram's expected-interval correction).
#
# Broker configuration (that of compare.sh, plus max_subscriptions_per_client
# for mqttb so that the 100,000 filters of sub-bomb are accepted; Mosquitto
# has no such limit by default):
#   mqttb:      max_inflight_messages 1000, max_queued_messages 100000,
#               max_connections -1, max_subscriptions_per_client 200000,
#               log_type error, log_type warning (all else: mqttb defaults)
#   mosquitto:  listener PORT 127.0.0.1, allow_anonymous true,
#               max_inflight_messages 1000, max_queued_messages 100000,
#               max_connections -1, persistence false, log_dest stderr,
#               log_type error, log_type warning
# max_queued_messages 100000 lets Mosquitto hold all 65535 QoS 2 ids of
# held-qos2 (its inbound queue is bounded by it too) and deliver all 100,000
# retained messages of retained-sweep. In fanout-offline each offline
# session's queue fills up to that limit (or mqttb's max_queued_bytes_total,
# 256 MiB); what comes later is dropped by both brokers, by design.
#
# Every phase is bounded in time; brokers and attacker are stopped at the
# end, on error and on Ctrl-C. Prints a line per attack and broker, then a
# Markdown table: attack | mqttb p50/p99/max | mosquitto p50/p99/max | ratio
# of max (mqttb / mosquitto), and a table of the attackers' rates.
#
# Usage: tests/bench/attacks.py [options]
#   --mqttb PATH        default: build/cli/mqttb (relative to the source root)
#   --mosquitto PATH    default: /usr/sbin/mosquitto
#   -a LIST             attacks, comma-separated (default: all):
#                       none,held-qos2,fanout-offline,sub-bomb,retained-sweep
#                       ('none' is the baseline: the attacker connects and
#                       stays idle)
#   -b LIST             brokers (default: mqttb,mosquitto)
#   -d SECONDS          measured period (default 10)
#   -w SECONDS          warm-up with the attack running (default 2)
#   --interval MS       bystander round-trip interval (default 5)
#   --rtt-timeout S     a round trip not back after S seconds is lost (10)
#   --setup-timeout S   bound of each set-up phase (default 120)
#   --json FILE         also write all results as JSON to FILE
#   --keep              keep the temporary directory (configs, logs)
#   -h, --help
# Attack sizes (the defaults are the benchmark; smaller ones for testing):
#   --window N (held-qos2, and the set-up of held-qos2 and retained-sweep:
#   1000 packets unanswered), --fan-window N (100), --sessions N (1000),
#   --bomb-packets N (100), --bomb-filters N (1000), --retained N (100000),
#   --sweep-stall S (2: a sweep that stops short for S seconds is ended).
#
# The attacker sends pre-built packets from one buffer and counts the
# broker's answers in bulk, so Python is not what limits it: each line
# reports the attacker's CPU use and the broker's (100 % = one core) over
# the measured period, and the broker's RSS at its end. A full run (all
# attacks, both brokers, defaults) takes about 3 minutes.
# Python 3 standard library only. Also: tests/bench/compare.sh --attacks.
#
# SPDX-License-Identifier: MIT

import argparse
import json
import math
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
ATTACKS = ("none", "held-qos2", "fanout-offline", "sub-bomb", "retained-sweep")
BROKERS = ("mqttb", "mosquitto")
UNITS = {
    "none": "msgs/s",
    "held-qos2": "packets/s",
    "fanout-offline": "msgs/s",
    "sub-bomb": "filters/s",
    "retained-sweep": "msgs/s",
}
SRC_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

now = time.monotonic  # CLOCK_MONOTONIC: the same clock in every process


class Failure(Exception):
    pass


# --- MQTT 3.1.1 encoding -------------------------------------------------

def enc_len(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pkt(first, body):
    return bytes([first]) + enc_len(len(body)) + body


def s16(b):
    return struct.pack(">H", len(b)) + b


def connect_pkt(cid, clean=True, keepalive=0):
    return pkt(0x10, s16(b"MQTT") + bytes([4, 0x02 if clean else 0x00]) +
               struct.pack(">H", keepalive) + s16(cid))


def publish_pkt(topic, payload, qos=0, pid=0, retain=False, dup=False):
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    body = s16(topic) + (struct.pack(">H", pid) if qos else b"") + payload
    return pkt(first, body)


def subscribe_pkt(pid, filters, qos=0):
    return pkt(0x82, struct.pack(">H", pid) + b"".join(s16(f) + bytes([qos]) for f in filters))


def unsubscribe_pkt(pid, filters):
    return pkt(0xA2, struct.pack(">H", pid) + b"".join(s16(f) for f in filters))


PUBREL = [None] + [bytes([0x62, 2, k >> 8, k & 0xFF]) for k in range(1, 65536)]
DISCONNECT = b"\xe0\x00"


def next_packet(buf, p):
    """(first byte, body start, body end) of the packet at buf[p:], or None."""
    n = len(buf)
    if p + 2 > n:
        return None
    mult, length, q = 1, 0, p + 1
    while True:
        if q >= n:
            return None
        b = buf[q]
        q += 1
        length += (b & 0x7F) * mult
        if not b & 0x80:
            break
        mult <<= 7
        if mult > 1 << 21:
            raise Failure("malformed remaining length from broker")
    if q + length > n:
        return None
    return buf[p], q, q + length


# --- connections ---------------------------------------------------------

class Conn:
    """A non-blocking client socket with blocking helpers bounded by deadlines."""

    def __init__(self, port, deadline, name="conn"):
        self.name = name
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.setblocking(False)
        self.inb = bytearray()
        try:
            self.s.connect((HOST, port))
        except BlockingIOError:
            pass
        _, w, _ = select.select([], [self.s], [], max(0.0, deadline - now()))
        if not w:
            self.close()
            raise Failure(f"{name}: TCP connect timed out")
        err = self.s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.close()
            raise Failure(f"{name}: connect: {os.strerror(err)}")

    def fileno(self):
        return self.s.fileno()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def send_all(self, data, deadline):
        mv = memoryview(data)
        while mv:
            try:
                n = self.s.send(mv)
                mv = mv[n:]
                continue
            except BlockingIOError:
                pass
            # Keep reading while the broker is slow to take our output, so
            # that its replies never block it (and thus us).
            r, w, _ = select.select([self.s], [self.s], [], max(0.0, deadline - now()))
            if not r and not w:
                raise Failure(f"{self.name}: send timed out")
            if r:
                self.recv_some()

    def recv_some(self):
        try:
            data = self.s.recv(1 << 20)
        except BlockingIOError:
            return 0
        except ConnectionError as e:
            raise Failure(f"{self.name}: {e}")
        if not data:
            raise Failure(f"{self.name}: the broker closed the connection")
        self.inb += data
        return len(data)

    def read_packet(self, deadline):
        while True:
            r = next_packet(self.inb, 0)
            if r:
                first, bs, be = r
                body = bytes(self.inb[bs:be])
                del self.inb[:be]
                return first, body
            left = deadline - now()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                raise Failure(f"{self.name}: no answer from the broker in time")
            self.recv_some()

    def expect(self, ptype, deadline, what):
        while True:
            first, body = self.read_packet(deadline)
            if first >> 4 == ptype:
                return body
            if first >> 4 == 3:  # a stray PUBLISH (e.g. queued): skip
                continue
            raise Failure(f"{self.name}: expected {what}, got packet type {first >> 4}")

    def mqtt_connect(self, cid, deadline, clean=True):
        self.send_all(connect_pkt(cid, clean), deadline)
        body = self.expect(2, deadline, "CONNACK")
        if len(body) != 2 or body[1] != 0:
            raise Failure(f"{self.name}: CONNACK refused ({body.hex()})")

    def subscribe(self, pid, filters, qos, deadline):
        self.send_all(subscribe_pkt(pid, filters, qos), deadline)
        body = self.expect(9, deadline, "SUBACK")
        if any(c == 0x80 for c in body[2:]):
            raise Failure(f"{self.name}: SUBSCRIBE refused")


def connect_client(port, cid, deadline, clean=True, name=None):
    c = Conn(port, deadline, name or cid.decode())
    try:
        c.mqtt_connect(cid, deadline, clean)
    except BaseException:
        c.close()
        raise
    return c


# --- attacker (runs in its own process) ----------------------------------

class Pump:
    """The attack loop on one connection: fill() decides what to send next
    (as memoryviews), on_data() eats what the broker sends and returns how
    many operations completed. Operations completed inside the measured
    window are counted, and the attacker's CPU time there."""

    def __init__(self, conn):
        self.c = conn
        self.pending = []  # memoryviews to send, in order
        self.ops = 0
        self.sent_bytes = 0

    def queue(self, data):
        self.pending.append(memoryview(data))

    def flush(self):
        s = self.c.s
        while self.pending:
            mv = self.pending[0]
            try:
                n = s.send(mv)
            except BlockingIOError:
                return
            except ConnectionError as e:
                raise Failure(f"attacker: {e}")
            self.sent_bytes += n
            if n == len(mv):
                self.pending.pop(0)
            else:
                self.pending[0] = mv[n:]
                return

    def run(self, t_meas, t_end, fill, on_data):
        s = self.c.s
        poller = select.poll()
        poller.register(s, select.POLLIN)
        out_registered = False
        snap = None
        while True:
            t = now()
            if snap is None and t >= t_meas:
                snap = (self.ops, time.process_time(), t)
            if t >= t_end:
                break
            fill()
            self.flush()
            want_out = bool(self.pending)
            if want_out != out_registered:
                poller.modify(s, select.POLLIN | (select.POLLOUT if want_out else 0))
                out_registered = want_out
            deadline = t_meas if snap is None else t_end
            timeout = max(0, min(50, int((deadline - t) * 1000) + 1))
            for _, ev in poller.poll(timeout):
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        data = s.recv(1 << 20)
                    except BlockingIOError:
                        data = None
                    except ConnectionError as e:
                        raise Failure(f"attacker: {e}")
                    if data is not None:
                        if not data:
                            raise Failure("attacker: the broker closed the connection")
                        self.ops += on_data(data)
                if ev & select.POLLOUT:
                    self.flush()
        if snap is None:
            snap = (self.ops, time.process_time(), t)
        t = now()
        secs = max(1e-9, t - snap[2])
        return {
            "ops": self.ops - snap[0],
            "seconds": round(secs, 3),
            "rate": (self.ops - snap[0]) / secs,
            "cpu": round((time.process_time() - snap[1]) / secs, 3),
        }


class Attack:
    """One attack. setup() runs before the bystander connects; attack()
    runs from GO until t_end and returns its figures."""

    def __init__(self, args):
        self.args = args
        self.port = args.port
        self.run_id = args.run.encode()
        self.prefix = b"atk/" + self.run_id
        self.info = {}
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()


def blob_of(packets):
    """One bytes object holding the packets, and each one's end offset."""
    ends, total = [], 0
    for p in packets:
        total += len(p)
        ends.append(total)
    return b"".join(packets), ends


class NoAttack(Attack):
    """The baseline: the attacker is connected and does nothing."""

    def setup(self, deadline):
        self.conn = connect_client(self.port, self.run_id + b"-n", deadline, name="attacker")

    def attack(self, t_meas, t_end):
        return Pump(self.conn).run(t_meas, t_end, lambda: None, lambda data: 0)


class HeldQos2(Attack):
    def setup(self, deadline):
        a = self.args
        self.topic = self.prefix + b"/q2"
        pay = b"held-qos2-attack"
        self.conn = c = connect_client(self.port, self.run_id + b"-h", deadline, name="attacker")
        new = [publish_pkt(self.topic, pay, 2, k) for k in range(1, 65536)]
        dup = [publish_pkt(self.topic, pay, 2, k, dup=True) for k in range(1, 65536)]
        # The attack cycle: for k = 1..65535, PUBLISH k again (held: PUBREC),
        # PUBREL k (PUBCOMP), PUBLISH k (held again: PUBREC).
        cycle = [dup[k] + PUBREL[k + 1] + new[k] for k in range(65535)]
        self.cycle, self.cycle_ends = blob_of(cycle)
        # Hold all 65535 ids: send them with at most a window unanswered.
        blob, ends = blob_of(new)
        pubrec = 0
        sent = 0
        t0 = now()
        while pubrec < 65535:
            if sent < 65535 and sent - pubrec < a.window:
                k = min(65535, pubrec + a.window)
                c.send_all(memoryview(blob)[ends[sent - 1] if sent else 0:ends[k - 1]], deadline)
                sent = k
            first, _ = c.read_packet(deadline)
            if first != 0x50:
                raise Failure(f"attacker: expected PUBREC, got packet type {first >> 4}")
            pubrec += 1
        self.info["held"] = pubrec
        self.info["setup_s"] = round(now() - t0, 3)
        self.info["setup_rate"] = round(pubrec / max(1e-9, now() - t0))

    def attack(self, t_meas, t_end):
        pump = Pump(self.conn)
        st = {"sent": 0, "answered": 0, "cursor": 0, "carry": 0, "bytes": 0, "pubcomp": 0}
        window = self.args.window
        ends = self.cycle_ends
        mv = memoryview(self.cycle)

        def fill():
            if pump.pending:
                return
            out = st["sent"] - st["answered"]
            room = (window - out) // 3  # cycles of 3 packets
            if room < max(1, window // 6):
                return
            i = st["cursor"]
            j = min(65535, i + room)
            pump.queue(mv[ends[i - 1] if i else 0:ends[j - 1]])
            st["sent"] += 3 * (j - i)
            st["cursor"] = 0 if j == 65535 else j

        def on_data(data):
            # Every answer is 4 bytes: PUBREC (0x50) or PUBCOMP (0x70).
            skip = (4 - st["carry"]) % 4
            heads = data[skip::4]
            rec = heads.count(0x50)
            st["pubcomp"] += len(heads) - rec
            bad = len(heads) - rec - heads.count(0x70)
            if bad:
                raise Failure("attacker: unexpected packet from the broker")
            st["carry"] = (st["carry"] + len(data)) % 4
            st["bytes"] += len(data)
            done = st["bytes"] // 4 - st["answered"]
            st["answered"] += done
            return done

        r = pump.run(t_meas, t_end, fill, on_data)
        r["unanswered_at_end"] = st["sent"] - st["answered"]
        r["pubcomp_share"] = round(st["pubcomp"] / max(1, st["answered"]), 3)
        return r


class FanoutOffline(Attack):
    def setup(self, deadline):
        a = self.args
        self.topic = self.prefix + b"/fan"
        t0 = now()
        for i in range(a.sessions):
            cid = self.run_id + b"-o%d" % i
            c = connect_client(self.port, cid, deadline, clean=False, name="session")
            try:
                c.subscribe(1, [self.topic], 1, deadline)
                c.send_all(DISCONNECT, deadline)
            finally:
                c.close()
        self.info["sessions"] = a.sessions
        self.info["setup_s"] = round(now() - t0, 3)
        self.conn = connect_client(self.port, self.run_id + b"-f", deadline, name="attacker")
        pubs = [publish_pkt(self.topic, b"fanout-offline-attack-%05d" % k, 1, k)
                for k in range(1, 65536)]
        self.blob, self.ends = blob_of(pubs)

    def attack(self, t_meas, t_end):
        pump = Pump(self.conn)
        st = {"sent": 0, "acked": 0, "cursor": 0, "carry": 0, "bytes": 0}
        window = self.args.fan_window
        ends = self.ends
        mv = memoryview(self.blob)

        def fill():
            room = window - (st["sent"] - st["acked"])
            if pump.pending or room <= 0:
                return
            i = st["cursor"]
            j = min(65535, i + room)
            pump.queue(mv[ends[i - 1] if i else 0:ends[j - 1]])
            st["sent"] += j - i
            st["cursor"] = 0 if j == 65535 else j

        def on_data(data):
            skip = (4 - st["carry"]) % 4
            heads = data[skip::4]
            if heads.count(0x40) != len(heads):
                raise Failure("attacker: unexpected packet from the broker (not PUBACK)")
            st["carry"] = (st["carry"] + len(data)) % 4
            st["bytes"] += len(data)
            done = st["bytes"] // 4 - st["acked"]
            st["acked"] += done
            return done

        r = pump.run(t_meas, t_end, fill, on_data)
        r["unacked_at_end"] = st["sent"] - st["acked"]
        r["published_total"] = st["acked"]
        return r


class SubBomb(Attack):
    def setup(self, deadline):
        a = self.args
        self.conn = connect_client(self.port, self.run_id + b"-b", deadline, name="attacker")
        n, m = a.bomb_packets, a.bomb_filters
        self.n, self.m = n, m
        filters = [[self.prefix + b"/b/%d/%d" % (j, i) for i in range(m)] for j in range(n)]
        # Two sets of packet ids, alternating from round to round.
        self.rounds = []
        for parity in (0, 1):
            base = parity * 2 * n
            subs = b"".join(subscribe_pkt(base + j + 1, filters[j], 0) for j in range(n))
            unsubs = b"".join(unsubscribe_pkt(base + n + j + 1, filters[j]) for j in range(n))
            self.rounds.append(subs + unsubs)
        self.info["filters_per_round"] = n * m
        self.info["bytes_per_round"] = len(self.rounds[0])

    def attack(self, t_meas, t_end):
        pump = Pump(self.conn)
        n, m = self.n, self.m
        st = {"rounds_sent": 0, "acks": 0, "refused": 0, "buf": bytearray(), "full_rounds": 0}

        def fill():
            # Round r+1 goes out once all SUBACKs of round r are in (answers
            # come in order, so round r-1 is then complete too).
            r = st["rounds_sent"]
            if r == 0 or st["acks"] >= (r - 1) * 2 * n + n:
                if r >= 2 and st["acks"] < (r - 2) * 2 * n + 2 * n:
                    return
                pump.queue(self.rounds[r % 2])
                st["rounds_sent"] = r + 1

        def on_data(data):
            buf = st["buf"]
            buf += data
            p, done = 0, 0
            while True:
                r = next_packet(buf, p)
                if r is None:
                    break
                first, bs, be = r
                if first == 0x90:
                    codes = be - bs - 2
                    refused = buf[bs + 2:be].count(0x80)
                    st["refused"] += refused
                    done += codes - refused
                elif first == 0xB0:
                    done += m
                else:
                    raise Failure(f"attacker: unexpected packet type {first >> 4}")
                st["acks"] += 1
                p = be
            del buf[:p]
            return done

        r = pump.run(t_meas, t_end, fill, on_data)
        r["rounds_completed"] = st["acks"] // (2 * n)
        r["refused_filters"] = st["refused"]
        return r


class RetainedSweep(Attack):
    def setup(self, deadline):
        a = self.args
        self.conn = c = connect_client(self.port, self.run_id + b"-r", deadline, name="attacker")
        n = a.retained
        self.n = n
        self.filter = self.prefix + b"/r/#"
        pubs = [publish_pkt(self.prefix + b"/r/%06d" % k, b"retained-%07d" % k, 1,
                            k % 65535 + 1, retain=True) for k in range(n)]
        self.msg_len = len(publish_pkt(self.prefix + b"/r/%06d" % 0, b"retained-%07d" % 0,
                                       0, retain=True))
        blob, ends = blob_of(pubs)
        t0 = now()
        sent = acked = 0
        while acked < n:
            if sent < n and sent - acked < a.window:
                k = min(n, acked + a.window)
                c.send_all(memoryview(blob)[ends[sent - 1] if sent else 0:ends[k - 1]], deadline)
                sent = k
            first, _ = c.read_packet(deadline)
            if first != 0x40:
                raise Failure(f"attacker: expected PUBACK, got packet type {first >> 4}")
            acked += 1
        self.info["retained"] = n
        self.info["setup_s"] = round(now() - t0, 3)

    def attack(self, t_meas, t_end):
        pump = Pump(self.conn)
        n = self.n
        stall = self.args.sweep_stall
        sub = subscribe_pkt(1, [self.filter], 0)
        unsub = unsubscribe_pkt(2, [self.filter])
        st = {"state": "idle", "got": 0, "last": now(), "sweeps": 0, "short": [],
              "buf": bytearray(), "extra": 0}

        def fill():
            t = now()
            if st["state"] == "idle":
                pump.queue(sub)
                st.update(state="sub", got=0, last=t, suback=False)
            elif st["state"] == "sub" and (st["got"] >= n or t - st["last"] > stall):
                if st["got"] < n:
                    st["short"].append(st["got"])
                pump.queue(unsub)
                st["state"] = "unsub"
                st["last"] = t

        def on_data(data):
            buf = st["buf"]
            if buf:
                buf += data
                data = buf
            st["last"] = now()
            p, done, ln = 0, 0, len(data)
            L = self.msg_len
            rl = L - 2
            while p < ln:
                if data[p] == 0x31 and p + L <= ln and data[p + 1] == rl:  # the usual one
                    done += 1
                    p += L
                    continue
                r = next_packet(data, p)
                if r is None:
                    break
                first, bs, be = r
                t = first >> 4
                if t == 3:
                    done += 1
                elif t == 9:
                    if be - bs < 3 or data[be - 1] == 0x80:
                        raise Failure("attacker: SUBSCRIBE refused")
                elif t == 11:
                    if st["state"] != "unsub":
                        raise Failure("attacker: unexpected UNSUBACK")
                    st["sweeps"] += 1
                    st["state"] = "idle"
                else:
                    raise Failure(f"attacker: unexpected packet type {t}")
                p = be
            if st["state"] == "sub":
                st["got"] += done
            else:
                st["extra"] += done
            st["buf"] = bytearray(data[p:])
            return done

        r = pump.run(t_meas, t_end, fill, on_data)
        r["sweeps_completed"] = st["sweeps"]
        r["short_sweeps"] = st["short"][:10]
        r["after_unsubscribe"] = st["extra"]
        return r


ATTACK_CLASSES = {
    "none": NoAttack,
    "held-qos2": HeldQos2,
    "fanout-offline": FanoutOffline,
    "sub-bomb": SubBomb,
    "retained-sweep": RetainedSweep,
}


def attacker_main(args):
    """--attacker NAME: set up, print READY, wait for 'GO t_meas t_end', attack,
    print RESULT, keep the connection open until 'QUIT' (or a deadline)."""
    out = sys.stdout
    att = ATTACK_CLASSES[args.attacker](args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        att.setup(now() + args.setup_timeout)
        out.write("READY " + json.dumps(att.info) + "\n")
        out.flush()
        r, _, _ = select.select([sys.stdin], [], [], args.setup_timeout)
        line = sys.stdin.readline().split() if r else []
        if len(line) != 3 or line[0] != "GO":
            raise Failure("attacker: no GO")
        t_meas, t_end = float(line[1]), float(line[2])
        res = att.attack(t_meas, t_end)
        res.update(att.info)
        out.write("RESULT " + json.dumps(res) + "\n")
        out.flush()
        # Keep the connection (and what the broker holds for it) until the
        # bystander is done, reading whatever still comes.
        deadline = now() + args.rtt_timeout + 30
        while now() < deadline:
            r, _, _ = select.select([sys.stdin, att.conn.s], [], [], max(0, deadline - now()))
            if sys.stdin in r:
                break
            if att.conn.s in r:
                try:
                    if not att.conn.s.recv(1 << 20):
                        break
                except (BlockingIOError, ConnectionError):
                    pass
    except Failure as e:
        out.write("ERROR " + json.dumps({"error": str(e)}) + "\n")
        out.flush()
        return 1
    finally:
        att.close()
    return 0


# --- bystander ------------------------------------------------------------

class Bystander:
    def __init__(self, port, run_id, deadline):
        self.topic = b"byst/" + run_id + b"/rtt"
        self.c = connect_client(port, run_id + b"-y", deadline, name="bystander")
        self.c.subscribe(1, [self.topic], 0, deadline)
        self.seq = 0
        self.inb = self.c.inb
        # One round trip to check the path.
        rtt = self.once(deadline)
        if rtt is None:
            raise Failure("bystander: the first round trip did not come back")

    def close(self):
        self.c.close()

    def send(self, seq):
        self.c.send_all(publish_pkt(self.topic, struct.pack(">Q", seq)), now() + 5)

    def poll(self, timeout):
        """Wait up to timeout for input; return the sequence numbers received."""
        seqs = self.parse()
        if not seqs and select.select([self.c.s], [], [], max(0.0, timeout))[0]:
            self.c.recv_some()
            seqs = self.parse()
        return seqs

    def parse(self):
        seqs = []
        p = 0
        buf = self.inb
        while True:
            r = next_packet(buf, p)
            if r is None:
                break
            first, bs, be = r
            if first >> 4 == 3:
                tl = struct.unpack_from(">H", buf, bs)[0]
                seqs.append(struct.unpack_from(">Q", buf, bs + 2 + tl)[0])
            p = be
        del buf[:p]
        return seqs

    def once(self, deadline):
        self.seq += 1
        t0 = now()
        self.send(self.seq)
        while now() < deadline:
            if self.seq in self.poll(min(0.1, deadline - now())):
                return now() - t0
        return None

    def measure(self, t_meas, t_end, interval, rtt_timeout, on_start):
        """Round trips sent in [t_meas, t_end): a list of seconds, lost count,
        and late ones (came back after being counted lost)."""
        rtts, lost, late = [], 0, 0
        out = None  # (seq, sent at)
        next_tick = now()
        started = False
        while True:
            t = now()
            if not started and t >= t_meas:
                started = True
                on_start()
            if out is None:
                if t >= t_end:
                    break
                if t >= next_tick:
                    self.seq += 1
                    self.send(self.seq)
                    out = (self.seq, t)
                    next_tick += interval
                    if next_tick <= t:  # ticks missed while waiting: skip them
                        next_tick += math.ceil((t - next_tick) / interval + 1e-9) * interval
                    continue
                wait = next_tick - t
            else:
                wait = out[1] + rtt_timeout - t
                if wait <= 0:
                    if out[1] >= t_meas:
                        lost += 1
                        rtts.append(t - out[1])
                    out = None
                    continue
            if not started:
                wait = min(wait, t_meas - t)
            for seq in self.poll(max(0.0, wait)):
                if out is not None and seq == out[0]:
                    tr = now()
                    if out[1] >= t_meas:
                        rtts.append(tr - out[1])
                    out = None
                else:
                    late += 1
        return rtts, lost, late


# --- brokers -------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


MQTTB_CONF = """max_inflight_messages 1000
max_queued_messages 100000
max_connections -1
max_subscriptions_per_client 200000
log_type error
log_type warning
"""

MOSQ_CONF = """listener {port} 127.0.0.1
allow_anonymous true
max_inflight_messages 1000
max_queued_messages 100000
max_connections -1
persistence false
log_dest stderr
log_type error
log_type warning
"""


class Broker:
    def __init__(self, kind, path, tmp):
        self.kind, self.path, self.tmp = kind, path, tmp
        self.proc = None
        self.log = os.path.join(tmp, kind + ".log")

    def start(self, timeout=10):
        self.port = free_port()
        conf = os.path.join(self.tmp, self.kind + ".conf")
        with open(conf, "w") as f:
            if self.kind == "mqttb":
                f.write(MQTTB_CONF)
            else:
                f.write(MOSQ_CONF.format(port=self.port))
        cmd = [self.path, "-c", conf]
        if self.kind == "mqttb":
            cmd += ["-b", HOST, "-p", str(self.port)]
        logf = open(self.log, "a")
        # Own session: a Ctrl-C reaches this script, which stops the broker.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        deadline = now() + timeout
        while now() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"{self.kind} exited at startup: {self.log_tail()}")
            try:
                socket.create_connection((HOST, self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise Failure(f"{self.kind} is not listening on port {self.port}")

    def log_tail(self, n=5):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def rss_mb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def stop_proc(p):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(3)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(3)


def read_line(proc, deadline, what, errpath):
    fd = proc.stdout.fileno()
    buf = b""
    while b"\n" not in buf:
        left = deadline - now()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise Failure(f"attacker: no {what} in time")
        chunk = os.read(fd, 65536)
        if not chunk:
            try:
                with open(errpath, errors="replace") as f:
                    tail = " | ".join(f.read().strip().splitlines()[-3:])
            except OSError:
                tail = ""
            raise Failure(f"attacker exited before {what}: {tail}")
        buf += chunk
    line = buf.split(b"\n", 1)[0].decode()
    kind, _, rest = line.partition(" ")
    data = json.loads(rest) if rest else {}
    if kind == "ERROR":
        raise Failure(data.get("error", "attacker error"))
    if kind != what:
        raise Failure(f"attacker: expected {what}, got {kind}")
    return data


# --- orchestration ---------------------------------------------------------

def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    return sorted_vals[max(0, math.ceil(q * len(sorted_vals)) - 1)]


def run_one(args, attack, broker, tmp, run_id, state):
    res = {"attack": attack, "broker": broker.kind}
    attacker = None
    bys = None
    errpath = os.path.join(tmp, f"attacker.{attack}.{broker.kind}.err")
    errf = open(errpath, "w")
    state["broker"] = broker
    try:
        broker.start()
        cmd = [sys.executable, os.path.abspath(__file__), "--attacker", attack,
               "--port", str(broker.port), "--run", run_id]
        for k in ("window", "fan_window", "sessions", "bomb_packets", "bomb_filters",
                  "retained", "sweep_stall", "setup_timeout", "rtt_timeout"):
            cmd += ["--" + k.replace("_", "-"), str(getattr(args, k))]
        attacker = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=errf, start_new_session=True)
        state["attacker"] = attacker
        ready = read_line(attacker, now() + args.setup_timeout + 5, "READY", errpath)
        res["setup"] = ready
        bys = Bystander(broker.port, run_id.encode(), now() + 10)
        t_meas = now() + 0.05 + args.warmup
        t_end = t_meas + args.duration
        attacker.stdin.write(f"GO {t_meas!r} {t_end!r}\n".encode())
        attacker.stdin.flush()
        cpu = {}

        def on_start():
            cpu["t0"], cpu["c0"] = now(), broker.cpu_seconds()

        rtts, lost, late = bys.measure(t_meas, t_end, args.interval / 1000.0,
                                       args.rtt_timeout, on_start)
        t1, c1 = now(), broker.cpu_seconds()
        att = read_line(attacker, now() + 30, "RESULT", errpath)
        res["rss_mb"] = broker.rss_mb()
        if cpu.get("c0") is not None and c1 is not None:
            res["broker_cpu"] = round((c1 - cpu["c0"]) / max(1e-9, t1 - cpu["t0"]), 3)
        attacker.stdin.write(b"QUIT\n")
        attacker.stdin.flush()
        rtts.sort()
        ms = [r * 1000 for r in rtts]
        # Coordinated omission: the ticks skipped while a round trip was out
        # would have waited too; as HdrHistogram's expected-interval
        # correction, add r - k * interval for each of them.
        step = args.interval
        co = list(ms)
        for r in ms:
            k = 1
            while r - k * step > 0:
                co.append(r - k * step)
                k += 1
        co.sort()
        res.update(count=len(ms) - lost, lost=lost, late=late,
                   p50=percentile(ms, 0.50), p99=percentile(ms, 0.99),
                   max=ms[-1] if ms else None, skipped_ticks=len(co) - len(ms),
                   co_p50=percentile(co, 0.50), co_p99=percentile(co, 0.99), attacker=att)
        if not broker.alive():
            raise Failure(f"{broker.kind} died: {broker.log_tail()}")
        return res
    finally:
        if bys:
            bys.close()
        if attacker:
            try:
                attacker.wait(5)
            except subprocess.TimeoutExpired:
                stop_proc(attacker)
            state["attacker"] = None
        errf.close()
        broker.stop()
        state["broker"] = None


def fmt_ms(v):
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def fmt_rate(v):
    if v is None:
        return "–"
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k" if v >= 1e3 else f"{v:.0f}"


def describe(r):
    if "error" in r:
        return f"{r['attack']:<15} {r['broker']:<9} FAILED: {r['error']}"
    a = r["attacker"]
    lost = f" (+{r['lost']} lost)" if r["lost"] else ""
    s = (f"{r['attack']:<15} {r['broker']:<9} round trips {r['count']}"
         f"{lost}, p50 {fmt_ms(r['p50'])} ms, "
         f"p99 {fmt_ms(r['p99'])} ms, max {fmt_ms(r['max'])} ms (with the "
         f"{r['skipped_ticks']} skipped ticks: p50 {fmt_ms(r['co_p50'])}, "
         f"p99 {fmt_ms(r['co_p99'])}); attacker "
         f"{fmt_rate(a['rate'])} {UNITS[r['attack']]} ({a['ops']} in {a['seconds']} s, "
         f"attacker CPU {a['cpu'] * 100:.0f} %), broker CPU "
         f"{r.get('broker_cpu', 0) * 100:.0f} %, broker RSS {r['rss_mb'] or 0:.0f} MB")
    keys = ("held", "pubcomp_share", "sessions", "rounds_completed", "refused_filters",
            "sweeps_completed", "short_sweeps", "unanswered_at_end", "published_total",
            "after_unsubscribe", "setup_s")
    extra = {k: a[k] for k in keys if k in a and a[k] != []}
    return s + "; " + ", ".join(f"{k}={v}" for k, v in extra.items())


def orchestrate(args):
    mqttb = args.mqttb or os.path.join(SRC_ROOT, "build", "cli", "mqttb")
    paths = {"mqttb": mqttb, "mosquitto": args.mosquitto}
    attacks = [a for a in args.attacks.split(",") if a]
    brokers = [b for b in args.brokers.split(",") if b]
    for a in attacks:
        if a not in ATTACKS:
            raise Failure(f"unknown attack '{a}' ({','.join(ATTACKS)})")
    for b in brokers:
        if b not in BROKERS:
            raise Failure(f"unknown broker '{b}' ({','.join(BROKERS)})")
        if not os.access(paths[b], os.X_OK):
            raise Failure(f"{b} not found: {paths[b]}")
    tmp = tempfile.mkdtemp(prefix="mqttb-attacks.")
    run_id = os.urandom(3).hex()
    state = {"attacker": None, "broker": None}
    results = []
    ok = False
    log = sys.stderr
    try:
        mosq_version = ""
        if "mosquitto" in brokers:
            v = subprocess.run([paths["mosquitto"], "-h"], capture_output=True, text=True,
                               timeout=10).stdout.splitlines()
            mosq_version = v[0] if v else ""
        print(f"mqttb: {mqttb}; mosquitto: {paths['mosquitto']} ({mosq_version}); "
              f"period {args.duration} s after {args.warmup} s warm-up, one round trip "
              f"every {args.interval} ms; {os.cpu_count()} CPUs, load "
              f"{' '.join(open('/proc/loadavg').read().split()[:3])}; "
              f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}", file=log, flush=True)
        for i, attack in enumerate(attacks):
            order = brokers if i % 2 == 0 else brokers[::-1]
            for kind in order:
                b = Broker(kind, paths[kind], tmp)
                try:
                    r = run_one(args, attack, b, tmp, run_id + str(i), state)
                except Failure as e:
                    r = {"attack": attack, "broker": kind, "error": str(e)}
                results.append(r)
                print(describe(r), file=log, flush=True)
        ok = all("error" not in r for r in results)
    finally:
        stop_proc(state["attacker"])
        if state["broker"]:
            state["broker"].stop()
        if ok and not args.keep:
            for f in os.listdir(tmp):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)
        else:
            print(f"attacks.py: configs and logs kept in {tmp}", file=log)

    by = {(r["attack"], r["broker"]): r for r in results}

    def cell(r):
        if r is None:
            return "–"
        if "error" in r:
            return "FAIL"
        c = f"{fmt_ms(r['p50'])} / {fmt_ms(r['p99'])} / {fmt_ms(r['max'])}"
        if r["lost"]:
            c += f" ({r['lost']} lost)"
        return c

    print()
    print("| attack | mqttb p50/p99/max (ms) | mosquitto p50/p99/max (ms) | ratio of max |")
    print("|---|---:|---:|---:|")
    for a in attacks:
        x, y = by.get((a, "mqttb")), by.get((a, "mosquitto"))
        ratio = "–"
        if x and y and "error" not in x and "error" not in y and x["max"] and y["max"]:
            ratio = f"{x['max'] / y['max']:.2f}"
        print(f"| {a} | {cell(x)} | {cell(y)} | {ratio} |")
    print()
    print("| attack | attacker rate vs mqttb | attacker rate vs mosquitto | "
          "round trips mqttb / mosquitto |")
    print("|---|---:|---:|---:|")
    for a in attacks:
        x, y = by.get((a, "mqttb")), by.get((a, "mosquitto"))

        def rate(r):
            if not r or "error" in r:
                return "–"
            return f"{fmt_rate(r['attacker']['rate'])} {UNITS[a]}"

        def cnt(r):
            return "–" if not r or "error" in r else str(r["count"])

        print(f"| {a} | {rate(x)} | {rate(y)} | {cnt(x)} / {cnt(y)} |")
    print()
    print(f"Bystander: one QoS 0 round trip every {args.interval} ms for {args.duration} s "
          f"after {args.warmup} s of warm-up; ratio of max = mqttb / mosquitto (lower is better "
          f"for mqttb). Load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("-h", "--help", action="store_true")
    ap.add_argument("--mqttb")
    ap.add_argument("--mosquitto", default="/usr/sbin/mosquitto")
    ap.add_argument("-a", dest="attacks", default=",".join(ATTACKS))
    ap.add_argument("-b", dest="brokers", default=",".join(BROKERS))
    ap.add_argument("-d", dest="duration", type=float, default=10.0)
    ap.add_argument("-w", dest="warmup", type=float, default=2.0)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--rtt-timeout", type=float, default=10.0)
    ap.add_argument("--setup-timeout", type=float, default=120.0)
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    # Attack sizes (the defaults are the benchmark; smaller ones for testing).
    ap.add_argument("--window", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--fan-window", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--sessions", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--bomb-packets", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--bomb-filters", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--retained", type=int, default=100000, help=argparse.SUPPRESS)
    ap.add_argument("--sweep-stall", type=float, default=2.0, help=argparse.SUPPRESS)
    # Internal: run as the attacker.
    ap.add_argument("--attacker", choices=ATTACKS, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.help:
        with open(os.path.abspath(__file__)) as f:
            lines = f.read().split("\n# SPDX")[0].splitlines()[1:]
        print("\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines))
        return 0
    if args.attacker:
        return attacker_main(args)
    if (args.duration <= 0 or args.warmup < 0 or args.interval <= 0 or args.rtt_timeout <= 0
            or not 6 <= args.window <= 65535 or not 1 <= args.fan_window <= 65535
            or not 1 <= args.sessions <= 9999 or not 1 <= args.bomb_packets <= 16383
            or not 1 <= args.bomb_filters <= 65535 // 8 or not 1 <= args.retained <= 999999):
        print("attacks.py: an option is out of range (see -h)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        return orchestrate(args)
    except Failure as e:
        print(f"attacks.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("attacks.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
