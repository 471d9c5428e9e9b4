"""Shared by the integration tests: run commands loudly, one temporary
directory that is always removed, and SIGTERM (meson test's timeout) turned
into an exit that still cleans up. Python 3 standard library only."""

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile


class Failure(Exception):
    pass


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def run(cmd, env=None, cwd=None, capture=False, quiet=False):
    """Run cmd (a list), echoing it; raise Failure unless it exits 0.
    capture: return the output (stdout and stderr), also printed unless
    quiet, or when the command fails."""
    print("+ " + " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    r = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        universal_newlines=True,
    )
    if capture and r.stdout and (not quiet or r.returncode != 0):
        sys.stdout.write(r.stdout)
        sys.stdout.flush()
    if r.returncode != 0:
        raise Failure("exit status %d: %s" % (r.returncode, " ".join(map(str, cmd))))
    return r.stdout if capture else None


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok: " + what, flush=True)


def main(body, prefix):
    """Call body(tmpdir) in a fresh temporary directory, removed afterwards
    whatever happens. Exit 0 on success, 1 on a failed step."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        body(tmp)
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr, flush=True)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS", flush=True)
    return 0


def clean_env():
    """The environment for a nested meson/ninja/compiler run: what meson
    test adds for our own tests (sanitizer options, MALLOC_PERTURB_) is
    left out, so the nested build sees what a user's shell would."""
    env = dict(os.environ)
    for k in ("MALLOC_PERTURB_", "ASAN_OPTIONS", "UBSAN_OPTIONS", "MSAN_OPTIONS",
              "MESON_TEST_ITERATION"):
        env.pop(k, None)
    return env
