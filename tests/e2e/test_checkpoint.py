#!/usr/bin/env python3
"""Signed checkpoints (docs/protocol.md 13, issue 10 part C).

1. A team: Alice (admin), Bob (member), Carol (admin); two cases with events
   by Alice. Alice's `refuge sync` posts a checkpoint of every event (the
   server keeps it in the setting team.checkpoint: its last_seq is the last
   event's, its count the number of events, its signer Alice's key);
   `refuge audit verify` accepts the "checkpoint" entry. Bob's cold sync uses
   it ("N events verified by Alice's checkpoint") and digests the same as a
   cold sync of the same home without a checkpoint (cases and every case's
   state compared). A server that copies an event of one case over an event
   of the other below the checkpoint makes Bob's cold sync fall back loudly
   (naming Alice) and still refuse that event. Carol posts a later
   checkpoint, is demoted (removed, approved again as a member): a cold sync
   refuses her checkpoint loudly and verifies every signature.
2. The routes, with keys made here (pure-Python Ed25519 from lib.py): GET is
   404 JSON before any; a member's own checkpoint is refused 403; a
   checkpoint signed by another key 422 or 403; an admin's is kept (GET
   gives back its bytes), the same or an older last_seq is refused 409 with
   a JSON error, a later one replaces it; garbage 400.
"""
import base64
import hashlib
import http.client
import json
import os
import shutil
import struct
import time

import lib
from lib import (Member, Person, Server, approve, case_ids, check, ed25519_public, ed25519_sign,
                 encode_roster, enroll_first_admin, invite, log, main, open_db)

SETTING = "team.checkpoint"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def parse_ckpt(raw):
    check(len(raw) == 153 and raw[:5] == b"RFCP\x01", "a 153-byte RFCP checkpoint", raw[:8])
    rv, last, count = struct.unpack(">IQQ", raw[5:25])
    return {"roster": rv, "last_seq": last, "count": count, "chain": raw[25:57],
            "signer": raw[57:89]}


def stored_ckpt(con):
    rows = con.execute("SELECT value FROM settings WHERE key = ?", (SETTING,)).fetchall()
    return bytes(rows[0][0]) if rows else None


def clone_home(member, tag):
    """A second home of the same caseworker (keys, config, cache as it is)."""
    m = Member(member.name)
    shutil.rmtree(m.home)
    shutil.copytree(member.home, m.home)
    m.env = dict(member.env)
    m.env["REFUGE_HOME"] = os.path.join(m.home, "home")
    m.env["REFUGE_PASSPHRASE_FILE"] = os.path.join(m.home, "passphrase")
    m.fp = member.fp
    return m


def digest_view(member, cases):
    shown = {}
    for c in cases:
        s = member.json("show", c, "--json")
        shown[c] = (s.get("state"), [it for it in s.get("items", [])])
    return member.json("cases", "--json"), shown


