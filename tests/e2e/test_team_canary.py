#!/usr/bin/env python3
"""
Casework stays on the caseworkers' machines (issue 3, "Done when" 3): a note,
a custom stage name (`refuge team stages`), a custom checklist item
(`refuge team checklist`) and a tag, each holding its own random canary, are
used on a case by two caseworkers; then every byte under the server's data
directory and its temporary directory (database, WAL, SHM, blobs, temporary
files) is searched for each canary in its common encodings (UTF-8, UTF-16,
base64 at every alignment, hex, URL-encoded, reversed: lib.encodings). Zero
hits while the server runs, after it stopped, and in its output. The team's
clients do show them (so the search looks for something that exists), and
the caseworkers' own homes (local case database, outbox) hold none either.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (require_commands, Person, Server, case_ids, check, encodings, json_strings, log, main, make_team,
                 rand_letters, restart_same_port, search_tree, tempdir)


def self_check():
    """The search finds a planted copy of every encoding it looks for."""
    d = tempdir("refuge-canary-self-")
    s = "этап cnry" + rand_letters(20)
    needles = [("planted", label, pat) for label, pat in encodings(s)]
    for i, (_, label, pat) in enumerate(needles):
        with open(os.path.join(d, "f%d" % i), "wb") as f:
            f.write(os.urandom(500) + pat + os.urandom(500))
    hits, _, _ = search_tree([d], needles)
    found = {h.split(" in ")[0] for h in hits}
    for _, label, _ in needles:
        check("planted (%s)" % label in found, "the search finds a planted %s copy" % label)


def test():
    require_commands("staff", "fingerprint", "team", "note", "stage", "tag", "check")
    self_check()
    srv = Server()
    srv.init()
    tmp = os.path.join(srv.root, "tmp")
    os.makedirs(tmp)
    os.environ["TMPDIR"] = tmp  # the server's temporary files land where we search
    srv.start()
    alice, bob = make_team(srv, ("Alice", "Bob"))

    c_note = "cnry" + rand_letters(24)
    c_stage = "cnry" + rand_letters(24)
    c_item = "cnry" + rand_letters(24)
    c_tag = "cnry" + rand_letters(24)
    note = "Заметка %s: meet at the northern crossing, contact in Tbilisi" % c_note
    stage = "этап %s" % c_stage             # a stage name with a space and Cyrillic
    item = "doc %s" % c_item

    p = alice.run("team", "stages", "new,verifying,%s,safe,closed" % stage)
    log("team stages: %s" % p.out.strip()[:200])
    alice.run("team", "checklist", "passport,%s,lawyer" % item)
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("hello from the canary person")
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])
    for m in (alice, bob):
        m.run("sync")
    team = bob.json("team", "show", "--json")
    check(stage in json_strings(team) and item in json_strings(team),
          "Bob's `refuge team show --json` has the custom stage and checklist item", team)
    case = case_ids(bob.json("cases", "--json"))
    check(len(case) == 1, "one case", case)
    case = case[0]
    bob.run("stage", case, stage)
    bob.run("note", case, note)
    alice.run("sync")
    alice.run("check", case, item)
    alice.run("tag", case, c_tag)
    bob.run("sync")
    state = bob.state(case)
    shown = json.dumps(bob.json("show", case, "--json"), ensure_ascii=False)
    check(state.get("stage") == stage, "the case is in the custom stage", state)
    check(c_tag in (state.get("tags") or []), "the case has the canary tag", state)
    check((state.get("checklist") or {}).get(item) is True,
          "the custom checklist item is done", state)
    check(note in shown, "the note is in the case's thread", shown[:1500])
    log("canaries in a note, a stage, a checklist item and a tag; the clients show them")

    needles = []
    for what, s in (("note", c_note), ("note-text", note), ("stage", c_stage),
                    ("stage-name", stage), ("item", c_item), ("item-name", item),
                    ("tag", c_tag)):
        needles += [(what, label, pat) for label, pat in encodings(s)]

    # a note written while the server is down waits in Bob's outbox, encrypted
    c_queued = "cnry" + rand_letters(24)
    q_needles = [("queued-note", label, pat) for label, pat in encodings(c_queued)]
    srv.stop_clean()
    p = bob.run("note", case, "offline note " + c_queued)
    check("queued" in p.out.lower(), "a note with the server down is queued", p.out + p.err)
    hits, files, total = search_tree([bob.env["REFUGE_HOME"]], q_needles)
    check(not hits, "a queued note is in plaintext in the outbox on Bob's disk", hits[:10])
    log("queued note: Bob's home (%d files) holds no plaintext of it" % files)
    restart_same_port(srv)
    bob.run("sync")
    alice.run("sync")
    check(c_queued in json.dumps(alice.json("show", case, "--json"), ensure_ascii=False),
          "the queued note reached Alice after Bob's sync")
    needles += q_needles
    hits, files, total = search_tree([srv.data, tmp], needles)
    check(files > 0 and total > 0, "the data directory holds files", (files, total))
    check(not hits, "casework plaintext found at rest while the server runs", hits[:20])
    log("running: %d files, %d bytes, %d patterns: clean" % (files, total, len(needles)))
    # the caseworkers' own disks: the local case database is encrypted at rest
    homes = [m.env["REFUGE_HOME"] for m in (alice, bob)]
    hits, files, total = search_tree(homes, needles)
    check(not hits, "casework plaintext found in a caseworker's home (local case database "
          "must be encrypted at rest)", hits[:20])
    log("caseworkers' homes: %d files, %d bytes: clean" % (files, total))

    srv.stop_clean()
    hits, files, total = search_tree([srv.data, tmp], needles)
    check(not hits, "casework plaintext found at rest after the server stopped", hits[:20])
    out = srv.output()
    leaks = [what for what, label, pat in needles if pat in out]
    check(not leaks, "the server printed casework plaintext", leaks)
    log("stopped: %d files, %d bytes: clean; server output clean" % (files, total))


if __name__ == "__main__":
    main(test)
