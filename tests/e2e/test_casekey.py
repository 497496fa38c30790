#!/usr/bin/env python3
"""
Case keys and events version 2 (docs/protocol.md section 12), end to end:

  - a new instance is format 2: Alice's and Bob's changes are stored as RFE2
    events, with one CASEKEY object (kind 9) for the case, sealed to exactly
    the roster; Bob and Carol read Alice's events;
  - Alice removes Carol: the next change makes a new case key, not sealed to
    Carol; Carol holds no key with the new event's key id (she cannot read
    it) and still reads the old ones; Bob reads the new one;
  - Dave, approved later, cannot read the old v2 events until Alice runs
    `refuge rewrap` (which grants the CASEKEY objects), then reads them all;
  - a CASEKEY sealed to the roster but signed by a key on no roster (put in
    the store as a compromised server would) is never written under: Bob's
    next event goes under a key he made himself, and his client marks the
    forged key refused;
  - the server refuses a CASEKEY not sealed to exactly the roster, and RFE2
    bodies of impossible size or version;
  - `refuge team event-format`: members see it, only an admin sets it; format
    1 writes envelopes again; an instance without the setting is format 1;
  - offline: a key made while the server is down waits in the outbox with its
    event and is posted first; a queued v2 event whose key names a roster
    older than the latest is sealed again under a new key for the latest
    (read by a member approved meanwhile, without a rewrap).
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (BIN, Person, Server, approve, case_ids, check, enroll_first_admin,
                 envelope_header, invite, json_strings, keyid, log, main, open_db,
                 require_commands, restart_same_port)

TOOL = os.path.join(os.path.dirname(os.path.abspath(BIN)), "tests", "unit", "casekey_tool")


def case_objects(con, case):
    """[(seq, kind, bytes)] of the case's objects, in order."""
    rows = con.execute("SELECT o.seq, o.kind, o.data FROM objects o JOIN sources s ON"
                       " s.id = o.source_id WHERE s.case_id = ? ORDER BY o.seq", (case,)).fetchall()
    return [(r[0], r[1], bytes(r[2]) if r[2] is not None else b"") for r in rows]


def box_keyids(con):
    return {name: keyid(box) for name, box in
            con.execute("SELECT name, box_pk FROM staff").fetchall()}


def box_hex(con, names):
    rows = dict(con.execute("SELECT name, box_pk FROM staff").fetchall())
    return [bytes(rows[n]).hex() for n in names]


def shown_text(member, case):
    p = member.run("show", case, "--json", ok=False)
    try:
        return json.loads(p.out)
    except ValueError:
        return {"raw": p.out + p.err}


def reads(member, case, text):
    return text in json_strings(shown_text(member, case))


def event_count(member, case):
    return len([it for it in shown_text(member, case).get("items", [])
                if isinstance(it, dict) and it.get("kind") == "event"])


def cache_keys(member):
    """The (key id hex, verified) rows of a member's local casekeys table."""
    con = sqlite3.connect(os.path.join(member.env["REFUGE_HOME"], "cache.db"))
    try:
        return [(bytes(r[0]).hex(), r[1]) for r in
                con.execute("SELECT keyid, verified FROM casekeys").fetchall()]
    finally:
        con.close()


