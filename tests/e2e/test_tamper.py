#!/usr/bin/env python3
"""
A server that alters what it stores cannot make a caseworker read something
false or encrypt to the wrong people (issue 2, "Done when" 6):
  - a flipped byte in a stored message: the caseworker's client says the
    item could not be decrypted, and shows none of it;
  - a flipped byte in the stored roster: `refuge sync` refuses it with a
    clear error and `refuge reply` encrypts nothing;
  - a roster deleted by the server: `refuge sync` refuses too.
The tampering is done the way a compromised server would: straight in its
own database, while it runs.
"""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Person, Server, Staff, case_ids, check, log, main


def db(srv):
    return lib.open_db(srv)
import lib  # noqa: E402  (lib.open_db: the database on either backend)


def flip_middle(blob):
    b = bytearray(blob)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def test():
    srv = Server().init().start()
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    person = Person(srv)
    person.new_codename()
    secret = "tamper-test message 7f3a9c"
    resp, _ = person.send(secret)
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])

    # 1. the server flips one byte of the stored message
    con = db(srv)
    rows = con.execute("SELECT seq, data FROM objects WHERE kind = 1").fetchall()
    check(len(rows) == 1 and rows[0][1], "one inline message is stored", repr(rows)[:300])
    seq, data = rows[0]
    con.execute("UPDATE objects SET data = ? WHERE seq = ?", (flip_middle(data), seq))

    alice.run("sync")
    cases = case_ids(alice.json("cases", "--json"))
    check(len(cases) == 1, "one case after sync", repr(cases))
    p = alice.run("show", cases[0], "--json", ok=False)
    check(secret not in p.out, "no part of a tampered message is shown", p.out[:1500])
    check("unreadable" in p.out and "decryption failed" in p.out,
          "the tampered message is reported as not decryptable", p.out[:1500])
    log("a flipped byte in a message: reported as unreadable")

    # 2. the server flips one byte of the roster (e.g. to swap in its own key)
    (raw,) = con.execute("SELECT raw FROM rosters WHERE version = 1").fetchone()
    con.execute("UPDATE rosters SET raw = ? WHERE version = 1", (flip_middle(raw),))
    p = alice.run("sync", ok=False)
    check(p.returncode != 0, "`refuge sync` refuses a tampered roster (status %d)" % p.returncode,
          p.err[-1500:])
    check("roster" in p.err.lower(), "the refusal names the roster", p.err[-1500:])
    p = alice.run("reply", cases[0], "-m", "must not be sent", ok=False)
    check(p.returncode != 0, "`refuge reply` refuses to encrypt to a tampered roster",
          p.err[-1500:])
    n = con.execute("SELECT count(*) FROM objects WHERE kind = 3").fetchone()[0]
    check(n == 0, "no reply was stored under a tampered roster", str(n))
    log("a flipped byte in the roster: sync and reply refuse")

    # 3. the server drops the roster altogether
    con.execute("DELETE FROM rosters")
    p = alice.run("sync", ok=False)
    check(p.returncode != 0, "`refuge sync` refuses when the roster is gone", p.err[-1500:])
    log("a deleted roster: sync refuses")

    # the honest roster back: everything works again
    con.execute("INSERT INTO rosters(version, raw) VALUES (1, ?)", (raw,))
    alice.run("sync")
    alice.run("reply", cases[0], "-m", "honest roster again")
    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
