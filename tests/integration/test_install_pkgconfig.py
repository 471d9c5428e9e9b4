#!/usr/bin/env python3
"""Install libmqttbroker into a temporary prefix and build a program against
it the way a user would, with pkg-config: linked to the shared library (run
with LD_LIBRARY_PATH, and again with an rpath), and linked to the static
archive (which must leave no libmqttbroker.so in the binary's NEEDED list).

    test_install_pkgconfig.py --source-root DIR --version X.Y.Z
        --meson MESON --ninja NINJA --pkg-config PKG_CONFIG --cc 'CC ARGS'
        --readelf READELF

Configures a fresh build of the source tree (library only: -Dcli=disabled
-Dtests=disabled -Ddocs=disabled, -Ddefault_library=both), so the build the
test belongs to is left alone. Exits 0 on success, 1 when a step fails.
"""

import argparse
import glob
import os
import shlex
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itest  # noqa: E402
from itest import check, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def needed(readelf, binary):
    out = run([readelf, "-d", binary], capture=True, quiet=True)
    return [line.split("[", 1)[1].rstrip("]")
            for line in out.splitlines() if "(NEEDED)" in line]


def body(a, tmp):
    env = itest.clean_env()
    cc = shlex.split(a.cc)
    build, prefix = os.path.join(tmp, "b"), os.path.join(tmp, "prefix")

    run([a.meson, "setup", build, a.source_root, "--prefix", prefix,
         "-Ddefault_library=both", "-Dcli=disabled", "-Dtests=disabled",
         "-Ddocs=disabled", "--wrap-mode=nodownload"],
        env=dict(env, CC=" ".join(shlex.quote(c) for c in cc)), capture=True)
    run([a.ninja, "-C", build], env=env, capture=True)
    run([a.meson, "install", "-C", build, "--no-rebuild", "--quiet"], env=env)

    # What was installed. The libdir is wherever meson put it (lib,
    # lib64, lib/<multiarch>): it is the directory holding the .pc.
    pcs = glob.glob(os.path.join(prefix, "**", "libmqttbroker.pc"), recursive=True)
    check(len(pcs) == 1, "one libmqttbroker.pc installed (%s)" % pcs)
    pcdir = os.path.dirname(pcs[0])
    libdir = os.path.dirname(pcdir)
    for name in ("libmqttbroker.so", "libmqttbroker.so.0",
                 "libmqttbroker.so." + a.version, "libmqttbroker.a"):
        check(os.path.exists(os.path.join(libdir, name)), "installed " + name)
    for name in ("mqttb.h", "version.h"):
        check(os.path.isfile(os.path.join(prefix, "include", "mqttb", name)),
              "installed include/mqttb/" + name)
    check(not os.path.exists(os.path.join(prefix, "bin")), "no programs installed (-Dcli=disabled)")

    archive = os.path.join(libdir, "libmqttbroker.a")
    with open(archive, "rb") as f:
        check(f.read(8) == b"!<arch>\n", "libmqttbroker.a is a regular (not thin) archive")

    # pkg-config, from the temporary prefix only.
    penv = dict(env, PKG_CONFIG_PATH=pcdir)
    penv.pop("PKG_CONFIG_LIBDIR", None)

    def pc(*args):
        return run([a.pkg_config] + list(args) + ["libmqttbroker"], env=penv, capture=True).strip()

    check(pc("--modversion") == a.version, "pkg-config --modversion is " + a.version)
    check(pc("--variable=libdir") == libdir, "pkg-config libdir is " + libdir)
    cflags = shlex.split(pc("--cflags"))
    libs = shlex.split(pc("--libs"))
    static_libs = shlex.split(pc("--static", "--libs"))
    check("-lmqttbroker" in libs, "pkg-config --libs names -lmqttbroker")
    check("-lmqttbroker" in static_libs, "pkg-config --static --libs names -lmqttbroker")

    src = os.path.join(HERE, "pkgconfig_main.c")
    compile_ = cc + ["-std=c11", "-Wall", "-Wextra", src] + cflags

    # 1. Shared, found at run time through LD_LIBRARY_PATH.
    dyn = os.path.join(tmp, "main-shared")
    run(compile_ + ["-o", dyn] + libs, env=env)
    check("libmqttbroker.so.0" in needed(a.readelf, dyn), "main-shared needs libmqttbroker.so.0")
    lenv = dict(env, LD_LIBRARY_PATH=libdir)
    out = run(["ldd", dyn], env=lenv, capture=True)
    check(any("libmqttbroker.so.0" in line and libdir in line for line in out.splitlines()),
          "with LD_LIBRARY_PATH, ldd resolves libmqttbroker.so.0 in the prefix")
    run([dyn], env=lenv)

    # 2. Shared, with the prefix's libdir as the binary's rpath.
    rp = os.path.join(tmp, "main-rpath")
    run(compile_ + ["-o", rp] + libs + ["-Wl,-rpath," + libdir], env=env)
    renv = dict(env)
    renv.pop("LD_LIBRARY_PATH", None)
    out = run(["ldd", rp], env=renv, capture=True)
    check(any("libmqttbroker.so.0" in line and libdir in line for line in out.splitlines()),
          "with an rpath, ldd resolves libmqttbroker.so.0 in the prefix")
    run([rp], env=renv)

    # 3. Static: the archive alone must hold the whole library.
    st = os.path.join(tmp, "main-static")
    static_link = []
    for flag in static_libs:
        static_link += (["-Wl,-Bstatic", "-lmqttbroker", "-Wl,-Bdynamic"]
                        if flag == "-lmqttbroker" else [flag])
    run(compile_ + ["-o", st] + static_link, env=env)
    deps = needed(a.readelf, st)
    check(not any(d.startswith("libmqttbroker") for d in deps),
          "main-static needs no libmqttbroker.so (NEEDED: %s)" % ", ".join(deps))
    run([st], env=renv)


def main():
    p = argparse.ArgumentParser()
    for opt in ("--source-root", "--version", "--meson", "--ninja", "--pkg-config",
                "--cc", "--readelf"):
        p.add_argument(opt, required=True)
    a = p.parse_args()
    return itest.main(lambda tmp: body(a, tmp), "mqttb-install-")


if __name__ == "__main__":
    sys.exit(main())
