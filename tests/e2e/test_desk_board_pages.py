#!/usr/bin/env python3
"""
The desk's board with many cases (issue 9): 100 cases a page, the counts per
stage still over all cases, page links that keep the filters, and a board
that follows every change at once although the desk keeps the listing
between requests.

A real server and team (Alice, Bob), two people who write (two real cases);
Alice's local case database then gets 250 more cases and 500 signed, sealed
events from bench/deskfill.c (the objects verified and digested by the
client's own code; those cases exist only on this computer). Alice's `refuge desk`:
- GET / shows "All (252)" and per-stage counts adding up to 252, 100 case
  links, "Page 1 / 3" and a Next link (an <a>, keyboard-usable) and no
  Previous; page 3 shows 52 cases and a Previous link; page 9 is past the
  end and says so with a link back to the first page; a non-number page is
  page 1;
- a stage filter pages within its stage and its links keep the stage;
- opening a case clears its unread mark on the board;
- a stage changed from the desk shows on the board at once, and so does one
  changed by Alice's CLI (another process, same home) while the desk runs.
"""
import html
import json
import os
import re
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import BIN, Browser, Person, Server, check, free_port, log, main, make_team  # noqa: E402
from test_desk import start_desk  # noqa: E402

FILL = os.path.join(os.path.dirname(BIN), "bench", "refuge-bench-deskfill")
NCASES, NEVENTS = 250, 500


def case_ids(text):
    return re.findall(r'<a class="id" href="/case/([a-z0-9]+)\?', text)


def counts(text):
    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'href="/\?stage=([^"&]+)&amp;lang=en"[^>]*>[^<(]*\((\d+)\)', text)}


