#!/usr/bin/env python3
"""
Logins in a burst: 100 people with real codenames (made on /new, at the
instance's default Argon2id cost) log in at the same moment, each from their
own browser (own pre-session cookie). Every one must reach the inbox, none
may be told "busy" (503): a login whose expected wait is short waits for its
turn, its connection held, instead of being refused. Each login is answered
within LOGIN_MAX seconds. Meanwhile the landing page stays fast (p99 printed,
bounded loosely here: bench/login_burst.sh measures it on a release build).

Before the fix, the KDF queue held 64 waiting logins and the rest of a burst
of 100 got 503 at once (34 of 100 in the issue).
"""
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Browser, Person, Server, check, enroll_first_admin, log, main,
                 visible_text_fields)

N = int(os.environ.get("LOGIN_BURST", "100"))
MAKERS = 8
LOGIN_MAX = 30.0     # seconds, the bound for a burst of 100 on 2 cores
LANDING_P99_MAX = 1.0  # seconds (ASan build, shared machine; the bench checks 50 ms)


def make_people(srv, n):
    people, errors = [], []
    lock = threading.Lock()

    def maker(k):
        for _ in range(k):
            try:
                p = Person(srv)
                p.new_codename()
                with lock:
                    people.append(p.codename)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(e)[:200])
    ts = [threading.Thread(target=maker, args=(n // MAKERS + (i < n % MAKERS),))
          for i in range(MAKERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors and len(people) == n, "made %d codenames" % n, errors[:3])
    return people


def test():
    srv = Server(cheap_kdf=False).init().start()
    enroll_first_admin(srv)
    t0 = time.time()
    codenames = make_people(srv, N)
    log("%d people made on /new in %.1f s" % (N, time.time() - t0))

    # each person opens the login page first (own browser, own cookie) ...
    ready = []
    for cn in codenames:
        b = Browser(srv.url)
        r = b.get("/login")
        check(r.status == 200, "GET /login answered %d" % r.status)
        f = r.page.form("/login")
        ready.append((b, f, visible_text_fields(f)[0]["name"], cn))

    # ... then all press "log in" at once
    results = [None] * N
    go = threading.Barrier(N + 1)

    def login(i):
        b, f, name, cn = ready[i]
        go.wait()
        s = time.time()
        try:
            r = b.submit(f, [(name, cn)])
            inbox = r.status == 200 and r.page.form("/send") is not None
            results[i] = (r.status, inbox, time.time() - s)
        except Exception as e:  # noqa: BLE001
            results[i] = (None, False, time.time() - s, str(e)[:100])

    landing, stop = [], threading.Event()

    def landing_probe():
        while not stop.is_set():
            s = time.time()
            with urllib.request.urlopen(srv.url + "/", timeout=30) as resp:
                resp.read()
            landing.append(time.time() - s)
            time.sleep(0.02)

    ts = [threading.Thread(target=login, args=(i,)) for i in range(N)]
    for t in ts:
        t.start()
    probe = threading.Thread(target=landing_probe)
    probe.start()
    t_start = time.time()
    go.wait()
    for t in ts:
        t.join()
    total = time.time() - t_start
    stop.set()
    probe.join()

    statuses = {}
    for r in results:
        statuses[r[0]] = statuses.get(r[0], 0) + 1
    slowest = max(r[2] for r in results)
    landing.sort()
    p99 = landing[min(len(landing) - 1, int(len(landing) * 0.99))] if landing else 0
    log("burst of %d logins: statuses %s, last in after %.1f s (all in %.1f s); landing p50 "
        "%.1f ms, p99 %.1f ms (%d probes)" % (
            N, statuses, slowest, total, 1000 * landing[len(landing) // 2] if landing else 0,
            1000 * p99, len(landing)))
    check(statuses.get(503, 0) == 0, "no login of the burst is told busy (503)", statuses)
    check(all(r[1] for r in results), "every login of the burst reaches the inbox",
          [r for r in results if not r[1]][:5])
    check(slowest <= LOGIN_MAX, "every login is in within %.0f s (slowest %.1f s)"
          % (LOGIN_MAX, slowest))
    check(p99 <= LANDING_P99_MAX, "landing p99 under %.1f s during the burst (%.3f s)"
          % (LANDING_P99_MAX, p99))
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
