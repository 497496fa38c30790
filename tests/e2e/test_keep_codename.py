#!/usr/bin/env python3
"""
Keeping the codename, and a line that is not open yet (issue 7).

  - Before any caseworker enrolls, the landing page says plainly that the
    line is not open (in English and Russian) and offers no codename; GET and
    POST /new (and the practise step) answer 503 with Retry-After, an HTML
    page in the person's language; nothing is stored. The moment the first
    admin enrolls through the API the line is open, and it stays open after
    a restart (read from the store at start).
  - After the codename is shown, the person may type it back: right (case and
    spacing do not matter) says so; word 3 wrong says "word 3" and nothing
    about the other words; missing words are counted; an empty, over-long or
    unreadable answer gets its own clear page. The typed text is never put
    back into a page, and nothing is stored (the store snapshot does not
    change) nor written anywhere (the typed words are neither in the
    server's output nor in its data directory). "Show the words again" shows
    the same words; going on from the practise page logs the person in with
    that codename, and it logs in again later.
  - A roster stored by another process (a second server on the same store)
    opens a closed server's line within seconds, without a restart.
  - The safety page, linked from the landing page, tells in each language
    how to connect where Tor is blocked (built-in bridges: Snowflake,
    WebTunnel, obfs4; bridges.torproject.org, @GetBridgesBot,
    bridges@torproject.org) and how to check the onion address.
"""
import os
import re
import secrets
import sqlite3
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (REPO, Browser, Person, Server, check, encodings, enroll_first_admin,
                 find_codename, log, main, search_tree, snapshot_diff, store_snapshot)
import lib  # noqa: E402  (lib.open_db: the database on either backend)


