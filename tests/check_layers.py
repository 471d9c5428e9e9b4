#!/usr/bin/env python3
"""Check that lib/ keeps to its one-way layers (the table is lib/layers.txt).

    check_layers.py [--nm NM] --lib-dir LIB_DIR OBJECTS...

OBJECTS are the library's compiled objects: the static archive
(lib/libmqttbroker.a, thin or not), its object directory
(libmqttbroker.a.p/) or single .o files.

1. Calls, from the objects: `nm -P` gives each object's defined global symbols
   and its undefined ones; each undefined symbol another object of the
   library defines is a reference from one file to another, and must point
   to a lower layer (never upward, never to a sibling on the same layer).
   Symbols the library does not define (libc) are ignored.
2. Includes, from the text: each `#include "x.h"` of lib/*.c and lib/*.h must
   name a header of the file's own module, of a lower layer, a header shared
   with the file in layers.txt, or a file under include/.
3. Coverage and size: every lib/*.c and lib/*.h is covered by layers.txt,
   every file it lists exists (and each .c has an object), and no file holds
   more than a fifth of the lines of lib/*.c + lib/*.h.

Prints one line per violation and exits 1, or prints a one-line summary and
exits 0. Exits 2 when it cannot run (bad arguments, nm failing).
Python 3 standard library only.
"""

import argparse
import os
import re
import subprocess
import sys

# nm -P symbol types: defined globals, and undefined references.
DEFINED = set("TDBRCGSVWiu")
UNDEFINED = set("Uwv")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
ARCHIVE_HEADER_RE = re.compile(r"^(.*)\[(.*)\]:$")


class Table:
    """lib/layers.txt: layer of each .c file, owners of each header."""

    def __init__(self):
        self.layer = {}  # x.c -> layer index
        self.layers = []  # [[x.c, ...], ...] bottom first
        self.header_owners = {}  # x.h -> [a.c, ...] (explicit lines)
        self.shared = {}  # x.h -> set of files allowed to include it
        self.errors = []


def parse_table(path):
    t = Table()
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        t.errors.append("%s: cannot read: %s" % (path, e))
        return t
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = "lib/%s:%d" % (name, lineno)
        words = line.split()
        if words[0] in ("header", "shared"):
            kind = words[0]
            m = re.match(r"^(header|shared)\s+(\S+\.h)\s*:\s*(.*)$", line)
            if not m or not m.group(3).split():
                t.errors.append("%s: expected '%s x.h: file ...'" % (where, kind))
                continue
            hdr, files = m.group(2), m.group(3).split()
            if kind == "header":
                if hdr in t.header_owners:
                    t.errors.append("%s: %s has two header lines" % (where, hdr))
                if any(not f.endswith(".c") for f in files):
                    t.errors.append("%s: a header's owners are .c files" % where)
                t.header_owners[hdr] = files
            else:
                t.shared.setdefault(hdr, set()).update(files)
            continue
        for w in words:
            if not w.endswith(".c") or "/" in w:
                t.errors.append("%s: '%s' is not a lib/*.c file name" % (where, w))
            elif w in t.layer:
                t.errors.append("%s: %s is already on layer %d" % (where, w, t.layer[w]))
            else:
                t.layer[w] = len(t.layers)
        t.layers.append(words)
    if not t.layers:
        t.errors.append("lib/%s: no layers" % name)
    return t


def owners_of(table, fname):
    """The .c files a lib file belongs to (None if layers.txt misses it)."""
    if fname.endswith(".c"):
        return [fname] if fname in table.layer else None
    if fname in table.header_owners:
        owners = [o for o in table.header_owners[fname] if o in table.layer]
        return owners or None
    stem_c = fname[:-2] + ".c"
    return [stem_c] if stem_c in table.layer else None


def layer_of(table, fname):
    owners = owners_of(table, fname)
    return None if owners is None else min(table.layer[o] for o in owners)


def run_nm(nm, path):
    try:
        out = subprocess.run([nm, "-P", path], check=True, capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        sys.stderr.write("check_layers: %s -P %s failed: %s\n" % (nm, path, detail.strip()))
        sys.exit(2)
    return out


def read_objects(nm, inputs):
    """{object basename: (defined set, undefined set)} from nm -P."""
    paths = []
    for p in inputs:
        if os.path.isdir(p):
            objs = sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".o"))
            if not objs:
                sys.stderr.write("check_layers: no .o files in %s\n" % p)
                sys.exit(2)
            paths.extend(objs)
        elif os.path.exists(p):
            paths.append(p)
        else:
            sys.stderr.write("check_layers: %s does not exist\n" % p)
            sys.exit(2)
    objects = {}
    for p in paths:
        current = os.path.basename(p)  # a lone object prints no header
        for line in run_nm(nm, p).splitlines():
            if not line.strip():
                continue
            m = ARCHIVE_HEADER_RE.match(line)
            if m:  # archive[member]: (the member may be a path: thin archive)
                current = os.path.basename(m.group(2))
                continue
            fields = line.split()
            if len(fields) == 1 and line.endswith(":"):  # file.o:
                current = os.path.basename(line[:-1])
                continue
            if len(fields) < 2 or len(fields[1]) != 1:
                continue
            sym, kind = fields[0], fields[1]
            defs, undefs = objects.setdefault(current, (set(), set()))
            if kind in DEFINED:
                defs.add(sym)
            elif kind in UNDEFINED:
                undefs.add(sym)
    return objects


