#!/usr/bin/env python3
"""
Failover to a standby (issue 11, the deployment of docs/scale-out.md): a
PostgreSQL primary with a synchronous streaming standby (scripts/pg-test
standby: pg_basebackup, synchronous_standby_names), the server's URL naming
both with target_session_attrs=read-write. A flood of submissions from
several people; the primary is crashed (pg_ctl stop -m immediate) in the
middle of it and the standby promoted. Asserted:
  - the sandboxed server starts with the two-host URL (one port, numeric
    addresses);
  - while no primary answers, no submission is acknowledged;
  - once the standby is promoted the server acknowledges again within
    RECOVER_S seconds, without a restart: its store reconnects, and libpq
    finds the writable host;
  - every acknowledged submission, before and after the failover, is there
    for the caseworker's real `refuge sync` exactly once (synchronous
    replication: an acknowledged commit was on the standby too), and
    nothing that no one sent.

PostgreSQL only: skipped on SQLite with that reason. It makes its own two
clusters (it crashes one), with scripts/pg-test; without PostgreSQL it says
so (SKIP).
"""
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import Server, Skip, Staff, TestFailure, check, log, main, on_cleanup  # noqa: E402
from test_pg_kill import MARK_RE, PG_TEST, Client  # noqa: E402

CLIENTS = 3
PHASE_S = 4.0
RECOVER_S = 30.0


def clusters():
    if lib.DB != "postgresql":
        raise Skip("PostgreSQL only: failing over to a PostgreSQL standby")
    if not os.environ.get("REFUGE_TEST_PG"):
        raise Skip("REFUGE_TEST_DB=postgresql but no PostgreSQL: REFUGE_TEST_PG is not set "
                   "(scripts/check starts a throwaway cluster with scripts/pg-test)")
    tag = os.urandom(6).hex()
    primary, standby = "/tmp/refuge-pgfo-p-" + tag, "/tmp/refuge-pgfo-s-" + tag
    p = subprocess.run([PG_TEST, "start", primary], capture_output=True, text=True, timeout=180)
    if p.returncode == 77:
        raise Skip("no PostgreSQL server: " + p.stderr.strip())
    check(p.returncode == 0, "scripts/pg-test start made the primary", p.stderr)
    on_cleanup(lambda: subprocess.run([PG_TEST, "stop", primary], capture_output=True,
                                      timeout=180))
    s = subprocess.run([PG_TEST, "standby", primary, standby], capture_output=True, text=True,
                       timeout=300)
    on_cleanup(lambda: subprocess.run([PG_TEST, "stop", standby], capture_output=True,
                                      timeout=180))
    check(s.returncode == 0, "scripts/pg-test standby made a synchronous standby", s.stderr)
    url = s.stdout.strip()
    check(",127.0.0.2:" in url and "target_session_attrs=read-write" in url,
          "the URL names the primary and the standby", url)
    os.environ["REFUGE_TEST_PG"] = url  # lib.pg_database: the server's database, both hosts
    return primary, standby


def pg(*args):
    p = subprocess.run([PG_TEST] + list(args), capture_output=True, text=True, timeout=180)
    check(p.returncode == 0, "scripts/pg-test %s" % " ".join(args[:1]), p.stdout + p.stderr)


def test():
    primary, standby = clusters()
    srv = Server().init().start()
    with open(os.path.join(srv.data, "database")) as f:
        check("127.0.0.2" in f.read(), "the instance's URL names the standby too")
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    stop = threading.Event()
    clients = [Client(i, [srv], 0, set(), stop, random.getrandbits(64)) for i in range(CLIENTS)]
    for c in clients:
        c.prepare()
        c.start()

    def acked_after(t):
        return [s for c in clients for s in list(c.subs) if s.outcome == "acked" and s.t0 > t]

    def wait_acks(t, limit, what):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if acked_after(t):
                return time.monotonic()
            if any(c.error for c in clients):
                raise next(c.error for c in clients if c.error)
            time.sleep(0.05)
        raise TestFailure("%s: no acknowledged submission within %.0f s" % (what, limit))

    t0 = time.monotonic()
    wait_acks(t0, 60, "the flood on the primary")
    time.sleep(PHASE_S)
    before = len(acked_after(t0))

    t_crash = time.monotonic()
    pg("crash", primary)
    t_down = time.monotonic()
    time.sleep(1.0)
    t_promote = time.monotonic()
    pg("promote", standby)
    t_up = time.monotonic()
    t_back = wait_acks(t_up, RECOVER_S, "after the standby was promoted")
    time.sleep(PHASE_S)
    stop.set()
    for c in clients:
        c.join(120)
        check(not c.is_alive(), "client %d stopped" % c.idx)
        if c.error is not None:
            raise c.error
    subs = [s for c in clients for s in c.subs if s.outcome is not None]
    acked = [s for s in subs if s.outcome == "acked"]
    during = [s for s in subs if s.t0 >= t_down and s.t1 is not None and s.t1 <= t_promote]
    false_acks = [s.mark for s in during if s.outcome == "acked"]
    check(not false_acks, "no submission is acknowledged while no primary answers (%d)"
          % len(false_acks), false_acks[:10])
    after = len(acked_after(t_up))
    log("acknowledged %d on the primary; primary crashed (%.1f s), standby promoted after "
        "%.1f s; acknowledged again %.2f s after the promotion, %d since"
        % (before, t_down - t_crash, t_promote - t_down, t_back - t_up, after))

    alice.run("sync", timeout=900)
    seen = {}
    for case in alice.json("cases", "--json")["cases"]:
        for it in alice.json("show", case["case"], "--json")["items"]:
            check(it["kind"] != "unreadable", "every stored item decrypts", it)
            if it["kind"] == "message":
                for m in MARK_RE.findall(it.get("text", "")):
                    seen[m] = seen.get(m, 0) + 1
    lost = [s.mark for s in acked if s.mark not in seen]
    check(not lost, "every acknowledged submission survived the failover (%d of %d lost)"
          % (len(lost), len(acked)), lost[:10])
    twice = [m for m, k in seen.items() if k > 1]
    check(not twice, "no submission is stored twice (%d)" % len(twice), twice[:10])
    marks = {s.mark for s in subs}
    check(all(m in marks for m in seen), "nothing is stored that no one sent")
    srv.stop_clean()
    print("FIGURES pg_failover: %d acknowledged before the primary crashed, acknowledged again "
          "%.2f s after the standby's promotion, %d in all, lost 0"
          % (before, t_back - t_up, len(acked)))


if __name__ == "__main__":
    main(test)