def cli_part():
    srv = Server().init().start()
    alice = enroll_first_admin(srv, "Alice")
    bob = invite(srv, alice, "Bob")
    approve(alice, bob)
    carol = invite(srv, alice, "Carol", as_admin=True)
    approve(alice, carol, as_admin=True)
    for i in range(2):
        p = Person(srv)
        p.new_codename()
        r, _ = p.send("checkpoint test person %d" % i)
        check(r.status == 200, "person %d's message is sent" % i)
    alice.run("sync")
    cases = sorted(case_ids(alice.json("cases", "--json")))
    check(len(cases) == 2, "two cases", cases)
    for c in cases:
        for i in range(3):
            alice.run("note", c, "note %d on %s" % (i, c))
        alice.run("stage", c, "planning")
    # pristine copies of Bob's home: nothing synced since his approval
    bob_plain, bob_tamper, bob_demoted = (clone_home(bob, t) for t in ("a", "b", "c"))

    p = alice.run("sync")
    check("Posted a checkpoint of 8 events" in p.out, "Alice's sync posts a checkpoint", p.out)
    con = open_db(srv)
    raw = stored_ckpt(con)
    check(raw is not None, "the server keeps it in %s" % SETTING)
    ck = parse_ckpt(raw)
    events = con.execute("SELECT seq FROM objects WHERE kind = 4 ORDER BY seq").fetchall()
    events = [r[0] for r in events]
    check(ck["count"] == len(events) == 8 and ck["last_seq"] == events[-1],
          "it covers every event (count, last seq)", (ck, events))
    p = alice.run("sync")
    check("Posted" not in p.out, "nothing new: no second checkpoint", p.out)
    alice.run("audit", "verify")
    log("Alice posted a checkpoint of %d events up to #%d" % (ck["count"], ck["last_seq"]))

    # Bob's cold sync uses it, and digests the same as without it
    p = bob.run("sync")
    check("8 events verified by Alice's checkpoint" in p.out,
          "Bob's cold sync says it used Alice's checkpoint", p.out + p.err)
    check("WARNING" not in p.err, "no warning", p.err)
    with_ck = digest_view(bob, cases)
    con.execute("DELETE FROM settings WHERE key = ?", (SETTING,))
    p = bob_plain.run("sync")
    check("verified by" not in p.out, "without a checkpoint: every signature verified", p.out)
    without = digest_view(bob_plain, cases)
    check(with_ck == without, "the same cases and states with and without the checkpoint",
          (with_ck, without))
    con.execute("INSERT INTO settings(key, value) VALUES (?, ?)", (SETTING, raw))
    log("Bob's cold sync: 8 events verified by Alice's checkpoint, the same digest")

    # a server that moves an event of case 1 over one of case 0, below it
    rows = con.execute("SELECT o.seq, s.case_id, o.data FROM objects o JOIN sources s"
                       " ON s.id = o.source_id WHERE o.kind = 4 ORDER BY o.seq").fetchall()
    victim = next(r for r in rows if r[1] == cases[0])
    donor = next(r for r in rows if r[1] == cases[1])
    check(victim[0] < ck["last_seq"], "the victim is below the checkpoint")
    con.execute("UPDATE objects SET data = ?, size = ? WHERE seq = ?",
                (bytes(donor[2]), len(bytes(donor[2])), victim[0]))
    p = bob_tamper.run("sync")
    check("the checkpoint signed by Alice does not match the events" in p.err and
          "every signature verified instead" in p.err,
          "Bob's sync falls back loudly, naming Alice", p.err)
    check("verified by Alice's checkpoint" not in p.out, "and does not claim it", p.out)
    check("Ignored 1 unverified event" in p.out, "the moved event is refused", p.out)
    shown = bob_tamper.json("show", cases[0], "--json")
    check("moved from another case" in json.dumps(shown), "`refuge show` says why",
          json.dumps(shown)[:2000])
    con.execute("UPDATE objects SET data = ?, size = ? WHERE seq = ?",
                (bytes(victim[2]), len(bytes(victim[2])), victim[0]))
    log("a moved event below the checkpoint: fallback, the event refused")

    # Carol posts a later one, then is demoted: it is not used
    alice.run("note", cases[0], "after Alice's checkpoint")
    p = carol.run("sync")
    check("8 events verified by Alice's checkpoint" in p.out, "Carol's cold sync uses it too",
          p.out)
    check("Posted a checkpoint of 9 events" in p.out, "Carol posts a later one", p.out)
    carol_raw = stored_ckpt(con)
    check(parse_ckpt(carol_raw)["last_seq"] > ck["last_seq"], "the server keeps Carol's")
    alice.run("staff", "remove", "Carol")
    approve(alice, carol)
    p = alice.run("sync")
    check("Posted" not in p.out and stored_ckpt(con) == carol_raw,
          "Alice's own (not later) is refused 409 quietly; Carol's stays", p.out + p.err)
    p = bob_demoted.run("sync")
    check("checkpoint is refused" in p.err and "not an admin" in p.err,
          "a checkpoint by a demoted admin is refused loudly", p.err)
    check("verified by" not in p.out, "and not used", p.out)
    check(digest_view(bob_demoted, cases)[1][cases[1]] == without[1][cases[1]],
          "every signature verified: the same state")
    log("Carol's checkpoint after her demotion: refused, every signature verified")
    con.close()
    srv.stop_clean()


# ---- part 2: the routes, with keys made here ----

def signed(srv, seed, method, path, body=b""):
    ts, nonce = str(int(time.time())), b64u(os.urandom(16))
    bh = hashlib.blake2b(body, digest_size=32).hexdigest()
    msg = "refuge-api-v1\n%s\n%s\n%s\n%s\n%s" % (method, path, ts, nonce, bh)
    auth = "Refuge key=%s, ts=%s, nonce=%s, body=%s, sig=%s" % (
        b64u(ed25519_public(seed)), ts, nonce, bh, b64u(ed25519_sign(seed, msg.encode())))
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    h = {"Authorization": auth}
    if body:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=body or None, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        j = json.loads(data)
    except ValueError:
        j = None
    return r.status, j


