#!/usr/bin/env python3
"""
refuge desk (issue 9): the caseworker's web UI, served by their own client on
127.0.0.1, is reachable only by the browser holding the one-time link, and
does what the CLI does.

A real server, a real team (Alice, Bob), a person who writes a message with
<script> and quotes in it and a file with a hostile name. Alice starts
`refuge desk --no-open --port P` (passphrase from REFUGE_PASSPHRASE_FILE, as
every client test feeds it) and the test reads the link from its output.

Refused, each with 403 and nothing of the board: no token; a wrong token;
the right token under a wrong Host (DNS rebinding; the token stays unspent);
then, after the token is traded, the same token replayed; a request with the
session cookie but a wrong Host; one with a foreign Origin; a POST without
the CSRF token, and one with it but from a foreign Origin. The session cookie
is HttpOnly, SameSite=Strict, host-only, Path=/, without Expires; the redirect
after the trade carries no token. The desk listens on 127.0.0.1 only
(/proc/net/tcp and tcp6). Every page carries the strict CSP and no-store.

Then Alice syncs from the desk, sees the new case (marked new and unread) on
the board, filters it by stage and text, opens it, reads the message (the
hostile text and file name escaped: no <script element, no raw attribute
break-out), replies (signed: shown as Alice's) and moves it to "verifying".
Bob's CLI sees the stage after `refuge sync`; the person reads the reply over
HTTP. Lock ends the desk: the page says locked and the process exits.
"""
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (BIN, Browser, Person, Server, check, free_port, log, main, make_team,
                 on_cleanup, sanitizer_report)

HOSTILE = '<script>alert("x")</script> "quoted" \'single\' <img src=x onerror=alert(1)>'
HOSTILE_NAME = "'><img src=x onerror=alert(2)><script>.txt"


def start_desk(member, port, extra=("--sync-every", "0")):
    out_path = os.path.join(member.home, "desk.out")
    err_path = os.path.join(member.home, "desk.err")
    out, err = open(out_path, "wb"), open(err_path, "wb")
    proc = subprocess.Popen([BIN, "desk", "--no-open", "--port", str(port)] + list(extra),
                            env=member.env, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=err)
    out.close()
    err.close()

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    on_cleanup(stop)
    deadline = time.time() + 120
    url = None
    while time.time() < deadline and url is None:
        with open(out_path, encoding="utf-8", errors="replace") as f:
            m = re.search(r"(http://127\.0\.0\.1:%d/open\?t=[A-Za-z0-9_-]+)" % port, f.read())
        if m:
            url = m.group(1)
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.1)
    check(url, "refuge desk printed its link",
          open(out_path, errors="replace").read() + open(err_path, errors="replace").read())
    return proc, url, out_path, err_path


