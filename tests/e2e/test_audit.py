#!/usr/bin/env python3
"""
The audit log (issue 3, "Done when" 5): the server keeps a hash chain of
staff actions (enroll, token, roster, fetch, reply, event, grant ...);
`refuge audit verify` passes on the honest log and pinpoints each break:
  - one entry's target modified in the server's database -> "modified" at it;
  - one entry deleted -> "deleted" at the entry after the gap;
  - two entries answered in swapped order -> "reordered". (The store lists
    entries ORDER BY id, so a reordering cannot come from its database: the
    server's answer is rewritten by a proxy standing in for a lying server.)
  - a suffix rewritten consistently (hashes recomputed in python, so the
    chain verifies from its start) after the client saw a later anchor ->
    "rewritten"; and the log cut back below the client's anchor -> refused.
After each tampering the honest rows are put back and verify passes again.

Finding 10 of the trust review (audit version 2): every caseworker's entry
carries the Ed25519-signed API request behind it. A compromised server that
appends invented entries after the clients' anchors, with a correct hash
chain (written into the SQLite file while the server is stopped), is caught:
  - an entry in Alice's name with no signed request -> "unsigned";
  - Alice's genuine request (her reply) behind an entry with another target
    -> "forged"; the same request behind a second entry (a replay) -> "forged";
    Bob's entry re-attributed to Alice -> "forged";
and removing the invented entries makes the honest log verify again.
"""
import json
import os
import re
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Person, Server, TamperProxy, audit_hash, case_ids, check, free_port, log, main,
                 make_team, open_db, require_commands)

COLS = "id, day, actor, action, target, prev, hash, request"


def rows(con):
    return con.execute("SELECT %s FROM audit ORDER BY id" % COLS).fetchall()


def put_rows(con, rs):
    con.execute("BEGIN IMMEDIATE")
    con.execute("DELETE FROM audit")
    for r in rs:
        con.execute("INSERT INTO audit(%s) VALUES (?,?,?,?,?,?,?,?)" % COLS, r)
    con.execute("COMMIT")


def rehash(rs, start_id, change):
    """Entries with id >= start_id rewritten: change(row) -> row, then every
    hash and prev from there recomputed so the chain is consistent."""
    out, prev = [], None
    for r in rs:
        eid, day, actor, action, target, p, h, req = r
        if eid >= start_id:
            if eid == start_id:
                eid, day, actor, action, target = change((eid, day, actor, action, target))
            p = prev if prev is not None else p
            h = audit_hash(eid, day, actor, action, target, p, req)
        out.append((eid, day, actor, action, target, p, h, req))
        prev = h
    return out


def verify(member, expect_ok, label):
    p = member.run("audit", "verify", ok=False)
    text = (p.out + p.err).strip()
    if expect_ok:
        check(p.returncode == 0, "(%s) %s's `refuge audit verify` passes" % (label, member.name),
              text[-1500:])
        m = re.search(r"audit log verified: (\d+) entries", text)
        check(m, "(%s) verify says \"audit log verified: N entries\"" % label, text[-1500:])
        return int(m.group(1)), text
    check(p.returncode == 1, "(%s) %s's `refuge audit verify` exits 1 (got %d)" %
          (label, member.name, p.returncode), text[-1500:])
    m = re.search(r"audit log broken at entry (\d+): (modified|deleted|reordered|rewritten)", text)
    check(m, "(%s) verify says \"audit log broken at entry ID: KIND\"" % label, text[-1500:])
    pj = member.run("audit", "verify", "--json", ok=False)
    try:
        j = json.loads(pj.out)
    except ValueError:
        j = None
    check(isinstance(j, dict) and j.get("ok") is False and j.get("entry") == int(m.group(1))
          and j.get("break") == m.group(2),
          "(%s) `refuge audit verify --json` says the same" % label, pj.out[:800] + pj.err[-500:])
    return (int(m.group(1)), m.group(2)), text


def vector_check():
    """docs/protocol.md 9.2: the test's hash is the documented one."""
    admin = bytes.fromhex("ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1")
    h1 = audit_hash(1, 20000, None, "enroll", "", b"\0" * 32)
    h2 = audit_hash(2, 20000, admin, "roster", "2", h1)
    h3 = audit_hash(3, 20001, admin, "fetch", "17", h2)
    check([h.hex()[:16] for h in (h1, h2, h3)] ==
          ["550f5cefaebdfe70", "415176cadd2fb564", "974a06912c8b753b"],
          "the test's audit hash matches the vector in docs/protocol.md 9.2")


def verify_signed(member, label):
    """The honest log verifies and says how many entries are signed."""
    n, text = verify(member, True, label)
    m = re.search(r"(\d+) signed by the caseworker named", text)
    check(m and int(m.group(1)) > 0, "(%s) verify counts the entries signed by their caseworker"
          % label, text[-800:])
    return n, text


