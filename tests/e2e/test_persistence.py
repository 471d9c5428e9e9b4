#!/usr/bin/python3
"""End-to-end persistence of mqttb (persistence true; docs/persistence.md ("The mqttb store")):
a clean restart keeps a persistent session's subscriptions, its queued QoS 1
and 2 messages and retained messages; SIGKILL at random moments while QoS 1
and 2 publishers and a persistent subscriber run loses nothing that was
acknowledged (QoS 1 at least once, QoS 2 exactly once); a journal with a
flipped byte or a torn tail is repaired at start-up, keeping what came
before the damage; a full disk (a 1 MiB tmpfs) degrades the store without
stopping the broker, and it recovers once there is space again.

Usage: /usr/bin/python3 tests/e2e/test_persistence.py build/cli/mqttb
"""
import glob
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True

import paho.mqtt.client as mqtt  # noqa: E402

import e2e_common  # noqa: E402
from e2e_common import (HOST, Broker, BrokerError, Client, MQTTv311, is_mosquitto,  # noqa: E402
                        kill_process, main, scaled, spawn, unique)


class StoreBroker(Broker):
    """mqttb with persistence in `data` (a directory of its own unless
    given); restarts keep the port of the first start."""

    def __init__(self, extra=(), data=None):
        super().__init__()
        self.data = data or os.path.join(self.dir, "data")
        self.extra = list(extra)
        self.fixed_port = None

    def _start_mqttb(self):
        port_file = os.path.join(self.dir, "port")
        try:
            os.unlink(port_file)
        except OSError:
            pass
        conf = os.path.join(self.dir, "mqttb.conf")
        with open(conf, "w") as f:
            f.write("persistence true\npersistence_location %s/\n" % self.data)
            f.write("\n".join(self.extra) + "\n")
        port = str(self.fixed_port or 0)
        cmd = [e2e_common.MQTTB_PATH, "-p", port, "-b", HOST, "--port-file", port_file, "-v",
               "-c", conf]
        if self._log is None:
            self._log = open(self.log_path, "ab")
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + scaled(15)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError("mqttb exited with %s during start-up:\n%s"
                                  % (self.proc.returncode, self.log_text()))
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    self.fixed_port = self.port
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        kill_process(self.proc)
        raise BrokerError("mqttb did not start:\n" + self.log_text())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)
        kill_process(self.proc)  # bookkeeping only: it is gone

    def restart(self):
        self.start()

    def files(self, pattern="*"):
        return sorted(glob.glob(os.path.join(self.data, pattern)))

    def segments(self):
        return [p for p in self.files("mqttb.db.journal.*") if p.rsplit(".", 1)[1].isdigit()]


def acked(info):
    """Whether the publisher got PUBACK / PUBCOMP (paho's is_published raises
    for a message first sent while disconnected, which it still re-sends)."""
    with info._condition:
        return info._published


def frames(data):
    """(offset, length) of each record in a snapshot or segment."""
    out = []
    off = 24
    while off + 8 <= len(data):
        n = struct.unpack("<I", data[off:off + 4])[0]
        if off + 8 + n > len(data):
            break
        out.append((off, n))
        off += 8 + n
    return out


class PersistenceTestCase(unittest.TestCase):
    EXTRA = ()

    def setUp(self):
        if is_mosquitto():
            raise unittest.SkipTest("mqttb's store files")
        self.broker = StoreBroker(self.EXTRA)
        self.clients = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        b = self.broker
        if b.proc is not None and b.alive():
            b.stop()
        b.cleanup()

    def client(self, cid=None, **kw):
        c = Client(self.broker.port, client_id=cid or unique("c"), **kw)
        self.clients.append(c)
        return c

    def retained(self, topic):
        """The retained message of `topic` (payload), or None."""
        c = self.client()
        c.subscribe(topic, 0)
        got = c.drain(0.3)
        c.close()
        for m in got:
            if m.retain:
                return m.payload
        return None

    def stop_clean(self):
        rc = self.broker.stop()
        self.assertEqual(rc, 0, "broker did not exit cleanly:\n" + self.broker.log_text())


