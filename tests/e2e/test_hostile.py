#!/usr/bin/env python3
"""
Hostile input: a table of bad requests (tests/e2e/hostile_cases.py), each sent
raw over its own socket so that every byte is the test's: broken HTTP,
oversized and NUL-laden headers, path traversal, bad encodings in paths,
queries, cookies and form fields, bad multipart, duplicate fields, CSRF
missing/forged/from another session, wrong methods on every route, and staff
API requests with forged signatures, replayed nonces, skewed clocks, body
hash mismatches and hostile JSON.

Each answer must be what its row expects: a 4xx/5xx (or the row's status)
with an HTML page on the person's routes or JSON {"error": ..} under /api/,
or, only where HTTP itself is broken, a closed connection; never a hang,
never a session cookie. Around the whole table the store must be unchanged
(objects, sources, staff, rosters, enroll_tokens and DATA/blobs) and the
server up and clean under the sanitizers.

The staff key is made here (pure-Python Ed25519 from lib.py): it enrolls as
the first admin with roster version 1, so rows can carry valid signatures.
"""
import base64
import hashlib
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_cases
from lib import (Browser, Person, Server, check, ed25519_public, ed25519_sign, encode_roster, log,
                 main, raw_exchange, snapshot_diff, store_snapshot, visible_text_fields)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Ctx:
    pass


def make_signer(seed):
    pk_cache = {}

    def pk_of(s):
        if s not in pk_cache:
            pk_cache[s] = ed25519_public(s)
        return pk_cache[s]

    def sign(method, target, seed_=None, sig_seed=None, ts=None, nonce=None, body_for_hash=b"",
             **kw):
        s = kw.get("seed", seed_) or seed
        ts = ts if ts is not None else str(int(time.time()))
        nonce = nonce or b64u(os.urandom(16))
        bh = hashlib.blake2b(body_for_hash, digest_size=32).hexdigest()
        msg = "refuge-api-v1\n%s\n%s\n%s\n%s\n%s" % (method, target, ts, nonce, bh)
        sig = ed25519_sign(sig_seed or s, msg.encode())
        return "Refuge key=%s, ts=%s, nonce=%s, body=%s, sig=%s" % (
            b64u(pk_of(s)), ts, nonce, bh, b64u(sig))
    return sign


def api(srv, sign, method, path, body=b""):
    h = ["Authorization: " + sign(method, path, body_for_hash=body)]
    if body:
        h.append("Content-Type: application/json")
    a = raw_exchange(srv.port, hostile_cases.req(method, path, h, body), timeout=30)
    check(a.status is not None, "%s %s answered" % (method, path), a)
    return a


def setup(srv):
    ctx = Ctx()
    seed = os.urandom(32)
    ctx.sign = make_signer(seed)
    sign_pk = ed25519_public(seed)
    box_pk = os.urandom(32)  # no one opens what is sealed to it here
    roster = encode_roster(1, b"\0" * 32, [{"name": "Hostile Admin", "role": 1,
                                             "box_pk": box_pk, "sign_pk": sign_pk}],
                           signer_seed=seed)
    body = json.dumps({"token": srv.token, "name": "Hostile Admin", "sign_pk": b64u(sign_pk),
                       "box_pk": b64u(box_pk), "roster": b64u(roster)}).encode()
    a = api(srv, ctx.sign, "POST", "/api/v1/enroll", body)
    check(a.status == 200, "the test's key enrolls as the first admin (%s)" % a.status, a.text)
    ctx.spent_token = srv.token
    ctx.enroll_pk = b64u(sign_pk)

    people = []
    for i in range(2):
        p = Person(srv)
        p.new_codename()
        r, _ = p.send("hostile test person %d" % i)
        check(r.status == 200, "person %d's first message was sent" % i)
        f = p.inbox().page.form("/send")
        people.append((p, dict(f.hidden())["csrf"]))
    (p1, ctx.p1_csrf), (p2, ctx.p2_csrf) = people
    ctx.p1_session = p1.b.cookies["s"]
    objs = json.loads(api(srv, ctx.sign, "GET", "/api/v1/objects?after=0").text)["objects"]
    check(len(objs) == 2, "two objects before the table", objs)
    ctx.p1_case, ctx.p1_message_seq = objs[0]["case"], objs[0]["seq"]
    ctx.p2_message_seq = objs[1]["seq"]

    anon = Browser(srv.url)
    r = anon.get("/login")
    f = r.page.form("/login")
    ctx.anon_csrf = dict(f.hidden())["csrf"]
    ctx.login_field = visible_text_fields(f)[0]["name"]
    r = anon.get("/new")
    ctx.pending = dict(r.page.form("/new").hidden())["pending"]
    ctx.anon_cookie = "; ".join("%s=%s" % kv for kv in anon.cookies.items())
    other = Browser(srv.url)
    ctx.other_anon_csrf = dict(other.get("/login").page.form("/login").hidden())["csrf"]
    return ctx


