#!/usr/bin/env python3
"""
The board's automatic refresh (issue 9, docs/desk.md "Automatic refresh"),
over HTTP (its behaviour in a browser: tests/browser/desk.mjs):

- /board.js is the desk's one script: text/javascript, nosniff, served by
  the desk itself; the board page loads it with <script src="/board.js">
  (no inline script, no nonce) and its CSP allows exactly that file (by its
  path) and fetches from the desk ('self'); every other page (case, team,
  a file page, an error page) still allows no script at all;
- the board carries its change mark (data-mark) and /board/changes answers
  the same mark as JSON until something arrives; after the person writes
  again and the background sync brings it, the mark differs; the board
  rendered then carries the new mark and the new message's case;
- /board/changes and the board fetched with X-Refuge-Refresh are not use
  of the desk: asked every half second, they do not hold off the idle lock;
  neither is reachable without the session (403).
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Browser, Person, Server, check, free_port, log, main, make_team, sanitizer_report
from test_desk import start_desk


def csp_of(resp):
    return resp.header("content-security-policy") or ""


def test():
    srv = Server().init().start()
    (alice,) = make_team(srv, ("Alice",))
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("first message")
    check(resp.status == 200, "the person writes", resp.text[:400])

    port = free_port()
    proc, url, out_path, err_path = start_desk(alice, port,
                                               ("--sync-every", "1", "--idle-lock", "6s"))
    base = "http://127.0.0.1:%d" % port
    outsider = Browser(base)
    for path in ("/board/changes", "/board.js"):
        r = outsider.get(path)
        check(r.status == 403 and b"mark" not in r.body and b"fetch" not in r.body,
              "%s without the session is refused" % path, (r.status, r.body[:200]))
    b = Browser(base)
    check(b.get(url[len(base):]).status == 200, "the desk opens with its link")

    # ---- the script and the board's policy
    js = b.get("/board.js")
    check(js.status == 200 and js.header("content-type") == "text/javascript; charset=utf-8",
          "/board.js is served as a script", (js.status, js.headers))
    check(js.header("x-content-type-options") == "nosniff", "/board.js: nosniff")
    check(b"/board/changes" in js.body and b"X-Refuge-Refresh" in js.body and
          b"eval(" not in js.body and b"innerHTML" not in js.body,
          "the script asks /board/changes and builds nothing from strings")
    deadline = time.time() + 30
    board = b.get("/")
    while "first message" not in board.text and time.time() < deadline:
        time.sleep(0.5)
        board = b.get("/")
    scripts = re.findall(r"<script[^>]*>", board.text, re.I)
    check(scripts == ['<script src="/board.js" defer>'],
          "the board's only script element is /board.js (no inline script)", scripts)
    check(re.search(r"<script[^>]*>\s*</script>", board.text) is not None, "and it is empty")
    csp = csp_of(board)
    check(("script-src http://127.0.0.1:%d/board.js http://localhost:%d/board.js;" % (port, port))
          in csp and "'unsafe-inline'" not in csp and "nonce" not in csp and
          "connect-src 'self'" in csp and "default-src 'none'" in csp,
          "the board's CSP allows that one file, by its path, and fetches from the desk", csp)
    cid = re.findall(r'href="/case/([a-z0-9]+)', board.text)[0]
    for path in ("/case/" + cid, "/team", "/nothing-here", "/board/changes"):
        r = b.get(path)
        check("script-src" not in csp_of(r) and "connect-src" not in csp_of(r) and
              "<script" not in r.text.lower(),
              "%s allows and has no script" % path, csp_of(r))

    # ---- the change mark
    m = re.search(r'id="board-live" data-mark="([0-9.]+)"', board.text)
    check(m is not None, "the board carries its change mark", board.text[-1500:])
    mark = m.group(1)
    ch = b.get("/board/changes")
    check(ch.status == 200 and ch.header("content-type") == "application/json",
          "/board/changes answers JSON", (ch.status, ch.headers))
    check(json.loads(ch.body) == {"mark": mark}, "the same mark while nothing changed",
          (ch.body, mark))
    time.sleep(2.5)  # background syncs that bring nothing
    check(json.loads(b.get("/board/changes").body)["mark"] == mark,
          "a sync that brings nothing leaves the mark")
    resp, _ = person.send("second message")
    check(resp.status == 200, "the person writes again")
    deadline = time.time() + 30
    new = mark
    while new == mark and time.time() < deadline:
        time.sleep(0.3)
        new = json.loads(b.get("/board/changes").body)["mark"]
    check(new != mark, "after the background sync brought it, the mark changed", (mark, new))
    board = b.get("/", )
    check('data-mark="%s"' % new in board.text, "the board rendered now carries the new mark")
    log("script and CSP; mark %s -> %s after a background sync" % (mark, new))

    # ---- the script's requests do not hold off the idle lock
    t0 = time.time()
    locked = False
    while time.time() - t0 < 40:
        try:
            b.get("/board/changes")
            b.request("GET", "/", headers={"X-Refuge-Refresh": "1"})
        except Exception:
            pass
        if proc.poll() is not None:
            locked = True
            break
        time.sleep(0.5)
    check(locked, "polling /board/changes and refreshing the board do not keep the desk open")
    out = open(out_path, errors="replace").read()
    check(proc.returncode == 0 and "locked after 6 seconds without use" in out,
          "the desk locked itself for idleness while the script polled", out[-800:])
    check(time.time() - t0 < 25, "the idle lock came in time (%.1fs)" % (time.time() - t0))
    rep = sanitizer_report(open(err_path, errors="replace").read())
    check(rep is None, "no sanitizer report from the desk", rep)
    log("idle lock while the script polls; refused without the session")
    srv.check_sanitizers()


if __name__ == "__main__":
    main(test)