class CleanRestart(PersistenceTestCase):
    def test_session_queue_and_retained_survive_a_restart(self):
        p = unique("cr") + "/"
        sub_id = unique("s")
        self.broker.start()
        s = self.client(sub_id, clean_session=False)
        self.assertEqual(s.subscribe([(p + "q1", 1), (p + "q2", 2)]), [1, 2])
        s.disconnect()
        pub = self.client()
        for i in range(5):
            pub.publish(p + "q1", b"one-%d" % i, 1)
            pub.publish(p + "q2", b"two-%d" % i, 2)
        pub.publish(p + "r", b"kept", 1, retain=True)
        pub.close()
        self.stop_clean()
        self.assertIn("saved the state", self.broker.log_text())
        self.assertTrue(os.path.exists(os.path.join(self.broker.data, "mqttb.db")))

        self.broker.restart()
        self.assertIn("sessions restored", self.broker.log_text())
        s = self.client(sub_id, clean_session=False)
        self.assertTrue(s.session_present, "the persistent session was not restored")
        got = s.get_n(10)
        for q, name in ((1, b"one"), (2, b"two")):
            self.assertEqual([m.payload for m in got if m.topic == p + "q%d" % q],
                             [b"%s-%d" % (name, i) for i in range(5)])
        self.assertEqual(s.drain(0.3), [])
        self.assertEqual(self.retained(p + "r"), b"kept")
        # The subscriptions are live again.
        pub = self.client()
        pub.publish(p + "q2", b"after", 2)
        self.assertEqual(s.get().payload, b"after")
        # And once more, through a SIGKILL: the journal alone has it.
        pub.publish(p + "r", b"changed", 1, retain=True)
        self.broker.kill9()
        self.broker.restart()
        self.assertEqual(self.retained(p + "r"), b"changed")


class _FixedPaho(mqtt.Client):
    """paho-mqtt 1.6.1 resets its outgoing messages at every reconnect
    attempt, before the socket is even connected. A QoS 2 message whose
    PUBREL was sent is set to "resend PUBREL" by the first reset, and a
    second reset (the broker still down, the attempt refused) turns that
    into "publish again": the client then sends as a new PUBLISH a message
    whose packet identifier it had already released, which a broker must
    treat as a new publication [MQTT-4.3.3-9]. This keeps the state."""

    def _messages_reconnect_reset_out(self):
        with self._out_message_mutex:
            pending_rel = [m for m in self._out_messages.values()
                           if m.qos == 2 and m.state == mqtt.mqtt_ms_resend_pubrel]
            super()._messages_reconnect_reset_out()
            for m in pending_rel:
                m.state = mqtt.mqtt_ms_resend_pubrel


