#!/usr/bin/env python3
"""
Floods and slow clients, against a server with the default Argon2id cost.

For FLOOD_SECONDS at once:
  - slowloris: hundreds of connections that send a header byte every few
    seconds (and some that send a POST body a byte at a time);
  - a flood of logins with random codenames (POST /login, concurrently);
  - a flood of new codenames (GET /new + POST /new);
  - endless uploads: POST /send that stream without end (chunked, and with a
    Content-Length far larger than what is then sent);
meanwhile the landing page is fetched on fresh connections (p50/p99
latency printed), a person with a real codename logs in again and again
(each must be answered within seconds, and get in), and the server's RSS is
sampled from /proc (peak printed; it must stay bounded).
Then: a burst of logins far beyond the KDF queue is answered at once with
the "busy, try again" page (503, Retry-After) for those past the bound,
never queued for ever; and a session that sends more than
RF_SESSION_QUOTA_MSGS messages a day gets the quota page (429).
"""
import http.client
import multiprocessing
import os
import random
import re
import select
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (REPO, Browser, Page, Person, Server, Staff, TestFailure, check,
                 encode_multipart, log, main, visible_text_fields)

FLOOD_SECONDS = float(os.environ.get("FLOOD_SECONDS", "45"))
SLOWLORIS = int(os.environ.get("FLOOD_SLOWLORIS", "600"))
LOGIN_THREADS = 10
NEW_THREADS = 2
UPLOAD_THREADS = 4
UPLOAD_MAX = 32 * 1000 * 1000
LANDING_P99_MAX = 2.0   # seconds
STALL_MIN = 2.0         # seconds a sleeping process woke late: the machine stood still
ANSWER_MAX = 20.0       # seconds for a legitimate login attempt to be answered (a shared CI box)
LOGIN_MAX = 60.0        # seconds for a person who retries on "busy" to get in
RSS_MAX_MB = 400        # ASan build, its quarantine capped (below)


def header_of(text, name):
    m = re.search(r"^%s:\s*(.*?)\r?$" % re.escape(name), text, re.I | re.M)
    return m.group(1) if m else None


def po_text(msgid):
    with open(os.path.join(REPO, "po", "en.po"), encoding="utf-8") as f:
        m = re.search(r'msgid "%s"\nmsgstr "(.*)"' % re.escape(msgid), f.read())
    check(m, "po/en.po has %s" % msgid)
    return m.group(1)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n


def anon_form(port, path):
    """A fresh pre-session cookie and the CSRF token of the form on path."""
    b = Browser("http://127.0.0.1:%d" % port)
    r = b.get(path)
    f = r.page.form(path)
    check(f is not None, "%s has its form" % path, r.text[:500])
    return b, f


def post_form(port, path, cookies, fields, timeout=60):
    body = urllib.parse.urlencode(fields).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join("%s=%s" % kv for kv in cookies.items())})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


# ---------------------------------------------------------------- attackers


