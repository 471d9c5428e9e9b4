#!/usr/bin/python3
"""mqttb_passwd against mosquitto_passwd 2.0.11 and Mosquitto itself.

- The interface: -c, -b, -D, -U, -H, -I, the prompts (also on a terminal, where
  nothing may be echoed), the error messages and exit statuses, run side by
  side with mosquitto_passwd on copies of the same file.
- The files: every hash mqttb_passwd writes is checked here with Python's
  hashlib (an implementation independent of ours); Mosquitto 2.0.11, started
  on a free loopback port with `password_file` and `allow_anonymous false`,
  lets mosquitto_pub in with the right password and refuses a wrong one
  (CONNACK 5); files written by mosquitto_passwd load in mqttb (`-v`).

Usage: /usr/bin/python3 tests/e2e/test_passwd_tool.py build/cli/mqttb_passwd
Tests needing mosquitto_passwd, mosquitto or mosquitto_pub are skipped when
they are not installed.
"""
import base64
import hashlib
import os
import pty
import re
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True

import e2e_common  # noqa: E402
from e2e_common import HOST, Broker, main  # noqa: E402

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
MOSQUITTO = os.environ.get("E2E_MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
HAVE_MOSQUITTO_PASSWD = os.access(MOSQUITTO_PASSWD, os.X_OK)
HAVE_BROKER = os.access(MOSQUITTO, os.X_OK) and os.access(MOSQUITTO_PUB, os.X_OK)

B64 = "[A-Za-z0-9+/]"
LINE7 = re.compile(r"^([^:]+):\$7\$([0-9]+)\$(%s{16})\$(%s{86}==)$" % (B64, B64))
LINE6 = re.compile(r"^([^:]+):\$6\$(%s{16})\$(%s{86}==)$" % (B64, B64))


def tool():
    return e2e_common.MQTTB_PATH


def run(cmd, stdin=b"", timeout=60):
    return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def verify_line(line, password):
    """Check one line with hashlib: (user, type, iterations) if it matches."""
    m = LINE7.match(line)
    if m:
        user, it, salt, h = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        salt = base64.b64decode(salt, validate=True)
        want = base64.b64decode(h, validate=True)
        got = hashlib.pbkdf2_hmac("sha512", password, salt, it, 64)
        return (user, 7, it) if got == want and len(salt) == 12 else None
    m = LINE6.match(line)
    if m:
        user, salt, h = m.group(1), m.group(2), m.group(3)
        salt = base64.b64decode(salt, validate=True)
        want = base64.b64decode(h, validate=True)
        got = hashlib.sha512(password + salt).digest()
        return (user, 6, 0) if got == want and len(salt) == 12 else None
    return None


class ToolCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mqttb-e2e-passwd-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name="pw"):
        return os.path.join(self.dir, name)

    def read(self, name="pw"):
        with open(self.path(name), "rb") as f:
            return f.read()

    def write(self, data, name="pw", mode=0o600):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def lines(self, name="pw"):
        return self.read(name).decode("utf-8").splitlines()

    def mq(self, *args, stdin=b""):
        r = run([tool()] + list(args), stdin=stdin)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    def check(self, user, password, name="pw"):
        """mqttb_passwd -v: the exit status."""
        return run([tool(), "-v", self.path(name), user, password]).returncode

    def assertVerifies(self, line, user, password, kind=7, iterations=101):
        self.assertEqual(verify_line(line, password), (user, kind, iterations),
                         "line %r does not hold that password" % line)


