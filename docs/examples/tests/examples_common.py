"""Shared helpers for the tests of docs/examples/.

Each test script is run as `/usr/bin/python3 docs/examples/tests/test_X.py PATH/TO/example`
(meson test --suite examples). It starts the example, drives it with real clients
(mosquitto_pub/mosquitto_sub, paho-mqtt 1.6) or raw MQTT bytes, and stops everything it
started. The raw packet helpers, the paho wrapper and the process bookkeeping (children die
with the test, even on SIGKILL) come from tests/e2e/e2e_common.py.

Exit status: 0 when every test passed, 1 on a failure, 77 (meson's "skipped") when a
program the script needs is missing (`require`).

With EXAMPLES_VALGRIND=1 the example runs under valgrind (definite leaks and memory errors
make it exit with 99, which fails the test that stops it), and waits are stretched.
"""

import os
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tty
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "e2e"))

import e2e_common  # noqa: E402
from e2e_common import (CONNACK, CONNECT, DISCONNECT, DISCONNECT_PACKET, HOST, PINGREQ,  # noqa: E402,F401
                        PINGREQ_PACKET, PINGRESP, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK, SUBSCRIBE,
                        Client, Packet, RawClient, ack_packet, connect_packet, enc_len, enc_str,
                        kill_process, packet, publish_packet, spawn, subscribe_packet, unique)

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402

VALGRIND = os.environ.get("EXAMPLES_VALGRIND", "").strip() not in ("", "0")
VALGRIND_ERROR_EXIT = 99
VALGRIND_CMD = ["valgrind", "--error-exitcode=%d" % VALGRIND_ERROR_EXIT, "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--track-fds=no", "-q"]
# Waits for something to happen are stretched under valgrind; windows in which nothing may
# happen are not.
SCALE = 5.0 if VALGRIND else 1.0
if VALGRIND:
    e2e_common.TIME_SCALE = SCALE
TIMEOUT = 5.0 * SCALE
WATCHDOG_SECONDS = 240.0 if VALGRIND else 50.0

MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
SOCAT = shutil.which("socat") or "/usr/bin/socat"
FORMAT = "MSG|%t|%q|%r|%p"

EXAMPLE = None  # set by main() from argv[1]


def have(program):
    return os.access(program, os.X_OK)


