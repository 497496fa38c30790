"""
test_api_trust.py - the staff API's trust review findings 7, 8 and 12 (issue
13), end to end with the real server and the real CLI:

  7  a request captured on the wire (by a recording proxy between Bob's client
     and the server) and sent again with its exact bytes is refused as a
     replay: by the server that served it, after that server restarts, and by
     a second `refuge serve` on the same data directory; a replayed write adds
     nothing;
  8  once Alice removes Bob, his key reads nothing: every read route answers
     403 with a JSON error, and `refuge sync` says he was removed;
 12  Bob (a member) posts junk grants for a newcomer before Alice's honest
     rewrap (his client, fed swapped objects by a lying proxy, seals the wrong
     content keys), and for a second newcomer after it: both newcomers read
     every case (the server keeps each granter's grant, the client tries each).
"""
import http.client
import http.server
import json
import os
import secrets
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib
from lib import (Person, Server, approve, case_ids, check, enroll_first_admin, free_port, invite,
                 json_strings, keyid, log, main, on_cleanup, open_db, require_commands)


class RecordingProxy:
    """Forwards every request unchanged to 127.0.0.1:upstream and records it
    exactly as sent (method, target, headers, body); .swap = {path: path}
    answers a GET for one path with the upstream's answer for another;
    .no_range answers range requests (GET /api/v1/objects/data) 404 as a
    server older than them does, so the client fetches one object at a time."""

    def __init__(self, upstream):
        proxy = self
        self.upstream = upstream
        self.port = free_port()
        self.seen = []
        self.swap = {}
        self.no_range = False

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "content-length", "host")}
                if proxy.no_range and self.path.startswith("/api/v1/objects/data?"):
                    data = b'{"error":"not_found","message":"no such object"}'
                    proxy.seen.append((self.command, self.path, dict(hdrs), body, 404, data))
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data)
                    return
                status, rh, data = send(proxy.upstream, self.command, self.path, hdrs, body)
                proxy.seen.append((self.command, self.path, dict(hdrs), body, status, data))
                if self.command == "GET" and status == 200:
                    other = proxy.swap.get(self.path)
                    if other is not None:
                        data = proxy.answers[other]  # the other object's bytes
                    else:
                        proxy.answers[self.path] = data
                self.send_response(status)
                for k, v in rh:
                    if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                         "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self.answers = {}
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
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

    def last(self, method, prefix):
        """The last recorded request for method and path prefix, as sent."""
        for m, path, hdrs, body, _, _ in reversed(self.seen):
            if m == method and path.startswith(prefix):
                return m, path, hdrs, body
        raise AssertionError("no %s %s recorded" % (method, prefix))


