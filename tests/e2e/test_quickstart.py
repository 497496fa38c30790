#!/usr/bin/env python3
"""
The README's quick start, as a newcomer follows it: what `make run` runs after
building (scripts/run-demo, with the release build/refuge) prints a URL and
an exact `refuge init ...` line; opening the URL shows the landing page and
running the printed line enrolls the first admin; Ctrl-C stops the server.
A second run on the same data directory serves again and says an admin is
enrolled already. (The data directory is a temporary one instead of ./var.)

In the PostgreSQL pass (REFUGE_TEST_DB=postgresql) the same, as a newcomer
trying PostgreSQL follows it: `make run DB=postgresql://...` with an empty
database of the test cluster; run-demo says the instance is on PostgreSQL,
the data directory names that database (DIR/database) and holds no SQLite
file, and the second run finds the same instance.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import (REPO, Browser, Skip, Staff, TestFailure, check, free_port, log, main,
                 tempdir)

RELEASE = os.path.join(REPO, "build", "refuge")


def run_demo(data, port, db=None):
    """Starts scripts/run-demo (with DB=db: `make run DB=URL`); returns
    (process, everything it printed up to the last line of its
    instructions)."""
    env = dict(os.environ, REFUGE_DEMO_DATA=data, REFUGE_PORT=str(port))
    env.pop("DB", None)
    if db:
        env["DB"] = db
    p = subprocess.Popen([os.path.join(REPO, "scripts", "run-demo")], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    out, deadline = b"", time.time() + 120
    os.set_blocking(p.stdout.fileno(), False)
    while time.time() < deadline:
        chunk = p.stdout.read()
        if chunk:
            out += chunk
        if b"Stop the server with Ctrl-C." in out:
            return p, out.decode("utf-8", "replace")
        if p.poll() is not None and not chunk:
            break
        time.sleep(0.1)
    stop(p)
    raise TestFailure("run-demo printed no instructions:\n" + out.decode("utf-8", "replace"))


def stop(p):
    """Ctrl-C, as a person would (SIGINT to the whole foreground group)."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise TestFailure("run-demo did not stop on Ctrl-C")
    return p.returncode


def test():
    if not os.access(RELEASE, os.X_OK):
        raise Skip("no release build at build/refuge (make check builds it first)")
    data = os.path.join(tempdir(), "var")
    db = lib.pg_database() if lib.DB == "postgresql" else None
    port = free_port()
    p, out = run_demo(data, port, db)
    try:
        url = "http://127.0.0.1:%d" % port
        check(("Refuge is running" in out) and (url + "/") in out,
              "run-demo prints the URL to open as a person", out)
        if db:
            check("a demo instance, PostgreSQL" in out,
                  "with DB=postgresql://..., run-demo says the instance is on PostgreSQL", out)
            check(open(os.path.join(data, "database")).read().strip() == db and
                  not os.path.exists(os.path.join(data, "refuge.db")),
                  "the data directory names the PostgreSQL database and holds no SQLite file",
                  sorted(os.listdir(data)))
        else:
            check("a demo instance, SQLite in" in out, "run-demo says the instance is SQLite",
                  out)
        m = re.search(r"^\s*(\./build/refuge init --server \S+ --token \S+ --name \S+)\s*$", out,
                      re.M)
        check(m, "run-demo prints the exact `refuge init --server URL --token TOKEN --name NAME` "
              "line", out)
        line = m.group(1)
        check("--server %s " % url in line, "the printed init line has the server's URL", line)
        r = Browser(url).get("/")
        check(r.status == 200 and 'href="/login"' in r.text and 'href="/new"' not in r.text,
              "the printed URL shows the landing page, not open yet (nobody enrolled)",
              r.text[:300])
        staff = Staff("Alice")
        args = shlex.split(line)
        pr = subprocess.run(args, cwd=REPO, env=staff.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=300)
        check(pr.returncode == 0, "the printed `refuge init` line enrolls the first admin",
              pr.stdout.decode("utf-8", "replace")[-1500:])
        log("printed init line worked: %s" % " ".join(args[:3]))
        r = Browser(url).get("/")
        check(r.status == 200 and 'href="/new"' in r.text,
              "once the first admin enrolled, the landing page offers a codename", r.text[:300])
    finally:
        rc = stop(p)
    check(rc == 0, "run-demo exits cleanly on Ctrl-C (status %s)" % rc)
    time.sleep(0.2)
    try:
        Browser("http://127.0.0.1:%d" % port).request("GET", "/", timeout=3)
        answered = True
    except TestFailure:
        answered = False  # nothing listening: stopped
    check(not answered, "the server stops with Ctrl-C")

    # a second `make run`: same instance, an admin exists already
    port = free_port()
    p, out = run_demo(data, port, db)
    try:
        check("existing instance" in out and "already" in out,
              "a second run reuses the instance and says an admin is enrolled", out)
        check(Browser("http://127.0.0.1:%d" % port).get("/").status == 200,
              "the second run serves the landing page")
    finally:
        stop(p)
    log("second run: reuses the instance, no new token")


if __name__ == "__main__":
    main(test)