def make_ckpt(seed, roster, last, count, chain=b"\x11" * 32):
    head = b"RFCP\x01" + struct.pack(">IQQ", roster, last, count) + chain + ed25519_public(seed)
    return head + ed25519_sign(seed, b"refuge-checkpoint-v1" + head)


def post(srv, seed, raw):
    return signed(srv, seed, "POST", "/api/v1/checkpoint",
                  json.dumps({"checkpoint": b64u(raw)}).encode())


def api_part():
    srv = Server().init().start()
    a, m = os.urandom(32), os.urandom(32)
    abox, mbox = os.urandom(32), os.urandom(32)
    r1 = encode_roster(1, b"\0" * 32, [{"name": "Admin", "role": 1, "box_pk": abox,
                                        "sign_pk": ed25519_public(a)}], signer_seed=a)
    st, j = signed(srv, a, "POST", "/api/v1/enroll", json.dumps(
        {"token": srv.token, "name": "Admin", "sign_pk": b64u(ed25519_public(a)),
         "box_pk": b64u(abox), "roster": b64u(r1)}).encode())
    check(st == 200, "the test's admin key enrolls", j)
    st, j = signed(srv, a, "POST", "/api/v1/tokens", b'{"role":"member"}')
    check(st == 200, "a member token", j)
    st, j = signed(srv, m, "POST", "/api/v1/enroll", json.dumps(
        {"token": j["token"], "name": "Member", "sign_pk": b64u(ed25519_public(m)),
         "box_pk": b64u(mbox)}).encode())
    check(st == 200, "the member key enrolls", j)
    r2 = encode_roster(2, hashlib.blake2b(r1, digest_size=32).digest(),
                       [{"name": "Admin", "role": 1, "box_pk": abox, "sign_pk": ed25519_public(a)},
                        {"name": "Member", "role": 0, "box_pk": mbox,
                         "sign_pk": ed25519_public(m)}], signer_seed=a)
    st, j = signed(srv, a, "POST", "/api/v1/roster", json.dumps({"roster": b64u(r2)}).encode())
    check(st == 200, "roster 2 with the member", j)

    st, j = signed(srv, m, "GET", "/api/v1/checkpoint")
    check(st == 404 and j and "error" in json.dumps(j), "GET before any: 404 JSON", (st, j))
    st, j = post(srv, m, make_ckpt(m, 2, 10, 3))
    check(st == 403 and j, "a member cannot post a checkpoint: 403 JSON", (st, j))
    st, j = post(srv, a, make_ckpt(m, 2, 10, 3))
    check(st in (403, 422) and j, "an admin cannot post a member's checkpoint", (st, j))
    bad = bytearray(make_ckpt(a, 2, 10, 3))
    bad[30] ^= 1
    st, j = post(srv, a, bytes(bad))
    check(st == 422 and j, "a bad signature: 422", (st, j))
    st, j = signed(srv, a, "POST", "/api/v1/checkpoint", b'{"checkpoint":"AAAA"}')
    check(st == 400 and j, "garbage: 400", (st, j))
    st, j = post(srv, a, make_ckpt(a, 3, 10, 3))
    check(st == 422 and j, "a roster version not published: 422", (st, j))

    first = make_ckpt(a, 2, 10, 3)
    st, j = post(srv, a, first)
    check(st == 200, "the admin's checkpoint is kept", (st, j))
    st, j = signed(srv, m, "GET", "/api/v1/checkpoint")
    got = base64.urlsafe_b64decode(j["checkpoint"] + "==") if st == 200 else None
    check(got == first, "GET gives it back byte for byte", (st, j))
    for last, what in ((10, "the same"), (5, "an older")):
        st, j = post(srv, a, make_ckpt(a, 2, last, 3))
        check(st == 409 and j and "error" in json.dumps(j),
              "%s last_seq is refused 409 with a JSON error" % what, (st, j))
    later = make_ckpt(a, 1, 11, 4)
    st, j = post(srv, a, later)
    check(st == 200, "a later one replaces it", (st, j))
    st, j = signed(srv, m, "GET", "/api/v1/checkpoint")
    check(st == 200 and base64.urlsafe_b64decode(j["checkpoint"] + "==") == later,
          "GET gives the later one", (st, j))
    st, j = signed(srv, m, "GET", "/api/v1/audit?after=0&limit=100")
    acts = [e.get("action") for e in (j or {}).get("entries", [])]
    check(acts.count("checkpoint") == 2, "one audit entry per checkpoint kept", acts)
    log("the routes: 404, 403, 422, 400, 200, 409, audit")
    srv.stop_clean()


def test():
    api_part()
    cli_part()


if __name__ == "__main__":
    main(test)