def send(port, method, path, hdrs, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(method, path, body=body or None, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.getheaders(), data


def replay(port, captured):
    """Sends a recorded request again, byte for byte; (status, JSON answer)."""
    method, path, hdrs, body = captured
    status, _, data = send(port, method, path, hdrs, body)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, {"raw": data[:200].decode("utf-8", "replace")}


class AtPath:
    """What invite() needs of a server: its URL (here: the proxy's)."""

    def __init__(self, url):
        self.url = url


def readable(member, case, text):
    p = member.run("show", case, "--json", ok=False)
    try:
        return text in json_strings(json.loads(p.out))
    except ValueError:
        return False


def test():
    require_commands("staff", "fingerprint", "rewrap", "note")
    srv = Server().init().start()
    proxy = RecordingProxy(srv.port)
    alice = enroll_first_admin(srv, "Alice")
    bob = invite(AtPath(proxy.url), alice, "Bob")  # every request of Bob's goes through the proxy
    approve(alice, bob)
    for m in (alice, bob):
        m.run("sync")

    # two people write, messages of one length (the same padded size)
    texts = []
    for i in range(2):
        p = Person(srv)
        p.new_codename()
        texts.append("message %d before the newcomers %s" % (i, secrets.token_hex(8)))
        resp, _ = p.send(texts[-1])
        check(resp.status == 200, "person %d's message is sent" % i, resp.text[:500])
    alice.run("sync")
    cases = case_ids(alice.json("cases", "--json"))
    check(len(cases) == 2, "two cases", cases)
    con = open_db(srv)
    seqs = [r[0] for r in con.execute(
        "SELECT o.seq FROM objects o JOIN sources s ON s.id = o.source_id "
        "WHERE s.case_id <> 'teamconfig' AND o.kind = 1 ORDER BY o.seq").fetchall()]
    check(len(seqs) == 2, "two messages stored", seqs)

    # ---- finding 12, part 1: Bob's client is fed the two messages swapped ----
    a, b = ("/api/v1/objects/%d" % s for s in seqs)
    # first a clean fetch of each through the proxy, to record their bytes
    # (the proxy plays a server without range requests: one object at a time)...
    proxy.no_range = True
    bob.run("sync")
    check(a in proxy.answers and b in proxy.answers, "the proxy saw Bob fetch both messages")
    # ...then a fresh cache for Bob that the proxy feeds swapped
    proxy.swap = {a: b, b: a}
    home = bob.env["REFUGE_HOME"]
    for name in os.listdir(home):
        path = os.path.join(home, name)
        if name == "objects":
            for f in os.listdir(path):
                os.unlink(os.path.join(path, f))
        elif name.startswith("cache.db"):
            os.unlink(path)
    bob.run("sync")
    proxy.swap = {}
    proxy.no_range = False
    case0 = next(c for c in cases if readable(alice, c, texts[0]))
    check(readable(bob, case0, texts[1]),
          "the lying proxy fed Bob's client the other message under this case (so the "
          "content keys his rewrap seals are the wrong ones: junk grants)")

    carol = invite(srv, alice, "Carol")
    approve(alice, carol)
    for m in (alice, bob):
        m.run("sync")
    bob.run("rewrap")     # junk first: each grant carries the other message's key
    alice.run("rewrap")   # the honest rewrap after it
    dave = invite(srv, alice, "Dave")
    approve(alice, dave)
    for m in (alice, bob):
        m.run("sync")
    alice.run("rewrap")   # honest first for Dave
    bob.run("rewrap")     # junk after it
    for m, name in ((carol, "Carol"), (dave, "Dave")):
        m.run("sync")
        for text in texts:
            check(any(readable(m, case, text) for case in cases),
                  "%s, approved after the message, reads it although Bob's junk grant for "
                  "it was stored %s Alice's honest one" %
                  (name, "before" if name == "Carol" else "after"), text)
    for who in ("Carol", "Dave"):
        box = con.execute("SELECT box_pk FROM staff WHERE name = ?", (who,)).fetchone()[0]
        rows = con.execute("SELECT seq, count(*) FROM grants WHERE keyid = ? GROUP BY seq",
                           (bytes.fromhex(keyid(box)),)).fetchall()
        check(sorted(rows) == [(seqs[0], 2), (seqs[1], 2)],
              "the server keeps both granters' grants for %s's key (Bob's and Alice's)" % who,
              rows)
    log("finding 12: junk grants before and after the honest rewrap: both newcomers read")

    # ---- finding 7: a captured request replayed ----
    bob.run("sync")
    listing = proxy.last("GET", "/api/v1/objects?")
    bob.run("note", cases[0], "captured note " + secrets.token_hex(4))
    note = proxy.last("POST", "/api/v1/cases/")
    n_objects = con.execute("SELECT count(*) FROM objects").fetchone()[0]
    for captured, what in ((listing, "a listing"), (note, "a note")):
        st, ans = replay(srv.port, captured)
        check(st == 401 and ans.get("error") == "replay",
              "%s replayed to the same server is refused as a replay" % what, (st, ans))
    srv.stop_clean()
    srv.restart()
    for captured, what in ((listing, "a listing"), (note, "a note")):
        st, ans = replay(srv.port, captured)
        check(st == 401 and ans.get("error") == "replay",
              "%s replayed after the server restarted is refused as a replay" % what, (st, ans))
    other = Server()
    other.data = srv.data
    if lib.DB == "sqlite":  # SQLite serves one process at a time per data directory
        srv.stop_clean()
    other.start()
    for captured, what in ((listing, "a listing"), (note, "a note")):
        st, ans = replay(other.port, captured)
        check(st == 401 and ans.get("error") == "replay",
              "%s replayed to a second `refuge serve` on the same data directory is refused"
              % what, (st, ans))
    check(con.execute("SELECT count(*) FROM objects").fetchone()[0] == n_objects,
          "no replayed note was stored")
    other.stop_clean()
    if srv.proc is None:
        srv.restart()
    log("finding 7: replays refused by the same server, after a restart, by another process")

    # ---- finding 8: a removed key reads nothing ----
    alice.run("staff", "remove", "Bob")
    alice.run("sync")
    first = len(proxy.seen)
    p = bob.run("sync", ok=False)
    check(p.returncode != 0 and "removed" in (p.out + p.err),
          "Bob's `refuge sync` after his removal says his key was removed", p.out + p.err)
    bob.run("staff", "list", ok=False)
    bob.run("audit", "verify", ok=False)
    after = proxy.seen[first:]
    check(after, "Bob's client asked the server after his removal")
    for m, path, _, _, status, data in after:
        try:
            code = json.loads(data).get("error")
        except ValueError:
            code = None
        check(status == 403 and code == "not_on_roster",
              "after his removal Bob's %s %s is refused (403, a JSON error)" % (m, path),
              (status, data[:300]))
    log("finding 8: Bob, removed, reads nothing")
    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
