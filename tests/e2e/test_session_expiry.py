#!/usr/bin/env python3
"""
A person's key dies with their session, even when they never press the quick
exit (issue 13, finding 4).

A person gets a codename, is logged in, reads their inbox, logs in again
from another browser, and simply walks away. The test knows their X25519
secret key: it derives it from the codename like the server does
(codename_kdf.py: Argon2id with the instance's parameters, read from the
database), and proves the derivation right by the public key the server
stored for them. While the sessions live, that key is found in the running
server's memory (/proc/PID/mem: so the search can see it); once they have
been idle past the session timeout (serve --session-idle) and one reaper
period, the key and the codename are nowhere in the server's memory, though
no request ever brought their tokens back. Only then does the test knock
with the old cookie, which finds nothing.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import codename_kdf
from lib import Person, Server, check, encodings, enroll_first_admin, log, main
import lib  # noqa: E402  (lib.open_db: the database on either backend)
from test_canary import scan_memory

IDLE_S = 20  # serve --session-idle; the reaper then runs every 2 s


def stored_pk(srv, lookup_id):
    con = lib.open_db(srv, readonly=True)
    try:
        row = con.execute("SELECT pk FROM sources WHERE lookup_id = ?", (lookup_id,)).fetchone()
    finally:
        con.close()
    return bytes(row[0]) if row else None


def test():
    if os.environ.get("REFUGE_TEST_SESSION_KEY") == "1":
        raise lib.Skip("sessions in the database (--session-key): a person's key is in memory "
                       "only during a request, so there is no live copy for this search to "
                       "find; row expiry is tested by tests/unit/sesskey_test.c")
    codename_kdf.self_check()
    srv = Server()
    srv.init()
    srv.start(["--session-idle", str(IDLE_S)])
    enroll_first_admin(srv)  # codenames are handed out once the line is open

    p = Person(srv, lang="en")
    p.new_codename()          # POST /new logs the newcomer in: session one
    first = p.b
    check("s" in first.cookies, "POST /new gave a session cookie", first.cookies)
    p.inbox()
    r = p.login()             # a fresh browser, the codename typed in: session two
    check(r.status == 200 and "s" in p.b.cookies, "the codename logs in", r.text[:500])
    second = p.b

    ops, mem, salt, lookup_key = codename_kdf.instance_kdf(srv.data)
    t0 = time.time()
    lookup_id, pk, sk = codename_kdf.derive(p.codename, salt, lookup_key, ops, mem)
    log("derived the person's keys from the codename in %.1fs" % (time.time() - t0))
    check(stored_pk(srv, lookup_id) == pk,
          "the key derived from the codename is the one the server stored for the person")

    needles = [("secret key", "utf-8", sk)]
    needles += [("codename", label, pat) for label, pat in encodings(p.codename)]
    needles += [("codename words", "utf-8", w.encode()) for w in
                (" ".join(p.codename.split()[i:i + 3]) for i in range(5))]

    # both sessions are live (touched just now): the search must see the key
    for b in (first, second):
        r = b.get("/inbox")
        check(r.status == 200 and "/login" not in r.url, "the session is live", r.url)
    t0 = time.time()
    hits, err = scan_memory(srv.pid, needles)
    if err:
        from lib import Skip
        raise Skip("cannot read the server's memory: %s" % err)
    scan_s = time.time() - t0
    check(scan_s < IDLE_S / 2, "the memory scan takes %.1fs, too long for a %d s session "
          "timeout (the control below would be meaningless)" % (scan_s, IDLE_S))
    check(any(h.startswith("secret key") for h in hits),
          "while the person is logged in, their secret key is in the server's memory "
          "(else the search cannot see it and proves nothing)", hits)
    log("live sessions: the secret key is found in memory (%.1fs scan)" % scan_s)

    # the person walks away: no request, no quick exit
    wait = IDLE_S + 2 * 2 + 1
    log("walking away for %d s (idle timeout %d s, reaper every 2 s)" % (wait, IDLE_S))
    time.sleep(wait)
    hits, err = scan_memory(srv.pid, needles)
    check(err is None, "the server's memory can be read", err)
    key = sorted({h for h in hits if h.startswith("secret key")})
    check(not key, "the secret key of a person who walked away is still in the server's "
          "memory after the session expired", key)
    cn = sorted({h for h in hits if h.startswith("codename")})
    check(not cn, "the codename of a person who walked away is still in the server's memory",
          cn)
    log("after expiry and one reaper period: no secret key, no codename in memory")

    # only now does the old cookie come back: it finds nothing
    for b in (first, second):
        r = b.get("/inbox")
        check("/login" in r.url, "an expired session's cookie no longer opens the inbox", r.url)
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
