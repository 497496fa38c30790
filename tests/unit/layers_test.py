#!/usr/bin/env python3
"""layers_test.py - scripts/check-layers holds the file-level rules.

The HTTP layer never includes a page or template header, and the blob store
never calls into the SQLite backend (src/server/.layers, src/store/.layers).
On a copy of the tree this plants, one at a time, an include of a page
header in http.c, a template include in http_resp.c, a call up into the
pages from http.c, an include of the backend's header in blob.c and a
backend call in blob.c, and shows that check-layers fails on each (naming
the file) and passes on the clean copy. Run by meson test (suite unit)."""
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
failures = 0


def check(cond, what, detail=""):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1
        if detail:
            print("     " + detail.replace("\n", "\n     "))


def layers(tree):
    p = subprocess.run(["sh", os.path.join(tree, "scripts", "check-layers"), tree],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def copy_tree(dst):
    shutil.copytree(os.path.join(REPO, "src"), os.path.join(dst, "src"))
    os.mkdir(os.path.join(dst, "scripts"))
    shutil.copy(os.path.join(REPO, "scripts", "check-layers"), os.path.join(dst, "scripts"))


def plant(path, after, text):
    """Inserts text after the first line that starts with after."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith(after):
            lines.insert(i + 1, text)
            break
    else:
        raise SystemExit("layers_test: no line starting with %r in %s" % (after, path))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


PLANTS = [
    ("an include of a page header in http.c", "src/server/http.c", "#include",
     '#include "server/pages_priv.h"', "src/server/http.c"),
    ("an include of the template header in http_resp.c", "src/server/http_resp.c", "#include",
     '#include "server/tmpl.h"', "src/server/http_resp.c"),
    ("a call up into the pages in http.c", "src/server/http.c", "#include",
     "static int up(struct rf_req *r) { return rf_pages_not_found(r); }", "src/server/http.c"),
    ("an include of the SQLite backend's header in blob.c", "src/store/blob.c", "#include",
     '#include "store/sqlite_internal.h"', "src/store/blob.c"),
    ("a backend call in blob.c", "src/store/blob.c", "#include",
     "static int schema(void) { return rf_sqlite_schema_version(); }", "src/store/blob.c"),
    ("a SQLite call in blob.c", "src/store/blob.c", "#include",
     "static void done(void *s) { sqlite3_finalize(s); }", "src/store/blob.c"),
]


def main():
    rc, out = layers(REPO)
    check(rc == 0, "check-layers passes on this tree", out)
    tmp = tempfile.mkdtemp(prefix="refuge-layers-")
    try:
        clean = os.path.join(tmp, "clean")
        copy_tree(clean)
        rc, out = layers(clean)
        check(rc == 0 and "file rules" in out, "check-layers passes on a clean copy", out)
        # a comment naming the backend is not a call
        plant(os.path.join(clean, "src/store/blob.c"), "#include",
              "/* not rf_sqlite_run(), nor sqlite3_step() */")
        rc, out = layers(clean)
        check(rc == 0, "a comment naming a backend function is no violation", out)
        for n, (what, rel, after, text, named) in enumerate(PLANTS):
            tree = os.path.join(tmp, "plant%d" % n)
            copy_tree(tree)
            plant(os.path.join(tree, rel), after, text)
            rc, out = layers(tree)
            check(rc == 1 and "layering violation: " + named in out,
                  "check-layers fails on %s" % what, out)
    finally:
        shutil.rmtree(tmp)
    print("%d failed" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
