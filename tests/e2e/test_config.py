#!/usr/bin/python3
"""End-to-end configuration files of mqttb (docs/configuration.md): Debian 12's
stock /etc/mosquitto/mosquitto.conf, with its paths moved into a temporary
directory, loads and means what it means to Mosquitto: `pid_file` is written
at start-up and removed at exit (one that cannot be written stops the
start), `log_dest file` appends to its file and reopens it on SIGHUP (after
logrotate moved it), `include_dir` parses the directory's *.conf files in
Mosquitto's order (00, 01, A, a, B), hidden ones too, skipping
subdirectories and other names, and an error in an included file names that
file and its line. Also: `user` (root only), `log_dest syslog`, refused
`log_dest topic`, a missing include_dir, include_dir outside the main file.

Usage: /usr/bin/python3 tests/e2e/test_config.py build/cli/mqttb
"""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True

import e2e_common  # noqa: E402
from e2e_common import HOST, Client, is_mosquitto, kill_process, main, scaled, spawn, unique  # noqa: E402

STOCK = "/etc/mosquitto/mosquitto.conf"
# Debian 12's file, for machines without the mosquitto package.
STOCK_TEXT = """# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
"""


def stock_text():
    try:
        with open(STOCK) as f:
            return f.read()
    except OSError:
        return STOCK_TEXT


class Run:
    """mqttb -c CONF -p 0 -b 127.0.0.1 --port-file; stderr into a file."""

    def __init__(self, conf, workdir):
        self.conf = conf
        self.dir = workdir
        self.port_file = os.path.join(workdir, "port")
        self.stderr_path = os.path.join(workdir, "stderr")
        self.proc = None
        self.port = None

    def start(self, expect_ok=True):
        try:
            os.unlink(self.port_file)
        except OSError:
            pass
        self._err = open(self.stderr_path, "ab")
        cmd = [e2e_common.MQTTB_PATH, "-c", self.conf, "-p", "0", "-b", HOST,
               "--port-file", self.port_file]
        if e2e_common.VALGRIND:
            cmd = e2e_common.VALGRIND_CMD + cmd
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err)
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._err.close()
                if expect_ok:
                    raise AssertionError("mqttb exited with %s:\n%s"
                                         % (self.proc.returncode, self.stderr()))
                return self.proc.returncode
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    if not expect_ok:
                        raise AssertionError("mqttb started:\n" + self.stderr())
                    return 0
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        kill_process(self.proc)
        raise AssertionError("mqttb neither started nor exited:\n" + self.stderr())

    def stop(self):
        rc = kill_process(self.proc, grace=60.0 if e2e_common.VALGRIND else 5.0)
        self._err.close()
        return rc

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def read(path):
    with open(path) as f:
        return f.read()


