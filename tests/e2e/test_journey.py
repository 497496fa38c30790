#!/usr/bin/env python3
"""
The whole journey over the wire, as DESIGN.md tells it: a real server, the
person's pages over HTTP, the real staff CLI.
  server init -> the first admin enrolls (`refuge init`) -> a person gets a
  codename, fills the intake form, sends a message and a 20 MB file -> the
  caseworker syncs, reads the message, gets the file back byte for byte,
  replies -> the person logs in again with the codename, reads the reply,
  deletes it, leaves with quick exit. Wrong codenames all get one answer.
"""
import os
import re
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Browser, Person, Server, Staff, case_ids, check, json_strings,
                 log, main, sha256, sha256_file, tempdir, visible_text_fields)


def normalize_tokens(page_text, form):
    """The body with every hidden field's value blanked (CSRF tokens differ)."""
    out = page_text
    for name, value in form.hidden() if form else []:
        if value:
            out = out.replace(value, "HIDDEN")
    return re.sub(r'value="[A-Za-z0-9_\-=+/]{20,}"', 'value="HIDDEN"', out)


def test():
    srv = Server().init().start()
    log("server on %s, token %s..." % (srv.url, srv.token[:6]))

    # the first admin enrolls with the token server init printed
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")
    log("Alice enrolled")

    # the person: landing, codename, continue
    person = Person(srv)
    person.new_codename()
    codename = person.codename
    check(len(codename.split()) == 7, "the codename has 7 words", codename)
    inbox = person.inbox()
    form = inbox.page.form("/send")
    check(form is not None, "/inbox shows a form posting to /send", inbox.text[:2000])
    choices = [i for i in form.inputs if i["type"] in ("radio", "checkbox", "select")]
    check(choices, "the first /inbox shows the intake form (questions with choices)", repr(form))
    check("multipart" in form.enctype, "the /send form is multipart (file upload)", form.enctype)

    message = "Hello, I need help to leave. Привет! <b>&amp;</b> " + secrets.token_hex(8)
    data = os.urandom(20 * 1024 * 1024)
    resp, chosen = person.send(message, files=[("passport-scan.jpg", "image/jpeg", data)],
                               inbox=inbox)
    check(resp.status == 200, "POST /send (message + 20 MB file) answered %d" % resp.status,
          resp.text[:1500])
    check("error" not in resp.page.title.lower(), "POST /send shows no error page",
          resp.page.text[:1500])
    log("person sent a message with %d intake answers and a 20 MB file" % len(chosen))

    # the caseworker
    alice.run("sync")
    cases = alice.json("cases", "--json")
    ids = case_ids(cases)
    check(len(ids) == 1, "`refuge cases --json` lists exactly one case", cases)
    case = ids[0]
    shown = alice.json("show", case, "--json")
    strings = json_strings(shown)
    check(message in strings, "`refuge show --json` has the message text, exactly",
          strings[:40])
    choice_names = {i["name"] for i in choices}
    for name, value in chosen.items():
        if name in choice_names:
            found = value in strings or any(value in s for s in strings if len(s) < 200)
            check(found, "the intake answer %s=%s is in `refuge show --json`" % (name, value),
                  strings[:60])
    out = tempdir("refuge-files-")
    alice.run("files", case, "--out", out)
    got = []
    for d, _, names in os.walk(out):
        for n in names:
            p = os.path.join(d, n)
            got.append((n, os.path.getsize(p), sha256_file(p)))
    want = sha256(data)
    check(any(h == want for _, _, h in got),
          "`refuge files` wrote the 20 MB file back byte for byte (sha256 %s)" % want[:16], got)
    log("files: %s" % [(n, s) for n, s, _ in got])

    reply = "We have read your message. Ответ: <i>держитесь</i> & " + secrets.token_hex(6)
    alice.run("reply", case, "-m", reply)
    log("Alice replied")

    # the person comes back with the codename (new cookie jar)
    r = person.login(codename)
    check(r.status == 200, "POST /login with the codename answered %d" % r.status, r.text[:800])
    r = person.inbox()
    check(reply in r.page.text, "the reply shows on /inbox, escaped and exact", r.page.text[:3000])
    check("<i>держитесь</i>" not in r.text, "reply text is HTML-escaped on /inbox")
    check(message not in r.page.text,
          "what the person sent is not shown back to whoever has the codename")
    delete = r.page.form("/reply/delete")
    check(delete is not None, "/inbox has a form to delete the reply", r.text[:3000])
    r = person.b.submit(delete)
    check(r.status == 200, "POST /reply/delete answered %d" % r.status, r.text[:800])
    r = person.inbox()
    check(reply not in r.page.text, "the deleted reply is gone from /inbox", r.page.text[:2000])

    # the person writes again: a plain message form now, no intake
    f = r.page.form("/send")
    check(f is not None, "/inbox has the message form after the first contact", r.text[:2000])
    check(not any(i["type"] in ("radio", "checkbox", "select") for i in f.inputs),
          "after the first message the form asks the intake questions no more", repr(f))
    second = "Second message, " + secrets.token_hex(6)
    resp, _ = person.send(second, inbox=r)
    check(resp.status == 200, "POST /send (second message) answered %d" % resp.status,
          resp.text[:800])
    alice.run("sync")
    strings = json_strings(alice.json("show", case, "--json"))
    check(second in strings and message in strings,
          "the caseworker sees both messages in the case", strings[:40])
    r = person.inbox()

    # quick exit ends the session
    old_cookies = dict(person.b.cookies)
    check(old_cookies, "a logged-in person has a session cookie")
    r = person.b.request("GET", "/exit")
    check(r.status in (200, 302, 303), "GET /exit answered %d" % r.status, r.text[:500])
    r = person.b.request("GET", "/inbox")
    loc = r.header("location") or ""
    check(r.status in (302, 303) and "/login" in loc,
          "after /exit, /inbox redirects to /login (got %d, Location %r)" % (r.status, loc))
    # the old cookie, replayed (a copy an attacker kept), is dead too
    replay = Browser(srv.url)
    replay.cookies = old_cookies
    r = replay.request("GET", "/inbox")
    check(r.status in (302, 303) and "/login" in (r.header("location") or ""),
          "after /exit, the old session cookie no longer opens /inbox (got %d)" % r.status)
    log("quick exit ended the session")

    # a caseworker sees the reply deleted or not, but the case remains
    alice.run("sync")

    # wrong codenames: one generic answer, same bytes but the CSRF token
    words = codename.split()
    wrong1 = " ".join(words[1:] + words[:1])
    wrong2 = " ".join(reversed(words))
    answers = []
    for wrong in (wrong1, wrong2):
        b = Browser(srv.url)
        r = b.get("/login")
        f = r.page.form("/login")
        name = visible_text_fields(f)[0]["name"]
        r = b.submit(f, [(name, wrong)])
        check(r.status in (200, 401, 403), "a wrong codename gets a page (status %d)" % r.status,
              r.text[:500])
        check(wrong not in r.text, "the answer to a wrong codename does not echo it")
        answers.append((r.status, normalize_tokens(r.text, r.page.form("/login")), r.page.text))
        check(b.request("GET", "/inbox").status in (302, 303),
              "a wrong codename gives no session")
    check(answers[0][0] == answers[1][0], "two wrong codenames get the same status",
          (answers[0][0], answers[1][0]))
    check(answers[0][2] == answers[1][2], "two wrong codenames get the same message",
          (answers[0][2][:500], answers[1][2][:500]))
    check(answers[0][1] == answers[1][1],
          "two wrong codenames get the same page apart from the CSRF token")
    log("wrong codenames: same answer")

    srv.stop_clean()


if __name__ == "__main__":
    main(test)