def catalogue(lang):
    """po/<lang>.po as {msgid: msgstr}."""
    out, mid, cur = {}, None, None
    with open(os.path.join(REPO, "po", lang + ".po"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("msgid "):
                mid, cur = eval(line[6:]), "id"
            elif line.startswith("msgstr "):
                out[mid], cur = eval(line[7:]), "str"
            elif line.startswith('"') and cur == "str":
                out[mid] += eval(line)
            elif line.startswith('"') and cur == "id":
                mid += eval(line)
    return out


CAT = {"en": catalogue("en"), "ru": catalogue("ru")}


def t(lang, msgid, **vals):
    s = CAT[lang][msgid]
    for k, v in vals.items():
        s = s.replace("{{v:%s}}" % k, str(v))
    return re.sub(r"\s+", " ", s).strip()


def shows(resp, lang, msgid, **vals):
    return t(lang, msgid, **vals) in resp.page.text


def check_not_open(resp, lang, what):
    check(resp.status == 503, "%s answers 503 while the line is not open (got %d)" %
          (what, resp.status), resp.text[:800])
    check(resp.header("retry-after"), "%s while not open carries Retry-After" % what,
          resp.headers)
    check("text/html" in (resp.header("content-type") or ""),
          "%s while not open is an HTML page" % what, resp.headers)
    check(shows(resp, lang, "err.notopen.text"),
          "%s while not open says so in %s" % (what, lang), resp.page.text[:800])
    check(find_codename(resp.page) is None, "%s while not open shows no codename" % what,
          resp.page.text[:800])


def practise_form(resp, what):
    f = resp.page.form("/new/check")
    check(f is not None, "%s has a form posting to /new/check" % what,
          [repr(x) for x in resp.page.forms])
    return f


def shown_words(words, text, baseline):
    """The codename's words that stand as whole words in a page's text and not
    in the same page made for another codename (whose own words can only be
    there by chance)."""
    def has(t, w):
        return re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", t, re.IGNORECASE) is not None
    return [w for w in words if has(text, w) and not has(baseline, w)]


def typed_value_echoed(resp):
    """The value attributes of every visible field of the page."""
    return [i["value"] for f in resp.page.forms for i in f.inputs
            if i["type"] not in ("hidden",) and i["value"]]


def practise(srv, lang):
    """Gets a codename in lang and practises it every way; returns what was
    typed (for the searches) and the person (to go on)."""
    b = Browser(srv.url, lang=lang)
    r = b.get("/new")
    check(r.status == 200, "GET /new (%s) answers 200 once the line is open" % lang, r.text[:500])
    codename = find_codename(r.page)
    check(codename, "GET /new (%s) shows a codename" % lang, r.page.text[:800])
    for msgid in ("new.keep.learn", "new.keep.phone", "new.keep.paper", "new.keep.forget",
                  "new.practise", "new.continue"):
        check(shows(r, lang, msgid), "the codename page (%s) shows %s" % (lang, msgid),
              r.page.text[:2000])
    check(r.page.form("/new") is not None, "the codename page still lets a person in a hurry "
          "go straight on (a form posting to /new)", [repr(x) for x in r.page.forms])
    words = codename.split(" ")

    # to the practise step: the words are not on this page
    r = b.submit(practise_form(r, "the codename page"))
    check(r.status == 200, "POST /new/check from the codename page answers 200", r.text[:800])
    check(shows(r, lang, "check.heading") and shows(r, lang, "check.intro"),
          "the practise page (%s) says what to do" % lang, r.page.text[:800])
    # the page's own text may hold a codename word by chance ("line"): such a
    # word is shown for any other codename too, so it is measured against the
    # same page made for another codename
    other = Browser(srv.url, lang=lang)
    other_r = other.submit(practise_form(other.get("/new"), "another codename page"))
    check(not shown_words(words, r.page.text, other_r.page.text),
          "the practise page does not show the codename's words",
          (shown_words(words, r.page.text, other_r.page.text), r.page.text[:800]))
    f = practise_form(r, "the practise page")
    check(f.field("typed") is not None, "the practise form has a field to type into", repr(f))
    check(r.page.form("/new") is not None and r.page.form("/new/show") is not None,
          "the practise page lets the person go on or see the words again",
          [repr(x) for x in r.page.forms])

    typed = []

    def attempt(text, status=200):
        typed.append(text)
        resp = b.submit(f, [("typed", text)])
        check(resp.status == status, "POST /new/check answers %d (got %d)" % (status, resp.status),
              resp.text[:800])
        check(text.strip() == "" or text not in resp.text,
              "the practise page does not put back what was typed", resp.text[:800])
        check(not typed_value_echoed(resp), "no field comes back filled in",
              typed_value_echoed(resp))
        return resp

    # right, whatever the case and spacing
    r = attempt("  " + codename.upper().replace(" ", "   ") + "\t")
    check(shows(r, lang, "check.right"), "the codename typed right (other case, extra spaces) "
          "is recognised (%s)" % lang, r.page.text[:800])
    check(r.page.form("/new") is not None, "after a right answer the person can go on",
          [repr(x) for x in r.page.forms])

    # word 3 wrong: only its position is named
    marker = "zq" + secrets.token_hex(5)
    wrong = list(words)
    wrong[2] = marker
    r = attempt(" ".join(wrong))
    check(shows(r, lang, "check.wrong") and shows(r, lang, "check.word", n=3),
          "word 3 typed wrong: the page names word 3 (%s)" % lang, r.page.text[:800])
    for n in (1, 2, 4, 5, 6, 7):
        check(not shows(r, lang, "check.word", n=n),
              "word 3 typed wrong: the page says nothing of word %d" % n, r.page.text[:800])
    check(not shows(r, lang, "check.right"), "a wrong answer is not called right",
          r.page.text[:800])
    other_wrong = other.submit(practise_form(other_r, "another practise page"),
                               [("typed", " ".join(wrong))])
    check(not shown_words(words, r.page.text, other_wrong.page.text),
          "a wrong answer does not give away the codename's words",
          (shown_words(words, r.page.text, other_wrong.page.text), r.page.text[:800]))
    check(not shows(r, lang, "check.count", total=7, typed=7),
          "seven words typed: no word count complaint", r.page.text[:800])

    # two words swapped: both positions
    sw = list(words)
    sw[3], sw[4] = sw[4], sw[3]
    r = attempt(" ".join(sw))
    check(shows(r, lang, "check.word", n=4) and shows(r, lang, "check.word", n=5) and
          not shows(r, lang, "check.word", n=3),
          "words 4 and 5 swapped: the page names words 4 and 5 only", r.page.text[:800])

    # five words: the last two are missing, and counted
    r = attempt(" ".join(words[:5]))
    check(shows(r, lang, "check.count", total=7, typed=5) and
          shows(r, lang, "check.word", n=6) and shows(r, lang, "check.word", n=7),
          "five words typed: the page says 7 words, 5 typed, words 6 and 7", r.page.text[:800])

    # empty, too long, unreadable: clear answers, the form still there
    r = attempt("")
    check(shows(r, lang, "check.empty"), "an empty answer asks to type the words first",
          r.page.text[:800])
    practise_form(r, "the page after an empty answer")
    r = attempt("слово " * 50 if lang == "ru" else "word " * 120, status=413)
    check(shows(r, lang, "check.toolong"), "an over-long answer (413) says it is too long",
          r.page.text[:800])
    practise_form(r, "the page after an over-long answer")
    fields = [(n, v) for n, v in f.hidden()]
    body = (urllib.parse.urlencode(fields) + "&typed=%FF%FE%00abc").encode()
    r = b.request("POST", "/new/check", body=body,
                  content_type="application/x-www-form-urlencoded")
    check(r.status == 400 and shows(r, lang, "check.unreadable"),
          "an answer that is not UTF-8 is answered 400 'could not be read' (got %d)" % r.status,
          r.text[:800])

    # refusals: no token, a pending text not made here
    r = b.submit(f, [("typed", codename)], drop=("csrf",))
    check(r.status == 403, "POST /new/check without its CSRF token is refused (403, got %d)" %
          r.status, r.text[:500])
    bad = [(n, ("A" * len(v) if n == "pending" else v)) for n, v in f.hidden()]
    r = b.post("/new/check", bad + [("typed", codename)])
    check(r.status == 410 and shows(r, lang, "err.expired.text"),
          "a pending codename not made by this server is answered 'expired' (410, got %d)" %
          r.status, r.text[:500])
    typed.append(codename)

    # the words again: the same ones
    r = b.submit(r_show_form(b, f))
    check(r.status == 200 and find_codename(r.page) == codename,
          "'Show the words again' shows the same codename", r.page.text[:800])
    return b, codename, typed, marker, r


def r_show_form(b, f):
    """The /new/show form of the practise page (same hidden fields as f)."""
    r = b.submit(f, [("typed", "")])
    g = r.page.form("/new/show")
    check(g is not None, "the practise page has a 'show the words again' form",
          [repr(x) for x in r.page.forms])
    return g


def test():
    srv = Server().init().start()
    log("server on %s; no caseworker enrolled yet" % srv.url)
    before = store_snapshot(srv.data)

    # ---- the line is not open yet
    for lang in ("en", "ru"):
        b = Browser(srv.url, lang=lang)
        r = b.get("/")
        check(r.status == 200, "GET / (%s) answers 200" % lang, r.text[:500])
        check(shows(r, lang, "landing.closed.title") and shows(r, lang, "landing.closed.text"),
              "the landing page (%s) says the line is not open yet" % lang, r.page.text[:1500])
        check('href="/new"' not in r.text and not shows(r, lang, "landing.new"),
              "the landing page (%s) offers no codename while the line is not open" % lang,
              r.text[:2000])
        check_not_open(b.get("/new"), lang, "GET /new (%s)" % lang)
        login = b.get("/login").page.form("/login")
        csrf = dict(login.hidden()).get("csrf")
        check_not_open(b.post("/new", [("csrf", csrf), ("pending", "A" * 400)]), lang,
                       "POST /new (%s)" % lang)
        check_not_open(b.post("/new/check", [("csrf", csrf), ("pending", "A" * 400),
                                             ("typed", "a b c")]), lang,
                       "POST /new/check (%s)" % lang)
    diff = snapshot_diff(before, store_snapshot(srv.data))
    check(diff is None, "nothing is stored while the line is not open", diff)

    # ---- the first admin enrolls: open at once
    enroll_first_admin(srv)
    for lang in ("en", "ru"):
        r = Browser(srv.url, lang=lang).get("/")
        check(not shows(r, lang, "landing.closed.title") and 'href="/new"' in r.text,
              "right after the first admin enrolls, the landing page (%s) offers a codename" %
              lang, r.page.text[:1500])
    log("the line opened when the first admin enrolled")

    # ---- practising, in both languages: nothing stored, nothing written
    before = store_snapshot(srv.data)
    typed_all, markers = [], []
    for lang in ("en", "ru"):
        b, codename, typed, marker, shown = practise(srv, lang)
        typed_all += typed
        markers.append(marker)
        log("practised a %s codename: right, word 3, swapped, missing, empty, long, bad" % lang)
    diff = snapshot_diff(before, store_snapshot(srv.data))
    check(diff is None, "practising a codename stores nothing", diff)

    # ---- going on from the practise page: the account is made then
    r = b.submit(practise_form(shown, "the codename page shown again"))
    r = b.submit(r.page.form("/new"))
    check(r.status == 200 and r.url.split("?")[0].endswith("/inbox"),
          "'Continue' on the practise page logs the person in (inbox)", (r.status, r.url))
    p = Person(srv, lang="ru")
    p.codename = codename
    r = p.login()
    check(r.status == 200 and r.url.split("?")[0].endswith("/inbox"),
          "the practised codename logs in again later", (r.status, r.url, r.page.text[:500]))

    # ---- the typed words are nowhere on disk nor in the server's output
    srv.stop_clean()
    needles = []
    for m in markers:
        needles += [("a word typed by mistake", label, pat) for label, pat in encodings(m)]
    hits, files, total = search_tree([srv.data], needles)
    out = srv.output()
    hits += ["%s (%s) in the server's output" % (w, l) for w, l, pat in needles if pat in out]
    for s in typed_all:
        if len(s.strip()) >= 12 and s.encode() in out:
            hits.append("a typed answer in the server's output")
    check(not hits, "what the person typed is written nowhere (%d files, %d bytes searched)" %
          (files, total), hits[:10])

    # ---- a roster stored by another process (e.g. another `refuge serve` on the
    # same store): a closed server notices within its few-second re-check
    other = Server().init().start()
    check(shows(Browser(other.url, lang="en").get("/"), "en", "landing.closed.title"),
          "a second instance starts closed")
    con = lib.open_db(srv)
    roster = con.execute("SELECT version, raw FROM rosters").fetchall()
    con.close()
    con = lib.open_db(other)
    con.executemany("INSERT INTO rosters(version, raw) VALUES (?, ?)", roster)
    con.commit()
    con.close()
    deadline, opened = time.time() + 10, False
    while time.time() < deadline and not opened:
        r = Browser(other.url, lang="en").get("/")
        opened = 'href="/new"' in r.text and not shows(r, "en", "landing.closed.title")
        time.sleep(0.2)
    check(opened, "a roster stored behind the server's back opens the line within seconds")
    check(Browser(other.url, lang="en").get("/new").status == 200,
          "and /new hands out codenames then")
    other.stop_clean()

    # ---- after a restart the line is open from the store
    srv.restart()
    r = Browser(srv.url, lang="en").get("/")
    check(not shows(r, "en", "landing.closed.title") and 'href="/new"' in r.text,
          "after a restart the landing page knows the line is open", r.page.text[:1500])

    # ---- the safety page
    for lang in ("en", "ru"):
        b = Browser(srv.url, lang=lang)
        r = b.get("/")
        check('href="/safety"' in r.text and shows(r, lang, "landing.safety.more"),
              "the landing page (%s) links to the safety page" % lang, r.text[:2000])
        r = b.get("/safety")
        check(r.status == 200, "GET /safety (%s) answers 200" % lang, r.text[:500])
        for msgid in ("safety.blocked.heading", "safety.blocked.builtin",
                      "safety.blocked.request", "safety.address.heading",
                      "safety.address.compare", "safety.address.lookalike"):
            check(shows(r, lang, msgid), "the safety page (%s) shows %s" % (lang, msgid),
                  r.page.text[:3000])
        for name in ("Snowflake", "WebTunnel", "obfs4", "bridges.torproject.org",
                     "@GetBridgesBot", "bridges@torproject.org", ".onion"):
            check(name in r.page.text, "the safety page (%s) names %s" % (lang, name),
                  r.page.text[:3000])
        check(len(r.body) < 20000 and "<script" not in r.text and "http" not in
              re.sub(r'content="[^"]*"', "", r.text),
              "the safety page is small, has no script and links nowhere else",
              len(r.body))
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
