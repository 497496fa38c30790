#!/usr/bin/env python3
"""
Cheap floods evict nobody (issue 13, finding 5).

1. A newcomer opens /new and starts writing their codename down. Meanwhile
   an attacker fetches /new 100 times a second for 60 s (FLOOD_NEW_SECONDS,
   FLOOD_NEW_RATE), each time with a fresh browser. Then the newcomer
   presses "continue": they are in, and their codename logs them in again
   from another browser; the same form sent twice makes one account, not
   two. (On a server that kept pending codenames in a
   table of 1,040 and evicted the least recently used, the newcomer's
   codename was gone after about 10 s of this.)
2. A full session table (serve --sessions-max 2) answers the busy page (503,
   Retry-After, in the person's language) to a third person, and the two
   people already in keep reading their inbox and sending: nobody is pushed
   out. When one leaves (quick exit), the third gets in.
"""
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import REPO, Person, Server, Staff, check, enroll_first_admin, log, main

FLOOD_SECONDS = float(os.environ.get("FLOOD_NEW_SECONDS", "60"))
import lib  # noqa: E402  (lib.open_db: the database on either backend)
FLOOD_RATE = float(os.environ.get("FLOOD_NEW_RATE", "100"))
THREADS = 4


def po_text(msgid, lang="en"):
    import re
    with open(os.path.join(REPO, "po", lang + ".po"), encoding="utf-8") as f:
        m = re.search(r'msgid "%s"\nmsgstr "(.*)"' % re.escape(msgid), f.read())
    check(m, "po/%s.po has %s" % (lang, msgid))
    return m.group(1)


def count_sources(srv):
    con = lib.open_db(srv, readonly=True)
    try:
        return con.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
    finally:
        con.close()


def flood(port, t_end, rate, counts, lock):
    """GET /new at `rate` per second until t_end, on one keep-alive
    connection, without cookies (a fresh visitor each time)."""
    conn = None
    interval = 1.0 / rate
    next_at = time.time()
    while time.time() < t_end:
        now = time.time()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/new", headers={"Accept-Language": "en"})
            r = conn.getresponse()
            r.read()
            key = r.status
            if r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            key = "error"
            if conn is not None:
                conn.close()
            conn = None
        with lock:
            counts[key] = counts.get(key, 0) + 1
    if conn is not None:
        conn.close()


def newcomer_survives_a_flood():
    srv = Server()
    srv.init()
    srv.start()
    enroll_first_admin(srv)  # codenames are handed out once the line is open
    p = Person(srv, lang="en")
    r = p.b.get("/")
    check(r.status == 200, "GET / answered %d" % r.status)
    r = p.b.get("/new")
    check(r.status == 200, "GET /new answered %d" % r.status, r.text[:500])
    from lib import find_codename
    p.codename = find_codename(r.page)
    check(p.codename, "GET /new shows a codename", r.page.text[:1000])
    form = r.page.form("/new")
    check(form is not None, "GET /new has its continue form")

    counts, lock = {}, threading.Lock()
    t0 = time.time()
    t_end = t0 + FLOOD_SECONDS
    threads = [threading.Thread(target=flood, args=(srv.port, t_end, FLOOD_RATE / THREADS,
                                                    counts, lock)) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - t0
    total = sum(counts.values())
    log("flood: %d GET /new in %.1fs (%.0f/s): %s" % (total, took, total / took, counts))
    check(counts.get(200, 0) >= 0.9 * FLOOD_RATE * FLOOD_SECONDS,
          "the flood ran at its rate (%d answered 200 of %d wanted)" %
          (counts.get(200, 0), FLOOD_RATE * FLOOD_SECONDS), counts)

    # the newcomer has written the codename down and presses "continue"
    before = count_sources(srv)
    r = p.b.submit(form)
    check(r.status == 200 and r.url.startswith("/inbox"),
          "after a flood of GET /new the newcomer's codename still works "
          "(POST /new answered %d at %s)" % (r.status, r.url), r.page.text[:600])
    # the same form sent again (a resubmission, a replay) makes no second account
    r = p.b.submit(form)
    check(r.status == 200 and r.url.startswith("/inbox"),
          "the same codename form sent twice logs into the same account", r.page.text[:600])
    check(count_sources(srv) == before + 1,
          "one codename form sent twice made exactly one account (%d -> %d)" %
          (before, count_sources(srv)))
    r = p.login()
    check(r.status == 200 and r.url.startswith("/inbox"),
          "the newcomer logs in with their codename from another browser", r.page.text[:600])
    log("after %d s of flood the newcomer got in, and logs in again with the codename" %
        FLOOD_SECONDS)
    srv.stop_clean()


def full_table_answers_busy():
    srv = Server()
    srv.init()
    srv.start(["--sessions-max", "2"])
    alice = Staff("Alice")  # the line is open once a caseworker is enrolled
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")
    a, b, c = Person(srv, lang="en"), Person(srv, lang="ru"), Person(srv, lang="en")
    for who in (a, b):
        who.new_codename()
        r, _ = who.send("hello from a person already in")
        check(r.status == 200, "a person in sends (answered %d)" % r.status, r.text[:500])
    # the third newcomer: the account is made, the session table is full
    r = c.b.get("/new")
    from lib import find_codename
    c.codename = find_codename(r.page)
    r = c.b.submit(r.page.form("/new"))
    check(r.status == 503, "a full session table answers 503 (got %d)" % r.status,
          r.page.text[:500])
    check(r.header("retry-after"), "the busy page says when to retry (Retry-After)",
          r.headers)
    check(po_text("err.busy.title") in r.text, "the busy page is the person's busy page",
          r.page.text[:500])
    r = c.login()
    check(r.status == 503, "a login into a full table answers busy too (got %d)" % r.status)
    # nobody was pushed out
    for who in (a, b):
        r = who.inbox()
        check(r.url.startswith("/inbox") and r.page.form("/send") is not None,
              "a person already in still reads their inbox while the table is full", r.url)
        r, _ = who.send("still here")
        check(r.status == 200, "a person already in still sends while the table is full "
              "(answered %d)" % r.status, r.page.text[:500])
    # one leaves; the third gets in with the codename made while it was full
    a.b.get("/exit")
    r = c.login()
    check(r.status == 200 and r.url.startswith("/inbox"),
          "once someone leaves, the codename made while the table was full logs in",
          r.page.text[:500])
    log("full session table: busy (503, Retry-After) for the newcomer, nobody evicted")
    srv.stop_clean()


def test():
    full_table_answers_busy()
    newcomer_survives_a_flood()


if __name__ == "__main__":
    main(test)
