"""Shared helpers for the mqttb end-to-end tests.

Each test script is run as `/usr/bin/python3 tests/e2e/test_X.py PATH/TO/mqttb`.
Brokers are started on a free loopback port (mqttb: `-p 0 --port-file`); with
E2E_BROKER=mosquitto the same tests run against /usr/sbin/mosquitto instead,
which is how the tests themselves are validated.

With E2E_VALGRIND=1, mqttb runs under valgrind (VALGRIND_CMD): waits for the
broker are stretched by TIME_SCALE, and a broker whose exit status is 99
(valgrind found errors, e.g. a definite leak) fails its test class.

Only the standard library and paho-mqtt 1.6 are used.
"""

import atexit
import faulthandler
import itertools
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import paho.mqtt.client as mqtt

MQTTv31 = mqtt.MQTTv31
MQTTv311 = mqtt.MQTTv311

HOST = "127.0.0.1"
# Default bound for every wait in the tests.
TIMEOUT = 5.0

# E2E_VALGRIND=1: run mqttb under valgrind; exit status 99 means valgrind errors.
VALGRIND = os.environ.get("E2E_VALGRIND", "").strip() not in ("", "0")
VALGRIND_ERROR_EXIT = 99
VALGRIND_CMD = ["valgrind", "--error-exitcode=%d" % VALGRIND_ERROR_EXIT, "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--track-fds=no", "-q"]
# Factor applied to every wait for something to arrive from the broker (not to
# the windows in which nothing may arrive); valgrind is ~20x slower.
TIME_SCALE = float(os.environ.get("E2E_TIME_SCALE", "") or (4.0 if VALGRIND else 1.0))


def scaled(seconds):
    """A wait for the broker to do something, stretched under valgrind."""
    return seconds * TIME_SCALE


# Whole-file watchdog: no script may run longer than this.
WATCHDOG_SECONDS = float(os.environ.get("E2E_WATCHDOG", "") or (600 if VALGRIND else 150))

MQTTB_PATH = None  # set by main() from argv[1]
BROKER_KIND = os.environ.get("E2E_BROKER", "mqttb").strip().lower() or "mqttb"
MOSQUITTO_PATH = os.environ.get("E2E_MOSQUITTO", "/usr/sbin/mosquitto")


def is_mosquitto():
    return BROKER_KIND == "mosquitto"


# --------------------------------------------------------------------------
# Process bookkeeping: everything we start is killed at exit / on watchdog.

_procs = []
_procs_lock = threading.Lock()


def _die_with_parent():
    """preexec_fn: have the kernel kill the child if this test process dies, even
    by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


def spawn(cmd, **kw):
    """subprocess.Popen that is registered for cleanup and dies with us."""
    return register_process(subprocess.Popen(cmd, preexec_fn=_die_with_parent, **kw))


def register_process(proc):
    with _procs_lock:
        _procs.append(proc)
    return proc


def kill_process(proc, grace=5.0):
    """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit status."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
    with _procs_lock:
        if proc in _procs:
            _procs.remove(proc)
    return proc.returncode


def _kill_all():
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=2)
            except Exception:
                pass


atexit.register(_kill_all)

_unique = itertools.count(1)