class ConfigTestCase(unittest.TestCase):
    def setUp(self):
        if is_mosquitto():
            raise unittest.SkipTest("mqttb's --port-file and messages")
        self.dir = tempfile.mkdtemp(prefix="mqttb-e2e-conf-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.runs = []
        self.clients = []
        self.addCleanup(self._stop_all)

    def _stop_all(self):
        for c in self.clients:
            c.close()
        for r in self.runs:
            if r.proc is not None and r.proc.poll() is None:
                r.stop()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        return p

    def stock(self):
        """The stock file with /run, /var/lib, /var/log and /etc paths in the
        temporary directory."""
        text = stock_text()
        for old, new in (("/run/mosquitto/", self.path("run") + "/"),
                         ("/var/lib/mosquitto/", self.path("lib") + "/"),
                         ("/var/log/mosquitto/", self.path("log") + "/"),
                         ("/etc/mosquitto/conf.d", self.path("conf.d"))):
            self.assertIn(old, text)
            text = text.replace(old, new)
        for d in ("run", "lib", "log", "conf.d"):
            os.makedirs(self.path(d), exist_ok=True)
        return self.write("mosquitto.conf", text)

    def run_mqttb(self, conf, expect_ok=True):
        r = Run(conf, self.dir)
        self.runs.append(r)
        r.start(expect_ok)
        return r

    def client(self, port, **kw):
        c = Client(port, client_id=kw.pop("client_id", unique("c")), **kw)
        self.clients.append(c)
        return c


class StockFile(ConfigTestCase):
    def test_the_stock_file_with_conf_d(self):
        conf = self.stock()
        pid_file = self.path("run", "mosquitto.pid")
        log_file = self.path("log", "mosquitto.log")
        # Mosquitto's order is 00, 01, A, a, B (a byte order would end on a.conf).
        self.write("conf.d/a.conf", "max_qos 2\n")
        self.write("conf.d/B.conf", "max_qos 1\nlog_type all\n")
        self.write("conf.d/A.conf", "max_qos 0\n")
        self.write("conf.d/01.conf", "max_qos 2\n")
        self.write("conf.d/00.conf", "# first\n")
        self.write("conf.d/.hidden.conf", "auto_id_prefix hid-\n")
        self.write("conf.d/notes.txt", "this is not a configuration line\n")
        self.write("conf.d/.conf", "neither is this\n")
        os.makedirs(self.path("conf.d", "sub.conf"))
        with open(log_file, "w") as f:
            f.write("kept from before\n")

        r = self.run_mqttb(conf)
        self.assertEqual(read(pid_file).strip(), str(r.proc.pid))
        c = self.client(r.port)
        self.assertEqual(c.subscribe("t/#", 2), [1])  # B.conf came last
        anon = self.client(r.port, client_id="")
        anon.publish("t/x", b"hello", 1)
        self.assertEqual(c.get().payload, b"hello")
        self.assertTrue(wait_for(lambda: " as hid-" in read(log_file)), read(log_file))
        text = read(log_file)
        self.assertTrue(text.startswith("kept from before\n"), text)
        self.assertIn("listening on 127.0.0.1:%d" % r.port, text)
        self.assertIn("debug: ", text)  # log_type all from conf.d
        anon.close()
        c.close()

        # logrotate: move the file away, SIGHUP, a new file is started.
        os.rename(log_file, log_file + ".1")
        r.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: os.path.exists(log_file)
                                 and "Config reloaded" in read(log_file)))
        self.assertIn("Reloading config file", read(log_file + ".1"))
        self.assertNotIn("Config reloaded", read(log_file + ".1"))
        # Without a move, SIGHUP appends to the same file.
        size = os.path.getsize(log_file)
        r.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: read(log_file).count("Config reloaded") == 2))
        self.assertGreater(os.path.getsize(log_file), size)
        self.client(r.port).close()  # still serving

        self.assertEqual(r.stop(), 0)
        self.assertFalse(os.path.exists(pid_file))
        self.assertIn("shutting down", read(log_file))
        self.assertTrue(os.path.exists(self.path("lib", "mqttb.db")))
        # log_dest file alone: nothing but the unconditional lines on stderr.
        self.assertNotIn("Config reloaded", r.stderr())

    def test_an_error_in_an_included_file_names_it(self):
        conf = self.stock()
        self.write("conf.d/10-ok.conf", "max_qos 1\n")
        bad = self.write("conf.d/20-bad.conf", "# a comment\n\nmax_qos 3\n")
        r = self.run_mqttb(conf, expect_ok=False)
        self.assertEqual(r.proc.returncode, 1)
        err = r.stderr()
        self.assertIn("%s:3: invalid value '3' for 'max_qos'" % bad, err)
        line = [n for n, text in enumerate(read(conf).splitlines(), 1)
                if text.startswith("include_dir")][0]
        self.assertIn("(included by include_dir at %s:%d)" % (conf, line), err)
        self.assertFalse(os.path.exists(self.path("run", "mosquitto.pid")))

    def test_an_unknown_option_in_an_included_file(self):
        conf = self.stock()
        bad = self.write("conf.d/x.conf", "listener 0 127.0.0.1\nbridge_protocol_version mqttv311\n")
        r = self.run_mqttb(conf, expect_ok=False)
        self.assertIn("%s:2: unknown option 'bridge_protocol_version'" % bad, r.stderr())


