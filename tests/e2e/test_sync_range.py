#!/usr/bin/env python3
"""Range download (GET /api/v1/objects/data, docs/protocol.md section 11).

1. A team (Alice, Bob) and four people who send several hundred messages,
   a small file and one file over the range answer's 256 KiB threshold.
   Bob's cold sync gets everything; the server's audit log holds a few
   `fetch` entries by Bob naming ranges ("N+1..M") and one single fetch for
   the large file (left out of the ranges, fetched alone), not one per
   object; `refuge audit verify` accepts the range entries (their signed
   requests name the range). A warm sync fetches nothing. Through a proxy
   that changes range answers (a roster claim, a kind, a cut), a third
   member's cold sync stops loudly and keeps nothing of the page; the
   honest answer then gets everything.
2. The request itself, signed here (pure-Python Ed25519 from lib.py, a key
   enrolled as the first admin of a second server): the answer parsed byte
   by byte here matches the JSON listing; a bad signature is refused 401,
   limits out of 1..1000, a missing field or a query not in the one form
   the server takes are refused 400, each with a JSON error; the range's
   audit entry names "1..M".
"""
import hashlib
import http.client
import http.server
import json
import os
import struct
import threading
import time

from lib import (Person, Server, approve, check, ed25519_public, ed25519_sign, encode_roster,
                 enroll_first_admin, free_port, invite, log, main, on_cleanup, open_db)
import base64

N_MESSAGES = 320
BIG = 300 * 1024  # a file whose ciphertext is over the 256 KiB threshold


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def signer(seed):
    pk = ed25519_public(seed)

    def sign(method, target, sig_seed=None):
        ts = str(int(time.time()))
        nonce = b64u(os.urandom(16))
        bh = hashlib.blake2b(b"", digest_size=32).hexdigest()
        msg = "refuge-api-v1\n%s\n%s\n%s\n%s\n%s" % (method, target, ts, nonce, bh)
        sig = ed25519_sign(sig_seed or seed, msg.encode())
        return "Refuge key=%s, ts=%s, nonce=%s, body=%s, sig=%s" % (b64u(pk), ts, nonce, bh,
                                                                     b64u(sig))
    return sign