def slowloris(port, n, stop, stats):
    """n connections that never finish their headers (or body): one byte each
    every ~3 s, new connections for those the server closes."""
    socks = []

    def dial(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        if i % 10 == 0:  # a POST whose body trickles
            head = (b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                    b"x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n")
        else:
            head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % i
        return [s, head, 0]

    for i in range(n):
        socks.append(dial(i))
    stats.add("slowloris opened", n)
    while not stop.is_set():
        t0 = time.time()
        for i, entry in enumerate(socks):
            s, pending, _ = entry
            try:
                data = pending if pending else b"a"
                sent = s.send(data)
                entry[1] = pending[sent:] if pending else b""
                entry[2] += sent
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                stats.add("slowloris closed by server")
                socks[i] = dial(i)
            if stop.is_set():
                break
        # drain anything the server said (a 408 or a close)
        poll = select.poll()
        byfd = {}
        for i, e in enumerate(socks):
            poll.register(e[0], select.POLLIN)
            byfd[e[0].fileno()] = i
        for fd, _ in poll.poll(0):
            i = byfd[fd]
            s = socks[i][0]
            try:
                if s.recv(4096) == b"":
                    raise OSError
                stats.add("slowloris answered")
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                stats.add("slowloris closed by server")
                socks[i] = dial(i)
        stop.wait(max(0.0, 3.0 - (time.time() - t0)))
    for s, _, _ in socks:
        s.close()


def login_flood(port, stop, stats, lat):
    rnd = random.Random()
    b, f = anon_form(port, "/login")
    csrf = dict(f.hidden())["csrf"]
    name = visible_text_fields(f)[0]["name"]
    while not stop.is_set():
        guess = " ".join("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
                         for _ in range(7))
        t0 = time.time()
        try:
            st = post_form(port, "/login", b.cookies, [("csrf", csrf), (name, guess)])
            stats.add("login %d" % st)
            lat.append(time.time() - t0)
        except (OSError, http.client.HTTPException) as e:
            stats.add("login error " + type(e).__name__)
            time.sleep(0.1)


def new_flood(port, stop, stats):
    while not stop.is_set():
        try:
            b = Browser("http://127.0.0.1:%d" % port)
            r = b.request("GET", "/new")
            stats.add("GET /new %d" % r.status)
            if r.status != 200:
                time.sleep(0.05)
                continue
            f = Page(r.text).form("/new")
            r = b.submit(f, follow=False)
            stats.add("POST /new %d" % r.status)
        except TestFailure:
            stats.add("new error")
            time.sleep(0.1)


def endless_upload(port, cookies, csrf, stop, stats, chunked):
    """Streams a file part for ever (until the server answers or closes)."""
    rnd = os.urandom(65536)
    while not stop.is_set():
        boundary = "----flood%08x" % random.getrandbits(32)
        head = ('--%s\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n%s\r\n'
                '--%s\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
                'Content-Type: application/octet-stream\r\n\r\n' % (boundary, csrf, boundary))
        req = ("POST /send HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n"
               "Content-Type: multipart/form-data; boundary=%s\r\n"
               % ("; ".join("%s=%s" % kv for kv in cookies.items()), boundary))
        if chunked:
            req += "Transfer-Encoding: chunked\r\n\r\n"
        else:  # a length within the limits, then far more data than the limit allows
            req += "Content-Length: %d\r\n\r\n" % (UPLOAD_MAX + 100000)
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        sent = 0
        try:
            s.sendall(req.encode())
            piece = head.encode()
            while not stop.is_set():
                data = piece + rnd
                piece = b""
                if chunked:
                    data = b"%x\r\n" % len(data) + data + b"\r\n"
                s.sendall(data)
                sent += len(data)
            stats.add("upload still streaming at the end")
        except OSError:
            # the server answered (413) and stopped reading
            s.settimeout(5)
            try:
                ans = s.recv(200)
                m = re.match(rb"HTTP/1\.1 (\d+)", ans)
                stats.add("upload answered %s" % (m.group(1).decode() if m else "none"))
            except OSError:
                stats.add("upload closed without answer")
        finally:
            stats.add("upload MB", sent // 1000000)
            s.close()


# ---------------------------------------------------------------- the person


def legit_login(srv, codename):
    """Logs in with the real codename: (seconds, status of the login, inbox ok)."""
    t0 = time.time()
    b = Browser(srv.url)
    r = b.get("/login")
    f = r.page.form("/login")
    r = b.submit(f, [(visible_text_fields(f)[0]["name"], codename)], follow=False)
    st = r.status
    ok = False
    if st == 303 and (r.header("location") or "").endswith("/inbox"):
        ok = b.request("GET", "/inbox").status == 200
    return time.time() - t0, st, ok


def persistent_login(srv, codename, give_up):
    """A person who is told "busy, try again" tries again a second later:
    (seconds until in or given up, [(seconds, status) of each attempt], in)."""
    t0 = time.time()
    attempts = []
    while time.time() - t0 < give_up:
        started = time.time()
        t, st, ok = legit_login(srv, codename)
        attempts.append((t, st, started))
        if ok:
            return time.time() - t0, attempts, True
        if st != 503:
            break
        time.sleep(1.0)
    return time.time() - t0, attempts, False


def prober(port, until, results):
    """GET / on a fresh connection every 50 ms: latencies and failures."""
    landing, failures = [], []
    while time.time() < until:
        s = time.time()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            conn.close()
            landing.append(time.time() - s)
            if r.status != 200:
                failures.append("GET / %d" % r.status)
        except (OSError, http.client.HTTPException) as e:
            failures.append("GET / " + type(e).__name__)
        time.sleep(0.05)
    results.put(("landing", (landing, failures)))


def stall_watch(done, results):
    """Sleeps 50 ms at a time and records each wake-up that came more than
    STALL_MIN late: (start, seconds) on the wall clock. This process never
    talks to the server, so a late wake-up means the machine itself stood
    still (a shared CI host pausing the VM), not the server."""
    stalls = []
    last = time.monotonic()
    while not done.is_set():
        time.sleep(0.05)
        now = time.monotonic()
        if now - last > STALL_MIN:
            stalls.append((time.time() - (now - last), now - last))
        last = now
    results.put(("stalls", stalls))


def stalled_during(stalls, start, seconds):
    """Seconds of machine stall within [start, start + seconds]."""
    end = start + seconds
    return sum(max(0.0, min(end, s + d) - max(start, s)) for s, d in stalls)


def logger_in(srv, codename, until, results):
    """The person logs in again and again."""
    logins = []
    while time.time() < until:
        s = time.time()
        try:
            logins.append(persistent_login(srv, codename, LOGIN_MAX))
        except TestFailure as e:
            logins.append((time.time() - s, [(time.time() - s, str(e)[:80], s)], False))
        time.sleep(1.0)
    results.put(("logins", logins))


def burst_logins(srv, n):
    """n logins sent at once on n connections: (statuses, seconds to all answers,
    Retry-After values)."""
    b, f = anon_form(srv.port, "/login")
    csrf = dict(f.hidden())["csrf"]
    name = visible_text_fields(f)[0]["name"]
    cookie = "; ".join("%s=%s" % kv for kv in b.cookies.items())
    socks = []
    t0 = time.time()
    for i in range(n):
        body = urllib.parse.urlencode([("csrf", csrf), (name, "burst guess %d %s" % (
            i, os.urandom(6).hex()))]).encode()
        req = (b"POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: " +
               cookie.encode() + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=120)
        s.sendall(req)
        socks.append(s)
    statuses, retry, busy_text, last = [], [], 0, 0.0
    busy = po_text("err.busy.text")
    for s in socks:
        buf = b""
        while True:
            try:
                got = s.recv(65536)
            except OSError:
                break
            if not got:
                break
            buf += got
        s.close()
        last = time.time() - t0
        text = buf.decode("utf-8", "replace")
        m = re.match(r"HTTP/1\.1 (\d+)", text)
        statuses.append(int(m.group(1)) if m else None)
        if m and m.group(1) == "503":
            retry.append(header_of(text, "Retry-After"))
            busy_text += busy in text
    return statuses, last, retry, busy_text


def quota(srv):
    """A session past its daily message quota gets the quota page (429)."""
    p = Person(srv)
    p.new_codename()
    r, _ = p.send("first message of the quota test")
    check(r.status == 200, "the quota person's intake was sent")
    r = p.inbox()
    csrf = dict(r.page.form("/send").hidden())["csrf"]
    cookies = dict(p.b.cookies)
    sent, answer = 1, None
    text = po_text("err.quota.text")
    for i in range(400):
        body, ctype = encode_multipart([("csrf", csrf), ("text", "quota %d" % i)])
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        conn.request("POST", "/send", body=body, headers={
            "Content-Type": ctype, "Cookie": "; ".join("%s=%s" % kv for kv in cookies.items())})
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        conn.close()
        if r.status == 303:
            sent += 1
            continue
        answer = (r.status, data)
        break
    check(answer is not None, "the quota stops a session that sends for ever (%d sent)" % sent)
    check(answer[0] == 429, "past the quota: status 429 (got %d after %d)" % (answer[0], sent),
          answer[1][:500])
    check(text in answer[1], "the quota page says: " + text, answer[1][:1500])
    # the quota holds: the next one too
    body, ctype = encode_multipart([("csrf", csrf), ("text", "one more")])
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.request("POST", "/send", body=body, headers={
        "Content-Type": ctype, "Cookie": "; ".join("%s=%s" % kv for kv in cookies.items())})
    st = conn.getresponse().status
    conn.close()
    check(st == 429, "the quota holds for the next message too (%d)" % st)
    return sent


def test():
    # ASan keeps up to 256 MB of freed memory in quarantine by default: capped
    # here so that RSS measures the server rather than the sanitizer.
    if "quarantine_size_mb" not in os.environ.get("ASAN_OPTIONS", ""):
        os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    srv = Server(cheap_kdf=False).init().start(["--upload-max", str(UPLOAD_MAX)])
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")
    person = Person(srv)
    person.new_codename()
    r, _ = person.send("hello before the flood")
    check(r.status == 200, "the person's first message was sent")
    codename = person.codename
    t_alone, st, ok = legit_login(srv, codename)
    check(ok, "a login works before the flood (%s)" % st)
    mem0 = srv.memory()
    log("before the flood: a login takes %.2f s; RSS %d MB" % (t_alone, mem0["VmRSS"] >> 10))

    # an uploader with a session of its own
    up = Person(srv)
    up.new_codename()
    up.send("uploader")
    up_csrf = dict(up.inbox().page.form("/send").hidden())["csrf"]

    stop = threading.Event()
    stats = Stats()
    flood_lat = []
    threads = [threading.Thread(target=slowloris, args=(srv.port, SLOWLORIS, stop, stats))]
    threads += [threading.Thread(target=login_flood, args=(srv.port, stop, stats, flood_lat))
                for _ in range(LOGIN_THREADS)]
    threads += [threading.Thread(target=new_flood, args=(srv.port, stop, stats))
                for _ in range(NEW_THREADS)]
    threads += [threading.Thread(target=endless_upload,
                                 args=(srv.port, dict(up.b.cookies), up_csrf, stop, stats,
                                       i % 2 == 0))
                for i in range(UPLOAD_THREADS)]
    for t in threads:
        t.daemon = True
        t.start()
    time.sleep(2)  # let the flood build up

    # the landing-page prober and the person logging in run in processes of
    # their own, so that the attackers' threads (and Python's GIL) do not
    # slow down what measures the server
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    watch_done = ctx.Event()
    t0 = time.time()
    probes = [ctx.Process(target=prober, args=(srv.port, t0 + FLOOD_SECONDS, results)),
              ctx.Process(target=logger_in, args=(srv, codename, t0 + FLOOD_SECONDS, results)),
              ctx.Process(target=stall_watch, args=(watch_done, results))]
    for pr in probes:
        pr.start()
    rss = []
    while time.time() - t0 < FLOOD_SECONDS:
        m = srv.memory()
        if m:
            rss.append((time.time() - t0, m["VmRSS"]))
        time.sleep(0.25)
    got = dict(results.get(timeout=120) for _ in probes[1:])
    watch_done.set()
    got.update([results.get(timeout=60)])
    for pr in probes:
        pr.join(60)
    landing, failures = got["landing"]
    logins = got["logins"]
    stalls = got["stalls"]
    stop.set()
    for t in threads:
        t.join(60)
    mem = srv.memory()
    check(srv.proc.poll() is None, "the server survived the flood")

    log("attackers: %s" % dict(sorted(stats.counts.items())))
    log("landing during the flood: %d requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
        % (len(landing), pct(landing, 50) * 1e3, pct(landing, 99) * 1e3, max(landing) * 1e3))
    log("legitimate logins (busy answers retried after 1 s): %s" % ", ".join(
        "%.1fs%s%s" % (t, "" if len(a) == 1 else " after %d busy" % (len(a) - 1),
                       "" if ok else " FAILED %s" % (a[-1][1],)) for t, a, ok in logins))
    log("machine stalls (a process that only sleeps woke more than %.0f s late): %s" % (
        STALL_MIN, ", ".join("%.1f s at +%.0f s" % (d, st - t0) for st, d in stalls) or "none"))
    log("flood logins: %d answered, p50 %.2f s, p99 %.2f s"
        % (len(flood_lat), pct(flood_lat, 50), pct(flood_lat, 99)))
    first = max(v for t, v in rss if t < FLOOD_SECONDS / 2)
    second = max(v for t, v in rss if t >= FLOOD_SECONDS / 2)
    log("RSS: before %d MB, peak in the first half %d MB, in the second half %d MB, VmHWM %d MB,"
        " after %d MB" % (mem0["VmRSS"] >> 10, first >> 10, second >> 10, mem["VmHWM"] >> 10,
                          mem["VmRSS"] >> 10))
    check(not failures, "the landing page answered every time (%d failures)" % len(failures),
          failures[:10])
    check(pct(landing, 99) < LANDING_P99_MAX, "landing p99 under %.1f s during the flood"
          % LANDING_P99_MAX)
    # an attempt is timed less the time the whole machine stood still meanwhile
    slow = [a for _, att, _ in logins for a in att
            if a[0] - stalled_during(stalls, a[2], a[0]) > ANSWER_MAX]
    check(not slow, "every legitimate login attempt is answered within %.0f s" % ANSWER_MAX, slow)
    bad = [(t, att) for t, att, ok in logins if not ok]
    check(logins and not bad, "every legitimate login got in within %.0f s" % LOGIN_MAX, bad)
    check(stats.counts.get("slowloris opened", 0) >= SLOWLORIS, "the slowloris connections were open")
    check(mem["VmHWM"] >> 10 < RSS_MAX_MB, "peak RSS under %d MB (%d MB)"
          % (RSS_MAX_MB, mem["VmHWM"] >> 10))
    check(second <= first * 1.25 + (32 << 10),
          "RSS does not grow as the flood goes on (%d MB, then %d MB)" % (first >> 10, second >> 10))

    # a burst far beyond the KDF queue (64 waiting + workers)
    statuses, secs, retry, busy_text = burst_logins(srv, 200)
    counts = {s: statuses.count(s) for s in set(statuses)}
    log("burst of 200 logins at once: %s, all answered in %.1f s" % (counts, secs))
    check(None not in statuses, "every login of the burst was answered", counts)
    check(counts.get(503, 0) >= 200 - 66 - 10,
          "logins beyond the KDF queue's bound are answered 503 busy (%d)" % counts.get(503, 0))
    check(busy_text == counts.get(503, 0), "each 503 is the busy page (%d of %d)"
          % (busy_text, counts.get(503, 0)))
    check(all(r for r in retry), "each busy answer has Retry-After")
    check(set(statuses) <= {200, 503}, "the others are the login page", counts)
    time.sleep(2)
    t_after, st, ok = legit_login(srv, codename)
    check(ok, "after the burst, a login works again (%s)" % st)

    sent = quota(srv)
    log("quota: %d messages sent in a session, the next ones 429" % sent)
    mem = srv.memory()
    srv.stop_clean()
    print("FIGURES flood: %ds with %d slowloris connections, %d login threads, %d new-codename "
          "threads, %d endless uploads; landing p50 %.1f ms p99 %.1f ms (%d requests); "
          "legitimate login (retrying on busy) max %.1f s; RSS peak %d MB (VmHWM, ASan build); burst of 200 "
          "logins: %d busy 503; quota: 429 after %d messages"
          % (FLOOD_SECONDS, SLOWLORIS, LOGIN_THREADS, NEW_THREADS, UPLOAD_THREADS,
             pct(landing, 50) * 1e3, pct(landing, 99) * 1e3, len(landing),
             max(t for t, _, _ in logins), mem["VmHWM"] >> 10, counts.get(503, 0), sent))


if __name__ == "__main__":
    main(test)
