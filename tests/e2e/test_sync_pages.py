#!/usr/bin/env python3
"""A cold sync over several listing pages, and one cut off between pages.

`refuge sync` lists new objects a page (1,000) at a time; each page is
downloaded, then stored by a writer thread (pages share a transaction)
while the next page is listed and downloaded; the next listing is asked
for while a page downloads (src/client/cmd_sync.c). What a
caseworker must be able to count on, whatever the threads do:

1. Twelve people send about 2,300 messages (three pages). Bob's cold sync
   stores every object once, in order, with the server's exact ciphertext,
   and `refuge cases` lists all twelve cases.
2. Carol syncs through a proxy that cuts the third listing request (and
   every listing after it; the next listing is asked for while a page
   downloads): her sync fails loudly; her cache then holds exactly the
   first two pages (the page being stored when the cut came is stored whole,
   nothing of a later page is), and her next sync, direct, gets exactly the
   rest ("Synced N new objects") and lists the same cases as Bob.
"""
import os
import sqlite3
import threading

from lib import (Person, Server, TamperProxy, approve, cached_object, check, enroll_first_admin,
                 free_port, invite, log, main, object_bytes, open_db)

PEOPLE = 12
EACH = 190  # under a session's 200 messages a day
PAGE = 1000


class Cutter:
    """For lib's TamperProxy: cuts the listing request number .at (1-based,
    0: none) and every listing after it. Only listings: the client asks for
    the next listing while a page downloads (on a connection of its own),
    so cutting every request after it would cut the page before as well,
    depending on which request came first."""

    def __init__(self):
        self.at = 0
        self.listings = 0
        self.lock = threading.Lock()

    def __call__(self, method, path):
        with self.lock:
            if not path.startswith("/api/v1/objects?"):
                return False
            self.listings += 1
            return bool(self.at) and self.listings >= self.at


class AtUrl:
    def __init__(self, url):
        self.url = url


def send_all(srv):
    errors = []

    def one(k):
        try:
            p = Person(srv)
            p.new_codename()
            for i in range(EACH):
                r, _ = p.send("person %d message %d %s" % (k, i, os.urandom(4).hex()))
                if r.status != 200:
                    errors.append((k, i, r.status))
                    return
        except Exception as e:  # reported below, in the test's thread
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(PEOPLE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "every message was sent", errors[:5])


def cache(member):
    con = sqlite3.connect(os.path.join(member.env["REFUGE_HOME"], "cache.db"), timeout=30)
    return con


def cases_listing(member):
    return member.run("cases").out


def test():
    srv = Server().init().start()
    alice = enroll_first_admin(srv, "Alice")
    bob = invite(srv, alice, "Bob")
    approve(alice, bob)
    # Carol reaches the server through a proxy that can cut her connection;
    # on the roster before the people write, like Bob
    proxy = TamperProxy(free_port(), srv.port)
    cutter = proxy.cut = Cutter()
    carol = invite(AtUrl(proxy.url), alice, "Carol")
    approve(alice, carol)
    send_all(srv)
    con = open_db(srv)
    seqs = [r[0] for r in con.execute("SELECT seq FROM objects ORDER BY seq").fetchall()]
    n = len(seqs)
    check(n > 2 * PAGE + 100, "more than two listing pages of objects", n)
    log("%d people sent %d objects" % (PEOPLE, n))

    out = bob.run("sync").out
    check("Synced %d new objects" % n in out, "Bob's cold sync stores every object", out)
    bc = cache(bob)
    got = [r[0] for r in bc.execute("SELECT seq FROM objects ORDER BY seq").fetchall()]
    check(got == seqs, "Bob's cache holds each seq once, in order", (len(got), n))
    for s in got:
        check(cached_object(bob, s) == object_bytes(srv, con, s),
              "object %d is the server's exact ciphertext" % s)
    last = bc.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0]
    check(last == seqs[-1], "Bob's sync position is the last object", (last, seqs[-1]))
    listing = cases_listing(bob)
    check(len([l for l in listing.splitlines() if l.strip()]) >= PEOPLE,
          "Bob's listing shows every case", listing[:2000])
    log("Bob: %d objects in three pages, exact; %d cases listed" % (n, PEOPLE))

    # Carol's proxy cuts her third listing request
    cutter.listings = 0
    cutter.at = 3
    p = carol.run("sync", ok=False)
    check(p.returncode != 0 and "cannot list new objects" in p.err,
          "Carol's sync fails loudly when the connection is cut", p.out + p.err)
    cc = cache(carol)
    held = [r[0] for r in cc.execute("SELECT seq FROM objects ORDER BY seq").fetchall()]
    check(held == seqs[:2 * PAGE],
          "Carol's cache holds exactly the first two pages (the one being stored when the "
          "cut came is stored whole)", (len(held), held[-1:] if held else None))
    last = cc.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0]
    check(last == seqs[2 * PAGE - 1], "her sync position is the end of the second page",
          (last, seqs[2 * PAGE - 1]))
    cc.close()
    log("cut at the third listing: Carol holds pages 1-2 exactly (%d objects)" % len(held))

    cutter.at = 0
    out = carol.run("sync").out
    check("Synced %d new objects" % (n - 2 * PAGE) in out,
          "Carol's next sync gets exactly the rest", out)
    cc = cache(carol)
    held = [r[0] for r in cc.execute("SELECT seq FROM objects ORDER BY seq").fetchall()]
    check(held == seqs, "Carol's cache now holds every object once", (len(held), n))
    cc.close()
    lc, lb = cases_listing(carol), cases_listing(bob)
    check(lc == lb, "Carol lists the same cases as Bob", (lc[:600], lb[:600]))
    log("Carol's next sync: the other %d objects; her listing is Bob's" % (n - 2 * PAGE))
    bc.close()
    con.close()


if __name__ == "__main__":
    main(test)
