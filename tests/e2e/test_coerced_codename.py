#!/usr/bin/env python3
"""
What a coerced codename shows, and what a deleted reply leaves on disk
(issue 13, finding 11).

1. A person sends two messages and a file (in Russian, and another person in
   English). Whoever holds the codename opens the inbox: the list of what
   was sent says how many messages and files, and nothing of when or how
   big: no day, month or year, no KB or MB, no byte count.
2. A caseworker sends two replies; the person deletes one. While the server
   runs, slices of the deleted reply's stored ciphertext are found nowhere
   under the data directory (database, its write-ahead log, blobs), while
   the other reply's still are (so the search sees what is there). Before
   the deletion both were found.

On PostgreSQL the search covers the cluster's data directory too (its table
files and pg_wal, after a CHECKPOINT): PostgreSQL does not zero a deleted
row, so the store keeps replies (what a person may delete) as blob files in
DIR/blobs, never in a row, and the deletion unlinks the file. The test shows
the search sees PostgreSQL's files: the kept reply's row (its blob name) is
found there.
"""
import datetime
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import REPO, Person, Server, Staff, case_ids, check, log, main, search_tree

RF_KIND_REPLY = 3


def po_msgs(lang):
    with open(os.path.join(REPO, "po", lang + ".po"), encoding="utf-8") as f:
        return dict(re.findall(r'msgid "(.*)"\nmsgstr "(.*)"', f.read()))
import lib  # noqa: E402  (lib.open_db: the database on either backend)


def sent_list_text(page):
    found = [text for tag, attrs, text in page.elements
             if tag == "ul" and "sent" in (attrs.get("class") or "").split()]
    check(len(found) == 1, "the inbox has one list of what the person sent", page.text[:1500])
    return re.sub(r"\s+", " ", found[0]).strip()


def check_sent_list(p, lang, n_msgs, n_files):
    msgs = po_msgs(lang)
    r = p.inbox()
    text = sent_list_text(r.page)
    want = [msgs["inbox.mine.messages"].replace("{{v:n_msgs}}", str(n_msgs)),
            msgs["inbox.mine.files"].replace("{{v:n_files}}", str(n_files))]
    for w in want:
        check(w in text, "%s: the sent list says %r" % (lang, w), text)
    today = datetime.datetime.now(datetime.timezone.utc)
    months = [msgs["month.%d" % m] for m in range(1, 13)]
    bad = [m for m in months if m.lower() in text.lower()]
    bad += [y for y in (str(today.year), str(today.year - 1), str(today.year + 1)) if y in text]
    bad += [u for u in ("KB", "MB", "КБ", "МБ", "bytes", "байт") if u in text]
    digits = re.findall(r"\d+", text)
    bad += [d for d in digits if d not in (str(n_msgs), str(n_files))]
    check(not bad, "%s: the sent list shows no date and no size, only counts" % lang,
          (bad, text))
    # and nothing on the page (no reply yet) names the day things were sent
    page = r.page.text
    day = "%d %s %d" % (today.day, months[today.month - 1], today.year)
    check(day not in page, "%s: the inbox shows the day things were sent" % lang, page[:1500])
    log("%s sent list: %r" % (lang, text))


def reply_objects(srv):
    """[(seq, ciphertext, blob name or None if inline)] of every reply."""
    con = lib.open_db(srv, readonly=True)
    try:
        rows = con.execute("SELECT seq, data, blob FROM objects WHERE kind = ? ORDER BY seq",
                           (RF_KIND_REPLY,)).fetchall()
    finally:
        con.close()
    out = []
    for seq, data, blob in rows:
        if data is not None:
            out.append((seq, bytes(data), None))
        else:
            with open(os.path.join(srv.data, "blobs", blob), "rb") as f:
                out.append((seq, f.read(), blob))
    return out


def search_roots(srv):
    """Where the deleted reply must be gone from: the server's data directory
    and, on PostgreSQL, the cluster's (table files and pg_wal), its dirty
    pages written out first (CHECKPOINT) so the files hold what it holds."""
    url = lib.db_url_of(srv.data)
    if not url:
        return [srv.data]
    con = lib.open_db(srv)
    try:
        con.execute("CHECKPOINT")
        pgdata = con.execute("SHOW data_directory").fetchone()[0]
    finally:
        con.close()
    check(os.path.isdir(os.path.join(pgdata, "pg_wal")),
          "the PostgreSQL data directory (with pg_wal) can be searched", pgdata)
    return [srv.data, pgdata]


