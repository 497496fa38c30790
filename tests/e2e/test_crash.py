#!/usr/bin/env python3
"""
Crash safety: thousands of submissions while the server is killed.

Several people (threads, each with its own codename and case) send messages
with 0-3 files of varied size (every file streams into a blob) over the
stdlib http.client, while the main thread kills `refuge serve` with SIGKILL
at random moments and starts it again on the same data directory and port.
After a kill a person logs in again (sessions live in memory) and goes on.

Every submission is remembered with its answer:
  acked    303 to /inbox?sent=1: must be present, complete, and decrypt;
  refused  an error page (session gone, not saved, busy...) or the
           connection refused: nothing of it may be stored;
  unknown  no answer (killed mid-way): all of it or nothing of it.
At the end, after a last restart (recovery): DATA/tmp is empty, every file in
DATA/blobs is named by an objects row and every blob row's file exists with
its size; the real staff CLI syncs, every item decrypts, texts and file
hashes match what was sent, and no submission is stored in part.

Knobs: CRASH_SUBMISSIONS (acknowledged submissions to reach, default 2000),
CRASH_KILLS (default 25), CRASH_CLIENTS (default 6).
"""
import http.client
import os
import random
import sqlite3
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Page, Person, Server, Staff, TestFailure, check, encode_multipart, log,
                 main, sha256, sha256_file, tempdir)
import lib  # noqa: E402  (lib.open_db: the database on either backend)

WANT_ACKED = int(os.environ.get("CRASH_SUBMISSIONS", "2000"))
WANT_KILLS = int(os.environ.get("CRASH_KILLS", "25"))
CLIENTS = int(os.environ.get("CRASH_CLIENTS", "6"))
TIME_LIMIT = 240  # seconds for the loop; the checks come after

# file sizes (bytes) and how often each is picked
SIZES = [(300, 3), (6000, 3), (70000, 3), (400000, 2), (1600000, 1), (5000000, 0.15)]
NFILES = [(0, 3), (1, 3), (2, 2), (3, 1)]


def pick(table, rnd):
    total = sum(w for _, w in table)
    x = rnd.uniform(0, total)
    for v, w in table:
        x -= w
        if x <= 0:
            return v
    return table[-1][0]


class Submission:
    __slots__ = ("sid", "text", "files", "outcome", "status")

    def __init__(self, sid, text, files):
        self.sid = sid
        self.text = text
        self.files = files        # [(name, sha256, size)]
        self.outcome = None       # "acked", "refused", "unknown"
        self.status = None


class Client(threading.Thread):
    """One person sending in a loop; logs in again whenever the server went away."""

    def __init__(self, idx, srv, stop, seed):
        super().__init__(daemon=True)
        self.idx = idx
        self.srv = srv
        self.stop = stop
        self.rnd = random.Random(seed)
        self.person = Person(srv)
        self.subs = []
        self.csrf = None
        self.logins = 0
        self.error = None

    def prepare(self):
        self.person.new_codename()
        r, _ = self.person.send("intake of person %d" % self.idx)
        check(r.status == 200, "the first message (intake) of person %d was sent" % self.idx,
              r.text[:500])
        self.csrf = self.inbox_csrf()

    def inbox_csrf(self):
        r = self.person.b.request("GET", "/inbox")
        if r.status != 200:
            return None
        f = Page(r.text).form("/send")
        return dict(f.hidden()).get("csrf") if f else None

    def relogin(self):
        """Waits for the server, logs in again, reads the new CSRF token."""
        while not self.stop.is_set():
            try:
                r = self.person.login()
                if r.status == 200:
                    self.csrf = self.inbox_csrf()
                    if self.csrf:
                        self.logins += 1
                        return True
            except TestFailure:
                pass
            time.sleep(0.05)
        return False

    def make(self, n):
        sid = "c%d-%d-%08x" % (self.idx, n, self.rnd.getrandbits(32))
        text = "crash test submission %s %s" % (sid, "x" * self.rnd.randrange(0, 4000))
        files = []
        for k in range(pick(NFILES, self.rnd)):
            size = int(pick(SIZES, self.rnd) * self.rnd.uniform(0.5, 1.5))
            files.append(("%s-%d.bin" % (sid, k), self.rnd.randbytes(size)))
        return sid, text, files

    def post(self, text, files):
        body, ctype = encode_multipart(
            [("csrf", self.csrf), ("text", text)] +
            [("file", (name, "application/octet-stream", data)) for name, data in files])
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=60)
        try:
            conn.request("POST", "/send", body=body, headers={
                "Content-Type": ctype,
                "Cookie": "; ".join("%s=%s" % kv for kv in self.person.b.cookies.items())})
            r = conn.getresponse()
            r.read()
            return r.status, r.getheader("Location") or ""
        finally:
            conn.close()

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                if self.csrf is None and not self.relogin():
                    break
                n += 1
                sid, text, files = self.make(n)
                sub = Submission(sid, text, [(nm, sha256(d), len(d)) for nm, d in files])
                self.subs.append(sub)
                try:
                    status, loc = self.post(text, files)
                except ConnectionRefusedError:  # down: nothing was sent
                    sub.outcome = "refused"
                    self.csrf = None
                    continue
                except (OSError, http.client.HTTPException):
                    sub.outcome = "unknown"
                    self.csrf = None
                    continue
                sub.status = status
                if status == 303 and loc.endswith("/inbox?sent=1"):
                    sub.outcome = "acked"
                elif status == 500:
                    sub.outcome = "unknown"
                else:
                    sub.outcome = "refused"
                    self.csrf = None  # session gone, quota, busy...: start afresh
        except Exception as e:  # reported by the main thread
            self.error = e


