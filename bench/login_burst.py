#!/usr/bin/env python3
"""bench/login_burst.py BASE_URL PWHASH_CMD... - logins in a burst against a running
server (bench/login_burst.sh starts it): makes 100 people through the real
/new flow, then
  - login cost: 20 logins one after another (POST /login to its 303), mean,
    against bare crypto_pwhash at the instance's parameters (PWHASH_CMD:
    refuge-bench-pwhash OPS MEM N, run just before and just after the logins,
    the mean of the two, so both see the same machine): ratio = pwhash /
    login (1.0: Argon2id is all of it);
  - bursts of 100, 300 and 1,000 logins sent at once, each from its own
    pre-session cookie, real codenames (the 100, cycled): answered in (303 to
    the inbox), refused busy (503), other; time to the last success;
  - landing page p50/p99 (one keep-alive connection, a request every 10 ms)
    during the burst of 100.
Benchmark fixture only (python3 standard library)."""
import html
import http.client
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

base, pwhash_cmd = sys.argv[1], sys.argv[2:]
u = urllib.parse.urlparse(base)
HOST, PORT = u.hostname, u.port


def req(conn, method, path, cookies, body=None):
    h = {"Cookie": "; ".join("%s=%s" % kv for kv in cookies.items())} if cookies else {}
    if body is not None:
        h["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    text = r.read().decode("utf-8", "replace")
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, _, rest = v.partition("=")
            cookies[name] = rest.split(";", 1)[0]
    return r.status, text


def hidden_fields(text):
    """The hidden fields, each once (/new has two forms with the same ones)."""
    return list({html.unescape(k): html.unescape(v) for k, v in
                 re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', text)}.items())


def make_people(n, workers=8):
    out, lock = [], threading.Lock()

    def maker(k):
        conn = http.client.HTTPConnection(HOST, PORT, timeout=120)
        for _ in range(k):
            ck = {}
            st, text = req(conn, "GET", "/new", ck)
            m = re.search(r'<ol class="words"[^>]*>(.*?)</ol>', text, re.S)
            words = re.findall(r"<li>([^<]+)</li>", m.group(1)) if m else []
            st, _ = req(conn, "POST", "/new", ck, urllib.parse.urlencode(hidden_fields(text)))
            if st != 303 or len(words) != 7:
                print("POST /new answered %d (codename found: %s)" % (st, bool(words)))
                continue
            with lock:
                out.append(" ".join(words))
    ts = [threading.Thread(target=maker, args=(n // workers + (i < n % workers),))
          for i in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if len(out) < n:
        sys.exit("made only %d of %d people" % (len(out), n))
    return out


def login_form(conn):
    """A fresh pre-session: (cookie header, body template fields, field name)."""
    ck = {}
    st, text = req(conn, "GET", "/login", ck)
    fields = hidden_fields(text)
    m = re.search(r'<input[^>]*type="(?:text|password)"[^>]*name="([^"]+)"', text) or \
        re.search(r'<input[^>]*name="([^"]+)"[^>]*type="(?:text|password)"', text)
    return "; ".join("%s=%s" % kv for kv in ck.items()), fields, m.group(1)


def post_login(cookie, fields, name, codename):
    body = urllib.parse.urlencode(fields + [(name, codename)]).encode()
    return (b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: " +
            cookie.encode() + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def login_cost(codenames, n=20):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=120)
    took = []
    for i in range(n):
        cookie, fields, name = login_form(conn)
        s = socket.create_connection((HOST, PORT))
        t0 = time.time()
        s.sendall(post_login(cookie, fields, name, codenames[i % len(codenames)]))
        buf = s.recv(4096)
        took.append(time.time() - t0)
        s.close()
        if not buf.startswith(b"HTTP/1.1 303"):
            sys.exit("a login answered %r" % buf[:40])
    return 1000 * sum(took) / len(took)


def burst(codenames, n, probe=None):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=120)
    reqs = [post_login(*login_form(conn), codenames[i % len(codenames)]) for i in range(n)]
    sel = selectors.DefaultSelector()
    socks = []
    t0 = time.time()
    for r in reqs:
        s = socket.create_connection((HOST, PORT), timeout=300)
        s.sendall(r)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    sent = time.time() - t0
    got = {s: b"" for s in socks}
    done = {}
    while len(done) < n and time.time() - t0 < 300:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                b = s.recv(65536)
            except OSError:
                b = b""
            if b:
                got[s] += b
                continue
            sel.unregister(s)
            s.close()
            m = re.match(rb"HTTP/1\.1 (\d+)", got[s])
            done[s] = (int(m.group(1)) if m else 0, time.time() - t0)
    if probe:
        probe.set()
    counts = {}
    for st, _ in done.values():
        counts[st] = counts.get(st, 0) + 1
    ok = [t for st, t in done.values() if st == 303]
    return counts, max(ok) if ok else 0.0, n - len(done), sent


def landing_probe(stop, lat):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
    while not stop.is_set():
        t = time.time()
        conn.request("GET", "/")
        conn.getresponse().read()
        lat.append(time.time() - t)
        time.sleep(0.01)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else 0.0


people = make_people(100)
def pwhash_ms():
    out = subprocess.run(pwhash_cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return float(out.split()[1])


before = pwhash_ms()
cost = login_cost(people)
pw_ms = (before + pwhash_ms()) / 2
print("login cost: %.1f ms per login (one at a time), bare crypto_pwhash %.1f ms, ratio %.2f "
      "(target >= 0.90)" % (cost, pw_ms, pw_ms / cost))
print("%-6s %10s %10s %8s %12s %s" % ("burst", "answered", "busy-503", "other", "last-in-s",
                                      "landing p50/p99 ms"))
for n in (100, 300, 1000):
    lat, stop = [], threading.Event()
    th = None
    if n == 100:
        th = threading.Thread(target=landing_probe, args=(stop, lat))
        th.start()
    counts, last, unanswered, _ = burst(people, n, stop if th else None)
    if th:
        stop.set()
        th.join()
    other = sum(v for k, v in counts.items() if k not in (303, 503)) + unanswered
    land = "%.1f / %.1f" % (1000 * pct(lat, 50), 1000 * pct(lat, 99)) if lat else "-"
    print("%-6d %10d %10d %8d %12.1f %s" % (n, counts.get(303, 0), counts.get(503, 0), other,
                                              last, land))
    time.sleep(2)