class Options(ConfigTestCase):
    def test_a_missing_include_dir_is_an_error(self):
        conf = self.write("m.conf", "max_qos 1\ninclude_dir %s\n" % self.path("nowhere"))
        r = self.run_mqttb(conf, expect_ok=False)
        self.assertIn("%s:2: unable to open include_dir '%s': No such file or directory"
                      % (conf, self.path("nowhere")), r.stderr())

    def test_include_dir_only_in_the_main_file(self):
        inner = self.write("d/in.conf", "include_dir %s\n" % self.path("d"))
        conf = self.write("m.conf", "include_dir %s\n" % self.path("d"))
        r = self.run_mqttb(conf, expect_ok=False)
        self.assertIn("%s:1: include_dir is only allowed in the main configuration file" % inner,
                      r.stderr())

    def test_an_unwritable_pid_file_stops_the_start(self):
        pid = self.path("no", "such", "dir", "x.pid")
        conf = self.write("m.conf", "pid_file %s\n" % pid)
        r = self.run_mqttb(conf, expect_ok=False)
        self.assertEqual(r.proc.returncode, 1)
        err = r.stderr()
        self.assertIn("unable to write pid file %s: No such file or directory" % pid, err)
        self.assertNotIn("listening on", err)

    def test_a_later_start_failure_removes_the_pid_file(self):
        pid = self.path("x.pid")
        not_a_dir = self.write("file", "")
        conf = self.write("m.conf", "pid_file %s\npersistence true\npersistence_location %s\n"
                          % (pid, not_a_dir))
        r = self.run_mqttb(conf, expect_ok=False)
        self.assertEqual(r.proc.returncode, 1)
        self.assertIn("persistence_location %s" % not_a_dir, r.stderr())
        self.assertFalse(os.path.exists(pid))

    def test_paths_with_spaces_and_file_plus_stderr(self):
        log = self.path("my logs", "a b.log")
        pid = self.path("my run", "x y.pid")
        os.makedirs(os.path.dirname(log))
        os.makedirs(os.path.dirname(pid))
        conf = self.write("m.conf", "pid_file  %s \nlog_dest file %s\nlog_dest stderr\n"
                          "log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S\n" % (pid, log))
        r = self.run_mqttb(conf)
        self.assertEqual(read(pid).strip(), str(r.proc.pid))
        self.client(r.port).close()
        self.assertTrue(wait_for(lambda: "New client connected" in read(log)))
        self.assertTrue(wait_for(lambda: "New client connected" in r.stderr()))
        first = read(log).splitlines()[0]
        self.assertRegex(first, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: mqttb: ")
        self.assertEqual(r.stop(), 0)
        self.assertFalse(os.path.exists(pid))

    def test_a_second_log_file_is_refused(self):
        conf = self.write("m.conf", "log_dest file %s\nlog_dest file %s\n"
                          % (self.path("a.log"), self.path("b.log")))
        r = self.run_mqttb(conf, expect_ok=False)
        self.assertIn("%s:2: duplicate 'log_dest file'" % conf, r.stderr())

    def test_unsupported_log_dests_are_named(self):
        for dest in ("topic", "dlt"):
            conf = self.write("m.conf", "log_dest stderr\nlog_dest %s\n" % dest)
            r = self.run_mqttb(conf, expect_ok=False)
            self.assertIn("%s:2: 'log_dest %s' is not supported by mqttb" % (conf, dest),
                          r.stderr())

    def test_log_dest_syslog_starts(self):
        conf = self.write("m.conf", "log_dest syslog\nlog_dest stderr\nlog_facility 3\n")
        r = self.run_mqttb(conf)
        self.client(r.port).close()
        self.assertEqual(r.stop(), 0)

    def test_an_unknown_user_is_an_error(self):
        if os.geteuid() != 0:
            self.skipTest("user only applies when started as root")
        conf = self.write("m.conf", "user no-such-user-x\n")
        r = self.run_mqttb(conf, expect_ok=False)
        err = r.stderr()
        self.assertIn("unable to switch to user 'no-such-user-x'", err)
        self.assertNotIn("listening on", err)

    def test_user_switches_before_opening_files(self):
        if os.geteuid() != 0:
            self.skipTest("user only applies when started as root")
        try:
            pw = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody'")
        os.chmod(self.dir, 0o755)
        work = self.path("work")
        os.makedirs(work)
        os.chown(work, pw.pw_uid, pw.pw_gid)
        conf = self.write("m.conf", "user nobody\npid_file %s/p.pid\nlog_dest file %s/l.log\n"
                          "persistence true\npersistence_location %s/\n" % (work, work, work))
        r = Run(conf, work)
        self.runs.append(r)
        r.start()
        with open("/proc/%d/status" % r.proc.pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        self.assertEqual(set(uids), {str(pw.pw_uid)})
        for name in ("p.pid", "l.log", "port"):
            self.assertEqual(os.stat(os.path.join(work, name)).st_uid, pw.pw_uid, name)
        log = os.path.join(work, "l.log")
        self.assertIn("Running as user nobody", read(log))
        # SIGHUP reopens the file as that user.
        r.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "Config reloaded" in read(log)))
        self.assertNotIn("cannot open log file", read(log))
        self.assertEqual(r.stop(), 0)
        self.assertFalse(os.path.exists(os.path.join(work, "p.pid")))
        self.assertEqual(os.stat(os.path.join(work, "mqttb.db")).st_uid, pw.pw_uid)


if __name__ == "__main__":
    main()
