#!/usr/bin/env python3
"""
test_three_servers.py - three `refuge serve` processes on one PostgreSQL
database (issue 11, done-when 2; docs/scale-out.md "Person sessions").

The three serve the same data directory (DIR/database names the database,
DIR/blobs is shared) with one session key, on a tmpfs outside DIR
(`refuge server session-key`, `refuge serve --session-key`). Shown:
  - one person's journey spread over the three: the codename from the
    first, "continue" (the sealed pending codename) and the first message
    on the second, the caseworker's reply read on the third;
  - a caseworker whose every request goes to the next server in turn (a
    round-robin balancer in front), syncing while people send through all
    three: every object is seen once, in ascending order, none skipped; and
    each of those people is refused at exactly the day's quota (200
    messages), counted across the three;
  - `refuge server session-key` and `refuge serve --session-key` refuse a
    key on a disk, inside the data directory or readable by others;
  - two key rotations picked up by the running servers;
  - a logout on one server ends the session on the other two at once;
  - the session row in the database (read with psql) holds none of the
    person's codename, secret key, public key or case id, and a fourth
    server with another session key cannot open it (the cookie does not
    work there), while the three can.
On SQLite the test checks that a second `refuge serve` on the same data
directory is refused (SQLite serves one process) and skips the rest.
"""

import base64
import hashlib
import http.client
import http.server
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import codename_kdf
import lib
from lib import (Browser, Person, Server, Skip, case_ids, check, encodings, json_strings, log,
                 make_team, on_cleanup, run, serve_flags)


QUOTA_MSGS = 200  # RF_SESSION_QUOTA_MSGS (server/session.h): messages per session per day


def key_dir():
    """A directory on a tmpfs for the session key (never the data dir)."""
    for base in ("/dev/shm", "/run"):
        if os.path.isdir(base) and os.access(base, os.W_OK):
            d = tempfile.mkdtemp(prefix="refuge-e2e-key-", dir=base)
            on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
            return d
    raise Skip("no writable tmpfs (/dev/shm or /run) for the session key")


def session_key(path):
    p = run(["server", "session-key", path], timeout=60)
    check(p.returncode == 0, "`refuge server session-key` writes a key file", p.out + p.err)
    check(os.stat(path).st_mode & 0o777 == 0o600, "the key file is 0600", oct(os.stat(path).st_mode))
    return path