def invented_entries(srv, con, alice, bob, case):
    """A compromised server appends entries in Alice's name after every
    client's anchor, with the chain recomputed, while it is stopped."""
    verify_signed(alice, "signed, before")
    verify_signed(bob, "signed, before")
    pks = dict(con.execute("SELECT name, sign_pk FROM staff").fetchall())
    alice_pk, bob_pk = bytes(pks["Alice"]), bytes(pks["Bob"])
    honest = rows(con)
    mine = [r for r in honest if bytes(r[2]) == alice_pk and r[7] is not None]
    replies = [r for r in mine if r[3] == "reply"]
    bobs = [r for r in honest if bytes(r[2]) == bob_pk and r[7] is not None]
    check(replies and bobs, "Alice's reply and Bob's actions are in the log with their requests",
          [(r[3], r[4]) for r in honest])

    def append(make):
        srv.stop_clean()
        last = rows(con)[-1]
        eid, day, actor, action, target, req = make(last)
        h = audit_hash(eid, day, actor, action, target, bytes(last[6]), req)
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO audit(%s) VALUES (?,?,?,?,?,?,?,?)" % COLS,
                    (eid, day, actor, action, target, bytes(last[6]), h, req))
        con.execute("COMMIT")
        srv.restart()
        return eid

    def caught(label, want_kind, make):
        eid = append(make)
        for member in (alice, bob):
            p = member.run("audit", "verify", ok=False)
            text = (p.out + p.err).strip()
            check(p.returncode == 1, "(%s) %s's `refuge audit verify` fails (exit %d)" %
                  (label, member.name, p.returncode), text[-1500:])
            check(("audit log broken at entry %d: %s" % (eid, want_kind)) in text,
                  "(%s) %s's verify reports entry %d as %s" % (label, member.name, eid, want_kind),
                  text[-1500:])
            check("AUDIT CHECK FAILED" in p.err, "(%s) the refusal is loud" % label, p.err[-800:])
        log("(%s) %s" % (label, p.out.strip().splitlines()[0]))
        # the server is put back as it was: the honest log verifies again
        srv.stop_clean()
        con.execute("DELETE FROM audit WHERE id >= ?", (eid,))
        con.commit()
        srv.restart()
        verify_signed(alice, label + ", removed")

    seq = con.execute("SELECT max(seq) FROM objects").fetchone()[0]
    caught("invented, unsigned, in Alice's name", "unsigned",
           lambda last: (last[0] + 1, last[1], alice_pk, "fetch", str(seq), None))
    r = replies[0]
    caught("Alice's signed reply request behind another case", "forged",
           lambda last: (last[0] + 1, r[1], alice_pk, "reply", "zzzzzzzzzz", bytes(r[7])))
    caught("Alice's signed reply request replayed", "forged",
           lambda last: (last[0] + 1, r[1], alice_pk, "reply", r[4], bytes(r[7])))
    b = bobs[-1]
    caught("Bob's entry re-attributed to Alice", "forged",
           lambda last: (last[0] + 1, b[1], alice_pk, b[3], b[4], bytes(b[7])))