def request(srv, sign, method, target, sig_seed=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    h = {"Authorization": sign(method, target, sig_seed=sig_seed)}
    c.request(method, target, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "", data


def parse_range(data, after):
    """The answer of docs/protocol.md 11, parsed independently of the C code."""
    check(data[:5] == b"RFRG\x01", "the answer starts with RFRG version 1", data[:16])
    off, out, prev = 5, [], after
    while True:
        t = data[off]
        if t == 0:
            last, count = struct.unpack(">QI", data[off + 1:off + 13])
            check(off + 13 == len(data), "nothing follows the end record")
            check(count == len(out), "the end record counts the entries", (count, len(out)))
            return out, last
        check(t in (1, 2), "entry type 1 or 2", t)
        seq, kind, day, roster = struct.unpack(">QBII", data[off + 1:off + 18])
        case = data[off + 18:off + 28].rstrip(b"\0").decode()
        (size,) = struct.unpack(">Q", data[off + 28:off + 36])
        off += 36
        check(seq > prev, "entries ascend", (seq, prev))
        prev = seq
        body = None
        if t == 1:
            body = data[off:off + size]
            off += size
        out.append({"seq": seq, "kind": kind, "day": day, "roster": roster, "case": case,
                    "size": size, "data": body})


class TamperProxy:
    """Forwards to the server; while .tamper is set, the range answers it
    passes on go through it (bytes -> bytes)."""

    def __init__(self, upstream):
        proxy = self
        self.tamper = None
        self.port = free_port()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "content-length", "host")}
                c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=120)
                c.request(self.command, self.path, body=body or None, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                c.close()
                if (proxy.tamper and r.status == 200 and
                        self.path.startswith("/api/v1/objects/data?")):
                    data = proxy.tamper(data)
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                         "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

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


class AtPath:
    def __init__(self, url):
        self.url = url


def settled(con, n, timeout=10):
    """The fetch entries' targets once there are n (a fetch queues its entry
    without waiting for it), or what there is after timeout."""
    end = time.time() + timeout
    while True:
        got = [t for _, t in fetch_entries(con)]
        if len(got) >= n or time.time() > end:
            return got
        time.sleep(0.05)


def stable(con):
    """The fetch entries once their count stops changing (a fetch queues its
    entry without waiting for it to be stored)."""
    got = fetch_entries(con)
    for _ in range(100):
        time.sleep(0.3)
        now = fetch_entries(con)
        if len(now) == len(got):
            return now
        got = now
    return got


def fetch_entries(con, actor=None):
    rows = con.execute("SELECT actor, target FROM audit WHERE action = 'fetch' ORDER BY id")
    return [(bytes(a), t) for a, t in rows.fetchall()
            if actor is None or bytes(a) == actor]


def team_part():
    srv = Server().init().start()
    alice = enroll_first_admin(srv, "Alice")
    bob = invite(srv, alice, "Bob")
    approve(alice, bob)
    for k in range(4):  # a person's line takes at most a few hundred messages a day
        p = Person(srv)
        p.new_codename()
        for i in range(N_MESSAGES // 4):
            r, _ = p.send("message %d %s" % (k * 1000 + i, os.urandom(4).hex()))
            check(r.status == 200, "message %d.%d sent" % (k, i), r.text[:300])
    big = os.urandom(BIG)
    r, _ = p.send("two files", files=[("big.bin", "application/octet-stream", big),
                                      ("small.txt", "text/plain", b"small file\n" * 50)])
    check(r.status == 200, "the message with two files is sent", r.text[:300])
    con = open_db(srv)
    n_obj = con.execute("SELECT count(*) FROM objects").fetchone()[0]
    large = con.execute("SELECT count(*) FROM objects WHERE size > ?", (256 * 1024,)).fetchone()[0]
    check(n_obj > N_MESSAGES and large == 1, "several hundred objects, one over 256 KiB",
          (n_obj, large))
    bob_pk = bytes(con.execute("SELECT sign_pk FROM staff WHERE name = 'Bob'").fetchone()[0])

    out = bob.run("sync").out
    check("Synced %d new objects" % n_obj in out, "Bob's cold sync gets all %d objects" % n_obj,
          out)
    got = [e for e in stable(con) if e[0] == bob_pk]
    ranges = [t for _, t in got if ".." in t]
    singles = [t for _, t in got if ".." not in t]
    check(ranges and len(ranges) <= 16,
          "Bob's cold sync asked for a few ranges, not one object at a time", got)
    check(len(singles) == 1, "the one object over the threshold was fetched alone", singles)
    big_seq = con.execute("SELECT seq FROM objects WHERE size > ?", (256 * 1024,)).fetchone()[0]
    check(singles == [str(big_seq)], "the single fetch is the large file's", (singles, big_seq))
    covered = set()
    for t in ranges:
        a, b = (int(x) for x in t.split(".."))
        covered.update(range(a, b + 1))
    seqs = [row[0] for row in con.execute("SELECT seq FROM objects").fetchall()]
    check(all(s in covered for s in seqs), "the ranges named in the log cover every object",
          (ranges, seqs[:5]))
    log("cold sync of %d objects: %d range answers, %d single fetch; the log names %s"
        % (n_obj, len(ranges), len(singles), ", ".join(ranges)))

    big_case = con.execute("SELECT s.case_id FROM objects o JOIN sources s ON s.id = o.source_id "
                           "WHERE o.seq = ?", (big_seq,)).fetchone()[0]
    shown = bob.run("show", "--json", big_case).out
    check("big.bin" in shown and "small.txt" in shown and "message 3000 " in shown,
          "Bob reads the messages and both files' names", shown[:500])

    before = len(stable(con))
    out = bob.run("sync").out
    check("Synced 0 new objects" in out and len(stable(con)) == before,
          "a warm sync fetches nothing", out)
    v = bob.run("audit", "verify", ok=False)
    check(v.returncode == 0, "`refuge audit verify` accepts the range entries (signed, naming their "
          "range)", v.out + v.err)
    log("warm sync fetched nothing; audit verify: ok")

    # a lying range answer (the first entry's roster claim changed, its
    # kind, a cut) stops Carol's cold sync loudly; nothing of the page is
    # stored, and the honest answer then gets everything
    proxy = TamperProxy(srv.port)
    carol = invite(AtPath(proxy.url), alice, "Carol")
    approve(alice, carol)
    n_obj = con.execute("SELECT count(*) FROM objects").fetchone()[0]
    for what, fn in (("a changed roster claim", lambda d: d[:5 + 17] + b"\x7f" + d[5 + 18:]),
                     ("a changed kind", lambda d: d[:5 + 9] + b"\x05" + d[5 + 10:]),
                     ("an answer cut short", lambda d: d[:len(d) - 7])):
        proxy.tamper = fn
        p = carol.run("sync", ok=False)
        check(p.returncode != 0 and "range answer is malformed" in p.err,
              "Carol's sync stops on %s" % what, p.out + p.err)
    proxy.tamper = None
    out = carol.run("sync").out
    check("Synced %d new objects" % n_obj in out,
          "nothing of a refused answer was kept: the honest sync gets all %d" % n_obj, out)
    log("lying range answers (roster claim, kind, cut) stop the sync; the honest one completes")
    con.close()


def raw_part():
    srv = Server().init().start()
    seed = os.urandom(32)
    sign = signer(seed)
    sign_pk = ed25519_public(seed)
    box = os.urandom(32)
    roster = encode_roster(1, b"\0" * 32, [{"name": "Range Admin", "role": 1, "box_pk": box,
                                             "sign_pk": sign_pk}], signer_seed=seed)
    body = json.dumps({"token": srv.token, "name": "Range Admin", "sign_pk": b64u(sign_pk),
                       "box_pk": b64u(box), "roster": b64u(roster)}).encode()
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    bh = hashlib.blake2b(body, digest_size=32).hexdigest()
    ts, nonce = str(int(time.time())), b64u(os.urandom(16))
    msg = "refuge-api-v1\nPOST\n/api/v1/enroll\n%s\n%s\n%s" % (ts, nonce, bh)
    auth = "Refuge key=%s, ts=%s, nonce=%s, body=%s, sig=%s" % (
        b64u(sign_pk), ts, nonce, bh, b64u(ed25519_sign(seed, msg.encode())))
    c.request("POST", "/api/v1/enroll", body=body,
              headers={"Authorization": auth, "Content-Type": "application/json"})
    r = c.getresponse()
    check(r.status == 200, "the test's key enrolls as the first admin", r.read())
    c.close()
    for i in range(3):
        p = Person(srv)
        p.new_codename()
        r, _ = p.send("range test person %d" % i)
        check(r.status == 200, "person %d's message is sent" % i)

    st, ct, data = request(srv, sign, "GET", "/api/v1/objects?after=0&limit=1000")
    listing = json.loads(data)["objects"]
    check(len(listing) >= 3, "the listing has the messages", listing)
    st, ct, data = request(srv, sign, "GET", "/api/v1/objects/data?after=0&limit=1000")
    check(st == 200 and ct == "application/octet-stream", "a range request is answered", (st, ct))
    entries, last = parse_range(data, 0)
    check(len(entries) == len(listing) and last == listing[-1]["seq"],
          "the answer holds every listed object, and its end names the last", (len(entries), last))
    con = open_db(srv)
    for e, l in zip(entries, listing):
        for k in ("seq", "kind", "day", "roster", "case", "size"):
            check(e[k] == l[k], "entry %d: %s as listed" % (e["seq"], k), (e[k], l[k]))
        stored = con.execute("SELECT data FROM objects WHERE seq = ?", (e["seq"],)).fetchone()[0]
        check(e["data"] is not None and bytes(stored) == e["data"],
              "entry %d carries the stored ciphertext" % e["seq"])
    targets = settled(con, 1)
    check(targets == ["1..%d" % last], "one audit entry names the range", targets)

    st, ct, data = request(srv, sign, "GET", "/api/v1/objects/data?after=1&limit=1")
    entries, last = parse_range(data, 1)
    check(st == 200 and len(entries) == 1 and last == entries[0]["seq"],
          "limit=1 answers one entry", (st, entries, last))
    st, ct, data = request(srv, sign, "GET", "/api/v1/objects/data?after=%d&limit=5" % (10 ** 6))
    entries, last = parse_range(data, 10 ** 6)
    check(entries == [] and last == 10 ** 6, "past the end: no entry, last = after", last)
    n_audit = len(settled(con, 2))
    check(n_audit == 2, "an answer without ciphertext leaves no fetch entry", n_audit)

    def refused(target, status, code, sig_seed=None):
        st, ct, data = request(srv, sign, "GET", target, sig_seed=sig_seed)
        try:
            j = json.loads(data)
        except ValueError:
            j = {}
        check(st == status and ct.startswith("application/json") and j.get("error") == code,
              "%s is refused %d %s with a JSON error" % (target, status, code), (st, ct, data[:200]))

    refused("/api/v1/objects/data?after=0&limit=10", 401, "signature", sig_seed=os.urandom(32))
    for q in ("after=0&limit=0", "after=0&limit=1001", "after=0&limit=99999999999",
              "after=-1&limit=10", "after=0", "limit=10", "after=0&limit=010",
              "limit=10&after=0", "after=0&limit=10&x=1", "after=0&limit=1e3"):
        refused("/api/v1/objects/data?" + q, 400, "bad_query")
    check(len(stable(con)) == n_audit, "refused range requests leave no fetch entry")
    con.close()
    log("range answers parse byte by byte as documented; bad signature, limits and other forms "
        "refused with JSON errors")


def test():
    team_part()
    raw_part()


if __name__ == "__main__":
    main(test)