class KillLoop(PersistenceTestCase):
    """SIGKILL at random moments; nothing acknowledged may be lost."""
    EXTRA = ("autosave_interval 2", "max_queued_messages 0", "max_inflight_messages 20")
    ROUNDS = 14

    def _paho(self, cid):
        c = _FixedPaho(client_id=cid, clean_session=False, protocol=MQTTv311)
        c.reconnect_delay_set(0.05, 0.2)
        c.max_queued_messages_set(0)
        return c

    def run_loop(self, sync):
        if sync:
            self.broker.extra.append("persistence_sync true")
        random.seed(os.getpid())
        p = unique("kl") + "/"
        self.broker.start()
        received = []
        trace = []  # (time, payload, dup flag, packet id) as received
        kill_times = []
        session_lost = []
        connected = threading.Event()
        sub = self._paho(unique("sub"))

        def on_connect(c, u, flags, rc):
            if rc != 0:
                return
            if not flags.get("session present"):
                if connected.is_set():
                    session_lost.append(time.monotonic())
                c.subscribe([(p + "q1", 1), (p + "q2", 2)])
            connected.set()

        def on_message(c, u, m):
            received.append((m.topic, m.payload))
            trace.append((time.monotonic(), m.payload, m.dup, m.mid))
        sub.on_connect = on_connect
        sub.on_message = on_message
        sub.connect(HOST, self.broker.port, 30)
        sub.loop_start()
        self.addCleanup(sub.loop_stop)
        self.assertTrue(connected.wait(scaled(5)))
        time.sleep(0.3)  # SUBACK

        pubs = []
        for q in (1, 2):
            c = self._paho(unique("pub%d-" % q))
            c.connect(HOST, self.broker.port, 30)
            c.loop_start()
            self.addCleanup(c.loop_stop)
            pubs.append((q, c, []))
        stop = threading.Event()

        def publisher(q, c, infos):
            i = 0
            while not stop.is_set():
                payload = b"q%d-%06d" % (q, i)
                infos.append((payload, c.publish(p + "q%d" % q, payload, q)))
                i += 1
                time.sleep(0.002)
        threads = [threading.Thread(target=publisher, args=x, daemon=True) for x in pubs]
        for t in threads:
            t.start()
        kills = 0
        try:
            for _ in range(self.ROUNDS):
                time.sleep(random.uniform(0.2, 1.0))
                kill_times.append(time.monotonic())
                self.broker.kill9()
                kills += 1
                time.sleep(random.uniform(0.0, 0.2))
                self.broker.restart()
        finally:
            stop.set()
            for t in threads:
                t.join(5)
        # Let the publishers finish what they have in flight.
        deadline = time.monotonic() + scaled(20)
        while time.monotonic() < deadline:
            if all(acked(info) for _q, _c, infos in pubs for _p, info in infos[-50:]):
                break
            time.sleep(0.1)
        acked_payloads = {q: [pl for pl, info in infos if acked(info)] for q, _c, infos in pubs}
        # And the subscriber receive them.
        deadline = time.monotonic() + scaled(20)
        while time.monotonic() < deadline:
            got = set(pl for _t, pl in received)
            if all(pl in got for q in (1, 2) for pl in acked_payloads[q]):
                break
            time.sleep(0.1)
        got = [pl for _t, pl in list(received)]
        counts = {}
        for pl in got:
            counts[pl] = counts.get(pl, 0) + 1
        missing = {q: [pl for pl in acked_payloads[q] if pl not in counts] for q in (1, 2)}
        dup2 = [pl for pl, n in counts.items() if pl.startswith(b"q2-") and n > 1]
        sys.stdout.write("\n  kill loop (sync %s): %d kills, acknowledged QoS 1: %d, QoS 2: %d, "
                         "received %d (%d distinct), QoS 1 duplicates %d\n"
                         % (sync, kills, len(acked_payloads[1]), len(acked_payloads[2]), len(got), len(counts),
                            sum(n - 1 for pl, n in counts.items() if pl.startswith(b"q1-"))))
        t0 = kill_times[0] if kill_times else 0
        for d in dup2:
            sys.stdout.write("  duplicate %r: (seconds after the first kill, DUP flag, packet id) %r\n"
                             % (d, [(round(t - t0, 3), dp, mid) for t, pl, dp, mid in trace
                                    if pl == d]))
        if dup2:
            sys.stdout.write("  kills at %r\n" % [round(t - t0, 3) for t in kill_times])
        self.assertEqual(session_lost, [], "the subscriber's session was lost after a restart")
        self.assertGreater(len(acked_payloads[1]), 100)
        self.assertGreater(len(acked_payloads[2]), 100)
        self.assertEqual(missing[1], [], "acknowledged QoS 1 messages lost")
        self.assertEqual(missing[2], [], "acknowledged QoS 2 messages lost")
        self.assertEqual(dup2, [], "QoS 2 messages delivered more than once")
        for _q, c, _i in pubs:
            c.disconnect()
        sub.disconnect()
        self.assertTrue(self.broker.alive())
        self.assertNotIn("damaged at offset", self.broker.log_text())

    def test_kill9_loses_nothing_acknowledged(self):
        self.run_loop(sync=False)

    def test_kill9_loses_nothing_acknowledged_with_persistence_sync(self):
        self.run_loop(sync=True)