class Balancer:
    """A round-robin HTTP balancer: each request goes to the next server
    (GET /api/v1/objects pages take turns of their own, so that consecutive
    pages of one sync come from different servers).
    Records, for each GET /api/v1/objects answer, which server gave it and
    the seqs it listed."""

    def __init__(self, ports):
        self.ports = list(ports)
        self.next = {"objects": 0, "other": 0}
        self.lock = threading.Lock()
        self.pages = []   # (server index, after, [seq, ...])
        self.served = [0] * len(self.ports)
        bal = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                objects = self.path.startswith("/api/v1/objects?")
                with bal.lock:  # object pages take turns among themselves too
                    k = "objects" if objects else "other"
                    i = bal.next[k] % len(bal.ports)
                    bal.next[k] += 1
                    bal.served[i] += 1
                conn = http.client.HTTPConnection("127.0.0.1", bal.ports[i], timeout=300)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "content-length")}
                conn.request(self.command, self.path, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                conn.close()
                u = urllib.parse.urlsplit(self.path)
                if self.command == "GET" and u.path == "/api/v1/objects" and r.status == 200:
                    after = int(urllib.parse.parse_qs(u.query).get("after", ["0"])[0])
                    seqs = [o["seq"] for o in json.loads(data)["objects"]]
                    with bal.lock:
                        bal.pages.append((i, after, seqs))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                         "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        on_cleanup(self.close)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def close(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def sibling(first):
    """Another `refuge serve` on the same data directory (and database)."""
    s = Server()
    s.data = first.data
    s.token = first.token
    return s


def on(b, srv):
    """Points browser b (its cookies kept) at server srv."""
    b.base = srv.url
    b.host, b.port = "127.0.0.1", srv.port
    return b


def logged_in(b, srv):
    r = on(b, srv).get("/inbox")
    return r.status == 200 and "/login" not in r.url and r.page.form("/send") is not None


def row_count(url, cookie):
    """Rows whose id is the session id of cookie (BLAKE2b-256 of the token's
    32 bytes: the token itself is never stored)."""
    raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
    sid = hashlib.blake2b(raw, digest_size=32).hexdigest()
    p = subprocess.run(["psql", "-X", "-A", "-t", url, "-c",
                        "SELECT count(*) FROM sessions WHERE id = '\\x%s'" % sid],
                       capture_output=True, timeout=60)
    check(p.returncode == 0, "psql counts the session's rows", p.stderr[-300:])
    return int(p.stdout.decode().strip())


def row_keyid(url, cookie):
    raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
    sid = hashlib.blake2b(raw, digest_size=32).hexdigest()
    p = subprocess.run(["psql", "-X", "-A", "-t", url, "-c",
                        "SELECT encode(keyid, 'hex') FROM sessions WHERE id = '\\x%s'" % sid],
                       capture_output=True, timeout=60)
    check(p.returncode == 0, "psql reads the session's key id", p.stderr[-300:])
    return p.stdout.decode().strip()


def sqlite_refuses_second():
    srv = Server().init().start()
    port = lib.free_port()
    p = subprocess.run([lib.BIN, "serve", "--data", srv.data, "--listen", "127.0.0.1:%d" % port] +
                       serve_flags([]), capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    check(p.returncode != 0 and "another refuge serve" in err,
          "a second `refuge serve` on the same SQLite data directory is refused, saying why",
          (p.returncode, err[-1500:]))
    srv.stop_clean()


def key_refusals():
    """`refuge serve --session-key` refuses a key that is not kept in memory,
    saying what to do; `refuge server session-key` will not write one on a
    disk nor overwrite a key file."""
    srv = Server().init()
    disk = os.path.join(srv.root, "session.key")     # the test's temp dir: a disk
    p = run(["server", "session-key", disk], timeout=60)
    check(p.returncode != 0 and "tmpfs" in p.err and not os.path.exists(disk),
          "`refuge server session-key` refuses a file on a disk", p.out + p.err)
    good = session_key(os.path.join(key_dir(), "session.key"))
    p = run(["server", "session-key", good], timeout=60)
    check(p.returncode != 0 and "--rotate" in p.err,
          "`refuge server session-key` will not overwrite a key file (it names --rotate)", p.err)
    inside = os.path.join(srv.data, "session.key")
    shutil.copy(good, inside)
    os.chmod(inside, 0o600)
    with open(good, "rb") as f:
        key_bytes = f.read()
    open_ro = os.path.join(key_dir(), "wide.key")
    with open(open_ro, "wb") as f:
        f.write(key_bytes)
    os.chmod(open_ro, 0o644)
    for path, why in ((inside, "inside the data directory"), (open_ro, "chmod 600")):
        p = subprocess.run([lib.BIN, "serve", "--data", srv.data, "--listen", "127.0.0.1:%d"
                            % lib.free_port()] + serve_flags(["--session-key", path]),
                           capture_output=True, timeout=60)
        err = p.stderr.decode(errors="replace")
        check(p.returncode == 2 and why in err,
              "`refuge serve --session-key` refuses a key file %s" % why, err[-800:])
    os.unlink(inside)


def test():
    key_refusals()
    if lib.DB != "postgresql":
        sqlite_refuses_second()
        raise Skip("several `refuge serve` processes share one database only on PostgreSQL "
                   "(REFUGE_TEST_DB=postgresql); on SQLite a second one on the same data "
                   "directory is refused, as checked")
    codename_kdf.self_check()
    keyfile = session_key(os.path.join(key_dir(), "session.key"))
    # idle 60 s: the reapers (which also re-read the key file) run every 6 s
    flags = ["--session-key", keyfile, "--session-idle", "60"]
    a = Server().init()
    servers = [a.start(flags), sibling(a).start(flags), sibling(a).start(flags)]
    log("three servers on one database: ports %s" % [s.port for s in servers])
    bal = Balancer([s.port for s in servers])
    front = type("Front", (), {"url": bal.url, "token": a.token})()
    alice = make_team(front, names=("Alice",))[0]

    # a server learns the line is open (a roster stored through another) within
    # 2 s (pages.c, LINE_RECHECK_S)
    for k, s in enumerate(servers):
        deadline = time.time() + 20
        while Browser(s.url).get("/new").status != 200:
            check(time.time() < deadline, "server %d opens the line within 20 s" % k)
            time.sleep(0.5)

    # --- one person, three servers
    person = Person(servers[0])
    r = person.b.get("/")
    r = person.b.get("/new")                       # the codename: server 0
    check(r.status == 200, "GET /new on server 0", r.text[:500])
    person.codename = lib.find_codename(r.page)
    check(person.codename, "server 0 shows a codename", r.page.text[:800])
    f = r.page.form("/new")
    r = on(person.b, servers[1]).submit(f)         # "continue": server 1 opens the pending seal
    check(r.status == 200 and "s" in person.b.cookies,
          "server 1 takes the codename server 0 sealed into the form and logs the person in",
          (r.status, r.text[:800]))
    message = "Help, sent through server one " + secrets.token_hex(6)
    resp, _ = person.send(message)                 # the first message: server 1
    check(resp.status == 200 and "error" not in resp.page.title.lower(),
          "POST /send on server 1 (the session made there)", resp.text[:800])
    more = "And more, through server two " + secrets.token_hex(6)
    on(person.b, servers[2])
    resp, _ = person.send(more)                    # server 2 reads the session row
    check(resp.status == 200 and "error" not in resp.page.title.lower(),
          "POST /send on server 2 with the session server 1 made", resp.text[:800])

    alice.run("sync")
    ids = case_ids(alice.json("cases", "--json"))
    check(len(ids) == 1, "the caseworker sees one case", ids)
    strings = json_strings(alice.json("show", ids[0], "--json"))
    check(message in strings and more in strings,
          "both messages, sent through two servers, are in the one case", strings[:40])
    reply = "We read you, answered behind the balancer " + secrets.token_hex(6)
    alice.run("reply", ids[0], "-m", reply)
    r = on(person.b, servers[2]).get("/inbox")     # the reply: server 2 ...
    check(reply in r.page.text, "the reply reads on server 2", r.page.text[:1500])
    r = on(person.b, servers[0]).get("/inbox")     # ... and server 0
    check(reply in r.page.text, "the reply reads on server 0", r.page.text[:1500])
    log("person: codename on 0, continue and send on 1, send and read on 2 and 0")

    # --- the session row, as a seized database shows it
    url = lib.db_url_of(a.data)
    rows = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", url, "-c",
                           "SELECT encode(id, 'hex'), encode(keyid, 'hex'), encode(sealed, 'hex'),"
                           " expires, day, msgs, bytes FROM sessions"],
                          capture_output=True, timeout=60)
    check(rows.returncode == 0, "psql reads the sessions table", rows.stderr[-500:])
    lines = [x for x in rows.stdout.decode().splitlines() if x.strip()]
    check(len(lines) >= 1, "the person's session is a row of the database", lines)
    ops, mem, salt, lookup_key = codename_kdf.instance_kdf(a.data)
    lookup_id, pk, sk = codename_kdf.derive(person.codename, salt, lookup_key, ops, mem)
    dump = subprocess.run(["psql", "-X", "-A", "-t", url, "-c",
                           "SELECT id || keyid || sealed FROM sessions"],
                          capture_output=True, timeout=60).stdout
    raw = bytes.fromhex("".join(x[2:] for x in dump.decode().split() if x.startswith("\\x")))
    check(len(raw) > 0, "the session rows' bytes were read", dump[:200])
    needles = [("secret key", sk), ("public key", pk), ("lookup id", lookup_id),
               ("case id", ids[0].encode())]
    needles += [("codename (%s)" % label, pat) for label, pat in encodings(person.codename)]
    needles += [("a codename word", w.encode()) for w in person.codename.split() if len(w) > 3]
    found = [n for n, pat in needles if pat in raw]
    check(not found, "the session rows hold none of the person's secrets in the clear", found)
    log("session row: %d sealed bytes, no codename, key or case id in it" %
        (len(lines[0].split("|")[2]) // 2))

    # a server with another key: the row is there, it does not open
    other_key = session_key(os.path.join(key_dir(), "other.key"))
    stranger = sibling(a).start(["--session-key", other_key])
    check(not logged_in(Browser(stranger.url), stranger), "a browser without a cookie is not in")
    check(not logged_in(person.b, stranger),
          "a server with another session key cannot open the person's session row")
    check(logged_in(person.b, servers[1]), "the three servers still open it")
    stranger.stop_clean()

    # --- a caseworker syncing through the round robin while people send
    stop = threading.Event()
    sent = []
    errors = []

    quota_hits = []

    def sender(k):
        try:
            while not stop.is_set():
                p = Person(servers[k])
                p.new_codename()
                n = 0
                while not stop.is_set():
                    on(p.b, servers[(k + n) % 3])
                    resp, _ = p.send("flood %d-%d %s" % (k, n, secrets.token_hex(4)))
                    if resp.status == 429:  # the day's quota, counted across the three
                        quota_hits.append((k, n))
                        break
                    if resp.status != 200:
                        errors.append((k, n, resp.status))
                        return
                    n += 1
                    sent.append((k, n))
        except Exception as e:  # reported below
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    marks = []
    while len(sent) < 3:
        time.sleep(0.05)
    deadline = time.time() + 300
    while len(marks) < 4 or (not quota_hits and time.time() < deadline):
        marks.append(len(sent))                    # syncs while the three send
        alice.run("sync")
    marks.append(len(sent))
    stop.set()
    for t in threads:
        t.join()
    alice.run("sync")
    check(not errors, "every person's send through the three servers was answered", errors)
    check(all(b > a for a, b in zip(marks, marks[1:])),
          "messages were sent during every one of the syncs", marks)
    check(quota_hits, "a person sending through the three servers meets the day's quota")
    check(all(n == QUOTA_MSGS for _, n in quota_hits),
          "the quota of %d messages a day holds across the three servers (refused at exactly "
          "that count, whichever server took each)" % QUOTA_MSGS, quota_hits)
    log("%d messages sent through the three servers during %d syncs; quota met at %s"
        % (len(sent), len(marks) - 1, quota_hits))

    seen = [s for _, _, seqs in bal.pages for s in seqs]
    check(len(seen) == len(set(seen)), "no object seen twice across the syncs",
          [s for s in seen if seen.count(s) > 1][:20])
    check(seen == sorted(seen), "objects seen in ascending order across syncs and servers",
          seen[:80])
    con = lib.open_db(a, readonly=True)
    stored = [r[0] for r in con.execute("SELECT seq FROM objects ORDER BY seq").fetchall()]
    con.close()
    check(seen == stored, "the syncs saw every stored object, none skipped (no gap)",
          (len(seen), len(stored), sorted(set(stored) - set(seen))[:20]))
    check(stored == list(range(stored[0], stored[0] + len(stored))),
          "the stored sequence numbers have no gap", stored[:60])
    servers_used = {i for i, _, _ in bal.pages}
    check(servers_used == {0, 1, 2}, "the object pages came from all three servers",
          bal.pages[:10])
    log("%d object pages from servers %s: %d objects, once, in order"
        % (len(bal.pages), sorted(servers_used), len(seen)))

    # --- logout on one ends it on all
    cookie = person.b.cookies.get("s")
    check(row_count(url, cookie) == 1, "the session's row is BLAKE2b-256 of the cookie's token")
    for s in servers:
        check(logged_in(person.b, s), "the session is live on server %d before the logout"
              % servers.index(s))
    r = on(person.b, servers[0]).get("/exit")
    check("s" not in person.b.cookies, "the quick exit clears the cookie", person.b.cookies)
    replay = Browser(servers[1].url)
    replay.cookies["s"] = cookie
    for k, s in enumerate(servers):
        check(not logged_in(replay, s),
              "after the logout on server 0, the old cookie opens nothing on server %d" % k)
    check(row_count(url, cookie) == 0, "the logout deleted the session's row")
    log("logout on server 0 ended the session on servers 1 and 2")

    # --- rotation, without a restart
    early = Person(servers[0])
    early.new_codename()                           # sealed under the first key
    p = run(["server", "session-key", "--rotate", keyfile], timeout=60)
    check(p.returncode == 0 and "rotated" in p.out, "`refuge server session-key --rotate`",
          p.out + p.err)
    new_id = p.out.split("key id ")[1].split(")")[0]
    time.sleep(7)                                  # every server's reaper re-read the file
    late = Person(servers[1])
    late.new_codename()
    check(row_keyid(url, late.b.cookies["s"]) == new_id,
          "a session made after the rotation is sealed under the new key", new_id)
    for k, s in enumerate(servers):
        check(logged_in(early.b, s), "after one rotation, server %d still opens a session "
              "sealed under the previous key" % k)
        check(logged_in(late.b, s), "server %d opens a session sealed under the new key" % k)
    p = run(["server", "session-key", "--rotate", keyfile], timeout=60)
    check(p.returncode == 0, "a second rotation", p.out + p.err)
    time.sleep(7)
    for k, s in enumerate(servers):
        check(not logged_in(early.b, s), "after two rotations, the first key's session is over "
              "on server %d" % k)
        check(logged_in(late.b, s), "the second key's session lives on on server %d" % k)
    log("rotations picked up by the running servers: previous key still opens, older does not")

    for s in servers:
        s.stop_clean()


if __name__ == "__main__":
    lib.main(test)
