#!/usr/bin/env python3
"""bench/run.py - runs every benchmark (bench/*.sh) and writes what they
printed into docs/performance.md, between the markers

    <!-- make bench: begin -->  ...  <!-- make bench: end -->

with the machine, the date and the commit, so the figures in the
repository are always the ones `make bench` measured, each beside the
reference its script measured in the same run. The rest of
docs/performance.md (profiles, what was changed and why) is left as it is.

Usage: bench/run.py [--no-write] [NAME.sh ...]   (default: every bench/*.sh)
A benchmark that fails is reported as failed (its output kept) and the run
goes on; the exit status is 1 if any failed.
"""
import datetime
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "performance.md")
BEGIN = "<!-- make bench: begin -->"
END = "<!-- make bench: end -->"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              cwd=ROOT, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    debian = sh("cat /etc/debian_version")
    fs = sh("df -T /tmp | awk 'NR==2 {print $2}'")
    return [
        ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("commit", (sh("git rev-parse --short HEAD") or "(not a git checkout)")
         + (" with local changes" if sh("git status --porcelain --untracked-files=no") else "")),
        ("CPUs", "%s online, %s usable by this process: %s" % (
            os.cpu_count(), len(os.sched_getaffinity(0)), model or "?")),
        ("memory", mem),
        ("system", "Debian %s, Linux %s" % (debian or "?", platform.release())),
        ("/tmp filesystem", fs or "?"),
        ("load average at start", "%.2f %.2f %.2f" % os.getloadavg()),
    ]


def run(script):
    t0 = time.monotonic()
    p = subprocess.run(["sh", script], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    dt = time.monotonic() - t0
    # The server's and the store's own start-up lines are not figures.
    text = "".join(l for l in p.stdout.splitlines(True) if not l.startswith("refuge: info:"))
    return p.returncode, text, dt


def block(info, results, total):
    out = [BEGIN, "",
           "## Latest `make bench`",
           "",
           "Written by `make bench` (bench/run.py); do not edit by hand. Every",
           "figure is printed beside the reference its script measured in the",
           "same run (release build, `build/`).",
           ""]
    out += ["| | |", "|---|---|"]
    out += ["| %s | %s |" % kv for kv in info]
    out += ["| total time | %.0f s |" % total, ""]
    for name, rc, text, dt in results:
        state = "" if rc == 0 else " **FAILED (exit %d)**" % rc
        out += ["### %s (%.0f s)%s" % (name, dt, state), "", "```"]
        out += [line.rstrip() for line in text.strip("\n").splitlines()] or ["(no output)"]
        out += ["```", ""]
    out += [END]
    return "\n".join(out) + "\n"


def write(text):
    try:
        with open(DOC) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Performance\n\n"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        doc = head + text + "\n" + tail
    else:
        # After the title line: the latest figures come first.
        lines = doc.split("\n", 2)
        if lines and lines[0].startswith("# "):
            doc = lines[0] + "\n\n" + text + "\n" + (lines[2] if len(lines) > 2 else "")
        else:
            doc = text + "\n" + doc
    tmp = DOC + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, DOC)


def main(argv):
    write_doc = "--no-write" not in argv
    names = [a for a in argv if not a.startswith("--")]
    if not names:
        names = sorted(n for n in os.listdir(os.path.join(ROOT, "bench")) if n.endswith(".sh"))
    info = machine()
    results = []
    t0 = time.monotonic()
    for name in names:
        script = os.path.join("bench", os.path.basename(name))
        print("== %s" % script, flush=True)
        rc, text, dt = run(script)
        sys.stdout.write(text)
        print("   (%.0f s%s)" % (dt, "" if rc == 0 else ", FAILED: exit %d" % rc), flush=True)
        results.append((script, rc, text, dt))
    total = time.monotonic() - t0
    print("make bench: %d benchmarks in %.0f s, %d failed" % (
        len(results), total, sum(1 for r in results if r[1] != 0)))
    if write_doc:
        write(block(info, results, total))
        print("written to docs/performance.md")
    return 1 if any(r[1] != 0 for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
