#!/usr/bin/env python3
"""Use libmqttbroker as a subproject of a tiny parent project
(tests/integration/parent/) and check that the parent gets the library and
nothing else: its own tests pass, and none of ours, no mqttb executable and
no test program of ours is configured, built or installed.

    test_subproject.py --source-root DIR --meson MESON --ninja NINJA --cc 'CC ARGS'
        --readelf READELF

The parent is copied into a temporary directory, with
subprojects/libmqttbroker a symlink to the source tree; the dependency is
found with the short form dependency('libmqttbroker', fallback : ...), which
works only through meson.override_dependency(). Exits 0 on success, 1 when a
step fails.
"""

import argparse
import json
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itest  # noqa: E402
from itest import check, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PARENT_TESTS = {"parent-shared", "parent-static", "parent-var"}


def body(a, tmp):
    env = itest.clean_env()
    parent, build, dest = (os.path.join(tmp, d) for d in ("parent", "b", "dest"))
    shutil.copytree(os.path.join(HERE, "parent"), parent)
    os.mkdir(os.path.join(parent, "subprojects"))
    os.symlink(os.path.abspath(a.source_root), os.path.join(parent, "subprojects", "libmqttbroker"))

    # --force-fallback-for: a libmqttbroker installed on this machine must
    # not stand in for the subproject.
    run([a.meson, "setup", build, parent, "--force-fallback-for=libmqttbroker",
         "--wrap-mode=nodownload"],
        env=dict(env, CC=a.cc), capture=True)

    targets = json.loads(run([a.meson, "introspect", build, "--targets"], env=env, capture=True))
    ours = [t for t in targets if t.get("subproject") == "libmqttbroker"]
    check(ours, "the subproject defines targets (%s)" % ", ".join(t["name"] for t in ours))
    check(all(t["type"] in ("static library", "shared library") for t in ours),
          "the subproject defines libraries only")
    check(not any(t["name"] == "mqttb" for t in targets), "no mqttb executable")
    exes = {t["name"] for t in targets if t["type"] == "executable"}
    check(exes == PARENT_TESTS, "the executables are the parent's (%s)" % ", ".join(sorted(exes)))

    tests = json.loads(run([a.meson, "introspect", build, "--tests"], env=env, capture=True))
    names = {t["name"] for t in tests}
    check(names == PARENT_TESTS, "the tests are the parent's (%s)" % ", ".join(sorted(names)))
    check(all(t["suite"] == ["mqttb-parent"] for t in tests), "every test is in the parent's suite")

    run([a.ninja, "-C", build], env=env, capture=True)
    listed = run([a.meson, "test", "-C", build, "--list"], env=env, capture=True)
    # Everything but ninja's own lines (it may print progress first).
    listed = {line.strip() for line in listed.splitlines()
              if line.strip() and not re.match(r"^(ninja: |\[\d+/\d+\] )", line)}
    check(listed == PARENT_TESTS, "meson test --list shows the parent's tests only")
    run([a.meson, "test", "-C", build, "--print-errorlogs"], env=env, capture=True)

    # dependency(..., static : true) got the archive (the override for
    # static lookups), the others the shared library.
    for exe, shared in (("parent-shared", True), ("parent-var", True), ("parent-static", False)):
        out = run([a.readelf, "-d", os.path.join(build, exe)], env=env, capture=True, quiet=True)
        check(("[libmqttbroker.so" in out) == shared,
              "%s %s libmqttbroker.so" % (exe, "needs" if shared else "does not need"))

    run([a.meson, "install", "-C", build, "--destdir", dest, "--no-rebuild", "--quiet"], env=env)
    installed = []
    for root, dirs, files in os.walk(dest):
        installed += [os.path.relpath(os.path.join(root, f), dest) for f in files]
    print("installed:\n  " + "\n  ".join(sorted(installed)))
    check(not any(os.path.basename(f) == "mqttb" for f in installed), "mqttb is not installed")
    progs = {os.path.basename(f) for f in installed if os.sep + "bin" + os.sep in os.sep + f}
    check(progs == PARENT_TESTS, "the installed programs are the parent's")
    check(any(f.endswith(os.path.join("include", "mqttb", "mqttb.h")) for f in installed),
          "the library's header is installed with the parent")


def main():
    p = argparse.ArgumentParser()
    for opt in ("--source-root", "--meson", "--ninja", "--cc", "--readelf"):
        p.add_argument(opt, required=True)
    a = p.parse_args()
    return itest.main(lambda tmp: body(a, tmp), "mqttb-subproject-")


if __name__ == "__main__":
    sys.exit(main())
