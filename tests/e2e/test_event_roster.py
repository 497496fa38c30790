#!/usr/bin/env python3
"""
An event's author does not choose the roster it is checked against (issue 13,
finding 3). Every object carries the roster version in force when the server
stored it; a client counts an event only if its author was on every roster
version from the one the event names up to that one (and, for the team's
settings, an admin on all of them).

  - Bob, an admin (roster 3), queues a change of the team's stages while the
    server is down (his client names roster 3, where he is an admin). Alice
    then demotes him (removes him: roster 4, and approves him again as a
    member: roster 5; and removes Carol: roster 6). When Bob's client comes
    back it sends the queued change; the server stores it under roster 6.
    It must not change the team's stages on any client (before issue 13 it
    did: the event names roster 3).
    Bob's events as a member still count, and Alice's own change of the
    stages does.
  - Carol, a member, queues a note offline and is removed. A compromised
    server stores her queued envelope anyway (the honest one refuses her):
    no client counts it; it is shown as unverified.
  - The server claims an object was stored under an older roster than an
    object before it: the sync is refused loudly and downloads nothing more.
"""
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Person, Server, approve, case_ids, check, enroll_first_admin, events_of, invite, log,
                 main, norm_state, open_db, require_commands, restart_same_port)

DEFAULT_STAGES = ["new", "verifying", "planning", "in transit", "safe", "asylum filed", "closed",
                  "lost contact", "declined"]


def stages(member):
    return member.json("team", "show", "--json").get("stages")


def roster_version(member):
    return member.json("staff", "list", "--json").get("roster_version")


def outbox_envelopes(member):
    con = sqlite3.connect(os.path.join(member.env["REFUGE_HOME"], "cache.db"))
    try:
        return [(r[0], bytes(r[1])) for r in
                con.execute("SELECT case_id, env FROM outbox ORDER BY id").fetchall()]
    finally:
        con.close()


def test():
    require_commands("staff", "team", "note", "stage")
    srv = Server().init().start()
    alice = enroll_first_admin(srv, "Alice")
    bob = invite(srv, alice, "Bob", as_admin=True)
    approve(alice, bob, as_admin=True)
    carol = invite(srv, alice, "Carol")
    approve(alice, carol)
    # about version 1 envelopes (Carol's queued envelope stored by a
    # compromised server): the team writes format 1 (docs/protocol.md 12)
    alice.run("team", "event-format", "1")
    for m in (alice, bob, carol):
        m.run("sync")
    check(roster_version(alice) == 3, "roster 3: Alice and Bob admins, Carol a member")
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("a message to make a case")
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])
    for m in (alice, bob, carol):
        m.run("sync")
    case = case_ids(alice.json("cases", "--json"))
    check(len(case) == 1, "one case", case)
    case = case[0]

    # ---- offline: Bob (admin on roster 3) changes the team's stages; Carol writes a note ----
    srv.stop_clean()
    p = bob.run("team", "stages", "new,hijacked,closed")
    check("queued" in p.out.lower(), "Bob's `refuge team stages` with the server down is queued",
          p.out + p.err)
    carol_note = "Carol's note written before her removal, sent after"
    p = carol.run("note", case, carol_note)
    check("queued" in p.out.lower(), "Carol's note with the server down is queued", p.out + p.err)
    restart_same_port(srv)

    # ---- Alice demotes Bob (remove, approve again as a member) and removes Carol ----
    alice.run("staff", "remove", "Bob")
    approve(alice, bob)
    alice.run("staff", "remove", "Carol")
    lst = alice.json("staff", "list", "--json")
    roles = {s["name"]: s.get("role") for s in lst.get("staff", []) if s.get("on_roster")}
    check(roles == {"Alice": "admin", "Bob": "member"} and lst.get("roster_version") == 6,
          "roster 6: Alice admin, Bob a member, Carol gone", lst)

    # Bob's client comes back and sends the change it queued as an admin
    p = bob.run("sync")
    check("Sent 1 queued event" in p.out, "Bob's sync sends the queued stages change", p.out + p.err)
    con = open_db(srv)
    row = con.execute("SELECT o.seq, o.roster FROM objects o JOIN sources s ON s.id = o.source_id "
                      "WHERE s.case_id = 'teamconfig' ORDER BY o.seq DESC LIMIT 1").fetchone()
    check(row is not None and row[1] == 6,
          "the server stored Bob's queued change under roster 6 (the one in force)", row)
    log("Bob's change, made as an admin of roster 3, stored as #%d under roster %d" % row)

    for m in (alice, bob):
        m.run("sync")
        got = stages(m)
        check(got == DEFAULT_STAGES,
              "%s: a demoted admin's change of the stages, naming the roster where he was "
              "admin but stored after his demotion, is ignored" % m.name, got)
    log("the demoted admin's old-roster change of the stages is ignored on every client")

    # Bob still works as a member; Alice's own change of the stages counts
    bob.run("stage", case, "verifying")
    alice.run("team", "stages", "new,verifying,safe,closed")
    for m in (alice, bob):
        m.run("sync")
        check(m.state(case).get("stage") == "verifying",
              "%s: Bob's event as a member counts" % m.name, m.state(case))
        check(stages(m) == ["new", "verifying", "safe", "closed"],
              "%s: the admin's change of the stages counts" % m.name, stages(m))

    # ---- a compromised server stores Carol's queued note after her removal ----
    p = carol.run("sync", ok=False)
    check(p.returncode != 0, "Carol's sync after her removal is refused", p.out + p.err)
    queued = outbox_envelopes(carol)
    check(len(queued) == 1 and queued[0][0] == case, "Carol's note is still in her outbox", queued)
    env = queued[0][1]
    src = con.execute("SELECT id FROM sources WHERE case_id = ?", (case,)).fetchone()[0]
    con.execute("INSERT INTO objects(source_id, kind, size, day, data, roster) VALUES "
                "(?, 4, ?, (SELECT max(day) FROM objects), ?, (SELECT max(version) FROM rosters))",
                (src, len(env), env))
    con.commit()
    forged = con.execute("SELECT max(seq) FROM objects").fetchone()[0]
    before = norm_state(alice.state(case))
    alice.run("sync")
    shown = alice.json("show", case, "--json")
    check(carol_note not in json.dumps(shown, ensure_ascii=False),
          "a removed member's event stored after her removal is not shown as hers",
          events_of(shown))
    item = [it for it in shown.get("items", []) if it.get("seq") == forged]
    check(item and item[0].get("kind") == "unverified",
          "it is listed as an unverified event", item)
    check(norm_state(alice.state(case)) == before, "it changes nothing in the case's state")
    log("a removed member's queued note, stored by a compromised server: unverified (%s)" %
        item[0].get("error"))

    # ---- the server claims an object was stored under an older roster ----
    con.execute("INSERT INTO objects(source_id, kind, size, day, data, roster) "
                "SELECT source_id, kind, size, day, data, 2 FROM objects WHERE seq = ?", (forged,))
    con.commit()
    lie = con.execute("SELECT max(seq) FROM objects").fetchone()[0]
    p = alice.run("sync", ok=False)
    check(p.returncode != 0 and "SERVER CHECK FAILED" in p.err,
          "a stored-at roster lower than an earlier object's is refused loudly", p.out + p.err)
    shown = alice.json("show", case, "--json")
    check(not [it for it in shown.get("items", []) if it.get("seq") == lie],
          "the object with the impossible claim was not downloaded")
    con.execute("DELETE FROM objects WHERE seq = ?", (lie,))
    con.commit()
    alice.run("sync")
    log("an impossible stored-at roster claim: sync refused loudly")

    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