def check_files_on_disk(srv):
    """After recovery: no temp file, blobs == the objects rows that name one."""
    tmp = os.listdir(os.path.join(srv.data, "tmp"))
    check(tmp == [], "no temp file is left in DATA/tmp after restart recovery", tmp[:10])
    con = lib.open_db(srv, readonly=True)
    try:
        rows = con.execute("SELECT blob, size FROM objects WHERE blob IS NOT NULL").fetchall()
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        nobjects = con.execute("SELECT count(*) FROM objects").fetchone()[0]
    finally:
        con.close()
    check(integrity == "ok", "the database passes PRAGMA integrity_check", integrity)
    named = dict(rows)
    bdir = os.path.join(srv.data, "blobs")
    on_disk = {n: os.path.getsize(os.path.join(bdir, n)) for n in os.listdir(bdir)}
    orphans = sorted(set(on_disk) - set(named))
    check(not orphans, "every file in DATA/blobs is named by an objects row (%d orphans)" %
          len(orphans), orphans[:10])
    missing = sorted(set(named) - set(on_disk))
    check(not missing, "every blob an objects row names exists (%d missing)" % len(missing),
          missing[:10])
    short = [n for n in named if on_disk[n] != named[n]]
    check(not short, "every blob has the size its row says (%d differ)" % len(short), short[:10])
    return nobjects, len(on_disk)