def test():
    require_commands("staff", "audit", "note", "rewrap")
    vector_check()
    srv = Server().init().start()
    con = open_db(srv)
    alice, bob = make_team(srv, ("Alice", "Bob"))
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("audit test " + secrets.token_hex(4))
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])
    alice.run("sync")
    case = case_ids(alice.json("cases", "--json"))[0]
    alice.run("reply", case, "-m", "we read you " + secrets.token_hex(3))
    alice.run("note", case, "audit note")
    bob.run("sync")
    bob.run("rewrap")

    # the server's chain is the documented one: our python hash reproduces it
    honest = rows(con)
    check(len(honest) >= 6, "the audit log has entries for the team's actions", honest)
    prev = b"\0" * 32
    for eid, day, actor, action, target, p, h, req in honest:
        check(bytes(p) == prev, "audit entry %d links to the previous entry's hash" % eid)
        check(req is not None or actor == b"\0" * 32 or bytes(actor) == b"\0" * 32,
              "audit entry %d (%s by a caseworker) carries the signed request behind it" %
              (eid, action))
        want = audit_hash(eid, day, actor, action, target, p, req)
        check(want == bytes(h), "audit entry %d's hash is BLAKE2b-256 of its fields as "
              "src/lib/audit.h says" % eid, (action, target, want.hex(), bytes(h).hex()))
        prev = bytes(h)
    actions = {r[3] for r in honest}
    for a in ("enroll", "token", "roster", "fetch", "reply", "event"):
        check(a in actions, "the audit log records a %r action" % a, sorted(actions))
    pks = dict(con.execute("SELECT name, sign_pk FROM staff").fetchall())
    replies = [r for r in honest if r[3] == "reply"]
    check(replies and bytes(replies[0][2]) == bytes(pks["Alice"]) and replies[0][4] == case,
          "the reply entry names Alice's key and the case", replies)
    log("%d honest entries; actions %s" % (len(honest), sorted(actions)))

    n, text = verify(alice, True, "honest")
    check(n >= len(honest), "verify counts every entry (%d >= %d)" % (n, len(honest)), text)
    log("honest: %s" % text.splitlines()[-1])

    # Bob has never verified (no anchor): each tampering is found from the start
    honest = rows(con)
    k = honest[len(honest) // 2][0]

    def tampered(label, rs, want_kind, want_entries):
        put_rows(con, rs)
        (entry, kind), text = verify(bob, False, label)
        check(kind == want_kind and entry in want_entries,
              "(%s) verify reports %s at entry %s (said entry %d: %s)" %
              (label, want_kind, "/".join(map(str, want_entries)), entry, kind), text)
        log("(%s) %s" % (label, text.splitlines()[-1]))
        put_rows(con, honest)

    mod = [r if r[0] != k else r[:4] + ("forged-target",) + r[5:] for r in honest]
    tampered("modified target", mod, "modified", (k,))
    mod = [r if r[0] != k else (r[0], r[1], b"\x01" * 32) + r[3:] for r in honest]
    tampered("modified actor", mod, "modified", (k,))
    tampered("deleted entry", [r for r in honest if r[0] != k], "deleted", (k + 1,))
    # deleting the last entries cannot be seen without an anchor; Bob has none yet

    # reordering: the log is answered with entries k and k+1 swapped
    old_port = srv.port
    srv.stop_clean()
    srv.port = free_port()
    srv.restart()
    proxy = TamperProxy(old_port, srv.port)

    def swap(method, path, body):
        if method != "GET" or not path.startswith("/api/v1/audit"):
            return None
        j = json.loads(body)
        es = j.get("entries", [])
        ids = [e.get("id") for e in es]
        if k in ids and k + 1 in ids:
            i = ids.index(k)
            es[i], es[i + 1] = es[i + 1], es[i]
            return json.dumps(j).encode()
        return None
    proxy.rewrite = swap
    (entry, kind), text = verify(bob, False, "reordered")
    check(proxy.rewritten > 0, "the proxy swapped two entries in the answer", proxy.rewritten)
    check(kind == "reordered" and entry in (k, k + 1),
          "(reordered) verify reports reordered at entry %d or %d (said %d: %s)" %
          (k, k + 1, entry, kind), text)
    log("(reordered) %s" % text.splitlines()[-1])
    proxy.rewrite = None

    # the honest log again: both pass; Bob now holds an anchor too
    verify(bob, True, "honest again")
    anchor_bob = rows(con)[-1][0]
    verify(alice, True, "honest again")
    anchor = rows(con)[-1][0]
    if anchor != anchor_bob:
        log("note: `refuge audit verify` added audit entries (%d -> %d)" % (anchor_bob, anchor))
    # more actions after the anchor
    alice.run("note", case, "after the anchor")
    alice.run("reply", case, "-m", "after the anchor")
    honest = rows(con)
    check(honest[-1][0] > anchor, "new entries after the anchor", (anchor, honest[-1][0]))

    # a consistent rewrite of history up to (and past) the anchor
    j = max(1, anchor_bob - 2)
    rw = rehash(honest, j, lambda e: e[:4] + ("rewritten-target",))
    # the rewritten log is a valid chain from its start
    prev = b"\0" * 32
    for r in rw:
        check(bytes(r[5]) == prev and audit_hash(*r[:6], r[7]) == bytes(r[6]),
              "the rewritten log is internally consistent (entry %d)" % r[0])
        prev = bytes(r[6])
    tampered("rewritten from entry %d, anchor %d" % (j, anchor_bob), rw, "rewritten",
             tuple(range(anchor_bob, anchor + 1)))
    # with Alice too (her anchor is the same entry)
    put_rows(con, rw)
    (entry, kind), text = verify(alice, False, "rewritten, Alice")
    check(kind == "rewritten", "(rewritten) Alice's verify reports rewritten", text)
    put_rows(con, honest)

    # the log cut back below the anchor (the server hides recent actions)
    put_rows(con, [r for r in honest if r[0] < anchor])
    p = bob.run("audit", "verify", ok=False)
    check(p.returncode == 1, "(truncated below the anchor) Bob's `refuge audit verify` refuses "
          "a log shorter than the one he saw (exit %d)" % p.returncode, (p.out + p.err)[-800:])
    log("(truncated) %s" % (p.out + p.err).strip().splitlines()[-1:])
    put_rows(con, honest)

    verify(bob, True, "honest at the end")
    verify(alice, True, "honest at the end")
    invented_entries(srv, con, alice, bob, case)
    proxy.close()
    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