class Damage(PersistenceTestCase):
    # No compaction while the test writes the journal.
    EXTRA = ("autosave_interval 0",)

    def fill(self, p, n=5):
        self.broker.start()
        pub = self.client()
        for i in range(1, n + 1):
            pub.publish(p + "r%d" % i, b"value-%d-" % i + b"x" * 200, 1, retain=True)
        pub.close()
        self.broker.kill9()
        segs = self.broker.segments()
        self.assertEqual(len(segs), 1, segs)
        with open(segs[0], "rb") as f:
            data = f.read()
        # The record of each retained message holds its topic.
        where = {}
        for off, n in frames(data):
            rec = data[off + 8:off + 8 + n]
            for i in range(1, 6):
                if (p + "r%d" % i).encode() in rec:
                    where[i] = (off, n)
        self.assertEqual(sorted(where), list(range(1, n + 1)), "retained records not found")
        return segs[0], data, where

    def test_a_flipped_byte_keeps_what_came_before(self):
        p = unique("fb") + "/"
        seg, data, where = self.fill(p)
        off, n = where[4]
        data = bytearray(data)
        data[off + 8 + n // 2] ^= 0x20
        with open(seg, "wb") as f:
            f.write(data)
        self.broker.restart()
        log = self.broker.log_text()
        self.assertIn("%s is damaged at offset %d" % (seg, off), log)
        self.assertIn("bytes lost; the file was moved to %s.corrupt." % seg, log)
        self.assertEqual(len(glob.glob(seg + ".corrupt.*")), 1)
        for i in (1, 2, 3):
            self.assertEqual(self.retained(p + "r%d" % i), b"value-%d-" % i + b"x" * 200)
        self.assertIsNone(self.retained(p + "r4"))
        # It serves, and it stores again.
        pub = self.client()
        pub.publish(p + "new", b"n", 1, retain=True)
        self.broker.kill9()
        self.broker.restart()
        self.assertEqual(self.retained(p + "new"), b"n")
        self.assertEqual(self.retained(p + "r1"), b"value-1-" + b"x" * 200)

    def test_a_torn_tail_is_cut_off(self):
        p = unique("tt") + "/"
        seg, data, where = self.fill(p)
        off, n = where[5]
        with open(seg, "r+b") as f:
            f.truncate(off + 8 + n - 3)
        self.broker.restart()
        log = self.broker.log_text()
        self.assertIn("%s: torn tail at offset %d" % (seg, off), log)
        for i in (1, 2, 3, 4):
            self.assertEqual(self.retained(p + "r%d" % i), b"value-%d-" % i + b"x" * 200)
        self.assertIsNone(self.retained(p + "r5"))
        self.assertEqual(glob.glob(seg + ".corrupt.*"), [])

    def test_an_unusable_location_is_a_clear_error(self):
        with tempfile.NamedTemporaryFile() as f:
            self.broker.data = f.name  # a file, not a directory
            with self.assertRaises(BrokerError) as cm:
                self.broker.start()
            self.assertIn("persistence_location %s" % f.name, str(cm.exception))


class Expiry(PersistenceTestCase):
    """MQTT 5 session and message expiry count on while the broker is down."""

    def _v5(self, cid, clean_start, expiry):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        got, connacks = [], []
        c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5)
        c.on_connect = lambda cl, u, flags, rc, props=None: connacks.append(flags)
        c.on_message = lambda cl, u, m: got.append(m.payload)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
        c.connect(HOST, self.broker.port, 30, clean_start=clean_start, properties=props)
        c.loop_start()
        deadline = time.monotonic() + scaled(5)
        while not connacks and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(connacks, "no CONNACK")
        return c, connacks[0].get("session present"), got

    def _close(self, c):
        c.disconnect()
        c.loop_stop()

    def test_mqtt5_expiries_keep_counting_across_a_restart(self):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        p = unique("ex") + "/"
        cid = unique("e")
        self.broker.start()
        c, _sp, _got = self._v5(cid, True, 8)
        c.subscribe(p + "t", 1)
        time.sleep(0.3)
        self._close(c)
        pub, _sp, _got = self._v5(unique("p"), True, 0)
        short = Properties(PacketTypes.PUBLISH)
        short.MessageExpiryInterval = 2
        infos = [pub.publish(p + "t", b"short", 1, properties=short),
                 pub.publish(p + "t", b"long", 1)]
        for info in infos:
            info.wait_for_publish(scaled(5))
            self.assertTrue(info.is_published())
        self._close(pub)
        # Down for 3 s: the 2 s message expires meanwhile, the session
        # (8 s) does not.
        self.stop_clean()
        time.sleep(3)
        self.broker.restart()
        c, sp, got = self._v5(cid, False, 8)
        self.assertTrue(sp, "the session was restored")
        deadline = time.monotonic() + scaled(3)
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        self.assertEqual(got, [b"long"], "the expired message is gone, the other one came")
        self._close(c)
        # Away for 4 s, then killed and down for 5 s: 9 s > 8 s.
        time.sleep(4)
        self.broker.kill9()
        time.sleep(5)
        self.broker.restart()
        c, sp, _got = self._v5(cid, False, 8)
        self.assertFalse(sp, "the session expired, time down included")
        self._close(c)