class TestTool(ToolCase):
    def test_create_batch_writes_one_pbkdf2_line_mode_0600(self):
        rc, out, err = self.mq("-c", "-b", self.path(), "alice", "secret")
        self.assertEqual((rc, out, err), (0, "", ""))
        lines = self.lines()
        self.assertEqual(len(lines), 1)
        self.assertVerifies(lines[0], "alice", b"secret")
        self.assertEqual(stat.S_IMODE(os.stat(self.path()).st_mode), 0o600)
        self.assertTrue(self.read().endswith(b"\n"))
        # Salts are random: the same password twice gives different lines.
        self.mq("-c", "-b", self.path("pw2"), "alice", "secret")
        self.assertNotEqual(self.read(), self.read("pw2"))

    def test_hash_types_and_iterations(self):
        self.assertEqual(self.mq("-c", "-H", "sha512", "-b", self.path(), "six", "p6")[0], 0)
        self.assertEqual(self.mq("-H", "sha512-pbkdf2", "-I", "1000", "-b", self.path(), "seven",
                                 "p7")[0], 0)
        self.assertEqual(self.mq("-I", "1", "-b", self.path(), "one", "p1")[0], 0)
        six, seven, one = self.lines()
        self.assertVerifies(six, "six", b"p6", kind=6, iterations=0)
        self.assertVerifies(seven, "seven", b"p7", iterations=1000)
        self.assertVerifies(one, "one", b"p1", iterations=1)
        for user, pw in (("six", "p6"), ("seven", "p7"), ("one", "p1")):
            self.assertEqual(self.check(user, pw), 0, user)

    def test_update_replaces_in_place_and_keeps_other_lines_and_mode(self):
        self.mq("-c", "-b", self.path(), "a", "pa")
        self.mq("-b", self.path(), "b", "pb")
        self.mq("-b", self.path(), "c", "pc")
        with open(self.path(), "ab") as f:
            f.write(b"# a comment\n\n")
        os.chmod(self.path(), 0o640)
        before = self.lines()
        rc, out, err = self.mq("-b", self.path(), "b", "new")
        self.assertEqual((rc, out, err), (0, "", ""))
        after = self.lines()
        self.assertEqual(len(after), 5)
        self.assertEqual(after[0], before[0])
        self.assertEqual(after[2:], before[2:])
        self.assertVerifies(after[1], "b", b"new")
        self.assertEqual(stat.S_IMODE(os.stat(self.path()).st_mode), 0o640)
        self.assertEqual(self.check("b", "new"), 0)
        self.assertEqual(self.check("b", "pb"), 2)
        # A new user is appended.
        self.assertEqual(self.mq("-b", self.path(), "d", "pd")[0], 0)
        self.assertVerifies(self.lines()[-1], "d", b"pd")
        # No temporary file is left behind.
        self.assertEqual(os.listdir(self.dir), ["pw"])

    def test_update_through_a_symlink_writes_the_target(self):
        self.mq("-c", "-b", self.path(), "a", "pa")
        os.symlink("pw", self.path("link"))
        self.assertEqual(self.mq("-b", self.path("link"), "a", "pb")[0], 0)
        self.assertTrue(os.path.islink(self.path("link")))
        self.assertVerifies(self.lines()[0], "a", b"pb")

    def test_delete(self):
        self.mq("-c", "-b", self.path(), "a", "pa")
        self.mq("-b", self.path(), "b", "pb")
        rc, out, err = self.mq("-D", self.path(), "a")
        self.assertEqual((rc, out, err), (0, "", ""))
        self.assertEqual(len(self.lines()), 1)
        self.assertVerifies(self.lines()[0], "b", b"pb")
        before = self.read()
        rc, out, err = self.mq("-D", self.path(), "zed")
        self.assertEqual(rc, 1)
        self.assertEqual(err, "Warning: User zed not found in password file.\n")
        self.assertEqual(self.read(), before)

    def test_upgrade_hashes_plaintext_and_leaves_hashes_alone(self):
        self.mq("-c", "-b", self.path("h"), "hashed", "ph")
        hashed = self.lines("h")[0]
        self.write(("# users\nplain1:one\n  plain2 : two words \n%s\nplain3:%s\n"
                    % (hashed, "x" * 65535)).encode())
        rc, out, err = self.mq("-U", self.path())
        self.assertEqual((rc, out, err), (0, "", ""))
        lines = self.lines()
        self.assertEqual(lines[0], "# users")
        self.assertVerifies(lines[1], "plain1", b"one")
        self.assertVerifies(lines[2], "plain2", b"two words")
        self.assertEqual(lines[3], hashed)
        self.assertVerifies(lines[4], "plain3", b"x" * 65535)
        self.assertEqual(self.check("plain3", "x" * 65535), 0)
        # -U honours -H and -I.
        self.write(b"u:pw\n")
        self.assertEqual(self.mq("-H", "sha512", "-U", self.path())[0], 0)
        self.assertVerifies(self.lines()[0], "u", b"pw", kind=6, iterations=0)
        self.write(b"u:pw\n")
        self.assertEqual(self.mq("-I", "7", "-U", self.path())[0], 0)
        self.assertVerifies(self.lines()[0], "u", b"pw", iterations=7)

    def test_upgrade_refuses_ambiguous_lines(self):
        for bad in (b"u:pa:ss\n", b"u:$7$101$broken\n", b"novalue\n"):
            self.write(bad)
            rc, out, err = self.mq("-U", self.path())
            self.assertEqual(rc, 1, bad)
            self.assertIn("Error: Corrupt password file at line 1", err)
            self.assertEqual(self.read(), bad)

    def test_prompt_from_stdin(self):
        rc, out, err = self.mq("-c", self.path(), "alice", stdin=b"secret\nsecret\n")
        self.assertEqual((rc, out, err), (0, "Password: \nReenter password: \n", ""))
        self.assertVerifies(self.lines()[0], "alice", b"secret")
        # CRLF from the other side of a pipe.
        rc, out, err = self.mq(self.path(), "bob", stdin=b"pw\r\npw\r\n")
        self.assertEqual(rc, 0)
        self.assertVerifies(self.lines()[1], "bob", b"pw")

    def test_password_of_65535_bytes(self):
        pw = "p" * 65535
        self.assertEqual(self.mq("-c", "-b", self.path(), "big", pw)[0], 0)
        self.assertVerifies(self.lines()[0], "big", pw.encode())
        self.assertEqual(self.check("big", pw), 0)
        self.assertEqual(self.check("big", pw[:-1]), 2)
        rc, out, err = self.mq(self.path(), "big2", stdin=(pw + "\n" + pw + "\n").encode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.check("big2", pw), 0)
        rc, out, err = self.mq("-b", self.path(), "big3", pw + "p")
        self.assertEqual((rc, err), (1, "Error: Password must be less than 65536 characters long.\n"))

    def test_user_names_refused(self):
        for user, msg in (("a:b", "Error: Username must not contain the ':' character.\n"),
                          ("a\tb", "Error: Username must not contain control characters.\n"),
                          ("", "Error: Username must not be empty.\n"),
                          (" a", "Error: Username must not begin or end with a space.\n"),
                          ("u" * 65536, "Error: Username must be less than 65536 characters long.\n")):
            rc, out, err = self.mq("-c", "-b", self.path(), user, "pw")
            self.assertEqual((rc, err), (1, msg), repr(user[:10]))
            self.assertFalse(os.path.exists(self.path()))
        r = subprocess.run([tool().encode(), b"-c", b"-b", self.path().encode(), b"\xff\xfe", b"pw"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual((r.returncode, r.stderr), (1, b"Error: Username must be valid UTF-8.\n"))
        # Valid UTF-8 is fine.
        self.assertEqual(self.mq("-c", "-b", self.path(), "\u00fc\u20ac\U0001F600", "pw")[0], 0)
        self.assertEqual(self.check("\u00fc\u20ac\U0001F600", "pw"), 0)

    def test_verify_option(self):
        self.mq("-c", "-b", self.path(), "alice", "secret")
        self.assertEqual(self.check("alice", "secret"), 0)
        rc, out, err = self.mq("-v", self.path(), "alice", "wrong")
        self.assertEqual(rc, 2)
        self.assertIn("Wrong password", err)
        self.assertEqual(self.check("nobody", "secret"), 2)
        rc, out, err = self.mq("-v", self.path(), "alice", stdin=b"secret\n")
        self.assertEqual((rc, out), (0, "Password: \n"))
        self.write(b"alice:plaintext\n")
        rc, out, err = self.mq("-v", self.path(), "alice", "plaintext")
        self.assertEqual(rc, 1)
        self.assertIn(":1: user 'alice': the password is not hashed", err)
        self.assertIn("mqttb_passwd -U", err)
        rc, out, err = self.mq("-v", "-b", self.path(), "alice", "x")
        self.assertEqual(rc, 1)

    def test_prompt_on_a_terminal_does_not_echo(self):
        """stdin and stdout on a pseudo-terminal: the typed password must not
        come back, the terminal is restored afterwards."""
        pid, fd = pty.fork()
        if pid == 0:  # child: stdin/stdout/stderr are the pty
            try:
                os.execv(tool(), [tool(), "-c", self.path(), "tty"])
            finally:
                os._exit(127)
        seen = b""
        try:
            deadline = time.monotonic() + 20
            sent = 0
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    seen += chunk
                if sent == 0 and b"Password: " in seen:
                    os.write(fd, b"s3cr3t-pty\n")
                    sent = 1
                elif sent == 1 and b"Reenter password: " in seen:
                    os.write(fd, b"s3cr3t-pty\n")
                    sent = 2
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, seen)
        self.assertIn(b"Reenter password: ", seen)
        self.assertNotIn(b"s3cr3t", seen)
        self.assertVerifies(self.lines()[0], "tty", b"s3cr3t-pty")


@unittest.skipUnless(HAVE_MOSQUITTO_PASSWD, "mosquitto_passwd is not installed")
class TestSideBySide(ToolCase):
    """The same command through both tools, on copies of the same file: same
    exit status and (for errors) the same message."""

    def both(self, args, stdin=b"", setup=None):
        res = []
        for name, exe in (("mq", tool()), ("mosq", MOSQUITTO_PASSWD)):
            d = os.path.join(self.dir, name)
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d)
            p = os.path.join(d, "pw")
            if setup is not None:
                with open(p, "wb") as f:
                    f.write(setup)
            r = run([exe] + [a.replace("FILE", p) for a in args], stdin=stdin)
            res.append((r.returncode, r.stderr.decode().replace(d, "DIR")))
        return res

    def assertSame(self, args, stdin=b"", setup=None, stderr=True):
        (rc1, err1), (rc2, err2) = self.both(args, stdin, setup)
        self.assertEqual(rc1, rc2, "exit status for %s: mqttb_passwd %s (%r), mosquitto_passwd %s "
                         "(%r)" % (args, rc1, err1, rc2, err2))
        if stderr:
            self.assertEqual(err1, err2, args)
        return rc1

    def test_usage_and_option_errors(self):
        self.assertEqual(self.assertSame([]), 1)
        for args in (["-c", "-D", "FILE", "u"], ["-c", "-U", "FILE"], ["-D", "-U", "FILE"],
                     ["-b", "-D", "FILE", "u"], ["-H"], ["-H", "md5", "FILE", "u"], ["-I"],
                     ["-I", "0", "-b", "FILE", "u", "p"], ["-I", "-3", "-b", "FILE", "u", "p"],
                     ["-c", "-b", "FILE", "u"], ["-c", "FILE"], ["-D", "FILE"], ["-U"],
                     ["-U", "FILE", "extra"], ["-b", "FILE", "u"], ["FILE"], ["FILE", "u", "p"]):
            self.assertEqual(self.assertSame(args), 1, args)

    def test_successes(self):
        good = b"a:$7$101$YTktp2u6HY4+V8a/$IO3Yhp7VHsF0SFYpNXTVv0T7aFPE7EW1OndW4W5gnE9VtxTbAddPsuBc8" \
               b"mlVayewvvTWWRnBz6XibF2CNSKNGQ==\n"
        cases = [
            (["-c", "-b", "FILE", "u", "p"], b"", None),
            (["-c", "FILE", "u"], b"pw\npw\n", None),
            (["-b", "FILE", "a", "p"], b"", good),
            (["-b", "FILE", "new", "p"], b"", good),
            (["FILE", "a"], b"pw\npw\n", good),
            (["-D", "FILE", "a"], b"", good),
            (["-U", "FILE"], b"", b"x:plain\ny:text\n"),
            (["-H", "sha512", "-b", "FILE", "a", "p"], b"", good),
        ]
        for args, stdin, setup in cases:
            self.assertEqual(self.assertSame(args, stdin, setup), 0, args)
            # Both results load in mqttb.
            for name in ("mq", "mosq"):
                p = os.path.join(self.dir, name, "pw")
                r = run([tool(), "-v", p, "nobody", "x"])
                self.assertEqual(r.returncode, 2, (name, args, r.stderr))

    def test_failures(self):
        good = b"a:$6$ytOyhemuwj7EXxMo$4LRHHmnrZqCpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZwRUx" \
               b"DHkzocXqQX3dD3H9RUxKi1jgjQ==\n"
        cases = [
            (["-b", "FILE", "a", "p"], b"", None, True),    # no such file
            (["-D", "FILE", "zz"], b"", good, True),        # user not found
            (["FILE", "a"], b"one\ntwo\n", good, True),     # passwords do not match: 2
            (["FILE", "a"], b"\n", good, True),             # empty password
            (["FILE", "a"], b"", good, True),               # end of input
            (["-c", "FILE", "a"], b"one\ntwo\n", None, True),
            (["-c", "-b", "FILE", "a:b", "p"], b"", None, True),
            (["-c", "-b", "FILE", "a\x01", "p"], b"", None, True),
            (["-c", "-b", "FILE", "a", "p" * 65536], b"", None, True),
        ]
        for args, stdin, setup, same_msg in cases:
            rc = self.assertSame(args, stdin, setup, stderr=same_msg)
            self.assertIn(rc, (1, 2), args)

    def test_corrupt_file_is_left_alone(self):
        """mosquitto_passwd 2.0.11 prints "Corrupt password file at line 2",
        exits 0 and writes the file without line 2 and all after it (user z
        is lost); mqttb_passwd exits 1 and leaves the file as it was."""
        corrupt = (b"a:$6$ytOyhemuwj7EXxMo$4LRHHmnrZqCpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZ"
                   b"wRUxDHkzocXqQX3dD3H9RUxKi1jgjQ==\ngarbage line\nz:$6$ytOyhemuwj7EXxMo$4LRHHmnrZq"
                   b"CpFzVQVhhm4FkYjMqjXmU7yYXPGXL0lArLWug6FzeBxpNZwRUxDHkzocXqQX3dD3H9RUxKi1jgjQ==\n")
        (rc1, err1), (rc2, err2) = self.both(["-b", "FILE", "new", "p"], setup=corrupt)
        self.assertEqual((rc1, err1), (1, "Error: Corrupt password file at line 2: not a "
                                          "USER:PASSWORD_HASH line (no ':').\n"))
        self.assertEqual(err2, "Error: Corrupt password file at line 2.\n")
        with open(os.path.join(self.dir, "mq", "pw"), "rb") as f:
            self.assertEqual(f.read(), corrupt)
        with open(os.path.join(self.dir, "mosq", "pw"), "rb") as f:
            self.assertNotIn(b"z:", f.read())  # if this fails, Mosquitto fixed its bug