def test():
    rnd = random.Random(os.environ.get("CRASH_SEED") or os.urandom(8))
    srv = Server().init().start()
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    stop = threading.Event()
    clients = [Client(i, srv, stop, rnd.getrandbits(64)) for i in range(CLIENTS)]
    for c in clients:
        c.prepare()
    log("%d people ready (codename, intake sent, session open)" % len(clients))

    t0 = time.time()
    for c in clients:
        c.start()
    kills = 0

    def acked():
        return sum(1 for c in clients for s in list(c.subs) if s.outcome == "acked")

    while time.time() - t0 < TIME_LIMIT:
        if kills >= WANT_KILLS and acked() >= WANT_ACKED:
            break
        # enough kills: space them out so that acknowledgements pile up even
        # on a loaded machine (every kill costs each person a new login)
        time.sleep(rnd.uniform(0.05, 0.6) if kills < WANT_KILLS else rnd.uniform(0.5, 2.5))
        srv.kill()
        kills += 1
        srv.restart()
        if any(c.error for c in clients):
            break
    stop.set()
    for c in clients:
        c.join(120)
        check(not c.is_alive(), "client %d stopped" % c.idx)
        if c.error is not None:
            raise c.error
    loop_s = time.time() - t0

    subs = [s for c in clients for s in c.subs if s.outcome is not None]
    by = {k: [s for s in subs if s.outcome == k] for k in ("acked", "refused", "unknown")}
    nfiles_acked = sum(len(s.files) for s in by["acked"])
    bytes_acked = sum(sz for s in by["acked"] for _, _, sz in s.files)
    log("submissions tried %d: acknowledged %d (%d files, %.0f MB), refused %d, no answer %d"
        % (len(subs), len(by["acked"]), nfiles_acked, bytes_acked / 1e6, len(by["refused"]),
           len(by["unknown"])))
    log("kills %d, logins after a kill %d, loop %.1f s"
        % (kills, sum(c.logins for c in clients), loop_s))
    check(kills >= WANT_KILLS, "the server was killed at least %d times (%d)" % (WANT_KILLS, kills))
    check(len(by["acked"]) >= WANT_ACKED,
          "at least %d submissions were acknowledged within %d s (%d)"
          % (WANT_ACKED, TIME_LIMIT, len(by["acked"])))

    # a last crash, then the restart whose recovery must leave nothing behind
    srv.kill()
    srv.restart()
    nobjects, nblobs = check_files_on_disk(srv)
    log("after recovery: %d objects, %d blob files, DATA/tmp empty" % (nobjects, nblobs))

    # what the caseworker gets
    t1 = time.time()
    alice.run("sync", timeout=900)
    cases = alice.json("cases", "--json")["cases"]
    check(len(cases) == len(clients), "one case per person (%d)" % len(cases), cases)
    texts = {}   # sid -> count of messages
    files = {}   # file name -> sha256 of what `refuge files` wrote
    listed = {}  # file name -> size in `show`
    for case in cases:
        shown = alice.json("show", case["case"], "--json")
        for it in shown["items"]:
            check(it["kind"] != "unreadable", "every stored item decrypts", it)
            if it["kind"] == "message":
                words = it["text"].split(" ")
                check(len(words) >= 4 and words[3].startswith("c"),
                      "a stored message is one the test sent", it["text"][:200])
                texts[words[3]] = texts.get(words[3], 0) + 1
            elif it["kind"] == "file":
                check(it["name"] not in listed, "a file is stored once", it["name"])
                listed[it["name"]] = it["size"]
        out = tempdir("refuge-crash-files-")
        alice.run("files", case["case"], "--out", out, timeout=900)
        for name in os.listdir(out):
            files[name] = sha256_file(os.path.join(out, name))
    check(set(files) == set(listed), "`refuge files` wrote every file `show` lists",
          sorted(set(files) ^ set(listed))[:10])

    lost, partial, leaked = [], [], []
    for s in subs:
        have_msg = texts.get(s.sid, 0)
        check(have_msg <= 1, "a submission is stored at most once", s.sid)
        got = [n for n, _, _ in s.files if n in files]
        for name, h, size in s.files:
            if name in files:
                check(files[name] == h and listed[name] == size,
                      "a stored file is byte for byte what was sent", name)
        if s.outcome == "acked" and (not have_msg or len(got) != len(s.files)):
            lost.append(s.sid)
        elif (have_msg and len(got) != len(s.files)) or (not have_msg and got):
            partial.append((s.sid, s.outcome, have_msg, len(got), len(s.files)))
        elif s.outcome == "refused" and have_msg:
            leaked.append((s.sid, s.status))
    check(not lost, "every acknowledged submission is present and decrypts (%d lost)" % len(lost),
          lost[:10])
    check(not partial, "no submission is stored in part (%d)" % len(partial), partial[:10])
    check(not leaked, "no refused submission is stored (%d)" % len(leaked), leaked[:10])
    stored_unknown = sum(1 for s in by["unknown"] if texts.get(s.sid))
    sids = {s.sid for s in subs}
    strangers = [t for t in texts if t not in sids]
    check(not strangers, "nothing is stored that no one sent", strangers[:10])
    log("caseworker check: %d messages and %d files decrypt and match (%.1f s); of %d "
        "unanswered submissions %d were stored whole, %d not at all"
        % (len(texts), len(files), time.time() - t1, len(by["unknown"]), stored_unknown,
           len(by["unknown"]) - stored_unknown))

    srv.stop_clean()
    print("FIGURES crash: submissions tried %d, acknowledged %d (%d files, %.0f MB), kills %d, "
          "loop %.0f s, lost 0, partial 0, orphans 0"
          % (len(subs), len(by["acked"]), nfiles_acked, bytes_acked / 1e6, kills, loop_s))


if __name__ == "__main__":
    main(test)