class DiskFull(PersistenceTestCase):
    EXTRA = ("persistence_sync true", "sys_interval 1", "autosave_interval 0")

    def setUp(self):
        super().setUp()
        self.mnt = tempfile.mkdtemp(prefix="mqttb-e2e-tmpfs-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", self.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            raise unittest.SkipTest("cannot mount a tmpfs (needs root): %s"
                                    % r.stdout.decode(errors="replace").strip())
        self.addCleanup(self._umount)
        self.broker.data = os.path.join(self.mnt, "store")

    def _umount(self):
        b = self.broker
        if b.proc is not None and b.alive():
            b.stop()
        if subprocess.run(["umount", self.mnt]).returncode != 0:
            subprocess.run(["umount", "-l", self.mnt])
        os.rmdir(self.mnt)

    def sys_value(self, name):
        c = self.client()
        c.subscribe("$SYS/broker/store/" + name, 0)
        m = c.get()
        c.close()
        return m.payload

    def test_a_full_disk_degrades_and_recovers(self):
        p = unique("df") + "/"
        self.broker.start()
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (600 * 1024))
        pub = self.client()
        big = b"y" * 16000
        i = 0
        # Every publish is acknowledged (persistence_sync: acknowledgements
        # are not held for a disk that cannot be written).
        while i < 200 and "The store is degraded" not in self.broker.log_text():
            pub.publish(p + "m%d" % i, big, 1, retain=True)
            i += 1
        log = self.broker.log_text()
        self.assertIn("The store is degraded", log)
        self.assertIn("No space left on device", log)
        self.assertTrue(self.broker.alive())
        # It keeps serving: more retained messages, delivery.
        pub.publish(p + "during", b"while degraded", 1, retain=True)
        s = self.client()
        s.subscribe(p + "live", 1)
        pub.publish(p + "live", b"still", 1)
        self.assertEqual(s.get().payload, b"still")
        deadline = time.monotonic() + scaled(3)
        while self.sys_value("degraded") != b"1" and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.sys_value("degraded"), b"1")
        self.assertNotEqual(self.sys_value("errors"), b"0")
        self.assertNotEqual(self.sys_value("records/lost"), b"0")
        # Space again: within one retry (10 s) the snapshot holds everything.
        os.unlink(filler)
        deadline = time.monotonic() + scaled(15)
        while "durable again" not in self.broker.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertIn("the store is durable again", self.broker.log_text())
        time.sleep(1.2)
        self.assertEqual(self.sys_value("degraded"), b"0")
        # What was published while degraded survives a SIGKILL now.
        self.broker.kill9()
        self.broker.restart()
        self.assertEqual(self.retained(p + "during"), b"while degraded")
        self.assertEqual(self.retained(p + "m0"), big)
        self.assertEqual(self.retained(p + "m%d" % (i - 1)), big)


if __name__ == "__main__":
    main()