def verdict(case, a):
    """None if the answer is what the row expects, else why not."""
    if a.status is None:
        if a.error == "timeout" and case.hang:
            return None
        if a.error == "timeout":
            return "no answer within the timeout (%r)" % a
        return None if case.close else "connection closed without an answer (%r)" % a
    if case.statuses is not None:
        if a.status not in case.statuses:
            return "status %d, expected %s" % (a.status, sorted(case.statuses))
    elif not 400 <= a.status <= 599:
        return "status %d, expected an error" % a.status
    for v in [v for k, v in a.headers if k == "set-cookie"]:
        if case.no_session and re.match(r"\s*s=[^;]", v):
            return "a session cookie was set"
    if a.status in (301, 302, 303, 204, 304) or (case.close and a.status >= 400 and
                                                 not a.header("content-security-policy")):
        return None  # a redirect, or libmicrohttpd's own answer to broken HTTP
    ctype = (a.header("content-type") or "").lower()
    kind = case.kind
    if kind == "any":
        kind = "json" if ctype.startswith("application/json") else "html"
    if kind == "html":
        if not ctype.startswith("text/html") or "<html" not in a.text.lower():
            return "not an HTML page (Content-Type %r, %r)" % (ctype, a.body[:80])
    else:
        try:
            j = json.loads(a.body)
        except ValueError:
            return "not JSON (Content-Type %r, %r)" % (ctype, a.body[:80])
        if a.status >= 400 and not (isinstance(j, dict) and isinstance(j.get("error"), str)):
            return "JSON without an error field: %r" % a.body[:120]
        if not ctype.startswith("application/json"):
            return "JSON without Content-Type application/json (%r)" % ctype
    return None


def test():
    srv = Server().init().start()
    ctx = setup(srv)
    table = hostile_cases.cases(ctx)
    check(len(table) >= 200, "the table has at least 200 requests (%d)" % len(table))
    before = store_snapshot(srv.data)
    log("store before: %s" % ", ".join("%s %d" % (k, len(v)) for k, v in before.items()))

    per_cat, statuses, bad = {}, {}, []
    missed_eof = 0
    t0 = time.time()
    for i, case in enumerate(table):
        data = case.data() if callable(case.data) else case.data
        a = raw_exchange(srv.port, data, timeout=3 if case.hang else 10, shut=case.shut)
        why = verdict(case, a)
        tries = 1
        while why and case.shut and a.error == "timeout" and tries < 3:
            # libmicrohttpd (epoll, edge-triggered) now and then misses the end
            # of a connection the client half-closed together with its last
            # bytes, and leaves it to the idle timeout (60 s): epoll is
            # edge-triggered, and when the bytes and the end of stream arrive
            # before its thread wakes (a loaded box) they make one edge. The
            # case is sent again (at most twice more), the end of stream a
            # moment after the bytes, and must get its expected answer then;
            # the misses are counted in the figures.
            missed_eof += 1
            tries += 1
            a = raw_exchange(srv.port, data, timeout=10, shut=case.shut, shut_after=0.3 * tries)
            why = verdict(case, a)
        per_cat[case.cat] = per_cat.get(case.cat, 0) + 1
        key = a.status if a.status is not None else "closed"
        statuses[key] = statuses.get(key, 0) + 1
        if why:
            bad.append("[%s] %s: %s" % (case.cat, case.name, why))
        elif a.status is not None and a.status >= 500:
            log("note: [%s] %s answered %d %r" % (case.cat, case.name, a.status, a.body[:100]))
        if i % 25 == 24 or why:
            up = raw_exchange(srv.port, hostile_cases.req("GET", "/"), timeout=10)
            check(up.status == 200, "the server still answers GET / after [%s] %s (%r)"
                  % (case.cat, case.name, up), srv.output().decode("utf-8", "replace")[-3000:])
    secs = time.time() - t0
    if missed_eof:
        log("half-closed connections left to the idle timeout once and sent again: %d" % missed_eof)
    log("%d requests in %.1f s; per category: %s" % (len(table), secs, ", ".join(
        "%s %d" % kv for kv in sorted(per_cat.items()))))
    log("answers: %s" % ", ".join("%s: %d" % (k, v) for k, v in
                                  sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    for line in bad:
        log("UNEXPECTED " + line)
    srv.check_sanitizers()
    check(not bad, "every hostile request gets the answer its row expects (%d do not)" % len(bad),
          "\n".join(bad))

    after = store_snapshot(srv.data)
    diff = snapshot_diff(before, after)
    check(diff is None, "the store is unchanged by the whole table", diff)
    check(os.listdir(os.path.join(srv.data, "tmp")) == [], "no temp file is left")
    r = raw_exchange(srv.port, hostile_cases.req("GET", "/"), timeout=10)
    check(r.status == 200, "the server answers the landing page after the table")
    srv.stop_clean()
    print("FIGURES hostile: %d requests tried (%s); answers %s; store unchanged; server up"
          % (len(table), ", ".join("%s %d" % kv for kv in sorted(per_cat.items())),
             ", ".join("%s:%d" % (k, v) for k, v in sorted(statuses.items(),
                                                          key=lambda kv: str(kv[0])))))


if __name__ == "__main__":
    main(test)
