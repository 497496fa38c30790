#!/usr/bin/env python3
"""
The desk's team page (issue 9): the roster with fingerprints, invite,
approve (comparing fingerprints), remove, the audit verification result and
the sync status, through the CLI's own functions.

A real server and a real team (Alice, admin; Bob, member). Alice's desk:
- /team lists Alice (admin) and Bob (member), each with the fingerprint
  their own `refuge fingerprint` prints, and the audit log verified;
- Invite shows a one-time token and the `refuge init` line; Carol's real
  `refuge init` accepts that token, and Carol is then listed as waiting
  (without the server's fingerprint in the approve form);
- approve with a wrong fingerprint (Bob's) is refused loudly (409, on the
  page and in the terminal) and the roster on the server is unchanged (Bob's
  CLI, which verifies it, sees the same version, without Carol); an empty
  fingerprint approves nothing either;
- approve with the right fingerprint (as Carol reads it, spaces and all)
  publishes a new roster version with Carol (seen by Bob's CLI);
- remove asks first (a confirmation page; nothing changed), then publishes
  a version without Carol;
- a POST without the CSRF token is refused, nothing changed.
Bob's desk (a member): the roster and the audit result, but no invite,
approve or remove; a forged POST to each (with Bob's own valid CSRF token)
is refused with 403 and the roster is unchanged. When the test tampers an
entry of the server's audit table (as test_audit.py does), Bob's team page
says the log is broken at that entry ("modified"); with the honest rows put
back, verified again.
"""
import html
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Browser, Member, Server, check, free_port, log, main, make_team, open_db,
                 parse_fingerprint, sanitizer_report)
from test_desk import refused, start_desk

COLS = "id, day, actor, action, target, prev, hash, request"


def open_desk(member):
    port = free_port()
    proc, url, out_path, err_path = start_desk(member, port)
    base = "http://127.0.0.1:%d" % port
    b = Browser(base)
    u = urllib.parse.urlsplit(url)
    r = b.get(u.path + "?" + u.query, follow=True)
    check(r.status == 200, "%s's desk opens with the token" % member.name, r.text[:600])
    check('href="/team' in r.text, "the desk's navigation links the team page", r.text[:1500])
    return proc, b, err_path


def roster(member):
    """The roster as member's CLI verifies it: (version, {name: role})."""
    j = member.json("staff", "list", "--json")
    return j["roster_version"], {s["name"]: s["role"] for s in j["staff"] if s["on_roster"]}


def stop(proc, err_path, who):
    proc.terminate()
    proc.wait(timeout=30)
    rep = sanitizer_report(open(err_path, errors="replace").read())
    check(rep is None, "no sanitizer report from %s's desk" % who, rep)


