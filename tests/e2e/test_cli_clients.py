#!/usr/bin/python3
"""Interoperability with the Mosquitto command-line clients: mosquitto_sub
(`-C N -W 5`) and mosquitto_pub at each QoS, with `-V mqttv31` and
`-V mqttv311`, retained messages, persistent sessions, wills, stdin publishing.

Usage: /usr/bin/python3 tests/e2e/test_cli_clients.py build/cli/mqttb
"""
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import tty
import unittest

sys.dont_write_bytecode = True

from e2e_common import (HOST, BrokerTestCase, kill_process, main, spawn,  # noqa: E402
                        unique)

MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
HAVE_CLIENTS = os.access(MOSQUITTO_PUB, os.X_OK) and os.access(MOSQUITTO_SUB, os.X_OK)
FORMAT = "MSG|%t|%q|%r|%p"
VERSIONS = ("mqttv31", "mqttv311")


class Sub:
    """A running mosquitto_sub; its output goes to a pseudo-terminal (so that it is
    line-buffered and "SUBACK" shows up at once) and is collected by a thread."""

    def __init__(self, cmd):
        master, slave = os.openpty()
        tty.setraw(slave)
        try:
            self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                              close_fds=True)
        finally:
            os.close(slave)
        self.master = master
        self.lines = queue.Queue()
        self.all = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO once the child has exited and closed the pty
                data = b""
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._line(line)
        if buf:
            self._line(buf)
        os.close(self.master)
        self.lines.put(None)

    def _line(self, raw):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self.all.append(line)
        self.lines.put(line)

    def wait_for(self, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("mosquitto_sub: no %r within %.1f s; output:\n%s"
                                     % (text, timeout, "\n".join(self.all)))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("mosquitto_sub exited (%s) before %r; output:\n%s"
                                     % (self.proc.poll(), text, "\n".join(self.all)))
            if text in line:
                return line

    def finish(self, timeout=8.0):
        """Wait for exit; returns (exit status, [(topic, qos, retain, payload)])."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process(self.proc)
            raise AssertionError("mosquitto_sub did not exit within %.1f s; output:\n%s"
                                 % (timeout, "\n".join(self.all)))
        self.thread.join(2)
        msgs = []
        for line in self.all:
            if line.startswith("MSG|"):
                _, topic, qos, retain, payload = line.split("|", 4)
                msgs.append((topic, int(qos), int(retain), payload))
        return rc, msgs

    def output(self):
        return "\n".join(self.all)


@unittest.skipUnless(HAVE_CLIENTS, "mosquitto_pub/mosquitto_sub not installed")
class CliHelpers:
    """Running mosquitto_sub and mosquitto_pub against the class's broker."""

    def base(self, version, cid):
        return ["-h", HOST, "-p", str(self.port), "-V", version, "-i", cid]

    def sub(self, topic, count, qos=0, version="mqttv311", cid=None, extra=(), wait_suback=True):
        cmd = [MOSQUITTO_SUB] + self.base(version, cid or unique("ms")) + [
            "-t", topic, "-q", str(qos), "-C", str(count), "-W", "5", "-d", "-F", FORMAT] + list(extra)
        s = Sub(cmd)
        self.addCleanup(kill_process, s.proc)
        if wait_suback:
            s.wait_for("SUBACK")
        return s

    def pub(self, topic, message, qos=0, version="mqttv311", cid=None, extra=(), expect_rc=0,
            stdin=None):
        cmd = [MOSQUITTO_PUB] + self.base(version, cid or unique("mp")) + [
            "-t", topic, "-q", str(qos)] + (["-m", message] if message is not None else []) + list(extra)
        try:
            r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=10)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("mosquitto_pub timed out: %s\n%s" % (cmd, e.output))
        if expect_rc is not None:
            self.assertEqual(r.returncode, expect_rc, "%s:\n%s" % (" ".join(cmd), r.stdout))
        return r