@unittest.skipUnless(HAVE_MOSQUITTO_PASSWD, "mosquitto_passwd is not installed")
class TestMqttbLoadsMosquittoFiles(ToolCase):
    def test_files_from_mosquitto_passwd_verify(self):
        p = self.path()
        users = [("alice", "secret", []), ("six", "p6", ["-H", "sha512"]),
                 ("many", "p1000", ["-I", "1000"]), ("\u00fcml", "p\u00e4ss", []),
                 ("empty", "", [])]
        first = True
        for user, pw, opts in users:
            args = [MOSQUITTO_PASSWD] + opts + (["-c"] if first else []) + ["-b", p, user, pw]
            self.assertEqual(run(args).returncode, 0, args)
            first = False
        for user, pw, _ in users:
            self.assertEqual(self.check(user, pw), 0, user)
            self.assertEqual(self.check(user, pw + "x"), 2, user)
        self.assertEqual(self.check("nobody", "secret"), 2)


@unittest.skipUnless(HAVE_BROKER, "mosquitto or mosquitto_pub is not installed")
class TestMosquittoAcceptsOurFiles(ToolCase):
    USERS = [("alice", "secret", []), ("six", "p6", ["-H", "sha512"]),
             ("many", "p1000", ["-I", "1000"]), ("\u00fcml", "p\u00e4ss", [])]

    def setUp(self):
        super().setUp()
        p = self.path()
        first = True
        for user, pw, opts in self.USERS:
            args = opts + (["-c"] if first else []) + ["-b", p, user, pw]
            self.assertEqual(self.mq(*args)[0], 0, args)
            first = False
        self.start_broker()

    def start_broker(self):
        config = ["allow_anonymous false", "password_file " + self.path()]
        if os.geteuid() == 0:
            # Mosquitto drops to user "mosquitto" before reading the file,
            # which is 0600 and ours.
            config.append("user root")
        self.broker = Broker(config, kind="mosquitto")
        self.addCleanup(self.broker.cleanup)
        self.addCleanup(self.broker.stop)
        self.broker.start()

    def pub(self, user, pw, version="mqttv311"):
        r = run([MOSQUITTO_PUB, "-h", HOST, "-p", str(self.broker.port), "-V", version,
                 "-u", user, "-P", pw, "-t", "t", "-m", "x"], timeout=20)
        return r.returncode

    def test_right_passwords_connect_wrong_ones_get_connack_5(self):
        for user, pw, _ in self.USERS:
            self.assertEqual(self.pub(user, pw), 0, user)
            self.assertEqual(self.pub(user, pw + "x"), 5, user)  # CONNACK 5: not authorised
        self.assertEqual(self.pub("nobody", "secret"), 5)
        self.assertNotIn("Error", self.broker.log_text())

    def test_updated_and_upgraded_files_still_work(self):
        self.broker.stop()
        self.assertEqual(self.mq("-b", self.path(), "alice", "changed")[0], 0)
        self.assertEqual(self.mq("-D", self.path(), "six")[0], 0)
        with open(self.path(), "ab") as f:
            f.write(b"plain:text\n")
        self.assertEqual(self.mq("-U", self.path())[0], 0)
        self.start_broker()
        self.assertEqual(self.pub("alice", "changed"), 0)
        self.assertEqual(self.pub("alice", "secret"), 5)
        self.assertEqual(self.pub("six", "p6"), 5)
        self.assertEqual(self.pub("plain", "text"), 0)
        self.assertEqual(self.pub("many", "p1000"), 0)


if __name__ == "__main__":
    main()