def test():
    srv = Server().init().start()
    alice, bob = make_team(srv, ("Alice", "Bob"))
    fa, fb = alice.fingerprint(), bob.fingerprint()

    proc, b, err_path = open_desk(alice)
    r = b.get("/team")
    check(r.status == 200, "the team page answers", r.text[:800])
    t = html.unescape(r.text)
    check(re.search(r"<strong>Alice</strong>.*?admin.*?<code class=\"fp\">%s</code>" % fa, t, re.S),
          "Alice is listed as admin with her fingerprint", t[:4000])
    check(re.search(r"<strong>Bob</strong>.*?caseworker.*?<code class=\"fp\">%s</code>" % fb, t,
                    re.S), "Bob is listed as caseworker with his fingerprint", t[:4000])
    m = re.search(r'id="audit">The server\'s audit log is verified.*?Entries: (\d+)</li>'
                  r'<li>Signed by the caseworker named: (\d+)', t, re.S)
    check(m and int(m.group(1)) > 0 and int(m.group(2)) > 0,
          "the audit log is verified, with its entries and signed entries counted",
          t[t.find("Audit log"):][:1500])
    check("No background sync" in t or "every" in t, "the sync status is shown", t[-1500:])
    check(r.page.form("/team/invite") is not None, "an admin's team page has Invite")
    check(len([f for f in r.page.forms if f.action == "/team/remove"]) == 2,
          "an admin's team page has a Remove button per member")
    ru = b.get("/team?lang=ru")
    check("Команда" in ru.text and fa in ru.text, "the team page in Russian", ru.text[:1500])
    v0, members0 = roster(bob)
    log("Alice's team page: roster with fingerprints, audit verified (version %d)" % v0)

    # ---- no CSRF: refused, nothing made
    refused(b.post("/team/invite", [("role", "member")], follow=False), "invite without CSRF")
    refused(b.post("/team/remove", [("name", "Bob"), ("confirm", "yes")], follow=False),
            "remove without CSRF")
    check(roster(bob) == (v0, members0), "the roster is unchanged after the refused POSTs")

    # ---- invite
    r = b.submit(b.get("/team").page.form("/team/invite"))
    check(r.status == 200 and "Invite token" in r.text, "Invite shows a token", r.text[:2000])
    m = re.search(r"refuge init --server (\S+) --token ([A-Za-z0-9_-]+) --name NAME", r.text)
    check(m, "the page shows the `refuge init` line", r.text[:3000])
    check(urllib.parse.unquote(m.group(1)) == srv.url or m.group(1) == srv.url,
          "the line names this server", m.group(1))
    check("never by a message through this server" in r.text,
          "the page says how to pass the token on")
    token = m.group(2)
    carol = Member("Carol")
    p = carol.run("init", "--server", srv.url, "--token", token, "--name", "Carol")
    carol.fp = parse_fingerprint(p.out)
    fc = carol.fingerprint()
    check(fc == carol.fp, "Carol enrolled with the desk's token")
    log("invite: the token printed by the desk enrolled Carol")

    r = b.get("/team")
    forms = [f for f in r.page.forms if f.action == "/team/approve"]
    check(len(forms) == 1 and dict(forms[0].hidden()).get("name") == "Carol",
          "Carol is waiting, with an approve form", r.text[-3000:])
    check(fc not in r.text, "the approve form does not show the server's fingerprint to copy")
    check(forms[0].field("fingerprint") is not None, "the approve form asks for the fingerprint")

    # ---- approve: wrong fingerprint, empty fingerprint
    r = b.submit(forms[0], [("fingerprint", fb)])
    check(r.status == 409 and "FINGERPRINTS DO NOT MATCH" in r.text and
          "roster is unchanged" in r.text, "a wrong fingerprint is refused loudly", r.text[:3000])
    check(fb in r.text and fc in r.text, "the refusal shows what was typed and the server's keys")
    check(roster(bob) == (v0, members0), "the roster on the server is unchanged (Bob's CLI)")
    check("FINGERPRINTS DO NOT MATCH" in open(err_path, errors="replace").read(),
          "the refusal is loud in the desk's terminal too")
    f = [f for f in b.get("/team").page.forms if f.action == "/team/approve"][0]
    r = b.submit(f, [("fingerprint", "   ")])
    check("nothing is approved without it" in r.text, "an empty fingerprint approves nothing",
          r.text[:2000])
    check(roster(bob) == (v0, members0), "still unchanged")
    log("approve with a wrong or no fingerprint: refused, roster unchanged")

    # ---- approve: the right one (as read aloud: extra spaces)
    f = [f for f in b.get("/team").page.forms if f.action == "/team/approve"][0]
    r = b.submit(f, [("fingerprint", "  " + fc.replace(" ", "  ") + " ")])
    check(r.status == 200 and "Approved" in r.text, "the right fingerprint approves", r.text[:2000])
    v1, members1 = roster(bob)
    check(v1 == v0 + 1 and members1.get("Carol") == "member",
          "a new roster version with Carol is published", (v0, v1, members1))
    check(re.search(r"<strong>Carol</strong>.*?<code class=\"fp\">%s</code>" % fc, r.text, re.S),
          "Carol is on the desk's roster with her fingerprint", r.text[-3000:])
    carol.run("sync")
    log("approve with the right fingerprint: roster version %d" % v1)

    # ---- remove: asks first
    rm = [f for f in r.page.forms if f.action == "/team/remove" and
          dict(f.hidden()).get("name") == "Carol"]
    check(len(rm) == 1, "Carol has a Remove button")
    r = b.submit(rm[0])
    check(r.status == 200 and "Remove from the team?" in r.text, "Remove asks for confirmation",
          r.text[:2000])
    check(roster(bob) == (v1, members1), "asking changed nothing")
    conf = r.page.form("/team/remove")
    check(conf is not None and dict(conf.hidden()).get("confirm") == "yes",
          "the confirmation is a POST form")
    r = b.submit(conf)
    check("Removed" in r.text, "the removal is done", r.text[:2000])
    v2, members2 = roster(bob)
    check(v2 == v1 + 1 and "Carol" not in members2, "a new roster version without Carol",
          (v2, members2))
    log("remove: confirmation, then roster version %d" % v2)
    stop(proc, err_path, "Alice")

    # ---- Bob's desk: a member
    proc, b, err_path = open_desk(bob)
    r = b.get("/team")
    check(r.status == 200 and fa in r.text and fb in r.text, "Bob's desk shows the roster",
          r.text[:3000])
    check("The server's audit log is verified" in html.unescape(r.text), "and the audit result",
          r.text[-2000:])
    for action in ("/team/invite", "/team/approve", "/team/remove"):
        check(r.page.form(action) is None, "a member's team page has no %s form" % action)
    csrf = dict(r.page.form("/sync").hidden())["csrf"]
    for action, fields in (("/team/invite", [("role", "admin")]),
                           ("/team/approve", [("name", "Carol"), ("fingerprint", fc)]),
                           ("/team/remove", [("name", "Alice"), ("confirm", "yes")])):
        rr = b.post(action, [("csrf", csrf)] + fields, follow=False)
        check(rr.status == 403 and "Only an admin" in rr.text,
              "a member's forged POST %s is refused" % action, rr.text[:1500])
    check(roster(alice) == (v2, members2), "the roster is unchanged after a member's POSTs")
    log("Bob (member): roster and audit only; forged invite/approve/remove refused")

    # ---- the audit result after tampering
    con = open_db(srv)
    rows = con.execute("SELECT %s FROM audit ORDER BY id" % COLS).fetchall()
    k = rows[len(rows) // 2][0]
    con.execute("UPDATE audit SET target = ? WHERE id = ?", ("tampered", k))
    r = b.get("/team")
    m = re.search(r"THE AUDIT LOG IS BROKEN at entry (\d+): (\w+)", r.text)
    check(m and int(m.group(1)) == k and m.group(2) == "modified",
          "the team page shows the break the CLI would (entry %d modified)" % k, r.text[-2500:])
    p = bob.run("audit", "verify", "--json", ok=False)
    check('"entry": %d' % k in p.out.replace('"entry":%d' % k, '"entry": %d' % k),
          "`refuge audit verify` reports the same entry", p.out)
    orig = [x for x in rows if x[0] == k][0]
    con.execute("UPDATE audit SET target = ? WHERE id = ?", (orig[4], k))
    con.close()
    r = b.get("/team")
    check("audit log is verified" in r.text, "with the honest rows back, verified again",
          r.text[-2000:])
    log("audit: ok, then broken at entry %d (modified), then ok again" % k)
    stop(proc, err_path, "Bob")


if __name__ == "__main__":
    main(test)