class CliClients(CliHelpers, BrokerTestCase):

    def test_qos_levels_and_versions(self):
        for version in VERSIONS:
            for qos in (0, 1, 2):
                with self.subTest(version=version, qos=qos):
                    topic = self.prefix + "%s/q%d" % (version, qos)
                    s = self.sub(topic, 3, qos=qos, version=version)
                    sent = ["%s qos %d #%d" % (version, qos, i) for i in range(3)]
                    for m in sent:
                        self.pub(topic, m, qos=qos, version=version)
                    rc, msgs = s.finish()
                    self.assertEqual(rc, 0, s.output())
                    self.assertEqual(msgs, [(topic, qos, 0, m) for m in sent], s.output())

    def test_qos_downgrade(self):
        for pub_qos, sub_qos in ((2, 0), (2, 1), (1, 0), (0, 2)):
            with self.subTest(pub_qos=pub_qos, sub_qos=sub_qos):
                topic = self.prefix + "down%d%d" % (pub_qos, sub_qos)
                s = self.sub(topic, 1, qos=sub_qos)
                self.pub(topic, "d", qos=pub_qos)
                rc, msgs = s.finish()
                self.assertEqual(rc, 0, s.output())
                self.assertEqual(msgs, [(topic, min(pub_qos, sub_qos), 0, "d")])

    def test_mixed_versions(self):
        for pub_v, sub_v in (("mqttv31", "mqttv311"), ("mqttv311", "mqttv31")):
            with self.subTest(pub=pub_v, sub=sub_v):
                topic = self.prefix + "mix/" + pub_v
                s = self.sub(topic, 1, qos=2, version=sub_v)
                self.pub(topic, "from " + pub_v, qos=2, version=pub_v)
                rc, msgs = s.finish()
                self.assertEqual((rc, msgs), (0, [(topic, 2, 0, "from " + pub_v)]), s.output())

    def test_wildcard_subscription(self):
        s = self.sub(self.prefix + "w/+/x/#", 2, qos=1)
        self.pub(self.prefix + "w/a/y", "no", qos=1)
        self.pub(self.prefix + "w/a/x", "yes1", qos=1)
        self.pub(self.prefix + "w/b/x/c/d", "yes2", qos=1)
        rc, msgs = s.finish()
        self.assertEqual(rc, 0, s.output())
        self.assertEqual([m[3] for m in msgs], ["yes1", "yes2"])

    def test_retained(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                topic = self.prefix + "ret/" + version
                self.pub(topic, "kept", qos=1, version=version, extra=["-r"])
                s = self.sub(topic, 1, qos=1, version=version)
                rc, msgs = s.finish()
                self.assertEqual((rc, msgs), (0, [(topic, 1, 1, "kept")]), s.output())
                # Clear it with an empty retained message (-n: null message).
                self.pub(topic, None, qos=1, version=version, extra=["-r", "-n"])
                cmd = [MOSQUITTO_SUB] + self.base(version, unique("ms")) + [
                    "-t", topic, "-C", "1", "-W", "1", "-F", FORMAT]
                r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=10)
                self.assertNotIn("MSG|", r.stdout, "retained message not cleared")
                self.assertEqual(r.returncode, 27, "expected mosquitto_sub -W timeout: " + r.stdout)

    def test_publish_lines_from_stdin(self):
        topic = self.prefix + "stdin"
        lines = ["line %d" % i for i in range(10)]
        s = self.sub(topic, len(lines), qos=1)
        self.pub(topic, None, qos=1, extra=["-l"], stdin="\n".join(lines) + "\n")
        rc, msgs = s.finish()
        self.assertEqual(rc, 0, s.output())
        self.assertEqual([m[3] for m in msgs], lines)

    def test_persistent_session(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                topic = self.prefix + "persist/" + version
                cid = unique("pc")
                # Create the session, subscribed at QoS 1; exit after the first message.
                s = self.sub(topic, 1, qos=1, version=version, cid=cid, extra=["-c"])
                self.pub(topic, "online", qos=1)
                rc, msgs = s.finish()
                self.assertEqual((rc, [m[3] for m in msgs]), (0, ["online"]), s.output())
                # While it is offline:
                self.pub(topic, "offline 1", qos=1)
                self.pub(topic, "offline 2", qos=2)
                s = self.sub(topic, 2, qos=1, version=version, cid=cid, extra=["-c"],
                             wait_suback=False)
                rc, msgs = s.finish()
                self.assertEqual(rc, 0, s.output())
                self.assertEqual([(m[3], m[1]) for m in msgs], [("offline 1", 1), ("offline 2", 1)])

    def test_will_of_killed_subscriber(self):
        will_topic = self.prefix + "will"
        watcher = self.sub(will_topic, 1, qos=1)
        victim = self.sub(self.prefix + "victim", 1, extra=[
            "--will-topic", will_topic, "--will-payload", "victim died", "--will-qos", "1"])
        victim.proc.send_signal(signal.SIGKILL)
        rc, msgs = watcher.finish()
        self.assertEqual((rc, msgs), (0, [(will_topic, 1, 0, "victim died")]), watcher.output())

    def test_large_message_from_file(self):
        topic = self.prefix + "file"
        path = os.path.join(self.broker.dir, "payload.txt")
        payload = "".join(chr(ord("a") + i % 26) for i in range(200000))
        with open(path, "w") as f:
            f.write(payload)
        s = self.sub(topic, 1, qos=2)
        self.pub(topic, None, qos=2, extra=["-f", path])
        rc, msgs = s.finish()
        self.assertEqual(rc, 0)
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0][3], payload)

    def test_mqtt5_client(self):
        # Whether or not the broker speaks MQTT 5, a v5 client must either be
        # refused cleanly or work, and a v3.1.1 subscriber sees its message.
        topic = self.prefix + "v5"
        s = self.sub(topic, 1, qos=1)
        r = self.pub(topic, "from v5", qos=1, version="5", expect_rc=None)
        self.assertBrokerAlive()
        if r.returncode == 0:
            rc, msgs = s.finish()
            self.assertEqual((rc, msgs), (0, [(topic, 1, 0, "from v5")]), s.output())
        else:
            self.pub(topic, "from v3.1.1", qos=1)
            rc, msgs = s.finish()
            self.assertEqual((rc, msgs), (0, [(topic, 1, 0, "from v3.1.1")]), s.output())