def api(srv, member, method, path, body):
    """A raw request signed with member's key (casekey_tool sign)."""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(body)
        bodyfile = f.name
    try:
        p = subprocess.run([TOOL, "sign", os.path.join(member.env["REFUGE_HOME"], "key.rfk"),
                            member.passfile, method, path, bodyfile],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.unlink(bodyfile)
    check(p.returncode == 0, "casekey_tool sign", p.stderr.decode()[-800:])
    req = urllib.request.Request(srv.url + path, data=body if method == "POST" else None,
                                 method=method)
    req.add_header("Authorization", p.stdout.decode().strip())
    req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def forge(case, roster, boxes):
    p = subprocess.run([TOOL, "forge", case, str(roster)] + boxes, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 0, "casekey_tool forge", p.stderr.decode()[-800:])
    env_hex, kid = p.stdout.decode().split()
    return bytes.fromhex(env_hex), kid


def test():
    require_commands("staff", "note", "tag", "rewrap", "team")
    check(os.access(TOOL, os.X_OK), "the test helper is built", TOOL)
    srv = Server().init().start()
    con = open_db(srv)
    alice = enroll_first_admin(srv, "Alice")
    bob = invite(srv, alice, "Bob")
    approve(alice, bob)
    carol = invite(srv, alice, "Carol")
    approve(alice, carol)
    for m in (alice, bob, carol):
        m.run("sync")
    p = bob.run("team", "event-format")
    check("Event format: 2" in p.out, "a new instance is format 2, members see it", p.out)
    row = con.execute("SELECT value FROM settings WHERE key = 'team.event_format'").fetchone()
    check(row is not None and bytes(row[0]) == b"2",
          "`server init` stored team.event_format as the ASCII digit 2", row)
    p = bob.refused("team", "event-format", "1")
    log("a member cannot set the format: %s" % (p.out + p.err).strip()[:200])

    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("a message to make a case")
    check(resp.status == 200, "POST /send answered %d" % resp.status)
    for m in (alice, bob, carol):
        m.run("sync")
    case = case_ids(alice.json("cases", "--json"))[0]

    # ---- format 2: RFE2 events and one CASEKEY per case ----
    text1 = "first note under a case key"
    alice.run("note", case, text1)
    bob.run("sync")
    bob.run("tag", case, "urgent")
    objs = case_objects(con, case)
    keys = [o for o in objs if o[1] == 9]
    events = [o for o in objs if o[1] == 4]
    check(len(keys) == 1, "one CASEKEY object for the case after two writers", [o[:2] for o in objs])
    check(len(events) == 2 and all(o[2][:4] == b"RFE2" for o in events),
          "both events are stored as RFE2", [o[2][:4] for o in events])
    check(len({o[2][4:12] for o in events}) == 1, "both events under the one case key")
    kid = box_keyids(con)
    k1, ids = envelope_header(keys[0][2])
    check(k1 == 9 and sorted(ids) == sorted([kid["Alice"], kid["Bob"], kid["Carol"]]),
          "the CASEKEY is sealed to exactly the roster", (k1, ids))
    for m in (alice, bob, carol):
        m.run("sync")
        check(reads(m, case, text1), "%s reads Alice's v2 note" % m.name, shown_text(m, case))
        st = m.state(case)
        check("urgent" in (st.get("tags") or []), "%s sees Bob's v2 tag" % m.name, st)
    log("format 2: RFE2 events, one CASEKEY sealed to the roster, read by every member")

    # ---- removal: a new key Carol never gets ----
    alice.run("staff", "remove", "Carol")
    text2 = "written after Carol was removed"
    alice.run("note", case, text2)
    objs = case_objects(con, case)
    keys = [o for o in objs if o[1] == 9]
    check(len(keys) == 2, "the first change after the removal makes a new case key", len(keys))
    _, ids = envelope_header(keys[1][2])
    check(sorted(ids) == sorted([kid["Alice"], kid["Bob"]]),
          "the new CASEKEY is sealed to Alice and Bob only", ids)
    new_ev = [o for o in objs if o[1] == 4][-1]
    held = [k for k, _ in cache_keys(carol)]
    check(new_ev[2][4:12].hex() not in held,
          "Carol holds no key with the new event's key id", (new_ev[2][4:12].hex(), held))
    check(events[0][2][4:12].hex() in held, "Carol holds the key of the old events", held)
    carol.run("sync", ok=False)
    check(reads(carol, case, text1) and not reads(carol, case, text2),
          "Carol reads the old note, not the new one", shown_text(carol, case))
    bob.run("sync")
    check(reads(bob, case, text2), "Bob reads the note written after the removal")
    log("removal: a new case key not sealed to Carol; she keeps reading what came before")

    # ---- a member added later reads old v2 events after a rewrap ----
    dave = invite(srv, alice, "Dave")
    approve(alice, dave)
    dave.run("sync")
    check(not reads(dave, case, text1) and not reads(dave, case, text2),
          "Dave cannot read the v2 events before a rewrap", shown_text(dave, case))
    alice.run("sync")
    p = alice.run("rewrap")
    log("Alice's rewrap: %s" % p.out.strip()[:200])
    dave.run("sync")
    check(reads(dave, case, text1) and reads(dave, case, text2),
          "after Alice's rewrap Dave reads the old v2 events", shown_text(dave, case))
    check(event_count(dave, case) == event_count(alice, case),
          "Dave sees every event Alice sees", (event_count(dave, case), event_count(alice, case)))
    log("a member added later reads old v2 events after a rewrap (grants of CASEKEY objects)")

    # ---- a CASEKEY signed by a key on no roster is never written under ----
    roster = con.execute("SELECT max(version) FROM rosters").fetchone()[0]
    env, forged_kid = forge(case, roster, box_hex(con, ["Alice", "Bob", "Dave"]))
    src = con.execute("SELECT id FROM sources WHERE case_id = ?", (case,)).fetchone()[0]
    con.execute("INSERT INTO objects(source_id, kind, size, day, data, roster) VALUES "
                "(?, 9, ?, (SELECT max(day) FROM objects), ?, ?)", (src, len(env), env, roster))
    con.commit()
    bob.run("sync")
    check(forged_kid in [k for k, _ in cache_keys(bob)], "Bob's client stored the forged key")
    text3 = "Bob writes after a forged key"
    bob.run("note", case, text3)
    objs = case_objects(con, case)
    last_ev = [o for o in objs if o[1] == 4][-1]
    check(last_ev[2][4:12].hex() != forged_kid, "Bob's event is not under the forged key")
    check((forged_kid, -1) in cache_keys(bob), "Bob's client marks the forged key refused",
          cache_keys(bob))
    mine = [o for o in objs if o[1] == 9][-1]
    check(mine[0] > [o for o in objs if o[1] == 9 and o[2] == env][0][0],
          "Bob made (and posted) a key of his own after the forged one")
    for m in (alice, dave):
        m.run("sync")
        check(reads(m, case, text3), "%s reads Bob's note under his own key" % m.name)
    log("a CASEKEY by a non-member: stored, never written under; the writer made its own")

    # ---- the server's checks ----
    path = "/api/v1/cases/%s/casekeys" % case
    env2, _ = forge(case, roster, box_hex(con, ["Alice", "Bob"]))
    status, ans = api(srv, alice, "POST", path, env2)
    check(status == 422 and ans.get("error") == "recipients",
          "a CASEKEY not sealed to exactly the roster is refused", (status, ans))
    env3, _ = forge(case, roster, box_hex(con, ["Alice", "Bob", "Dave", "Carol"]))
    status, ans = api(srv, alice, "POST", path, env3)
    check(status == 422 and ans.get("error") == "recipients",
          "a CASEKEY sealed to a removed member too is refused", (status, ans))
    status, ans = api(srv, alice, "POST", "/api/v1/cases/%s/casekeys" % case, last_ev[2])
    check(status == 422, "an RFE2 event is not a CASEKEY", (status, ans))
    evpath = "/api/v1/cases/%s/events" % case
    for body, what in ((b"RFE2" + bytes(100), "too short"), (b"RFE2" + bytes(70000), "too long"),
                       (b"RFE3" + bytes(400), "another version"), (b"RFE", "three bytes")):
        status, ans = api(srv, alice, "POST", evpath, body)
        check(status == 422, "an RFE2 body %s is refused" % what, (status, ans))
    n0 = len(case_objects(con, case))
    status, ans = api(srv, alice, "POST", evpath, last_ev[2])
    check(status == 200 and ans.get("seq"), "a well-formed RFE2 body is stored", (status, ans))
    audit = con.execute("SELECT action FROM audit ORDER BY id DESC LIMIT 40").fetchall()
    check(("casekey",) in audit, "CASEKEY posts are audited as \"casekey\"", audit)
    check(len(case_objects(con, case)) == n0 + 1, "one object more")
    log("the server refuses CASEKEYs not sealed to exactly the roster and malformed RFE2")

    # ---- the setting ----
    p = alice.run("team", "event-format", "1")
    bob.run("sync")
    text4 = "back to format 1"
    bob.run("note", case, text4)
    last = case_objects(con, case)[-1]
    check(last[1] == 4 and last[2][:4] == b"RFGE", "format 1: an envelope again", last[2][:4])
    alice.run("sync")
    check(reads(alice, case, text4) and reads(alice, case, text1),
          "v1 and v2 events read side by side")
    con.execute("DELETE FROM settings WHERE key = 'team.event_format'")
    con.commit()
    p = bob.run("team", "event-format")
    check("Event format: 1" in p.out, "an instance without the setting is format 1", p.out)
    log("team.event_format: shown to members, set by admins; format 1 writes envelopes")

    # ---- offline: a new key waits in the outbox with its event ----
    alice.run("team", "event-format", "2")
    alice.run("staff", "remove", "Dave")  # a new roster: no key for it yet
    bob.run("sync")
    n0 = len(case_objects(con, case))
    srv.stop_clean()
    text5 = "written offline under a new key"
    p = bob.run("note", case, text5)
    check("queued" in p.out, "the note is queued while the server is down", p.out)
    restart_same_port(srv)
    con = open_db(srv)
    bob.run("sync")
    objs = case_objects(con, case)
    check(len(objs) == n0 + 2 and objs[-2][1] == 9 and objs[-1][1] == 4 and
          objs[-1][2][:4] == b"RFE2", "the queued key is posted first, then its event",
          [(o[0], o[1], o[2][:4]) for o in objs[n0:]])
    _, ids = envelope_header(objs[-2][2])
    check(sorted(ids) == sorted([kid["Alice"], kid["Bob"]]), "sealed to the roster", ids)
    offline_kid = objs[-1][2][4:12]
    alice.run("sync")
    check(reads(alice, case, text5), "Alice reads the note Bob wrote offline")

    # ---- a queued v2 event re-sealed under a key for a newer roster ----
    srv.stop_clean()
    text6 = "queued before Erin joined"
    bob.run("note", case, text6)
    restart_same_port(srv)
    con = open_db(srv)
    erin = invite(srv, alice, "Erin")
    approve(alice, erin)
    n0 = len(case_objects(con, case))
    bob.run("sync")
    objs = case_objects(con, case)
    check(len(objs) == n0 + 2 and objs[-2][1] == 9 and objs[-1][2][:4] == b"RFE2" and
          objs[-1][2][4:12] != offline_kid,
          "the queued event is sealed again under a new key for the new roster",
          [(o[0], o[1], o[2][:12].hex()) for o in objs[n0:]])
    kid = box_keyids(con)
    _, ids = envelope_header(objs[-2][2])
    check(sorted(ids) == sorted([kid["Alice"], kid["Bob"], kid["Erin"]]),
          "the new key is sealed to the new roster", ids)
    erin.run("sync")
    check(reads(erin, case, text6), "Erin reads the re-sealed event without a rewrap",
          shown_text(erin, case))
    check(not reads(erin, case, text5), "but not the one before she joined (no rewrap yet)")
    log("offline: keys wait in the outbox with their events; re-sealed for a newer roster")


if __name__ == "__main__":
    main(test)