def free_ports(n):
    """n free TCP ports of HOST (bound at once, so they differ, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def unique(prefix="t"):
    """A short unique name (also fits MQTT 3.1's 23-character client id limit)."""
    return "%s%d-%d" % (prefix, os.getpid() % 10000, next(_unique))


# --------------------------------------------------------------------------
# Brokers


class BrokerError(Exception):
    pass


class Broker:
    """One broker process on a free loopback port.

    `config` is a list of config lines understood by both brokers (mosquitto.conf
    syntax); `mqttb_config` lines are only given to mqttb.
    """

    def __init__(self, config=(), mqttb_config=(), kind=None):
        self.kind = kind or BROKER_KIND
        self.config = list(config)
        self.mqttb_config = list(mqttb_config)
        self.dir = tempfile.mkdtemp(prefix="mqttb-e2e-")
        self.log_path = os.path.join(self.dir, "broker.log")
        self.proc = None
        self.port = None
        self._log = None

    # -- lifecycle
    def start(self):
        if self.kind == "mosquitto":
            self._start_mosquitto()
        else:
            self._start_mqttb()
        return self

    def _start_mqttb(self):
        if not MQTTB_PATH:
            raise BrokerError("no mqttb path given (argv[1])")
        port_file = os.path.join(self.dir, "port")
        cmd = [MQTTB_PATH, "-p", "0", "-b", HOST, "--port-file", port_file, "-v"]
        if VALGRIND:
            cmd = VALGRIND_CMD + cmd
        lines = self.config + self.mqttb_config
        if lines:
            conf = os.path.join(self.dir, "mqttb.conf")
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            cmd += ["-c", conf]
        self._log = open(self.log_path, "ab")
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        startup = 60 if VALGRIND else 10
        deadline = time.monotonic() + startup
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError("mqttb exited with %s during start-up:\n%s"
                                  % (self.proc.returncode, self.log_text()))
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        kill_process(self.proc)
        raise BrokerError("mqttb did not write its port file within %d s:\n" % startup
                          + self.log_text())

    def _start_mosquitto(self):
        last = ""
        for _attempt in range(5):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            port = s.getsockname()[1]
            s.close()
            conf = os.path.join(self.dir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d %s\nallow_anonymous true\n"
                        "log_dest stderr\nlog_type all\nlog_timestamp true\n" % (port, HOST))
                for line in self.config:
                    f.write(line + "\n")
            if self._log is None:
                self._log = open(self.log_path, "ab")
            self.proc = spawn([MOSQUITTO_PATH, "-c", conf], stdin=subprocess.DEVNULL,
                              stdout=self._log, stderr=self._log)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if " running" in self.log_text():
                    self.port = port
                    return
                time.sleep(0.05)
            last = self.log_text()
            kill_process(self.proc)
            # Port taken in the meantime (or slow start): try another one.
        raise BrokerError("mosquitto did not start:\n" + last)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Stop with SIGTERM; returns the exit status (killed after 5 s, 60 s under
        valgrind, whose leak check at exit takes a while)."""
        if self.proc is None:
            return None
        rc = kill_process(self.proc, grace=60.0 if VALGRIND and self.kind == "mqttb" else 5.0)
        if self._log is not None:
            self._log.close()
            self._log = None
        return rc

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class BrokerTestCase(unittest.TestCase):
    """A test class with one broker for the whole class."""

    CONFIG = ()          # lines for both brokers
    MQTTB_CONFIG = ()    # lines for mqttb only
    MQTTB_ONLY = False   # skip when running against mosquitto
    broker = None

    @classmethod
    def setUpClass(cls):
        if cls.MQTTB_ONLY and is_mosquitto():
            raise unittest.SkipTest("mqttb-specific")
        cls.broker = Broker(cls.CONFIG, cls.MQTTB_CONFIG).start()

    @classmethod
    def tearDownClass(cls):
        broker = cls.broker
        cls.broker = None
        if broker is None:
            return
        alive = broker.alive()
        rc = broker.stop()
        log = broker.log_text()
        broker.cleanup()
        if not alive:
            raise AssertionError("broker died during the tests (exit status %s); log:\n%s"
                                 % (rc, log))
        if VALGRIND and broker.kind == "mqttb" and rc == VALGRIND_ERROR_EXIT:
            raise AssertionError("valgrind found errors in mqttb (exit status %d); log:\n%s"
                                 % (rc, log))
        if rc != 0:
            raise AssertionError("broker did not exit cleanly on SIGTERM (exit status %s); "
                                 "log:\n%s" % (rc, log))

    def setUp(self):
        self._cleanups_clients = []
        self.addCleanup(self._close_clients)
        self.prefix = unique("e2e") + "/"

    def _close_clients(self):
        for c in reversed(self._cleanups_clients):
            try:
                c.close()
            except Exception:
                pass

    @property
    def port(self):
        return self.broker.port

    # -- helpers to make clients that are always cleaned up
    def client(self, client_id=None, **kw):
        c = Client(self.port, client_id=client_id if client_id is not None else unique("c"), **kw)
        self._cleanups_clients.append(c)
        return c

    def raw(self, **kw):
        r = RawClient(self.port, **kw)
        self._cleanups_clients.append(r)
        return r

    def assertBrokerAlive(self):
        self.assertTrue(self.broker.alive(), "broker process is not running")


# --------------------------------------------------------------------------
# paho client wrapper


class Msg:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)

    def __repr__(self):
        return "Msg(%r, %r, qos=%d, retain=%d, dup=%d)" % (
            self.topic, self.payload, self.qos, self.retain, self.dup)


class Client:
    """A paho client run in its own thread; no automatic reconnect."""

    def __init__(self, port, client_id="", clean_session=True, protocol=MQTTv311,
                 keepalive=60, will=None, connect=True, expect_rc=0):
        self.port = port
        self.client_id = client_id
        kwargs = dict(client_id=client_id, protocol=protocol, reconnect_on_failure=False)
        if protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = clean_session
        self.c = mqtt.Client(**kwargs)
        self.keepalive = keepalive
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self._subacks = {}
        self._cond = threading.Condition()
        self.session_present = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect
        if will is not None:
            topic, payload = will[0], will[1]
            qos = will[2] if len(will) > 2 else 0
            retain = will[3] if len(will) > 3 else False
            self.c.will_set(topic, payload, qos, retain)
        self.started = False
        if connect:
            self.connect(expect_rc=expect_rc)

    # callbacks (network thread)
    def _on_connect(self, client, userdata, flags, rc):
        self.connacks.put((rc, bool(flags.get("session present", 0))))

    def _on_message(self, client, userdata, m):
        self.messages.put(Msg(m))

    def _on_subscribe(self, client, userdata, mid, granted):
        with self._cond:
            self._subacks[mid] = list(granted)
            self._cond.notify_all()

    def _on_unsubscribe(self, client, userdata, mid):
        with self._cond:
            self._subacks[mid] = "unsuback"
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, rc):
        self.disconnects.put(rc)

    # API
    def connect(self, expect_rc=0, timeout=TIMEOUT):
        self.c.connect(HOST, self.port, self.keepalive)
        self.c.loop_start()
        self.started = True
        timeout = scaled(timeout)
        try:
            rc, sp = self.connacks.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("client %r: no CONNACK within %.1f s" % (self.client_id, timeout))
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("client %r: CONNACK return code %d, expected %d"
                                 % (self.client_id, rc, expect_rc))
        self.session_present = sp
        return rc, sp

    def subscribe(self, topics, qos=0, timeout=TIMEOUT):
        """topics: a filter or a list of (filter, qos). Returns the granted QoS list."""
        if isinstance(topics, str):
            rc, mid = self.c.subscribe(topics, qos)
        else:
            rc, mid = self.c.subscribe(list(topics))
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("subscribe failed locally: rc=%d" % rc)
        return self._wait_ack(mid, timeout, "SUBACK")

    def unsubscribe(self, topic, timeout=TIMEOUT):
        rc, mid = self.c.unsubscribe(topic)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("unsubscribe failed locally: rc=%d" % rc)
        return self._wait_ack(mid, timeout, "UNSUBACK")

    def _wait_ack(self, mid, timeout, what):
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("client %r: no %s within %.1f s" % (self.client_id, what, timeout))
                self._cond.wait(left)
            return self._subacks.pop(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, wait=True, timeout=TIMEOUT):
        info = self.c.publish(topic, payload, qos, retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("publish failed locally: rc=%d" % info.rc)
        if wait:
            timeout = scaled(timeout)
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise AssertionError("client %r: QoS %d publish to %r not completed within %.1f s"
                                     % (self.client_id, qos, topic, timeout))
        return info

    def get(self, timeout=TIMEOUT):
        timeout = scaled(timeout)
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("client %r: no message within %.1f s" % (self.client_id, timeout))

    def get_n(self, n, timeout=TIMEOUT):
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                out.append(self.messages.get(timeout=max(0.0, left)))
            except queue.Empty:
                raise AssertionError("client %r: got %d of %d messages within %.1f s: %r"
                                     % (self.client_id, len(out), n, timeout, out))
        return out

    def drain(self, wait=0.5):
        """All messages arriving within `wait` seconds."""
        time.sleep(wait)
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def wait_disconnected(self, timeout=TIMEOUT):
        timeout = scaled(timeout)
        try:
            return self.disconnects.get(timeout=timeout)
        except queue.Empty:
            return None

    def is_connected(self):
        return self.c.is_connected()

    def disconnect(self):
        """Clean DISCONNECT."""
        if self.started:
            self.c.disconnect()
            self._stop_loop()

    def kill(self):
        """Close the TCP connection without DISCONNECT."""
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.wait_disconnected(TIMEOUT)
        self._stop_loop()

    def _stop_loop(self):
        t = self.c._thread
        self.c._thread_terminate = True
        if t is not None and t is not threading.current_thread():
            t.join(TIMEOUT)
        self.c._thread = None
        self.started = False

    def close(self):
        if self.started:
            try:
                if self.c.is_connected():
                    self.c.disconnect()
            except Exception:
                pass
            self._stop_loop()
        try:
            sock = self.c.socket()
            if sock is not None:
                sock.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# Raw MQTT packets

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14


def enc_len(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def enc_str(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return struct.pack("!H", len(s)) + s


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + enc_len(len(body)) + body


def connect_packet(client_id, clean=True, keepalive=60, will=None, username=None, password=None,
                   level=4, proto_name=None, extra_flags=0):
    """will: (topic, payload, qos, retain). level 3 = MQTT 3.1 ("MQIsdp")."""
    if proto_name is None:
        proto_name = "MQIsdp" if level == 3 else "MQTT"
    flags = extra_flags
    if clean:
        flags |= 0x02
    payload = enc_str(client_id)
    if will is not None:
        wt, wp = will[0], will[1]
        wq = will[2] if len(will) > 2 else 0
        wr = will[3] if len(will) > 3 else False
        flags |= 0x04 | (wq << 3) | (0x20 if wr else 0)
        payload += enc_str(wt) + enc_str(wp)
    if username is not None:
        flags |= 0x80
        payload += enc_str(username)
    if password is not None:
        flags |= 0x40
        payload += enc_str(password)
    body = enc_str(proto_name) + bytes([level, flags]) + struct.pack("!H", keepalive) + payload
    return packet(CONNECT, 0, body)


def publish_packet(topic, payload=b"", qos=0, retain=False, dup=False, mid=1):
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = enc_str(topic)
    if qos > 0:
        body += struct.pack("!H", mid)
    return packet(PUBLISH, flags, body + payload)


def subscribe_packet(mid, filters):
    body = struct.pack("!H", mid)
    for f, q in filters:
        body += enc_str(f) + bytes([q])
    return packet(SUBSCRIBE, 2, body)


def ack_packet(ptype, mid):
    return packet(ptype, 2 if ptype == PUBREL else 0, struct.pack("!H", mid))


DISCONNECT_PACKET = b"\xe0\x00"
PINGREQ_PACKET = b"\xc0\x00"


class Packet:
    def __init__(self, ptype, flags, body):
        self.type = ptype
        self.flags = flags
        self.body = body
        if ptype == PUBLISH:
            self.qos = (flags >> 1) & 3
            self.retain = bool(flags & 1)
            self.dup = bool(flags & 8)
            tlen = struct.unpack("!H", body[:2])[0]
            self.topic = body[2:2 + tlen].decode("utf-8", "replace")
            rest = body[2 + tlen:]
            if self.qos:
                self.mid = struct.unpack("!H", rest[:2])[0]
                rest = rest[2:]
            else:
                self.mid = None
            self.payload = rest
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK) and len(body) >= 2:
            self.mid = struct.unpack("!H", body[:2])[0]

    def __repr__(self):
        return "Packet(type=%d, flags=%#x, body=%r)" % (self.type, self.flags, self.body[:64])


class RawClient:
    """A plain TCP socket speaking hand-made MQTT."""

    def __init__(self, port, timeout=TIMEOUT):
        self.sock = socket.create_connection((HOST, port), timeout=scaled(timeout))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def send(self, data):
        self.sock.sendall(data)

    def _recv(self, timeout):
        self.sock.settimeout(max(0.001, timeout))
        return self.sock.recv(65536)

    def read_packet(self, timeout=TIMEOUT):
        """Next packet; None if the connection was closed; raises AssertionError on timeout."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while True:
            p = self._parse()
            if p is not None:
                return p
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no packet within %.1f s (buffered %r)" % (timeout, self.pending[:64]))
            try:
                data = self._recv(left)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.buf += data

    def _parse(self):
        # self.buf is a bytearray; self.pos is where the unparsed data starts.
        b, start = self.buf, self.pos
        avail = len(b) - start
        if avail < 2:
            return None
        mult, n, i = 1, 0, 1
        while True:
            if i >= avail or i > 4:
                return None
            n += (b[start + i] & 0x7F) * mult
            mult *= 128
            i += 1
            if not b[start + i - 1] & 0x80:
                break
        if avail < i + n:
            return None
        first = b[start]
        p = Packet(first >> 4, first & 0x0F, bytes(b[start + i:start + i + n]))
        self.pos = start + i + n
        if self.pos > 65536 and self.pos * 2 > len(b):
            del b[:self.pos]
            self.pos = 0
        return p

    @property
    def pending(self):
        return bytes(self.buf[self.pos:])

    def expect(self, ptype, timeout=TIMEOUT):
        p = self.read_packet(timeout)
        if p is None:
            raise AssertionError("connection closed while waiting for packet type %d" % ptype)
        if p.type != ptype:
            raise AssertionError("expected packet type %d, got %r" % (ptype, p))
        return p

    def connect(self, client_id, expect_rc=0, **kw):
        """Send CONNECT, read CONNACK; returns (session_present, rc)."""
        self.send(connect_packet(client_id, **kw))
        p = self.expect(CONNACK)
        sp, rc = bool(p.body[0] & 1), p.body[1]
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("CONNACK rc %d, expected %d" % (rc, expect_rc))
        return sp, rc

    def wait_closed(self, timeout=TIMEOUT):
        """True if the peer closes (EOF or reset) within `timeout`; packets received meanwhile
        are kept in self.received. `timeout` is not stretched by TIME_SCALE (it also bounds
        windows in which nothing may happen)."""
        self.received = []
        deadline = time.monotonic() + timeout
        while True:
            p = self._parse()
            if p is not None:
                self.received.append(p)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                data = self._recv(left)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not data:
                return True
            self.buf += data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# Runner


class _Result(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def _dump_log(self, test):
        broker = getattr(test, "broker", None)
        if isinstance(broker, Broker):
            self.stream.write("\n----- broker log (%s, port %s) for %s -----\n%s----- end of broker log -----\n"
                              % (broker.kind, broker.port, test.id(), broker.log_text()))
            self.stream.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump_log(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump_log(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._dump_log(test)


def _watchdog(result_holder):
    sys.stderr.write("\nWATCHDOG: tests did not finish within %.0f s; stacks:\n" % WATCHDOG_SECONDS)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    _kill_all()
    r = result_holder.get("result")
    passed = r.passed if r else 0
    failed = (len(r.failures) + len(r.errors) if r else 0) + 1
    sys.stdout.write("%d passed, %d failed\n" % (passed, failed))
    sys.stdout.flush()
    os._exit(1)


def main(module_name="__main__"):
    global MQTTB_PATH
    if len(sys.argv) < 2 and not is_mosquitto():
        sys.stderr.write("usage: %s PATH/TO/mqttb [unittest test names...]\n" % sys.argv[0])
        sys.exit(2)
    if len(sys.argv) >= 2:
        MQTTB_PATH = os.path.abspath(sys.argv[1])
    names = sys.argv[2:]
    module = sys.modules[module_name]
    loader = unittest.TestLoader()
    if names:
        suite = loader.loadTestsFromNames(names, module)
    else:
        suite = loader.loadTestsFromModule(module)
    sys.stdout.write("e2e: broker=%s %s\n" % (BROKER_KIND, MOSQUITTO_PATH if is_mosquitto() else MQTTB_PATH))
    holder = {}

    def on_signal(signum, frame):
        sys.stderr.write("\ninterrupted by signal %d: stopping started processes\n" % signum)
        _kill_all()
        r = holder.get("result")
        passed = r.passed if r else 0
        failed = (len(r.failures) + len(r.errors) if r else 0) + 1
        sys.stdout.write("%d passed, %d failed\n" % (passed, failed))
        sys.stdout.flush()
        os._exit(1)
    signal.signal(signal.SIGTERM, on_signal)
    timer = threading.Timer(WATCHDOG_SECONDS, _watchdog, args=(holder,))
    timer.daemon = True
    timer.start()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Result)
    # Expose the result to the watchdog as soon as it exists.
    orig = runner._makeResult

    def make():
        r = orig()
        holder["result"] = r
        return r
    runner._makeResult = make
    started = time.monotonic()
    result = runner.run(suite)
    timer.cancel()
    _kill_all()
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    sys.stdout.write("skipped: %d, time: %.1f s\n" % (len(result.skipped), time.monotonic() - started))
    sys.stdout.write("%d passed, %d failed\n" % (result.passed, failed))
    sys.stdout.flush()
    sys.exit(1 if failed or result.passed == 0 and not result.skipped else 0)
