#!/usr/bin/env python3
"""Write the first ```c block of a Markdown file to a C file, so the build
compiles exactly the example the documentation shows."""
import sys

src, dst = sys.argv[1], sys.argv[2]
out, inside = [], False
with open(src, encoding="utf-8") as f:
    for line in f:
        if not inside and line.strip() == "```c":
            inside = True
            continue
        if inside and line.strip() == "```":
            break
        if inside:
            out.append(line)
if not out:
    sys.exit(f"{src}: no ```c block found")
with open(dst, "w", encoding="utf-8") as f:
    f.writelines(out)