def test():
    check(os.access(FILL, os.X_OK), "the bench helper is built (%s)" % FILL)
    srv = Server().init().start()
    alice, _bob = make_team(srv, ("Alice", "Bob"))
    for text in ("first real case", "second real case"):  # two cases the server has too
        person = Person(srv)
        person.new_codename()
        resp, _ = person.send(text)
        check(resp.status == 200, "a person's message is sent", resp.text[:600])
    alice.run("sync")
    real = [row["case"] for row in json.loads(alice.run("cases", "--json").out)["cases"]]
    check(len(real) == 2, "two real cases", real)
    r = subprocess.run([FILL, str(NCASES), str(NEVENTS)], env=alice.env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, "deskfill filled Alice's case database", r.stdout + r.stderr)
    log(r.stdout.strip())

    port = free_port()
    _proc, url, _out, _err = start_desk(alice, port)
    u = urllib.parse.urlsplit(url)
    b = Browser("http://127.0.0.1:%d" % port)
    r = b.get(u.path + "?" + u.query)
    check(r.status == 200, "the board answers", r.text[:400])

    # ---- page 1
    r = b.get("/?lang=en")
    ids1 = case_ids(r.text)
    check(len(ids1) == 100 and len(set(ids1)) == 100, "page 1 shows 100 cases", len(ids1))
    check("All (%d)" % (NCASES + 2) in r.text, "the count of all cases is over every case",
          r.text[:3000])
    c = counts(r.text)
    check(sum(c.values()) == NCASES + 2, "the counts per stage add up to every case", c)
    check("Page 1 / 3" in r.text, "page 1 of 3", r.text[-3000:])
    nxt = re.search(r'<a href="(/\?[^"]*page=2[^"]*)" rel="next">', r.text)
    check(nxt and 'rel="prev"' not in r.text, "a Next link (and no Previous) on page 1",
          r.text[-2000:])
    # ---- pages 2 and 3, past the end, garbage
    r = b.get(html.unescape(nxt.group(1)))
    ids2 = case_ids(r.text)
    check(len(ids2) == 100 and not set(ids2) & set(ids1), "page 2: the next 100 cases")
    r = b.get("/?page=3&lang=en")
    ids3 = case_ids(r.text)
    check(len(ids3) == 52 and not set(ids3) & (set(ids1) | set(ids2)),
          "page 3: the last 52 cases", len(ids3))
    check(set(real) <= set(ids3), "the two older real cases are on the last page")
    check('rel="prev"' in r.text and 'rel="next"' not in r.text and
          "201–252 / 252" in r.text, "page 3: Previous, no Next, 201-252 of 252", r.text[-2000:])
    r = b.get("/?page=9&lang=en")
    check(not case_ids(r.text) and "this page is empty" in r.text and
          "Go to the first page" in r.text, "a page past the end says so", r.text[-2000:])
    r = b.get("/?page=x1&lang=en")
    check(case_ids(r.text) == ids1, "a page that is not a number is page 1")
    log("252 cases: pages of 100, 100 and 52; counts over all; past the end explained")

    # ---- a stage filter pages within its stage, links keep it
    big = max(c, key=lambda k: c[k])
    r = b.get("/?stage=%s&lang=en" % urllib.parse.quote(big))
    ids = case_ids(r.text)
    check(len(ids) == min(100, c[big]), "stage %s: its first page" % big, (len(ids), c[big]))
    if c[big] > 100:
        nxt = re.search(r'<a href="(/\?[^"]*)" rel="next">', r.text)
        check(nxt and "stage=" + urllib.parse.quote(big, safe="") in html.unescape(nxt.group(1)),
              "the Next link keeps the stage filter", nxt and nxt.group(1))
    log("a stage's cases paged within the stage (%s: %d)" % (big, c[big]))

    # ---- unread clears, changes show at once
    def row_of(text, cid):
        i = text.index('href="/case/%s?' % cid)
        return text[text.rindex("<li", 0, i):text.index("</li>", i)]
    r = b.get("/?lang=en")
    first, second = ids1[0], ids1[1]
    check('class="case unread"' in row_of(r.text, second), "a case is unread before it is opened")
    check(b.get("/case/%s?lang=en" % second).status == 200, "the case page opens")
    r = b.get("/?lang=en")
    check('class="case unread"' not in row_of(r.text, second) and
          'class="case unread"' in row_of(r.text, ids1[0]),
          "opening a case clears its unread mark (only its own)", row_of(r.text, second))
    first = real[0]
    before = counts(b.get("/?lang=en").text)
    r = b.get("/case/%s?lang=en" % first)
    f = r.page.form("/case/%s/stage" % first)
    r = b.submit(f, [("stage", "closed")])
    check("Stage changed" in r.text, "the stage is changed from the desk", r.text[:1500])
    # (the text filter: the generated cases are newer, "closed" may have pages)
    r = b.get("/?stage=closed&q=real+case&lang=en")
    check(first in case_ids(r.text), "the board shows the new stage at once")
    # without a text filter the desk builds again only the changed case's
    # row (the others are kept): the counts follow at once
    after = counts(b.get("/?lang=en").text)
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    check(moved.get("closed") == 1 and sum(moved.values()) == 0 and
          sorted(v for v in moved.values() if v) == [-1, 1],
          "the counts per stage follow a stage changed from the desk", (before, after))
    other = real[1]
    alice.run("stage", other, "closed")  # fails the test if refuge stage fails
    r = b.get("/?stage=closed&q=real+case&lang=en")
    check(other in case_ids(r.text),
          "a stage changed by the CLI while the desk runs shows on the board at once",
          r.text[-3000:])
    again = counts(b.get("/?lang=en").text)
    check(again.get("closed") == after.get("closed", 0) + 1 and
          sum(again.values()) == sum(after.values()),
          "the counts follow a stage changed by the CLI while the desk runs", (after, again))
    r = b.get("/?tag=kept-check&lang=en")
    check(case_ids(r.text) == [], "no case is tagged kept-check yet")
    alice.run("tag", other, "kept-check")
    r = b.get("/?tag=kept-check&lang=en")
    check(case_ids(r.text) == [other], "a tag added by the CLI shows on the board at once",
          case_ids(r.text))
    alice.run("untag", other, "kept-check")
    r = b.get("/?tag=kept-check&lang=en")
    check(case_ids(r.text) == [], "a tag removed by the CLI is gone from the board at once")
    log("unread and changes from the desk and from the CLI show at once")


if __name__ == "__main__":
    main(test)
