#!/usr/bin/env python3
"""
A person's session cannot make the server receive refused uploads for ever:
what a refused upload streamed counts toward the session's daily byte quota,
and a session whose bytes for the day are spent is refused before its body
is read.

On a server with --upload-max 1000000 and --session-quota-bytes 2600000,
once with sessions in memory and once with them in the database
(--session-key: the store's one conditional UPDATE), on the backend the
suite runs on (SQLite, or PostgreSQL with REFUGE_TEST_DB=postgresql):
  - a person sends their intake (stored);
  - two uploads of a 1.2 MB file, chunked (no Content-Length, so nothing
    refuses them before they stream), are refused 413 "too large";
  - the same upload a third time is refused 429, the daily-limit page,
    part-way: the 2 MB the refused ones streamed were counted, and the day's
    bytes are now spent;
  - a small text is then refused 429 with the daily-limit page, at once;
  - a request announcing a 1.2 MB body is answered 429 though the client
    sends only its headers and first part and then waits: the server never
    reads the body (it answers and closes: RF_HTTP_DISCARD_MAX);
  - a fresh session of another person sends a text and a 500 kB file as
    usual.
The next day (the counters start again at UTC midnight) is not simulated:
tests/unit/session_test.c and sesskey_test.c cover the counters; the day's
reset is the same CASE as for stored bytes.
"""
import http.client
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (REPO, Person, Server, check, encode_multipart, enroll_first_admin, log, main,
                 shared_session_key)

UPLOAD_MAX = 1000000
QUOTA = 2600000
BIG = 1200000          # more than UPLOAD_MAX; the rest after a refusal < 1 MiB skipped
ANSWER_S = 10.0        # a refusal before the body must come within this


def po_text(msgid):
    with open(os.path.join(REPO, "po", "en.po"), encoding="utf-8") as f:
        m = re.search(r'msgid "%s"\nmsgstr "(.*)"' % re.escape(msgid), f.read())
    check(m, "po/en.po has %s" % msgid)
    return m.group(1)


def cookie_header(p):
    return "; ".join("%s=%s" % kv for kv in dict(p.b.cookies).items())


def csrf_of(p):
    r = p.inbox()
    return dict(r.page.form("/send").hidden())["csrf"]


def post(srv, p, body, ctype, chunked=False):
    """POST /send; returns (status, text, seconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    headers = {"Content-Type": ctype, "Cookie": cookie_header(p)}
    t0 = time.time()
    try:
        if chunked:
            pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
            conn.request("POST", "/send", body=iter(pieces), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/send", body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered before the whole body was taken: read the answer
    r = conn.getresponse()
    text = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, text, time.time() - t0


def big_upload(csrf):
    data = os.urandom(BIG)
    return encode_multipart([("csrf", csrf), ("text", "a big file"),
                             ("file", ("big.bin", "application/octet-stream", data))])


def headers_only(srv, p, csrf):
    """Announces a BIG body, sends its headers and first part only, waits for
    the answer: the status line, or None if none came within ANSWER_S."""
    body, ctype = big_upload(csrf)
    first = body[:body.index(b"name=\"text\"")]
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=ANSWER_S)
    req = ("POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nCookie: %s\r\n"
           "Content-Length: %d\r\n\r\n" % (ctype, cookie_header(p), len(body))).encode()
    s.sendall(req + first)
    got = b""
    t0 = time.time()
    try:
        while b"\r\n\r\n" not in got and time.time() - t0 < ANSWER_S:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return got.split(b"\r\n", 1)[0].decode("latin-1") if got else None, time.time() - t0


def scenario(label, extra):
    srv = Server()
    srv.init()
    srv.start(["--upload-max", str(UPLOAD_MAX), "--session-quota-bytes", str(QUOTA)] + extra)
    enroll_first_admin(srv)
    quota_text = po_text("err.quota.text")
    large_text = po_text("err.toolarge.text").split("{{")[0].strip()

    p = Person(srv, lang="en")
    p.new_codename()
    r, _ = p.send("first message of the budget test")
    check(r.status == 200 and "sent=1" in r.url, "%s: the intake was sent" % label, r.text[:500])
    csrf = csrf_of(p)

    for i in range(2):
        body, ctype = big_upload(csrf)
        st, text, dt = post(srv, p, body, ctype, chunked=True)
        log("%s: oversized upload %d: %d in %.2fs" % (label, i + 1, st, dt))
        check(st == 413, "%s: an upload over --upload-max is refused 413 (got %d)" % (label, st),
              text[:500])
        check(large_text in text, "%s: the 413 page says: %s" % (label, large_text), text[:1500])

    body, ctype = big_upload(csrf)
    st, text, dt = post(srv, p, body, ctype, chunked=True)
    log("%s: the third oversized upload: %d in %.2fs" % (label, st, dt))
    check(st == 429, "%s: the refused uploads' bytes were counted: the third one meets the daily "
          "limit (429), not 413 (got %d)" % (label, st), text[:500])
    check(quota_text in text, "%s: the daily-limit page says: %s" % (label, quota_text),
          text[:1500])

    body, ctype = encode_multipart([("csrf", csrf), ("text", "a few words")])
    st, text, dt = post(srv, p, body, ctype)
    log("%s: a small text after the budget: %d in %.3fs" % (label, st, dt))
    check(st == 429, "%s: once the day's bytes are spent, a small text is refused 429 (got %d)"
          % (label, st), text[:500])
    check(quota_text in text, "%s: with the daily-limit page" % label, text[:1500])
    check(dt < ANSWER_S, "%s: and at once (%.2fs)" % (label, dt))

    status, dt = headers_only(srv, p, csrf)
    log("%s: %d bytes announced, none sent: %r in %.3fs" % (label, BIG, status, dt))
    check(status is not None and " 429" in status,
          "%s: a spent session's upload is refused from its headers, its body never read "
          "(answered: %r after %.1fs)" % (label, status, dt))

    q = Person(srv, lang="en")
    q.new_codename()
    r, _ = q.send("another person, another session")
    check(r.status == 200 and "sent=1" in r.url, "%s: another person's session sends" % label,
          r.text[:500])
    r, _ = q.send("with a file", files=[("ok.bin", "application/octet-stream",
                                         os.urandom(500000))])
    check(r.status == 200 and "sent=1" in r.url,
          "%s: another person's session sends a 500 kB file" % label, r.text[:500])
    srv.stop_clean()


def test():
    if os.environ.get("REFUGE_TEST_SESSION_KEY") == "1":
        scenario("sessions in the database", [])
        return
    scenario("sessions in memory", [])
    scenario("sessions in the database", ["--session-key", shared_session_key()])


if __name__ == "__main__":
    main(test)