def listening(port):
    """Local addresses (hex, as /proc/net/tcp writes them) listening on port."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":
                found.append(addr)
    return found


def refused(resp, what):
    check(resp.status == 403, "%s is refused (403), not %d" % (what, resp.status), resp.text[:400])
    check("rf_desk" not in " ".join(resp.header_all("set-cookie")),
          "%s gets no session cookie" % what)
    check('name="csrf"' not in resp.text and "/case/" not in resp.text,
          "%s shows nothing of the desk" % what, resp.text[:400])


def headers_ok(resp, what, board=False):
    csp = resp.header("content-security-policy") or ""
    for part in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"):
        check(part in csp, "%s: CSP has %s" % (what, part), csp)
    if board:  # the board's one script, by its path (desk_live.c; test_desk_live.py)
        csp, n = re.subn(r"; script-src http://127\.0\.0\.1:(\d+)/board\.js "
                         r"http://localhost:\1/board\.js"
                         r"; connect-src 'self'$",
                         "", csp)
        check(n == 1, "%s: CSP allows /board.js and its fetches only" % what, csp)
    check("script-src" not in csp and "http" not in csp and "connect-src" not in csp,
          "%s: CSP allows no script and no other site" % what, csp)
    check(resp.header("cache-control") == "no-store", "%s: Cache-Control no-store" % what)
    check(resp.header("x-frame-options") == "DENY", "%s: X-Frame-Options DENY" % what)
    check(resp.header("referrer-policy") == "same-origin", "%s: no referrer to other sites" % what)


def test():
    srv = Server().init().start()
    alice, bob = make_team(srv, ("Alice", "Bob"))
    person = Person(srv)
    person.new_codename()
    marker = "desk-marker-" + secrets.token_hex(4)
    resp, _ = person.send(HOSTILE + " " + marker, field_text='<b>"field"</b>',
                          files=[(HOSTILE_NAME, "text/plain", b"hello file\n")])
    check(resp.status == 200, "the person's message is sent", resp.text[:600])
    log("a person wrote (hostile text and file name)")

    port = free_port()
    proc, url, out_path, err_path = start_desk(alice, port)
    u = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(u.query)["t"][0]
    check(len(token) == 43, "the token is 32 bytes in base64url (43 characters)", token)
    base = "http://127.0.0.1:%d" % port
    log("desk started: " + base)

    addrs = listening(port)
    check(addrs == ["0100007F"], "the desk listens on 127.0.0.1 only", addrs)

    # ---- refusals before the session
    b = Browser(base)
    refused(b.get("/", follow=False), "the board without a session")
    refused(b.get("/open", follow=False), "/open without a token")
    wrong = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    refused(b.get("/open?t=" + wrong, follow=False), "/open with a wrong token")
    refused(b.request("GET", "/open?t=" + token, headers={"Host": "evil.example:%d" % port}),
            "the right token under a rebound Host")
    refused(b.request("GET", "/open?t=" + token,
                      headers={"Origin": "http://evil.example"}),
            "the right token from a foreign Origin")

    # ---- the trade
    r = b.get("/open?t=" + token, follow=False)
    check(r.status == 303, "the token is traded for a session (303), not %d" % r.status, r.text)
    loc = r.header("location") or ""
    check(token not in loc and "t=" not in loc and loc.startswith("/"),
          "the redirect goes to the desk without the token", loc)
    cookies = [c for c in r.header_all("set-cookie") if c.startswith("rf_desk=")]
    check(len(cookies) == 1, "one session cookie", r.header_all("set-cookie"))
    attrs = [a.strip().lower() for a in cookies[0].split(";")[1:]]
    check("httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs,
          "the cookie is HttpOnly, SameSite=Strict, Path=/", cookies[0])
    check(not any(a.startswith(("domain", "expires", "max-age")) for a in attrs),
          "the cookie is host-only and ends with the browser session", cookies[0])
    check(token not in cookies[0], "the cookie is not the token")
    headers_ok(r, "the trade")

    replay = Browser(base)
    refused(replay.get("/open?t=" + token, follow=False), "the token replayed")

    board = b.get("/", follow=False)
    check(board.status == 200, "the board answers with the session", board.text[:600])
    headers_ok(board, "the board", board=True)
    refused(b.request("GET", "/", headers={"Host": "evil.example:%d" % port}),
            "the session's cookie under a rebound Host")
    refused(b.request("GET", "/", headers={"Host": "127.0.0.1:%d" % (port + 1)}),
            "the session's cookie under another port in Host")
    refused(b.request("GET", "/", headers={"Origin": "http://evil.example"}),
            "a request from a foreign Origin")
    sync_form = board.page.form("/sync")
    check(sync_form is not None, "the board has a Sync button (a form)", board.text[:2000])
    r = b.submit(sync_form, drop=("csrf",), follow=False)
    refused(r, "a POST without the CSRF token")
    r = b.post("/sync", [("csrf", "x" * 43)], follow=False)
    refused(r, "a POST with a wrong CSRF token")
    csrf = dict(sync_form.hidden())["csrf"]
    r = b.request("POST", "/sync", body=urllib.parse.urlencode({"csrf": csrf}).encode(),
                  content_type="application/x-www-form-urlencoded",
                  headers={"Origin": "http://evil.example"})
    refused(r, "a POST with the CSRF token from a foreign Origin")
    log("no token, wrong token, rebound Host, foreign Origin, replay, no/wrong CSRF: refused")

    # ---- sync from the desk, the board
    r = b.submit(sync_form, follow=True)
    check(r.status == 200 and "Synced" in r.text, "Sync now syncs", r.text[:1500])
    links = sorted(set(re.findall(r'href="/case/([a-z0-9]+)', r.text)))
    check(len(links) == 1, "the board lists the new case", r.text[:3000])
    cid = links[0]
    check(re.search(r'class="badge new"', r.text) and re.search(r'class="badge unread"', r.text),
          "the new case is marked new and unread", r.text[:3000])
    r = b.get("/?stage=new&q=" + marker)
    check(cid in r.text, "filter by stage new and by the message's text finds it")
    r = b.get("/?q=nothing-like-this-" + secrets.token_hex(3))
    check(cid not in r.text and "No case matches" in r.text, "a text that matches nothing hides it")
    r = b.get("/?stage=closed")
    check('href="/case/' + cid not in r.text, "filter by another stage hides it")
    r = b.get("/?lang=ru")
    check(r.status == 200 and "Обращения" in r.text, "the board in Russian", r.text[:800])

    # ---- the case: thread, escaping
    r = b.get("/case/" + cid)
    check(r.status == 200, "the case page answers", r.text[:800])
    headers_ok(r, "the case page")
    body = r.text
    check(marker in body, "the person's message is shown", body[:3000])
    check("<script" not in body.lower(), "no <script element in the case page (escaped)")
    check("onerror=alert" not in body.replace("&#61;", "=") or "<img" not in body.lower(),
          "the hostile image tag is text, not an element")
    check("&lt;script&gt;" in body, "the hostile text is shown escaped")
    check("&quot;quoted&quot;" in body and "&#39;single&#39;" in body, "quotes are escaped")
    check("&#39;&gt;&lt;img src&#61;x onerror&#61;alert(2)&gt;&lt;script&gt;.txt" in body,
          "the hostile file name is shown escaped", body[:4000])
    check("hello file" not in body and "11 B" in body, "the file's name and size, not its bytes")
    check("&lt;b&gt;&quot;field&quot;&lt;/b&gt;" in body, "the intake answers are shown, escaped")
    r = b.get("/")
    check("badge unread" not in r.text, "once opened, the case is no longer unread")
    r = b.get("/case/zzzz")
    check(r.status == 404, "an unknown case is 404", r.status)

    # ---- reply
    page = b.get("/case/" + cid)
    f = page.page.form("/case/%s/reply" % cid)
    check(f is not None, "the case page has a reply form", page.text[-2000:])
    reply = "We read you. Reply " + secrets.token_hex(4) + ' <i>"ok"</i>'
    r = b.submit(f, [("text", reply)])
    check(r.status == 200 and "Reply sent" in r.text, "the reply is sent", r.text[:1500])
    check("We read you." in r.text and "&lt;i&gt;" in r.text and "<i>" not in r.text,
          "the reply is in the thread, escaped")
    check(re.search(r"from\s*<strong>Alice</strong>", r.text),
          "the reply shows its verified author", r.text[-3000:])
    empty = b.submit(r.page.form("/case/%s/reply" % cid), [("text", "   ")])
    check("empty" in empty.text, "an empty reply is not sent", empty.text[:1500])

    # ---- stage
    f = r.page.form("/case/%s/stage" % cid)
    check(f is not None, "the case page has a stage selector")
    opts = [o["value"] for o in f.field("stage")["options"]]
    check("verifying" in opts and "new" in opts, "the team's stages are offered", opts)
    r = b.submit(f, [("stage", "verifying")])
    check(r.status == 200 and "Stage changed" in r.text, "the stage is changed", r.text[:1500])
    check(re.search(r"<dd>verifying</dd>", r.text), "the case shows its new stage")
    r2 = b.submit(r.page.form("/case/%s/stage" % cid), [("stage", "no such stage")])
    check("not changed" in r2.text, "an unknown stage is refused", r2.text[:1500])

    # ---- assignee, tags, checklist, due date, note (the same events as the CLI's)
    def event(page, op, value, expect="Saved."):
        forms = [f for f in page.page.forms if f.action.endswith("/case/%s/event" % cid) and
                 dict(f.hidden()).get("op") == op]
        check(forms, "the case page has a form for %s" % op, page.text[-3000:])
        f = forms[0]
        fields = [] if "value" in dict(f.hidden()) else [("value", value)]
        r = b.submit(f, fields)
        check(r.status == 200 and expect in r.text, "%s %r: %s" % (op, value, expect), r.text[:1500])
        return r

    r = event(r, "assign", "Bob")
    r = event(r, "tag", 'urgent <b>"x"</b>')
    check("urgent &lt;b&gt;&quot;x&quot;&lt;/b&gt;" in r.text, "the tag is shown, escaped")
    r = event(r, "check", "passport")
    check('aria-pressed="true">☑ passport' in r.text, "passport is checked on the page")
    r = event(r, "due", "2020-01-02")
    r = event(r, "note", "team note: call the lawyer")
    check("call the lawyer" in r.text, "the note is in the thread")
    r = event(r, "tag", "spare")
    untag = [f for f in r.page.forms if dict(f.hidden()).get("op") == "untag" and
             dict(f.hidden()).get("value") == "spare"]
    check(untag, "each tag has a remove button")
    r = b.submit(untag[0])
    check("Saved." in r.text and ">spare <" not in r.text, "untag removes the tag", r.text[:1500])
    bad = b.post("/case/%s/event" % cid, [("csrf", csrf), ("op", "stages"), ("value", "x")])
    check("Not saved" in bad.text, "an op the desk does not offer (team stages) is refused")
    bad = b.post("/case/%s/event" % cid, [("csrf", csrf), ("op", "due"), ("value", "2020-02-30")])
    check("Not saved" in bad.text, "a date that does not exist is refused")
    board = b.get("/")
    check(re.search(r'class="overdue"[^<]*Due: 2020-01-02 \(overdue\)', board.text),
          "the board highlights the passed due date", board.text[-2500:])
    r = b.get("/?assignee=Bob")
    check('href="/case/' + cid in r.text, "filter by assignee finds the case")
    r = b.get("/?tag=spare")
    check('href="/case/' + cid not in r.text, "filter by a removed tag does not")
    log("assign, tag, untag, check, due, note from the desk")

    bob.run("sync")
    shown = bob.json("show", cid, "--json")
    st = shown["state"]
    check(st["stage"] == "verifying", "Bob's CLI sees the stage after sync", st)
    check(st["assigned"] == ["Bob"] and st["tags"] == ['urgent <b>"x"</b>'] and
          st["due"] == "2020-01-02" and st["checklist"].get("passport") is True,
          "Bob's CLI sees the assignee, tag, due date and checklist", st)
    check(any(it.get("op") == "note" and "call the lawyer" in it.get("value", "")
              for it in shown["items"]), "Bob's CLI sees the note")
    check(any(it.get("kind") == "reply" and it.get("author") == "Alice" and
              it.get("author_verified") is True for it in shown["items"]),
          "Bob sees Alice's signed reply", shown["items"])
    person.login()
    inbox = person.inbox()
    check("We read you." in inbox.text, "the person reads the reply", inbox.text[:2000])
    log("reply and stage from the desk reach the person and Bob")

    # ---- lock
    r = b.get("/")
    lock = r.page.form("/lock")
    check(lock is not None, "the board has a Lock button")
    r = b.submit(lock, follow=False)
    check(r.status == 200 and "locked" in r.text.lower(), "Lock answers with the locked page",
          r.text[:600])
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the desk did not exit after Lock")
    out = open(out_path, errors="replace").read()
    err = open(err_path, errors="replace").read()
    check(rc == 0 and "locked" in out, "the desk exits after Lock and says so", out + err)
    rep = sanitizer_report(err)
    check(rep is None, "no sanitizer report from the desk", rep)
    check("REFUSED" in err, "refusals are loud on the terminal", err[-1500:])
    check(marker not in out + err and "We read you" not in out + err,
          "the terminal shows no plaintext of the case")
    log("Lock: the desk forgot its keys and exited")

    # ---- a second desk: background sync, then the idle lock
    port2 = free_port()
    proc2, url2, out2, err2 = start_desk(bob, port2, ("--sync-every", "1", "--idle-lock", "5s"))
    b2 = Browser("http://127.0.0.1:%d" % port2)
    u2 = urllib.parse.urlsplit(url2)
    check(b2.get(u2.path + "?" + u2.query).status == 200, "Bob's desk opens with its link")
    check(url2.split("t=")[1] != token, "each desk start makes a new token")
    deadline = time.time() + 30
    page = b2.get("/")
    while "Last sync:" not in page.text and time.time() < deadline:
        time.sleep(0.5)
        page = b2.get("/")
    check("Last sync:" in page.text, "the background sync ran and its time is shown",
          page.text[:1500])
    t0 = time.time()
    try:
        rc = proc2.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("the desk did not lock itself when idle")
    out = open(out2, errors="replace").read()
    check(rc == 0 and "locked after 5 seconds without use" in out,
          "the idle desk locks itself, forgets its keys and exits", out)
    check(time.time() - t0 < 20, "the idle lock came in time (%.1fs)" % (time.time() - t0))
    rep = sanitizer_report(open(err2, errors="replace").read())
    check(rep is None, "no sanitizer report from the idle desk", rep)
    log("idle lock after 5 s; background sync shown")


if __name__ == "__main__":
    main(test)