def source_of(obj, table):
    """conn.c.o -> conn.c (meson may prefix a directory: lib_conn.c.o)."""
    name = obj[:-2] if obj.endswith(".o") else obj
    if name in table.layer:
        return name
    matches = [f for f in table.layer if name.endswith("_" + f) or name.endswith("/" + f)]
    return max(matches, key=len) if matches else name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nm", default=os.environ.get("NM", "nm"))
    ap.add_argument("--lib-dir", required=True, help="the source lib/ directory")
    ap.add_argument("--table", help="the layer table (default LIB_DIR/layers.txt)")
    ap.add_argument("objects", nargs="+", help="archive, object directory or .o files")
    args = ap.parse_args()

    lib_dir = os.path.abspath(args.lib_dir)
    include_dir = os.path.join(os.path.dirname(lib_dir), "include")
    table = parse_table(args.table or os.path.join(lib_dir, "layers.txt"))
    violations = list(table.errors)

    def lib(f):
        return "lib/" + f

    # -- coverage -------------------------------------------------------------
    sources = sorted(f for f in os.listdir(lib_dir)
                     if f.endswith((".c", ".h")) and os.path.isfile(os.path.join(lib_dir, f)))
    for f in sources:
        if owners_of(table, f) is None:
            violations.append("%s: not in lib/layers.txt" % lib(f))
    for f in sorted(table.layer):
        if f not in sources:
            violations.append("%s: listed in lib/layers.txt but does not exist" % lib(f))
    for hdr, owners in sorted(table.header_owners.items()):
        if hdr not in sources:
            violations.append("%s: listed in lib/layers.txt but does not exist" % lib(hdr))
        for o in owners:
            if o not in table.layer:
                violations.append("lib/layers.txt: owner %s of %s is on no layer" % (o, hdr))
    for hdr, readers in sorted(table.shared.items()):
        if hdr not in sources:
            violations.append("%s: listed in lib/layers.txt but does not exist" % lib(hdr))
        for r in sorted(readers):
            if r not in sources:
                violations.append("lib/layers.txt: %s, sharing %s, does not exist" % (lib(r), hdr))

    # -- size -----------------------------------------------------------------
    counts = {}
    texts = {}
    for f in sources:
        with open(os.path.join(lib_dir, f), encoding="utf-8", errors="replace") as fh:
            texts[f] = fh.read()
        counts[f] = texts[f].count("\n")
    total = sum(counts.values())
    for f in sources:
        if counts[f] * 5 > total:
            violations.append("%s: %d lines, more than a fifth of the %d lines of lib/*.c + lib/*.h"
                              % (lib(f), counts[f], total))

    # -- calls (objects) ------------------------------------------------------
    objects = read_objects(args.nm, args.objects)
    by_source = {}
    for obj, syms in objects.items():
        src = source_of(obj, table)
        if src not in table.layer:
            violations.append("%s: object %s has no file in lib/layers.txt" % (lib(src), obj))
            continue
        if src in by_source:
            violations.append("%s: two objects (%s)" % (lib(src), obj))
        by_source[src] = syms
    for f in sorted(table.layer):
        if f in sources and f not in by_source:
            violations.append("%s: no object among %s" % (lib(f), " ".join(args.objects)))
    definer = {}
    for src in sorted(by_source):
        for sym in sorted(by_source[src][0]):
            if sym in definer:
                violations.append("%s, %s: both define %s" % (lib(definer[sym]), lib(src), sym))
            else:
                definer[sym] = src
    calls = 0
    for src in sorted(by_source, key=lambda s: (table.layer[s], s)):
        for sym in sorted(by_source[src][1]):
            target = definer.get(sym)
            if target is None or target == src:
                continue  # libc and friends
            calls += 1
            lf, lt = table.layer[src], table.layer[target]
            if lt > lf:
                violations.append("%s -> %s: %s (layer %d calls up to layer %d)"
                                  % (lib(src), lib(target), sym, lf, lt))
            elif lt == lf:
                violations.append("%s -> %s: %s (siblings on layer %d may not call each other)"
                                  % (lib(src), lib(target), sym, lf))

    # -- includes (text) ------------------------------------------------------
    includes = 0
    for f in sources:
        owners = owners_of(table, f)
        if owners is None:
            continue  # already reported
        lf = layer_of(table, f)
        for lineno, line in enumerate(texts[f].splitlines(), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            inc = m.group(1)
            includes += 1
            where = "%s:%d" % (lib(f), lineno)
            if "/" not in inc and inc in sources:
                inc_owners = owners_of(table, inc)
                if inc_owners is None:
                    continue  # the header is reported as not covered
                li = layer_of(table, inc)
                if set(inc_owners) & set(owners) or f in table.shared.get(inc, ()):
                    continue
                if li < lf:
                    continue
                if li == lf:
                    why = "a sibling's header, both on layer %d" % li
                else:
                    why = "layer %d includes a layer %d header" % (lf, li)
                violations.append("%s -> %s: #include (%s, at %s)" % (lib(f), lib(inc), why, where))
            elif os.path.isfile(os.path.join(include_dir, inc)):
                continue  # public header, include/mqttb/*.h
            else:
                violations.append("%s -> %s: #include of a header neither in lib/ nor in include/"
                                  " (at %s)" % (lib(f), inc, where))

    if violations:
        for v in violations:
            print(v)
        print("layers: %d violation%s (see lib/layers.txt for the rule)"
              % (len(violations), "" if len(violations) == 1 else "s"))
        return 1
    print("layers: %d files, %d cross-file calls checked, %d includes checked: OK"
          % (len(sources), calls, includes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
