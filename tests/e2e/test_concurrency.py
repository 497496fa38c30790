#!/usr/bin/env python3
"""
Two caseworkers change the same case at once while offline (issue 3, "Done
when" 4). With the server down, Bob sets stage "planning", tags x and sets a
due date; Carol sets stage "verifying", untags x, writes a note and sets
another due date: every command answers "queued". Then the exact same
situation (server data and both clients' homes copied) is played twice:
  run A: server back, Bob syncs then Carol, then both again;
  run B: server back, Carol syncs then Bob, then both again.
In each run Bob's and Carol's clients show the same state, and run A and
run B end in the same state. The state is also the one the documented rule
gives: events ordered by (lamport, author signing key bytes, event id), each
register takes its last value; both first edits have the same lamport, so
the author with the larger signing key wins stage and tag x; Carol's due
date (her 4th edit) has a larger lamport than Bob's (his 3rd) and wins.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (require_commands, Person, Server, case_ids, check, events_of, log, main, make_team, norm_state,
                 open_db, restart_same_port, same_listing, tempdir)
import lib  # noqa: E402  (lib.db_save: the database on either backend)


def snapshot(srv, members, dest):
    shutil.copytree(srv.data, os.path.join(dest, "data"))
    lib.db_save(srv.data, "saved")  # the database too, when it is not in DATA
    for m in members:
        shutil.copytree(m.env["REFUGE_HOME"], os.path.join(dest, m.name))


def restore(srv, members, src):
    shutil.rmtree(srv.data)
    shutil.copytree(os.path.join(src, "data"), srv.data)
    lib.db_restore(srv.data, "saved")
    for m in members:
        shutil.rmtree(m.env["REFUGE_HOME"])
        shutil.copytree(os.path.join(src, m.name), m.env["REFUGE_HOME"])


def play(srv, first, second, label):
    restart_same_port(srv)
    for m in (first, second):
        p = m.run("sync")
        log("run %s: %s syncs: %s" % (label, m.name, " / ".join(p.out.strip().splitlines())[:200]))
    for m in (first, second):
        m.run("sync")
    srv.stop_clean()


def test():
    require_commands("staff", "fingerprint", "stage", "tag", "untag", "note", "due")
    srv = Server().init().start()
    alice, bob, carol = make_team(srv)
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("concurrency test")
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])
    alice.run("sync")
    case = case_ids(alice.json("cases", "--json"))
    check(len(case) == 1, "one case", case)
    case = case[0]
    alice.run("stage", case, "new")
    alice.run("assign", case, "Alice")
    for m in (bob, carol):
        m.run("sync")
    con = open_db(srv)
    pks = dict(con.execute("SELECT name, sign_pk FROM staff").fetchall())
    con.close()

    srv.stop_clean()
    log("server stopped; Bob and Carol work offline")
    bob_ops = [("stage", "planning"), ("tag", "x"), ("due", "2027-01-01")]
    carol_ops = [("stage", "verifying"), ("untag", "x"), ("note", "Carol's offline note"),
                 ("due", "2027-02-02")]
    for who, ops in ((bob, bob_ops), (carol, carol_ops)):
        for op, value in ops:
            p = who.run(op, case, value)
            check("queued" in p.out.lower(),
                  "%s's `refuge %s` with the server down says queued" % (who.name, op),
                  p.out + p.err)

    for who in (bob, carol):  # changes not sent yet: marked, offline
        out = same_listing(who)
        check("not sent yet" in out, "%s's `refuge cases` marks the queued changes" % who.name, out)

    saved = tempdir("refuge-concurrency-")
    snapshot(srv, (bob, carol), saved)

    results = {}
    for label, order in (("A", (bob, carol)), ("B", (carol, bob))):
        restore(srv, (bob, carol), saved)
        play(srv, order[0], order[1], label)
        st = {m.name: m.state(case) for m in (bob, carol)}
        ev = {m.name: events_of(m.json("show", case, "--json")) for m in (bob, carol)}
        check(st["Bob"] == st["Carol"],
              "run %s (%s syncs first): Bob's and Carol's clients show the same state" %
              (label, order[0].name), "Bob:   %s\nCarol: %s" % (st["Bob"], st["Carol"]))
        check(ev["Bob"] == ev["Carol"],
              "run %s: Bob and Carol list the case's events in the same order" % label,
              "Bob:   %s\nCarol: %s" % (ev["Bob"], ev["Carol"]))
        notes = [e for e in ev["Bob"] if e[0] == "note"]
        check(len(notes) == 1, "run %s: Carol's offline note arrived once" % label, ev["Bob"])
        results[label] = st["Bob"]
        log("run %s: both clients: %s" % (label, json.dumps(norm_state(st["Bob"]))))

    same = results["A"] == results["B"]
    log("run A and run B reach the same state: %s" % ("yes" if same else "NO"))
    check(same, "run A (Bob first) and run B (Carol first) reach the same state",
          "A: %s\nB: %s" % (results["A"], results["B"]))

    # the documented rule: equal lamports -> the larger signing key is later and wins
    winner = "Carol" if bytes(pks["Carol"]) > bytes(pks["Bob"]) else "Bob"
    want_stage = "verifying" if winner == "Carol" else "planning"
    want_x = winner == "Bob"
    got = norm_state(results["A"])
    check(got["stage"] == want_stage,
          "stage follows the rule: same lamport, %s's signing key sorts last, so %r" %
          (winner, want_stage), got)
    check(("x" in got["tags"]) == want_x,
          "tag x follows the rule (%s's %s wins)" % (winner, "tag" if want_x else "untag"), got)
    check(got["due"] == "2027-02-02",
          "due follows the rule: Carol's due date has the larger lamport", got)
    check(got["assigned"] == ["Alice"], "the online assignment is kept", got)


if __name__ == "__main__":
    main(test)
