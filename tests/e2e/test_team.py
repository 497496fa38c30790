#!/usr/bin/env python3
"""
A team of three caseworkers and three people (issue 3, "Done when" 1):
  - Alice (first admin) invites Bob and Carol (`refuge staff invite`); they
    enroll with the printed line and are approved after comparing
    fingerprints (`refuge staff approve NAME --fingerprint FP`); a wrong
    fingerprint is refused;
  - three people write; Carol, approved after the first message was sent,
    cannot read it until a member runs `refuge rewrap`;
  - every case goes through stages, assignments, notes, tags, checklist
    items and due dates set by different caseworkers; after everyone syncs,
    `refuge cases --json` and each `refuge show CASE --json` "state" are the
    same on all three clients and what the team did; the filters of
    `refuge cases` (--stage, --mine, --tag, --search) find the right cases;
  - the server replays events (one copied into another case, one old one
    stored again later): no client's state changes, the copy is "unverified";
  - Alice removes Carol: nothing sent after that is encrypted to Carol's key
    (checked in the stored envelopes' headers), Carol cannot read it, Bob can,
    a rewrap grants Carol nothing, and what Carol did while on the team stands.
"""
import json
import os
import re
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (require_commands, Person, Server, approve, case_ids, check, enroll_first_admin, envelope_header,
                 events_of, invite, json_strings, keyid, log, main, norm_state, object_bytes,
                 open_db, same_listing, table_columns, tables)


def staff_entry(lst, name):
    for s in lst.get("staff", []):
        if s.get("name") == name:
            return s
    return None


def box_keyids(con):
    """name -> key id (hex) of the box key each enrolled caseworker gave the server."""
    return {name: keyid(box) for name, box in
            con.execute("SELECT name, box_pk FROM staff").fetchall()}


def seqs_after(con, seq):
    return [r[0] for r in con.execute("SELECT seq FROM objects WHERE seq > ? ORDER BY seq",
                                      (seq,)).fetchall()]


def max_seq(con):
    return con.execute("SELECT coalesce(max(seq), 0) FROM objects").fetchone()[0]


def send(person, text):
    resp, _ = person.send(text)
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])


def item_texts(shown):
    return [it.get("text") for it in shown.get("items", []) if isinstance(it, dict)]


def readable(member, case, text):
    """Whether member's `refuge show CASE --json` shows text (and how the item reads)."""
    p = member.run("show", case, "--json", ok=False)
    try:
        shown = json.loads(p.out)
    except ValueError:
        return False, p.out[:600] + p.err[-600:]
    return text in json_strings(shown), json.dumps(shown, ensure_ascii=False)[:1500]


