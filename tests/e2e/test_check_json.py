#!/usr/bin/env python3
"""scripts/check-json: the server writes and reads JSON only through jansson.

The check passes on this tree, and fails on a copy of src/server into which
one line of hand-written JSON is planted, for each shape it knows (an
object opened in a literal, a quoted key, a quoted %s, punctuation appended
piece by piece, a reader comparing bytes with a brace). An API error
message that describes a body ("body must be {\\"closed\\": ...}") and
comments are not hand-written JSON and do not trip it.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "scripts", "check-json")

PLANTED = [
    ("object in a literal", 'static const char *j = "{\\"v\\":1}";'),
    ("quoted key in a format", 'static void f(char *b) { sprintf(b, "x\\":%d", 1); }'),
    ("quoted %s", 'static void f(char *b, const char *s) { sprintf(b, "\\"%s\\"", s); }'),
    ("brace appended", "static int f(struct rf_buf *b) { return rf_buf_put_u8(b, '{'); }"),
    ("quote appended", 'static int f(struct rf_buf *b) { return rf_buf_put_str(b, "\\""); }'),
    ("reader of braces", "static int f(int c) { return c == '{'; }"),
]

HARMLESS = [
    'static int f(struct rf_req *r) { return rf_api_error(r, 400, "bad_request", '
    '"body must be {\\"closed\\": true|false}"); }',
    '/* writes {"v":1} by hand: "{\\"v\\":1}" */',
]


def run(tree):
    p = subprocess.run([CHECK, tree], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def plant(tree, line):
    with open(os.path.join(tree, "src", "server", "planted.c"), "w") as f:
        f.write(line + "\n")


def main():
    failures = []
    rc, out = run(ROOT)
    if rc != 0:
        failures.append("this tree fails the check:\n" + out)
    with tempfile.TemporaryDirectory(prefix="refuge-checkjson-") as tmp:
        shutil.copytree(os.path.join(ROOT, "src", "server"), os.path.join(tmp, "src", "server"))
        for name, line in PLANTED:
            plant(tmp, line)
            rc, out = run(tmp)
            if rc != 1 or "planted.c" not in out:
                failures.append("not caught: %s (exit %d)\n%s" % (name, rc, out))
        for line in HARMLESS:
            plant(tmp, line)
            rc, out = run(tmp)
            if rc != 0:
                failures.append("caught but harmless: %s\n%s" % (line, out))
    for f in failures:
        print("FAIL", f)
    if failures:
        sys.exit(1)
    print("ok: check-json passes here and catches %d planted shapes" % len(PLANTED))


if __name__ == "__main__":
    main()
