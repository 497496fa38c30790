#!/usr/bin/env python3
"""
Disk full: the data directory on a 64 MiB tmpfs (needs root: skipped, exit
77, if not root or the mount fails).

A person uploads files until the space runs out. Then:
  - the person gets the "not saved, try again later" page: status 503 and the
    text of err.notsaved.text in po/en.po, as an answer (not a reset);
  - the server stays up: the landing page answers;
  - the database stays consistent: PRAGMA integrity_check is ok, every
    object row's blob exists with its size, no temp file is left behind, and
    the real staff CLI (home on the real disk) syncs and decrypts everything
    that was acknowledged, byte for byte;
  - once a filler file made beforehand is deleted, sending works again.
"""
import http.client
import os
import re
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (REPO, Person, Server, Skip, Staff, check, encode_multipart, log, main,
                 on_cleanup, sha256, sha256_file, tempdir)
import lib  # noqa: E402  (lib.open_db: the database on either backend)

TMPFS_MB = 64
FILLER_MB = 12
UPLOAD_MB = 3


def po_text(msgid):
    """msgstr of msgid in po/en.po (one-line entries)."""
    with open(os.path.join(REPO, "po", "en.po"), encoding="utf-8") as f:
        m = re.search(r'msgid "%s"\nmsgstr "(.*)"' % re.escape(msgid), f.read())
    check(m, "po/en.po has %s" % msgid)
    return m.group(1)


def mount_tmpfs():
    if os.geteuid() != 0:
        raise Skip("needs root to mount a tmpfs")
    mnt = tempdir("refuge-diskfull-")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % TMPFS_MB, "tmpfs",
                        mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise Skip("cannot mount a tmpfs: " + p.stdout.decode("utf-8", "replace").strip()[:200])

    def umount():
        if subprocess.run(["umount", mnt]).returncode != 0:
            subprocess.run(["umount", "-l", mnt])
    on_cleanup(umount)
    return mnt