def require(*programs):
    """Exit with 77 (skipped) when a program is missing."""
    missing = [p for p in programs if not have(p)]
    if missing:
        sys.stdout.write("SKIP: not installed: %s\n" % ", ".join(missing))
        sys.stdout.flush()
        sys.exit(77)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(predicate, timeout=TIMEOUT, what="condition", step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(step)


# --------------------------------------------------------------------------
# The example process


class Example:
    """An example program; its stderr (the log) is collected in a file."""

    def __init__(self, args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, valgrind=None):
        self.dir = tempfile.mkdtemp(prefix="mqttb-example-")
        self.log_path = os.path.join(self.dir, "stderr.log")
        self._log = open(self.log_path, "wb")
        cmd = [EXAMPLE] + [str(a) for a in args]
        if VALGRIND if valgrind is None else valgrind:
            cmd = VALGRIND_CMD + cmd
        self.cmd = cmd
        self.proc = spawn(cmd, stdin=stdin, stdout=stdout, stderr=self._log)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=TIMEOUT * 2):
        """Wait for a log line matching the regular expression; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.log())
                if m:
                    return m
                raise AssertionError("example exited (%s) before logging %r; log:\n%s"
                                     % (self.proc.returncode, pattern, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("example did not log %r within %.1f s; log:\n%s"
                                     % (pattern, timeout, self.log()))
            time.sleep(0.02)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=TIMEOUT * 2):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process(self.proc, grace=1.0)
            raise AssertionError("example did not exit within %.1f s; log:\n%s"
                                 % (timeout, self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT * 2):
        """Send sig, wait for the exit; returns the status (killed after timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process(self.proc, grace=1.0)
            raise AssertionError("example did not exit within %.1f s of signal %d; log:\n%s"
                                 % (timeout, sig, self.log()))

    def close(self):
        if self.proc.poll() is None:
            kill_process(self.proc, grace=1.0)
        else:
            kill_process(self.proc)  # unregisters it
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def assert_clean_exit(self, test, rc):
        if VALGRIND and rc == VALGRIND_ERROR_EXIT:
            test.fail("valgrind found errors:\n" + self.log())
        test.assertEqual(rc, 0, "exit status %s; log:\n%s" % (rc, self.log()))


# --------------------------------------------------------------------------
# mosquitto_sub / mosquitto_pub


class Sub:
    """A running mosquitto_sub. Its output goes to a pseudo-terminal, so that it is line
    buffered and the -d line "received SUBACK" shows up at once."""

    def __init__(self, conn_args, topic, count, qos=0, extra=(), wait_suback=True):
        cmd = [MOSQUITTO_SUB] + list(conn_args) + [
            "-t", topic, "-q", str(qos), "-C", str(count), "-W", str(int(10 * SCALE)), "-d",
            "-F", FORMAT] + list(extra)
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
        if wait_suback:
            self.wait_for("SUBACK")

    def _read(self):
        buf = b""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO once the child has exited
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

    def output(self):
        return "\n".join(self.all)

    def wait_for(self, text, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("mosquitto_sub: no %r within %.1f s; output:\n%s"
                                     % (text, timeout, self.output()))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("mosquitto_sub exited (%s) before %r; output:\n%s"
                                     % (self.proc.poll(), text, self.output()))
            if text in line:
                return line

    def finish(self, timeout=TIMEOUT * 2):
        """Wait for the exit; returns (status, [(topic, qos, retain, payload)])."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process(self.proc)
            raise AssertionError("mosquitto_sub did not exit within %.1f s; output:\n%s"
                                 % (timeout, self.output()))
        kill_process(self.proc)
        self.thread.join(2)
        msgs = []
        for line in self.all:
            if line.startswith("MSG|"):
                _, topic, qos, retain, payload = line.split("|", 4)
                msgs.append((topic, int(qos), int(retain), payload))
        return rc, msgs

    def close(self):
        kill_process(self.proc, grace=1.0)


def pub(conn_args, topic, message, qos=0, extra=(), expect_rc=0):
    cmd = [MOSQUITTO_PUB] + list(conn_args) + ["-t", topic, "-q", str(qos)] + (
        ["-m", message] if message is not None else ["-n"]) + list(extra)
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT * 2)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("mosquitto_pub timed out: %s\n%s" % (" ".join(cmd), e.output))
    if expect_rc is not None and r.returncode != expect_rc:
        raise AssertionError("%s: exit status %d, expected %d:\n%s"
                             % (" ".join(cmd), r.returncode, expect_rc, r.stdout))
    return r


# --------------------------------------------------------------------------
# MQTT 5 with paho


class Client5:
    """A paho MQTTv5 client in its own thread; messages (with properties) in a queue."""

    def __init__(self, port, client_id=None, host=HOST):
        self.client_id = client_id or unique("v5")
        self.c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.c.on_connect = lambda c, u, flags, rc, props=None: self.connacks.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda c, u, mid, codes, props=None: self.subacks.put(codes)
        self.c.connect(host, port, 60)
        self.c.loop_start()
        try:
            rc = self.connacks.get(timeout=TIMEOUT)
        except queue.Empty:
            self.close()
            raise AssertionError("MQTT 5 client: no CONNACK")
        if rc != 0:
            self.close()
            raise AssertionError("MQTT 5 client: CONNACK %s" % rc)

    def subscribe(self, topic, qos=1):
        self.c.subscribe(topic, qos)
        try:
            return self.subacks.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError("MQTT 5 client: no SUBACK for %s" % topic)

    def publish(self, topic, payload, qos=1, retain=False, props=None):
        info = self.c.publish(topic, payload, qos, retain, properties=props)
        info.wait_for_publish(TIMEOUT)
        if not info.is_published():
            raise AssertionError("MQTT 5 client: publish to %s not completed" % topic)

    def get(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("MQTT 5 client: no message within %.1f s" % timeout)

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


def props_publish(**kw):
    """MQTT 5 PUBLISH properties, e.g. props_publish(UserProperty=[("k", "v")])."""
    p = Properties(PacketTypes.PUBLISH)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class RawTcp(RawClient):
    """RawClient with a chosen receive buffer size (set before connecting)."""

    def __init__(self, port, rcvbuf=None, host=HOST):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.pos = 0


class RawUnix(RawClient):
    """RawClient over a Unix-domain stream socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = bytearray()
        self.pos = 0


def check_work_budget(test, raw, count=8000):
    """count PINGREQs in one write: more than the library's work budget (1024 units) per call,
    so it holds the rest back; the example's loop must come back for it without new input."""
    raw.connect(unique("flood"))
    raw.send(PINGREQ_PACKET * count)
    for i in range(count):
        p = raw.read_packet()
        test.assertEqual(p.type if p else None, PINGRESP, "answer %d of %d" % (i + 1, count))


# --------------------------------------------------------------------------
# Raw MQTT over any pair of file descriptors (pipes, a pty)


class FdClient(RawClient):
    """RawClient's packet parsing over file descriptors instead of a TCP socket."""

    def __init__(self, rfd, wfd=None):
        self.rfd = rfd
        self.wfd = rfd if wfd is None else wfd
        self.buf = bytearray()
        self.pos = 0
        self.sock = None

    def send(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]

    def _recv(self, timeout):
        r, _, _ = select.select([self.rfd], [], [], max(0.001, timeout))
        if not r:
            raise socket.timeout()
        try:
            return os.read(self.rfd, 65536)
        except OSError:  # EIO: the other side of a pty is closed
            return b""

    def read_packets(self, n, timeout=TIMEOUT):
        return [self.read_packet(timeout) for _ in range(n)]

    def close(self):
        pass


# --------------------------------------------------------------------------
# Runner


def _watchdog():
    sys.stderr.write("\nWATCHDOG: tests did not finish within %.0f s\n" % WATCHDOG_SECONDS)
    e2e_common._kill_all()
    sys.stdout.write("watchdog: failed\n")
    sys.stdout.flush()
    os._exit(1)


def main():
    global EXAMPLE
    if len(sys.argv) < 2:
        sys.stderr.write("usage: %s PATH/TO/EXAMPLE [unittest names...]\n" % sys.argv[0])
        sys.exit(2)
    EXAMPLE = os.path.abspath(sys.argv[1])
    names = sys.argv[2:]
    module = sys.modules["__main__"]
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromNames(names, module) if names else loader.loadTestsFromModule(module)
    timer = threading.Timer(WATCHDOG_SECONDS, _watchdog)
    timer.daemon = True
    timer.start()
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    timer.cancel()
    e2e_common._kill_all()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    ran = result.testsRun - len(result.skipped)
    sys.stdout.write("%d passed, %d failed, %d skipped\n" % (ran - failed, failed, len(result.skipped)))
    sys.stdout.flush()
    if failed:
        sys.exit(1)
    sys.exit(77 if ran == 0 else 0)