def slices(ct):
    """Four 32-byte slices of the ciphertext's body (past the header, whose
    recipient stanzas other objects share)."""
    n = len(ct)
    return [ct[off:off + 32] for off in (n // 2, n * 3 // 5, n * 3 // 4, n - 40)]


def test():
    srv = Server()
    srv.init()
    srv.start()
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    ru = Person(srv, lang="ru")
    ru.new_codename()
    r, _ = ru.send("первое сообщение", files=[("passport.jpg", "image/jpeg", os.urandom(300000))])
    check(r.status == 200, "the first message is sent (%d)" % r.status, r.text[:500])
    r, _ = ru.send("второе сообщение " + "x" * 5000)
    check(r.status == 200, "the second message is sent (%d)" % r.status, r.text[:500])
    en = Person(srv, lang="en")
    en.new_codename()
    r, _ = en.send("one message", files=[("a.pdf", "application/pdf", os.urandom(2000)),
                                          ("b.pdf", "application/pdf", os.urandom(9000))])
    check(r.status == 200, "the English person's message is sent (%d)" % r.status)

    # someone forced the codename out of them and logs in
    ru.login()
    check_sent_list(ru, "ru", 2, 1)
    en.login()
    check_sent_list(en, "en", 1, 2)

    # two replies; the person deletes one
    alice.run("sync")
    cases = case_ids(alice.json("cases", "--json"))
    check(len(cases) == 2, "the caseworker sees two cases", cases)
    for c in cases:
        alice.run("reply", c, "-m", "reply one " + "a" * 3000)
        alice.run("reply", c, "-m", "reply two " + "b" * 3000)
    r = ru.inbox()
    forms = [f for f in r.page.forms if f.action.endswith("/reply/delete")]
    check(len(forms) == 2, "the person sees two replies, each with a delete button",
          r.page.text[:1500])
    mine = {int(f.field("seq")["value"]) for f in forms}
    objs = [o for o in reply_objects(srv) if o[0] in mine]
    check(len(objs) == 2, "both replies are stored", [o[0] for o in objs])
    if lib.DB == "sqlite":
        # SQLite zeroes a deleted row (secure_delete): replies stay inline
        check(all(blob is None for _, _, blob in objs),
              "both replies are stored in the database (inline)", objs)
    else:
        # PostgreSQL leaves a deleted row's bytes in its pages and WAL: the
        # store keeps what a person may delete as files, never in a row
        check(all(blob is not None for _, _, blob in objs),
              "on PostgreSQL both replies are blob files in DIR/blobs, not rows",
              [(seq, blob) for seq, _, blob in objs])
    (gone_seq, gone_ct, gone_blob), (kept_seq, kept_ct, kept_blob) = objs
    needles = [("deleted reply", "raw", s) for s in slices(gone_ct)]
    needles += [("kept reply", "raw", s) for s in slices(kept_ct)]
    roots = search_roots(srv)
    hits, _, _ = search_tree(roots, needles)
    check({h.split(" (")[0] for h in hits} == {"deleted reply", "kept reply"},
          "before the deletion, the search finds both replies' ciphertext on disk", hits)
    if len(roots) > 1:
        # the search reads PostgreSQL's files: the kept reply's row is there
        row_hits, files, _ = search_tree(roots[1:], [("kept row", "raw", kept_blob.encode())])
        check(row_hits, "the search finds the kept reply's row in PostgreSQL's files "
              "(%d files searched)" % files)

    form = [f for f in forms if int(f.field("seq")["value"]) == gone_seq][0]
    r = ru.b.submit(form)
    check(r.status == 200 and r.url.startswith("/inbox"), "the deletion answered %d at %s" %
          (r.status, r.url), r.text[:500])
    left = [f for f in r.page.forms if f.action.endswith("/reply/delete")]
    check([int(f.field("seq")["value"]) for f in left] == [kept_seq],
          "the inbox shows only the reply kept", r.page.text[:1000])

    if gone_blob is not None:
        check(not os.path.exists(os.path.join(srv.data, "blobs", gone_blob)),
              "the deleted reply's blob file is unlinked", gone_blob)
    hits, files, total = search_tree(search_roots(srv), needles)
    gone = sorted(h for h in hits if h.startswith("deleted reply"))
    check(not gone, "a deleted reply's ciphertext is still on disk (write-ahead log or "
          "database) after the person deleted it", gone)
    check(any(h.startswith("kept reply") for h in hits),
          "the reply not deleted is still found (the search sees what is there)", hits)
    log("after the deletion (%s): %d files, %d bytes searched; the deleted reply's "
        "ciphertext is gone, the kept one is there" % (lib.DB, files, total))
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