def test():
    require_commands("staff", "fingerprint", "rewrap", "stage", "assign", "tag", "note", "check", "due")
    srv = Server().init().start()
    con = open_db(srv)

    # ---- the team ----
    alice = enroll_first_admin(srv, "Alice")
    check(alice.fp, "the first admin's `refuge init` prints her fingerprint")
    bob = invite(srv, alice, "Bob")
    lst = alice.json("staff", "list", "--json")
    e = staff_entry(lst, "Bob")
    check(e is not None and e.get("role") == "pending" and e.get("on_roster") is False,
          "`refuge staff list --json` shows Bob enrolled but pending", lst)
    check(e.get("fingerprint") and e["fingerprint"].replace(" ", "") == bob.fp.replace(" ", ""),
          "`refuge staff list` shows Bob's fingerprint as Bob's init printed it", (e, bob.fp))
    p = bob.run("sync", ok=False)
    log("Bob before approval: sync status %d: %s" % (p.returncode, (p.out + p.err).strip()[:200]))

    # a fingerprint that does not match is refused (a server could have swapped Bob's keys)
    wrong = " ".join("%05d" % ((int(g) + 1) % 100000) for g in bob.fp.split())
    p = alice.refused("staff", "approve", "Bob", "--fingerprint", wrong)
    lst = alice.json("staff", "list", "--json")
    check(staff_entry(lst, "Bob").get("on_roster") is False,
          "a refused approval leaves Bob off the roster", lst)
    approve(alice, bob)
    lst = alice.json("staff", "list", "--json")
    check(staff_entry(lst, "Bob").get("on_roster") is True and
          staff_entry(lst, "Bob").get("role") == "member" and lst.get("roster_version") == 2,
          "after approval Bob is a member on roster version 2", lst)
    log("Bob invited, enrolled, approved (a wrong fingerprint was refused)")

    # Carol enrolls now but is approved only after the first person wrote
    carol = invite(srv, alice, "Carol")
    person1 = Person(srv)
    person1.new_codename()
    first = "first message before Carol joined " + secrets.token_hex(6)
    send(person1, first)
    approve(alice, carol)
    for m in (alice, bob, carol):
        m.run("sync")
    lst = carol.json("staff", "list", "--json")
    names = sorted(s["name"] for s in lst.get("staff", []) if s.get("on_roster"))
    check(names == ["Alice", "Bob", "Carol"] and lst.get("roster_version") == 3,
          "Carol's client verifies roster version 3 with Alice, Bob and Carol", lst)
    kid = box_keyids(con)
    check(sorted(kid) == ["Alice", "Bob", "Carol"], "three caseworkers enrolled", kid)

    case1 = case_ids(alice.json("cases", "--json"))
    check(len(case1) == 1, "one case after the first message", case1)
    case1 = case1[0]
    ok, shown = readable(bob, case1, first)
    check(ok, "Bob (approved before the message) reads it", shown)
    ok, shown = readable(carol, case1, first)
    check(not ok, "Carol (approved after the message) cannot read it before a rewrap", shown)
    same_listing(carol)  # a case she cannot read yet

    # rewrap: Bob (any member who can read) grants Carol the content keys
    p = bob.run("rewrap")
    m = re.search(r"granted (\d+) key", p.out)
    check(m and int(m.group(1)) > 0,
          "`refuge rewrap` grants keys to Carol (prints \"granted N keys\", N > 0)", p.out + p.err)
    log("rewrap: %s" % p.out.strip())
    carol.run("sync")
    ok, shown = readable(carol, case1, first)
    check(ok, "after `refuge rewrap` Carol reads the message sent before she was approved",
          shown)
    p = bob.run("rewrap")
    check(re.search(r"granted 0 key", p.out), "a second rewrap has nothing left to grant", p.out + p.err)

    # ---- two more people, sealed to all three at once ----
    person2, person3 = Person(srv, lang="ru"), Person(srv)
    person2.new_codename()
    send(person2, "Здравствуйте, второй человек " + secrets.token_hex(4))
    person3.new_codename()
    send(person3, "third person " + secrets.token_hex(4))
    for m in (alice, bob, carol):
        m.run("sync")
    cases = case_ids(carol.json("cases", "--json"))
    check(len(cases) == 3, "three cases on Carol's client", cases)
    case2, case3 = [c for c in cases if c != case1][:2]
    for c in (case2, case3):
        shown = carol.json("show", c, "--json")
        check(not [it for it in shown.get("items", []) if it.get("kind") == "unreadable"],
              "Carol reads new messages without a rewrap", shown)

    # ---- casework by different caseworkers (each syncs before acting) ----
    note1 = "Bob: called, passport expired, needs a new one " + secrets.token_hex(3)
    note2 = "Carol: Заметка — семья в Ереване " + secrets.token_hex(3)
    note3 = "Alice: declined, not in scope " + secrets.token_hex(3)
    steps = [
        (alice, "stage", case1, "verifying"), (bob, "assign", case1, "Bob"),
        (carol, "tag", case1, "urgent"), (bob, "note", case1, note1),
        (carol, "check", case1, "passport"), (alice, "due", case1, "2027-01-15"),
        (bob, "stage", case1, "planning"), (carol, "assign", case1, "Carol"),
        (alice, "unassign", case1, "Bob"), (carol, "tag", case1, "family"),
        (bob, "check", case1, "route"), (carol, "uncheck", case1, "route"),
        (carol, "stage", case1, "in transit"),

        (bob, "stage", case2, "verifying"), (carol, "assign", case2, "Carol"),
        (alice, "tag", case2, "family"), (carol, "note", case2, note2),
        (alice, "check", case2, "visa"), (bob, "check", case2, "lawyer"),
        (carol, "untag", case2, "family"), (alice, "due", case2, "2027-02-01"),
        (bob, "due", case2, "none"), (alice, "stage", case2, "safe"),
        (bob, "stage", case2, "asylum filed"),

        (carol, "stage", case3, "verifying"), (alice, "assign", case3, "Bob"),
        (bob, "check", case3, "contact"), (alice, "note", case3, note3),
        (bob, "tag", case3, "no-scope"), (alice, "stage", case3, "declined"),
    ]
    for who, op, case, value in steps:
        who.run("sync")
        p = who.run(op, case, value)
        check("queued" not in p.out.lower(),
              "%s's `refuge %s` reached the running server (not queued)" % (who.name, op),
              p.out + p.err)
    expect = {
        case1: {"stage": "in transit", "assigned": ["Carol"], "tags": ["family", "urgent"],
                "due": "2027-01-15", "checklist": ["passport"]},
        case2: {"stage": "asylum filed", "assigned": ["Carol"], "tags": [], "due": None,
                "checklist": ["lawyer", "visa"]},
        case3: {"stage": "declined", "assigned": ["Bob"], "tags": ["no-scope"], "due": None,
                "checklist": ["contact"]},
    }
    log("%d events by three caseworkers on three cases" % len(steps))

    # an unknown stage is a usage error listing the stages
    p = bob.refused("stage", case1, "teleported")
    check(p.returncode == 2 and "verifying" in p.out + p.err,
          "`refuge stage CASE unknown` exits 2 and lists the stages", (p.returncode, p.err))

    for m in (alice, bob, carol):
        m.run("sync")
    for m in (alice, bob, carol):
        for filters in ((), ("--mine",), ("--stage", "declined"), ("--tag", "family"),
                        ("--stage", "in transit", "--tag", "urgent", "--mine")):
            same_listing(m, *filters)
    listings = {m.name: m.cases() for m in (alice, bob, carol)}
    states = {m.name: {c: m.state(c) for c in (case1, case2, case3)} for m in (alice, bob, carol)}
    shows = {m.name: {c: m.json("show", c, "--json") for c in (case1, case2, case3)}
             for m in (alice, bob, carol)}
    for name in ("Bob", "Carol"):
        check(listings[name] == listings["Alice"],
              "`refuge cases --json` is identical on Alice's and %s's clients" % name,
              "Alice: %s\n%s: %s" % (json.dumps(listings["Alice"], ensure_ascii=False)[:900],
                                     name, json.dumps(listings[name], ensure_ascii=False)[:900]))
        for c in (case1, case2, case3):
            check(states[name][c] == states["Alice"][c],
                  "case %s: the \"state\" is identical on Alice's and %s's clients" % (c, name),
                  (states["Alice"][c], states[name][c]))
            check(events_of(shows[name][c]) == events_of(shows["Alice"][c]),
                  "case %s: the events are shown in the same order on Alice's and %s's clients"
                  % (c, name), (events_of(shows["Alice"][c]), events_of(shows[name][c])))
    for c, want in expect.items():
        got = norm_state(states["Alice"][c])
        check(got == want, "case %s: the materialized state is what the team did" % c,
              "want %s\n got %s" % (want, got))
    for c, text in ((case1, note1), (case2, note2), (case3, note3)):
        check(text in json_strings(shows["Bob"][c]), "the note is in case %s's thread" % c,
              events_of(shows["Bob"][c]))
    ev = events_of(shows["Carol"][case1])
    authors = {(op, a) for op, _, a, _ in ev}
    check(("stage", "Alice") in authors and ("assign", "Bob") in authors and
          ("tag", "Carol") in authors, "events name their authors", ev)
    rows = {r["case"]: r for r in listings["Alice"]}
    check(rows[case1].get("stage") == "in transit" and rows[case1].get("notes") == 1 and
          rows[case2].get("checklist", {}).get("visa") is True,
          "`refuge cases --json` shows stage, notes count and checklist", rows.get(case1))
    log("all three clients show the same state for the three cases")

    # the server replays old events: one copied into another case (its signature
    # binds it to its case), one replayed later in its own case (its lamport is
    # old): neither changes any state, on any client
    shown1 = shows["Alice"][case1]
    ev_seq = {(it.get("op"), it.get("value")): it.get("seq") for it in shown1.get("items", [])
              if it.get("kind") == "event"}
    moved, replayed = ev_seq.get(("note", note1)), ev_seq.get(("stage", "verifying"))
    check(moved and replayed, "events have their sequence numbers in `show --json`", ev_seq)
    src2 = con.execute("SELECT id FROM sources WHERE case_id = ?", (case2,)).fetchone()[0]
    src1 = con.execute("SELECT id FROM sources WHERE case_id = ?", (case1,)).fetchone()[0]
    for seq, src in ((moved, src2), (replayed, src1)):
        # stored as the server stores anything: under the roster in force now
        con.execute("INSERT INTO objects(source_id, kind, size, day, data, roster) "
                    "SELECT ?, kind, size, day, data, (SELECT max(version) FROM rosters) "
                    "FROM objects WHERE seq = ?", (src, seq))
    for m in (alice, bob, carol):
        m.run("sync")
    for m in (alice, bob, carol):
        for c in (case1, case2):
            st = m.state(c)
            check(st == states["Alice"][c], "%s: case %s's state is unchanged by replayed "
                  "events" % (m.name, c), (states["Alice"][c], st))
    shown2 = alice.json("show", case2, "--json")
    check(not [e for e in events_of(shown2) if e[1] == note1],
          "an event copied into another case is not shown as one of its events",
          events_of(shown2))
    # an envelope (format 1) opens and its signature fails for the other case;
    # an event version 2 names a case key of the other case: both "unverified"
    check("unverified" in json.dumps(shown2),
          "the copied event is reported as unverified in `refuge show`",
          json.dumps(shown2)[-1500:])
    check(alice.cases() == bob.cases() == carol.cases(),
          "`refuge cases --json` is still identical on the three clients")
    log("events replayed by the server (into another case, and late in their own) change nothing")

    # the filters (run on the client, over decrypted content)
    def listed(m, *args):
        return sorted(case_ids(m.json("cases", "--json", *args)))
    check(listed(bob, "--stage", "in transit") == [case1], "`cases --stage \"in transit\"`",
          listed(bob, "--stage", "in transit"))
    check(listed(carol, "--mine") == sorted([case1, case2]), "`cases --mine` for Carol",
          listed(carol, "--mine"))
    check(listed(alice, "--tag", "urgent") == [case1], "`cases --tag urgent`",
          listed(alice, "--tag", "urgent"))
    check(listed(alice, "--search", note2.split()[-1]) == [case2],
          "`cases --search` finds a note's text", listed(alice, "--search", note2.split()[-1]))
    check(listed(alice, "--search", "Ереване") == [case2],
          "`cases --search` finds Cyrillic note text", listed(alice, "--search", "Ереване"))

    # ---- Alice removes Carol (a lost laptop) ----
    alice.run("staff", "remove", "Carol")
    before = max_seq(con)
    lst = alice.json("staff", "list", "--json")
    check(lst.get("roster_version") == 4 and not (staff_entry(lst, "Carol") or {}).get("on_roster"),
          "after `refuge staff remove Carol` roster version 4 does not list Carol", lst)
    bob.run("sync")
    after_text = "written after Carol was removed " + secrets.token_hex(6)
    person1.login()
    send(person1, after_text)
    alice.run("note", case1, "after removal, a note " + secrets.token_hex(3))
    bob.run("sync")
    bob.run("reply", case1, "-m", "reply after removal " + secrets.token_hex(3))

    new = seqs_after(con, before)
    check(len(new) >= 3, "a message, a note and a reply were stored after the removal", new)
    v2 = 0
    for seq in new:
        data = object_bytes(srv, con, seq)
        if data[:4] == b"RFE2":  # an event version 2: under the case key checked below
            v2 += 1
            continue
        kind, ids = envelope_header(data)
        check(kid["Carol"] not in ids,
              "object #%d (kind %d) stored after Carol's removal is not sealed to her key"
              % (seq, kind), ids)
        if kind != 3:  # a reply is also sealed to the person
            check(kid["Alice"] in ids and kid["Bob"] in ids and len(ids) == 2,
                  "object #%d (kind %d) is sealed to Alice and Bob only" % (seq, kind), ids)
    kinds = [k for (k,) in con.execute("SELECT kind FROM objects WHERE seq > ?", (before,))]
    check(v2 == 0 or 9 in kinds,
          "the events version 2 after the removal are under a case key made after it", kinds)
    log("after the removal: %d new objects (%d events v2), none sealed to Carol" % (len(new), v2))

    ok, shown = readable(bob, case1, after_text)
    check(ok, "Bob reads the message sent after Carol's removal", shown)
    p = carol.run("sync", ok=False)
    log("Carol's sync after removal: status %d: %s" %
        (p.returncode, (p.out + p.err).strip()[:300]))
    ok, shown = readable(carol, case1, after_text)
    check(not ok, "Carol cannot read what was sent after her removal", shown)
    # Carol's client may still hold old content; she writes nothing the team accepts
    sneaky = "Carol after removal " + secrets.token_hex(4)
    p = carol.run("note", case1, sneaky, ok=False)
    alice.run("sync")
    check(sneaky not in json.dumps(alice.state(case1), ensure_ascii=False),
          "a removed member's note does not change the case state", p.out + p.err)
    shown = alice.json("show", case1, "--json")
    notes = [it for it in shown.get("items", []) if it.get("kind") == "event"
             and it.get("value") == sneaky]
    check(not notes, "a removed member's note is not shown as a verified event", notes)

    # a rewrap after the removal grants Carol nothing
    grant_tables = [t for t in tables(con) if "grant" in t]
    kcol = None
    for t in grant_tables:
        kcol = next((c for c in table_columns(con, t) if "keyid" in c or "key_id" in c), None)
        if kcol:
            gtab = t
            break
    carol_keyid = bytes.fromhex(kid["Carol"])
    if kcol:
        n0 = con.execute("SELECT count(*) FROM %s WHERE %s = ?" % (gtab, kcol),
                         (carol_keyid,)).fetchone()[0]
    alice.run("rewrap")
    bob.run("rewrap")
    if kcol:
        n1 = con.execute("SELECT count(*) FROM %s WHERE %s = ?" % (gtab, kcol),
                         (carol_keyid,)).fetchone()[0]
        check(n1 == n0, "a rewrap after Carol's removal stores no grant for her key",
              (n0, n1))
    else:
        log("note: no grants table with a keyid column found (%s)" % grant_tables)
    carol.run("sync", ok=False)
    ok, shown = readable(carol, case1, after_text)
    check(not ok, "after a rewrap Carol still cannot read what was sent after her removal",
          shown)
    # what Carol did while she was on the team still counts (checked against the
    # roster of the time), on the clients of those who remain
    for m in (alice, bob):
        st = norm_state(m.state(case1))
        check(st["stage"] == "in transit" and "urgent" in st["tags"] and
              "Carol" in st["assigned"],
              "%s: Carol's earlier events on case %s still count after her removal" %
              (m.name, case1), st)
    log("Carol removed: Bob reads new content, Carol does not; her earlier work stands")

    # and on a fresh client: Alice's local cache gone, a cold sync downloads
    # everything again; Carol's events, stored while she was on the roster,
    # still count (each checked up to the roster in force when it was stored)
    before_state = norm_state(alice.state(case1))
    home = alice.env["REFUGE_HOME"]
    for name in os.listdir(home):
        if name.startswith("cache.db"):
            os.unlink(os.path.join(home, name))
    alice.run("sync")
    st = norm_state(alice.state(case1))
    check(st == before_state and "Carol" in st["assigned"],
          "after a cold sync, Carol's earlier events on case %s still count" % case1,
          (before_state, st))
    log("a cold sync after the removal: Carol's earlier work still stands")

    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