def free_mb(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 1e6


def post_send(srv, person, csrf, text, files=()):
    """POST /send over http.client: (status, Location, body text), or (None, error, '')."""
    body, ctype = encode_multipart(
        [("csrf", csrf), ("text", text)] +
        [("file", (name, "application/octet-stream", data)) for name, data in files])
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    try:
        conn.request("POST", "/send", body=body, headers={
            "Content-Type": ctype,
            "Cookie": "; ".join("%s=%s" % kv for kv in person.b.cookies.items())})
        r = conn.getresponse()
        return r.status, r.getheader("Location") or "", r.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        return None, type(e).__name__, ""
    finally:
        conn.close()


def csrf_of(person):
    r = person.inbox()
    f = r.page.form("/send")
    check(f is not None, "/inbox has the message form", r.text[:1000])
    return dict(f.hidden())["csrf"]


def db_check(data):
    con = lib.open_db(data, readonly=True)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = con.execute("SELECT blob, size FROM objects WHERE blob IS NOT NULL").fetchall()
        n = con.execute("SELECT count(*) FROM objects").fetchone()[0]
    finally:
        con.close()
    check(integrity == "ok", "PRAGMA integrity_check says ok", integrity)
    bdir = os.path.join(data, "blobs")
    for name, size in rows:
        p = os.path.join(bdir, name)
        check(os.path.exists(p) and os.path.getsize(p) == size,
              "every object row's blob exists with its size", name)
    return n


def staff_check(alice, sent):
    """Every acknowledged file decrypts byte for byte with the staff CLI."""
    alice.run("sync")
    cases = alice.json("cases", "--json")["cases"]
    check(len(cases) == 1, "one case", cases)
    shown = alice.json("show", cases[0]["case"], "--json")
    check(all(it["kind"] != "unreadable" for it in shown["items"]), "every item decrypts",
          [it for it in shown["items"] if it["kind"] == "unreadable"][:3])
    texts = [it["text"] for it in shown["items"] if it["kind"] == "message"]
    out = tempdir("refuge-diskfull-files-")
    alice.run("files", cases[0]["case"], "--out", out)
    got = {n: sha256_file(os.path.join(out, n)) for n in os.listdir(out)}
    for text, files in sent:
        check(text in texts, "an acknowledged message is there: " + text[:40])
        for name, h in files:
            check(got.get(name) == h, "an acknowledged file decrypts byte for byte", name)
    return len(shown["items"]), len(got)


def test():
    notsaved = po_text("err.notsaved.text")
    mnt = mount_tmpfs()
    srv = Server()
    srv.data = os.path.join(mnt, "data")
    srv.init().start()
    alice = Staff("Alice")  # home on the real disk, not on the full tmpfs
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")
    filler = os.path.join(mnt, "filler")
    with open(filler, "wb") as f:
        f.write(os.urandom(FILLER_MB << 20))
    log("data directory on a %d MiB tmpfs, %.1f MB free after a %d MiB filler"
        % (TMPFS_MB, free_mb(mnt), FILLER_MB))

    person = Person(srv)
    person.new_codename()
    r, _ = person.send("intake before the disk fills")
    check(r.status == 200, "the intake was sent", r.text[:500])
    csrf = csrf_of(person)

    sent, acked_mb, t0 = [], 0.0, time.time()
    status = loc = body = None
    for i in range(100):
        data = os.urandom(UPLOAD_MB << 20)
        name = "upload-%03d.bin" % i
        text = "disk full test upload %d" % i
        status, loc, body = post_send(srv, person, csrf, text, [(name, data)])
        if status == 303 and loc.endswith("/inbox?sent=1"):
            sent.append((text, [(name, sha256(data))]))
            acked_mb += len(data) / 1e6
            continue
        break
    log("%d uploads of %d MiB acknowledged (%.0f MB) before the disk was full; then %s %s"
        % (len(sent), UPLOAD_MB, acked_mb, status, loc))
    nuploads = len(sent)
    full_answers = {status: 1}
    check(status is not None,
          "a person whose upload does not fit gets an answer, not a broken connection (%s)" % loc)
    check(status == 503, "an upload that does not fit is answered 503 (got %s)" % status,
          body[:800])
    check(notsaved in body, "the page says: " + notsaved, body[:1500])
    check(free_mb(mnt) < UPLOAD_MB * 1.05, "the disk really is full (%.1f MB free)" % free_mb(mnt))
    tmp = os.listdir(os.path.join(srv.data, "tmp"))
    check(tmp == [], "the failed upload left no temp file", tmp)

    # a small message while full: saved, or "not saved" -- never a crash
    for i in range(5):
        text = "small message while full %d" % i
        st, lo, bd = post_send(srv, person, csrf, text)
        full_answers[st] = full_answers.get(st, 0) + 1
        if st == 303 and lo.endswith("/inbox?sent=1"):
            sent.append((text, []))
        else:
            check(st == 503 and notsaved in bd,
                  "a message that cannot be saved gets the not-saved page (got %s)" % st, bd[:500])
    for i in range(3):
        st, lo, bd = post_send(srv, person, csrf, "another big one", [("x.bin", os.urandom(4 << 20))])
        full_answers[st] = full_answers.get(st, 0) + 1
        check(st == 503 and notsaved in bd, "a big upload while full gets the not-saved page (%s)"
              % st, bd[:500])
    log("answers while full: %s" % full_answers)

    # to the last byte: the database itself cannot grow now
    last = os.path.join(mnt, "filler-last")
    with open(last, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    log("filled to the last byte (%.2f MB free)" % free_mb(mnt))
    for i in range(5):
        text = "message with no byte free %d %s" % (i, "y" * 20000)
        st, lo, bd = post_send(srv, person, csrf, text)
        full_answers[st] = full_answers.get(st, 0) + 1
        if st == 303 and lo.endswith("/inbox?sent=1"):
            sent.append((text, []))
        else:
            check(st == 503 and notsaved in bd,
                  "a message that cannot be saved gets the not-saved page (got %s)" % st, bd[:500])
    newcomer = Person(srv)
    r = newcomer.b.get("/new")
    check(r.status == 200, "GET /new answers with no byte free (%d)" % r.status)
    r = newcomer.b.submit(r.page.form("/new"))
    check(r.status in (200, 503), "a new codename with no byte free: the inbox or not saved (%d)"
          % r.status, r.text[:500])
    if r.status == 503:
        check(po_text("err.notsaved.text") in r.text, "its page says not saved", r.text[:800])
    log("answers with no byte free: %s; a new codename: %d" % (full_answers, r.status))
    os.unlink(last)

    r = person.b.request("GET", "/")
    check(r.status == 200, "the landing page answers while the disk is full (%d)" % r.status)
    check(srv.proc.poll() is None, "the server is still running")
    n = db_check(srv.data)
    items, nfiles = staff_check(alice, sent)
    log("while full: integrity ok, %d objects, the caseworker decrypts %d items and %d files"
        % (n, items, nfiles))

    # free space: sending works again
    os.unlink(filler)
    data = os.urandom(UPLOAD_MB << 20)
    st, lo, bd = post_send(srv, person, csrf, "after freeing space", [("after.bin", data)])
    check(st == 303 and lo.endswith("/inbox?sent=1"),
          "once space is freed, sending works again (got %s %s)" % (st, lo), bd[:500])
    sent.append(("after freeing space", [("after.bin", sha256(data))]))
    r = person.inbox()
    check(r.status == 200, "the inbox opens after the disk was full")
    Person(srv).new_codename()  # and a new person gets a codename again
    n = db_check(srv.data)
    items, nfiles = staff_check(alice, sent)
    srv.stop_clean()
    print("FIGURES diskfull: tmpfs %d MiB, %d uploads acknowledged (%.0f MB) before full, "
          "answers while full %s, server up, integrity ok, %d objects all decrypting, "
          "sending works after freeing %d MiB (%.1f s)"
          % (TMPFS_MB, nuploads, acked_mb, full_answers, n, FILLER_MB, time.time() - t0))


if __name__ == "__main__":
    main(test)