class SysTree(CliHelpers, BrokerTestCase):
    """mosquitto_sub -t '$SYS/#' against the broker's own tree."""

    CONFIG = ("sys_interval 1",)

    def test_sys_tree_with_mosquitto_sub(self):
        # Someone connected, so clients/connected is at least 1 at the next update.
        s = self.sub("$SYS/#", 200, extra=("-v",), wait_suback=False)
        time.sleep(2.5)
        kill_process(s.proc)
        s.thread.join(5)
        topics = {}
        for line in s.all:
            if line.startswith("MSG|"):
                _, topic, _, _, payload = line.split("|", 4)
                topics[topic] = payload
        for t in ("$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
                  "$SYS/broker/messages/received"):
            self.assertIn(t, topics, "no %s in:\n%s" % (t, s.output()))
        self.assertTrue(topics["$SYS/broker/uptime"].endswith(" seconds"))
        self.assertGreaterEqual(int(topics["$SYS/broker/clients/connected"]), 1)
        if self.broker.kind == "mqttb":
            self.assertTrue(topics["$SYS/broker/version"].startswith("mqttb version "))
            for t in ("$SYS/broker/time", "$SYS/broker/messages/publish/dropped",
                      "$SYS/broker/load/bytes/received",
                      "$SYS/broker/subscriptions/count", "$SYS/broker/load/connections/1min"):
                self.assertIn(t, topics)

    def test_hash_does_not_see_sys(self):
        s = self.sub("#", 1, extra=("-W", "3"))
        rc, msgs = s.finish()
        self.assertEqual([m for m in msgs if m[0].startswith("$SYS")], [], s.output())


if __name__ == "__main__":
    main()
