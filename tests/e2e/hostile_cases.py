"""
hostile_cases.py - the table of bad requests test_hostile.py sends, raw.

cases(ctx) returns a list of Case: a category, a name, the exact bytes (or a
list of pieces) and what is expected:
  statuses  the statuses allowed (a set); None: any 4xx/5xx
  kind      "html": a page (text/html, a whole document) for the person's
            routes; "json": {"error": ...} for /api/; "any": either
  close     a connection closed without an answer is acceptable (only where
            HTTP itself is broken: the request cannot be parsed as HTTP)
  hang      no answer before the idle timeout is acceptable: one row, a
            limitation of libmicrohttpd 0.9.75 (below)
  no_session  the answer must not set a session cookie
ctx gives what a case needs: a logged-in person (cookies, CSRF token),
another person, an anonymous visitor's pre-session cookie and token, a
pending codename id, and sign(...) for staff API requests.
"""
import base64
import hashlib
import json
import os
import time


class Case:
    __slots__ = ("cat", "name", "data", "statuses", "kind", "close", "no_session", "pieces",
                 "shut", "hang")

    def __init__(self, cat, name, data, statuses=None, kind="any", close=False,
                 no_session=True, pieces=None, shut=False, hang=False):
        self.cat = cat
        self.name = name
        self.data = data
        self.statuses = set(statuses) if statuses is not None else None
        self.kind = kind
        self.close = close
        self.no_session = no_session
        self.pieces = pieces
        self.shut = shut
        self.hang = hang  # no answer at all is a known limitation (see the row)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def req(method, target, headers=(), body=b"", host=True, version=b"HTTP/1.1", length=True):
    """A request exactly as given (bytes or str pieces)."""
    def b(x):
        return x if isinstance(x, bytes) else x.encode("utf-8")
    out = b(method) + b" " + b(target) + b" " + version + b"\r\n"
    if host:
        out += b"Host: 127.0.0.1\r\n"
    for h in headers:
        out += b(h) + b"\r\n"
    if length and body and not any(b(h).lower().startswith(b"content-length") or
                                   b(h).lower().startswith(b"transfer-encoding")
                                   for h in headers):
        out += b"Content-Length: %d\r\n" % len(b(body))
    return out + b"\r\n" + b(body)


def form(method, path, cookies, body, ctype="application/x-www-form-urlencoded", extra=()):
    hs = ["Content-Type: " + ctype] if ctype else []
    if cookies:
        hs.append("Cookie: " + cookies)
    return req(method, path, hs + list(extra), body)


def multipart(parts, boundary="xYzBoUnDaRy", close=True):
    """parts: (headers text, body bytes) raw; the closing boundary if close."""
    out = b""
    for head, body in parts:
        out += b"--" + boundary.encode() + b"\r\n" + head.encode() + b"\r\n\r\n" + body + b"\r\n"
    if close:
        out += b"--" + boundary.encode() + b"--\r\n"
    return out


def fd(name, body, filename=None):
    h = 'Content-Disposition: form-data; name="%s"' % name
    if filename is not None:
        h += '; filename="%s"\r\nContent-Type: application/octet-stream' % filename
    return (h, body if isinstance(body, bytes) else body.encode())


PERSON_GET = ["/", "/new", "/login", "/inbox", "/exit", "/bye", "/favicon.ico", "/safety"]
PERSON_POST = ["/new", "/new/check", "/new/show", "/login", "/send", "/reply/delete"]
API_GET = ["/api/v1/roster", "/api/v1/staff", "/api/v1/grants", "/api/v1/audit",
           "/api/v1/objects", "/api/v1/objects/1", "/api/v1/cases/aaaaaaaaaa"]
API_POST = ["/api/v1/enroll", "/api/v1/roster", "/api/v1/tokens", "/api/v1/grants",
            "/api/v1/cases/aaaaaaaaaa/replies"]


def http_cases(ctx):
    C = []
    broken = dict(close=True)  # HTTP itself broken: 4xx or a closed connection
    C.append(Case("http", "request line of 100 KB", req("GET", "/" + "a" * 100000), None, **broken))
    C.append(Case("http", "header value of 70 KB", req("GET", "/", ["X-Big: " + "b" * 70000]),
                  None, **broken))
    # libmicrohttpd reads these leniently (a header it keeps or drops, no
    # framing involved): the page as usual is as right as a 400
    lenient = dict(statuses={200, 400, 431}, kind="html", close=True)
    C.append(Case("http", "header name of 20 KB", req("GET", "/", ["X" * 20000 + ": 1"]),
                  **lenient))
    C.append(Case("http", "5000 headers", req("GET", "/", ["X-H%d: v" % i for i in range(5000)]),
                  None, **broken))
    C.append(Case("http", "header without colon", req("GET", "/", ["NoColonHere"]), None, **broken))
    C.append(Case("http", "NUL in a header value", req("GET", "/", [b"X-A: a\x00b"]),
                  **lenient))
    C.append(Case("http", "NUL in a header name", req("GET", "/", [b"X-\x00A: b"]), None, **broken))
    C.append(Case("http", "obs-fold continuation", req("GET", "/", ["X-A: a", " folded"]),
                  **lenient))
    C.append(Case("http", "space before colon", req("GET", "/", ["X-A : a"]), **lenient))
    # ... but never where the body's framing depends on it
    C.append(Case("http", "space before colon in Content-Length", req("POST", "/login", [
        "Content-Length : 40", "Content-Type: application/x-www-form-urlencoded"],
        b"GET /inbox HTTP/1.1\r\nHost: a\r\n\r\n", length=False), {400, 403, 405}, kind="html",
        close=True))
    C.append(Case("http", "obs-folded Transfer-Encoding", req("POST", "/login", [
        "Transfer-Encoding:", " chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"3\r\nabc\r\n0\r\n\r\n", length=False), {400, 403}, kind="html", close=True))
    C.append(Case("http", "HTTP/1.1 without Host", req("GET", "/", host=False), None, **broken))
    C.append(Case("http", "two Host headers", req("GET", "/", ["Host: evil.example"]), None,
                  **broken))
    C.append(Case("http", "HTTP/0.9 request", b"GET /\r\n\r\n", None, **broken))
    C.append(Case("http", "HTTP/0.9 without CRLF", b"GET /\n", None, shut=True, **broken))
    C.append(Case("http", "HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 9,
                  None, **broken))
    C.append(Case("http", "HTTP/2.0 version", req("GET", "/", version=b"HTTP/2.0"), None,
                  **broken))
    C.append(Case("http", "HTTP/9.9 version", req("GET", "/", version=b"HTTP/9.9"), None,
                  **broken))
    C.append(Case("http", "version garbage", req("GET", "/", version=b"HTTQ/1.1"), None,
                  **broken))
    C.append(Case("http", "extra word in request line", b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
                  None, **broken))
    C.append(Case("http", "empty request line", b"\r\n\r\n\r\n", None, shut=True, **broken))
    C.append(Case("http", "binary garbage", os.urandom(512), None, shut=True, **broken))
    C.append(Case("http", "TLS ClientHello", bytes.fromhex(
        "16030100a5010000a10303") + os.urandom(32) + b"\x00" * 100, None, shut=True, **broken))
    C.append(Case("http", "NUL in the method", b"GE\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", None,
                  **broken))
    C.append(Case("http", "NUL in the path", b"GET /in\x00box HTTP/1.1\r\nHost: a\r\n\r\n", None,
                  **broken))
    C.append(Case("http", "raw 0xff bytes in the path", b"GET /\xff\xfe HTTP/1.1\r\nHost: a\r\n\r\n",
                  None, **broken))
    C.append(Case("http", "raw space in the path", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", None,
                  **broken))
    C.append(Case("http", "tab-separated request line", b"GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n",
                  None, **broken))
    C.append(Case("http", "method of 300 letters", req("A" * 300, "/"), None, **broken))
    C.append(Case("http", "absolute URI to another host", req("GET", "http://evil.example/"),
                  None, **broken))
    C.append(Case("http", "CONNECT authority form", req("CONNECT", "evil.example:443"), None,
                  **broken))
    C.append(Case("http", "OPTIONS *", req("OPTIONS", "*"), None, **broken))
    # bodies and their framing
    C.append(Case("chunked", "bad chunk size", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"zz\r\nabc\r\n0\r\n\r\n"), None, **broken))
    C.append(Case("chunked", "chunk size overflow", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"), None, **broken))
    C.append(Case("chunked", "negative chunk size", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"-1\r\nabc\r\n0\r\n\r\n"), None, **broken))
    C.append(Case("chunked", "chunk data longer than its size", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"2\r\nabcdef\r\n0\r\n\r\n"), None, **broken))
    C.append(Case("chunked", "huge chunk extension", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"3;" + b"e" * 70000 + b"\r\nabc\r\n0\r\n\r\n"), None, **broken))
    C.append(Case("chunked", "chunked and Content-Length (smuggling)", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Length: 5",
        "Content-Type: application/x-www-form-urlencoded"],
        b"0\r\n\r\nGET /inbox HTTP/1.1\r\nHost: a\r\n\r\n"), None, **broken))
    C.append(Case("chunked", "Transfer-Encoding gzip, chunked", req("POST", "/login", [
        "Transfer-Encoding: gzip, chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"3\r\nabc\r\n0\r\n\r\n"), None, **broken))
    C.append(Case("chunked", "Transfer-Encoding identity", req("POST", "/login", [
        "Transfer-Encoding: identity", "Content-Type: application/x-www-form-urlencoded"],
        b"abc"), None, shut=True, **broken))
    C.append(Case("chunked", "chunked, never ended (client closes)", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"3\r\nabc\r\n"), None, shut=True, **broken))
    C.append(Case("chunked", "a chunked body over the form limit", req("POST", "/login", [
        "Transfer-Encoding: chunked", "Content-Type: application/x-www-form-urlencoded"],
        b"".join(b"1000\r\n" + b"a" * 4096 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"),
        {413}, kind="any", close=True))
    C.append(Case("length", "two different Content-Lengths", req("POST", "/login", [
        "Content-Length: 3", "Content-Length: 4",
        "Content-Type: application/x-www-form-urlencoded"], b"abcd"), None, **broken))
    C.append(Case("length", "Content-Length not a number", req("POST", "/login", [
        "Content-Length: abc", "Content-Type: application/x-www-form-urlencoded"], b"abc"),
        None, **broken))
    C.append(Case("length", "negative Content-Length", req("POST", "/login", [
        "Content-Length: -3", "Content-Type: application/x-www-form-urlencoded"], b"abc"),
        None, **broken))
    C.append(Case("length", "Content-Length of 30 digits", req("POST", "/login", [
        "Content-Length: 999999999999999999999999999999",
        "Content-Type: application/x-www-form-urlencoded"], b"abc"), None, **broken))
    C.append(Case("length", "Content-Length past the form limit", req("POST", "/login", [
        "Content-Length: 10000000", "Content-Type: application/x-www-form-urlencoded"], b"a=b"),
        {413}, kind="html", close=True))
    C.append(Case("length", "body on a GET", req("GET", "/", ["Content-Length: 5"], b"hello"),
                  {400, 413}, kind="html", close=True))
    C.append(Case("length", "body shorter than Content-Length (client closes)", req(
        "POST", "/login", ["Content-Length: 100",
                           "Content-Type: application/x-www-form-urlencoded"], b"a=b"),
        None, shut=True, **broken))
    C.append(Case("length", "Expect: 100-continue past the limit", req("POST", "/login", [
        "Content-Length: 50000000", "Expect: 100-continue",
        "Content-Type: application/x-www-form-urlencoded"], b""), {413, 417}, kind="html",
        close=True))
    return C


def path_cases(ctx):
    C = []
    bad_paths = [
        "/../etc/passwd", "/../../../../etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/.%2e/.%2e/refuge.db",
        "/inbox/../../refuge.db", "/refuge.db", "/refuge.db-wal", "/blobs/", "/tmp/",
        "/blobs/" + "0" * 32, "//etc/passwd", "/%2e%2e%5c%2e%2e%5cwindows", "/..\\..\\etc",
        "/inbox%00", "/inbox%00.html", "/%00", "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/%c0%af", "/%e0%80%af", "/%ff%fe%fd", "/%", "/%zz", "/%2", "/inbox;jsessionid=1",
        "/INBOX", "/inbox/", "/login/", "/new.php", "/.git/config", "/.env", "/index.html",
        "/" + "x" * 4000, "/" + "/".join(["a"] * 1000), "/%2f%2f%2f", "/inbox%2f..%2f",
        "/\u043f\u0440\u0438\u0432\u0435\u0442", "/%d0%bf%d1%80", "/favicon.ico/../refuge.db",
        "/bye/..", "/exit%00", "/login%0d%0aSet-Cookie:%20s=x", "/%0d%0aLocation:%20http://evil",
    ]
    for p in bad_paths:
        C.append(Case("path", "GET " + p[:60], req("GET", p), {400, 404}, kind="html",
                      close=True))
    api_paths = [
        "/api/v1/objects/../../../../etc/passwd", "/api/v1/objects/%2e%2e%2f%2e%2e",
        "/api/v1/objects/1%00", "/api/v1/objects/-1", "/api/v1/objects/0",
        "/api/v1/objects/99999999999999999999999", "/api/v1/objects/1e3", "/api/v1/objects/0x10",
        "/api/v1/objects/%c0%ae", "/api/v1/cases/..%2f..%2frefuge.db", "/api/v1/cases/%00",
        "/api/v1/cases/" + "a" * 3000, "/api/v1/nothing", "/api/v2/objects", "/api/",
        "/api/v1/objects?after=-1", "/api/v1/objects?after=%00", "/api/v1/objects?limit=1e99",
    ]
    for p in api_paths:
        C.append(Case("path", "GET " + p[:60], req("GET", p), {400, 401, 403, 404}, kind="json",
                      close=True))
        C.append(Case("path", "signed GET " + p[:60],
                      req("GET", p, ["Authorization: " + ctx.sign("GET", p)]),
                      {200, 400} if "?" in p else {400, 404, 414}, kind="json", close=True))
    return C


def query_cookie_cases(ctx):
    C = []
    # libmicrohttpd 0.9.75 keeps each query argument in the connection's
    # 64 KiB memory; past ~700 it neither answers nor calls back: the
    # connection is dropped at the idle timeout (http.c frees the request)
    many = "/?" + "&".join("a%d=b" % i for i in range(3000))
    C.append(Case("query", "GET with 3000 query arguments", req("GET", many),
                  {400, 414, 431}, kind="html", close=True, hang=True))
    queries = ["/?lang=%00", "/?lang=%ff%fe", "/?lang=%c0%80", "/?lang=<script>alert(1)</script>",
               "/?lang=en&lang=ru&lang=xx", "/?" + "&".join("a%d=b" % i for i in range(300)),
               "/?%", "/?%%%%", "/?=&=&=", "/login?lang=" + "r" * 5000, "/inbox?sent=1%00",
               "/new?lang=ru%00en", "/?lang=%e2%80%ae"]
    for q in queries:  # ignored: the page as usual, or a clear error
        C.append(Case("query", "GET " + q[:50], req("GET", q), {200, 303, 400, 414}, kind="html",
                      close=True))
    cookies = [
        b"s=\x00\x00", b"s=%00", b"s=" + b"A" * 43, b"s=" + b"!" * 43, b"s=" + b"A" * 8000,
        b"; ".join(b"c%d=v" % i for i in range(500)), b"s=\xc0\xae\xc0\xae", b"s=\xff\xfe",
        b"lang=\xff; s=x", b"s=a; s=b; s=c", b"c=" + b"x" * 22, b"=", b";;;;;;", b"s",
        ("s=" + "A" * 43 + "; s=" + ctx.p1_session).encode(),
        ("s=" + ctx.p1_session[:-1] + "B").encode(),
    ]
    for ck in cookies:
        C.append(Case("cookie", "GET /inbox Cookie: %r" % ck[:40],
                      req("GET", "/inbox", [b"Cookie: " + ck]), {303, 400}, kind="any",
                      close=True))
    # the real session first, junk after: the person's own inbox
    C.append(Case("cookie", "GET /inbox, the session then a forged one", req("GET", "/inbox", [
        "Cookie: s=" + ctx.p1_session + "; s=" + "A" * 43]), {200, 303}, kind="html"))
    return C


def login_new_cases(ctx):
    C = []
    c = ctx.anon_cookie
    tok = ctx.anon_csrf
    name = ctx.login_field

    def login(body, cookies=c, ctype="application/x-www-form-urlencoded", statuses=None,
              extra=()):
        return form("POST", "/login", cookies, body, ctype, extra)

    failed = {200}  # the login page with its one generic error (same for every failure)
    rows = [
        ("csrf missing", "%s=a+b" % name, {403}),
        ("csrf forged", "csrf=%s&%s=a+b" % ("A" * 43, name), {403}),
        ("csrf of another visitor", "csrf=%s&%s=a+b" % (ctx.other_anon_csrf, name), {403}),
        ("csrf of a session", "csrf=%s&%s=a+b" % (ctx.p1_csrf, name), {403}),
        ("csrf empty", "csrf=&%s=a+b" % name, {403}),
        ("csrf 10 KB", "csrf=%s&%s=a+b" % ("A" * 10000, name), {400, 403, 413}),
        ("csrf twice, forged first", "csrf=%s&csrf=%s&%s=a+b" % ("A" * 43, tok, name),
         {200, 400, 403}),
        ("csrf twice, forged last", "csrf=%s&csrf=%s&%s=a+b" % (tok, "A" * 43, name),
         {200, 400, 403}),
        ("codename 10 KB", "csrf=%s&%s=%s" % (tok, name, "word+" * 2000), {200, 413}),
        ("codename 3 KB one word", "csrf=%s&%s=%s" % (tok, name, "w" * 3000), failed),
        ("codename twice", "csrf=%s&%s=a+b&%s=c+d" % (tok, name, name), failed),
        ("codename with NUL", "csrf=%s&%s=a%%00b+c" % (tok, name), failed),
        ("codename overlong UTF-8", "csrf=%s&%s=%%c0%%ae%%c0%%ae" % (tok, name), failed),
        ("codename invalid UTF-8", "csrf=%s&%s=%%ff%%fe%%fd" % (tok, name), failed),
        ("codename lone surrogate", "csrf=%s&%s=%%ed%%a0%%80" % (tok, name), failed),
        ("codename RTL override", "csrf=%s&%s=%%e2%%80%%ae+abc" % (tok, name), failed),
        ("codename empty", "csrf=%s&%s=" % (tok, name), failed),
        ("codename only spaces", "csrf=%s&%s=+++++" % (tok, name), failed),
        ("bad percent escapes", "csrf=%s&%s=%%zz%%" % (tok, name), {200, 400}),
        ("lone ampersands", "&&&&&&&&", {400, 403}),
        ("only equals signs", "====", {400, 403}),
        ("5000 fields", "&".join("f%d=v" % i for i in range(5000))[:4000], {400, 403, 413}),
        ("field name of 3000 bytes", "csrf=%s&%s=v" % (tok, "n" * 3000), {400, 403, 413}),
        ("body over the form limit", "csrf=%s&%s=%s" % (tok, name, "a" * 5000), {413}),
    ]
    for n, body, st in rows:
        C.append(Case("login", n, login(body), st, kind="html"))
    ctypes = [None, "text/plain", "application/json", "multipart/form-data",
              "multipart/form-data; boundary=", "application/x-www-form-urlencoded; charset=utf-7",
              "application/x-www-form-urlencoded\x00", "image/png"]
    for ct in ctypes:
        C.append(Case("login", "Content-Type %r" % ct,
                      login("csrf=%s&%s=a+b" % (tok, name), ctype=ct),
                      {200, 400, 403, 415}, kind="html", close=ct is not None and "\x00" in ct))
    # /new: confirming a codename
    newrows = [
        ("csrf missing", "pending=%s" % ctx.pending, {403}),
        ("csrf forged", "csrf=%s&pending=%s" % ("B" * 43, ctx.pending), {403}),
        ("pending missing", "csrf=%s" % tok, {400, 410}),
        ("pending forged", "csrf=%s&pending=%s" % (tok, "A" * 43), {410}),
        ("pending 10 KB", "csrf=%s&pending=%s" % (tok, "A" * 3000), {400, 410, 413}),
        ("pending with NUL", "csrf=%s&pending=%s%%00" % (tok, ctx.pending[:20]), {400, 410}),
        ("pending twice", "csrf=%s&pending=%s&pending=%s" % (tok, "A" * 43, "B" * 43),
         {400, 410}),
        ("pending as a codename", "csrf=%s&pending=a+b+c+d+e+f+g" % tok, {400, 410}),
    ]
    for n, body, st in newrows:
        C.append(Case("new", n, form("POST", "/new", c, body), st, kind="html"))
    # /new/check and /new/show: practising a codename, or seeing it again
    checkrows = newrows + [
        ("typed 10 KB", "csrf=%s&pending=%s&typed=%s" % (tok, ctx.pending, "a" * 10000),
         {400, 413}),
        ("typed not UTF-8", "csrf=%s&pending=%s&typed=%%C3%%28" % (tok, ctx.pending), {400}),
        ("typed with NUL", "csrf=%s&pending=%s&typed=a%%00b" % (tok, ctx.pending), {400}),
        ("typed twice", "csrf=%s&pending=%s&typed=a&typed=b" % (tok, ctx.pending), {200}),
    ]
    for path in ("/new/check", "/new/show"):
        for n, body, st in checkrows:
            if path == "/new/show" and n.startswith("typed") and "KB" not in n:
                st = {200}  # the words again; what was typed does not matter
            C.append(Case("new", "%s: %s" % (path, n), form("POST", path, c, body), st,
                          kind="html"))
    return C


def send_cases(ctx):
    """POST /send, each refused: nothing may be stored."""
    C = []
    s1 = "s=" + ctx.p1_session
    mp = "multipart/form-data; boundary=xYzBoUnDaRy"
    t1, t2 = ctx.p1_csrf, ctx.p2_csrf

    def send(body, cookies=s1, ctype=mp, extra=()):
        return form("POST", "/send", cookies, body, ctype, extra)

    rows = [
        ("no session", send(multipart([fd("csrf", t1), fd("text", "hi")]), cookies=None), {403}),
        ("forged session", send(multipart([fd("csrf", t1), fd("text", "hi")]),
                                cookies="s=" + "A" * 43), {403}),
        ("csrf missing", send(multipart([fd("text", "hi")])), {403}),
        ("csrf forged", send(multipart([fd("csrf", "A" * 43), fd("text", "hi")])), {403}),
        ("csrf of another session", send(multipart([fd("csrf", t2), fd("text", "hi")])), {403}),
        ("csrf after the text", send(multipart([fd("text", "hi"), fd("csrf", t1)])), {403}),
        ("csrf of the anonymous form", send(multipart([fd("csrf", ctx.anon_csrf),
                                                       fd("text", "hi")])), {403}),
        ("csrf twice, second forged", send(multipart([fd("csrf", t1), fd("csrf", "A" * 43)])),
         {400, 403}),
        ("csrf 100 KB", send(multipart([fd("csrf", "A" * 100000), fd("text", "hi")])),
         {400, 403, 413}),
        ("empty message", send(multipart([fd("csrf", t1), fd("text", "   ")])), {400}),
        ("text not UTF-8", send(multipart([fd("csrf", t1), fd("text", b"hello \xff\xfe")])),
         {400}),
        ("text over message_max", send(multipart([fd("csrf", t1), fd("text", "x" * 70000)])),
         {413}),
        ("text over max in two fields", send(multipart([fd("csrf", t1), fd("text", "x" * 40000),
                                                        fd("text", "y" * 40000)])), {413}),
        ("missing boundary parameter", send(multipart([fd("csrf", t1), fd("text", "hi")]),
                                            ctype="multipart/form-data"), {400}),
        ("empty boundary", send(multipart([fd("csrf", t1), fd("text", "hi")]),
                                ctype="multipart/form-data; boundary="), {400}),
        # read as a form (libmicrohttpd takes long boundaries), refused for
        # the forged token: no crash, no hang, nothing stored
        ("boundary of 200 characters", send(
            multipart([fd("csrf", "A" * 43), fd("text", "hi")], boundary="b" * 200),
            ctype="multipart/form-data; boundary=" + "b" * 200), {400, 403}),
        ("boundary of 3000 characters", send(
            multipart([fd("csrf", "A" * 43), fd("text", "hi")], boundary="b" * 3000),
            ctype="multipart/form-data; boundary=" + "b" * 3000), {400, 403, 413}),
        ("two boundary parameters", send(multipart([fd("csrf", "A" * 43), fd("text", "hi")]),
                                         ctype=mp + "; boundary=other"), {400, 403}),
        ("body does not use the boundary", send(
            multipart([fd("csrf", t1), fd("text", "hi")], boundary="other")), {400, 403}),
        ("truncated: no closing boundary", send(
            multipart([fd("csrf", t1), fd("text", "truncated message")], close=False)[:-2]),
         {400}),
        ("truncated mid-part", send(multipart([fd("csrf", t1), fd("text", "cut short")])[:-30]),
         {400}),
        ("truncated mid-file", send(multipart([fd("csrf", t1), fd("text", "with a file"),
                                               fd("file", os.urandom(5000), "a.bin")])[:-2000]),
         {400}),
        ("part without Content-Disposition", send(
            multipart([fd("csrf", t1), ("Content-Type: text/plain", b"hi")])), {400, 403}),
        ("part without a name", send(multipart([fd("csrf", t1), (
            "Content-Disposition: form-data", b"no name")])), {400}),
        ("name without closing quote", send(multipart([fd("csrf", t1), (
            'Content-Disposition: form-data; name="text', b"x")])), {400}),
        ("part header of 10 KB", send(multipart([fd("csrf", "A" * 43), (
            'Content-Disposition: form-data; name="text"; x="' + "h" * 10000 + '"', b"x")])),
         {400, 403, 413}),
        ("part header of 10 KB before the token", send(multipart([(
            'Content-Disposition: form-data; name="csrf"; x="' + "h" * 10000 + '"',
            b"A" * 43)])), {400, 403, 413}),
        ("field name of 300 bytes", send(multipart([fd("csrf", t1), fd("n" * 300, "x")])),
         {400, 413}),
        ("filename of 300 bytes", send(multipart([fd("csrf", t1), fd("file", b"x", "f" * 300)])),
         {400, 413}),
        ("nested multipart/mixed", send(multipart([fd("csrf", t1), (
            'Content-Disposition: form-data; name="files"\r\n'
            'Content-Type: multipart/mixed; boundary=inner',
            b"--inner\r\nContent-Disposition: file; filename=\"a.txt\"\r\n\r\nhello\r\n"
            b"--inner--")])), {400}),
        ("1000 empty parts", send(multipart([fd("csrf", t1)] + [fd("x%d" % i, "")
                                                               for i in range(1000)])), {400}),
        ("21 files", send(multipart([fd("csrf", t1), fd("text", "many files")] +
                                    [fd("file", b"f", "f%d" % i) for i in range(21)])), {413}),
        ("urlencoded instead of multipart, no text",
         send("csrf=%s&x=1" % t1, ctype="application/x-www-form-urlencoded"), {400}),
        ("NUL in the boundary", send(multipart([fd("csrf", "A" * 43), fd("text", "hi")]),
                                     ctype=mp + "\x00"), {400, 403}),
        ("Content-Length past upload_max",
         form("POST", "/send", s1, b"x", mp, ["Content-Length: 999999999999"]), {413}),
    ]
    for n, data, st in rows:
        # a bad Content-Length is in the headers: drop the one req() added
        if n == "Content-Length past upload_max":
            data = data.replace(b"Content-Length: 1\r\n", b"")
        C.append(Case("send", n, data, st, kind="html", close=n.startswith("Content-Length")))
    # deleting a reply: refused or nothing of theirs
    d = [("csrf missing", "seq=1", {403}), ("csrf forged", "csrf=%s&seq=1" % ("A" * 43), {403}),
         ("csrf of another session", "csrf=%s&seq=1" % t2, {403}),
         ("seq not a number", "csrf=%s&seq=abc" % t1, {303}),
         ("seq negative", "csrf=%s&seq=-1" % t1, {303}),
         ("seq of 40 digits", "csrf=%s&seq=%s" % (t1, "9" * 40), {303, 400}),
         ("seq of the person's own message", "csrf=%s&seq=%d" % (t1, ctx.p1_message_seq), {303}),
         ("seq of another person's object", "csrf=%s&seq=%d" % (t1, ctx.p2_message_seq), {303}),
         ("seq twice", "csrf=%s&seq=1&seq=2" % t1, {303, 400}),
         ("seq with NUL", "csrf=%s&seq=1%%002" % t1, {303, 400})]
    for n, body, st in d:
        C.append(Case("delete", n, form("POST", "/reply/delete", s1, body), st, kind="any"))
    return C


def method_cases(ctx):
    C = []
    for p in PERSON_GET + PERSON_POST:
        for m in ("PUT", "DELETE", "PATCH", "TRACE", "FOO"):
            C.append(Case("method", "%s %s" % (m, p), req(m, p), {405, 400, 501}, kind="html",
                          close=True))
    for p in PERSON_GET:
        if p not in PERSON_POST:
            C.append(Case("method", "POST %s" % p, form("POST", p, None, "a=b"), {405},
                          kind="html"))
    for p in PERSON_POST:
        if p not in PERSON_GET:
            C.append(Case("method", "GET %s" % p, req("GET", p), {405}, kind="html"))
    for p in API_GET + API_POST:
        for m in ("PUT", "DELETE", "PATCH"):
            C.append(Case("method", "%s %s" % (m, p), req(m, p), {405, 400, 501}, kind="json",
                          close=True))
    for p in API_POST:
        if p not in API_GET:
            C.append(Case("method", "GET %s" % p, req("GET", p), {401, 404, 405}, kind="json"))
    return C


def api_cases(ctx):
    C = []
    P = "/api/v1/objects"
    ok = ctx.sign

    def get(auth, path=P):
        return req("GET", path, ["Authorization: " + auth] if auth is not None else [])

    good = ok("GET", P)
    parts = dict(x.split("=", 1) for x in good[len("Refuge "):].split(", "))

    def hdr(**kw):
        d = dict(parts)
        d.update(kw)
        return "Refuge " + ", ".join("%s=%s" % kv for kv in d.items() if kv[1] is not None)

    auth_rows = [
        ("no Authorization", None),
        ("Bearer token", "Bearer abc"),
        ("Basic auth", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
        ("Refuge and nothing", "Refuge "),
        ("lower-case scheme", "refuge " + good[len("Refuge "):]),
        ("key missing", hdr(key=None)),
        ("ts missing", hdr(ts=None)),
        ("nonce missing", hdr(nonce=None)),
        ("body missing", hdr(body=None)),
        ("sig missing", hdr(sig=None)),
        ("key twice", good + ", key=" + parts["key"]),
        ("unknown field", good + ", extra=1"),
        ("trailing comma", good + ","),
        ("trailing garbage", good + " x"),
        ("key too short", hdr(key=parts["key"][:-1])),
        ("key not base64url", hdr(key="+" * 43)),
        ("key with padding", hdr(key=parts["key"] + "=")),
        ("key non-canonical base64", hdr(key=parts["key"][:-1] + "B")),
        ("ts with leading zero", hdr(ts="0" + parts["ts"])),
        ("ts with a sign", hdr(ts="+" + parts["ts"])),
        ("ts of 19 digits", hdr(ts="9" * 19)),
        ("ts not a number", hdr(ts="now")),
        ("ts empty", hdr(ts="")),
        ("nonce too short", hdr(nonce=parts["nonce"][:-2])),
        ("nonce with NUL", hdr(nonce=parts["nonce"][:-1] + "\x00")),
        ("body hex upper-case", hdr(body=parts["body"].upper())),
        ("body hex too short", hdr(body=parts["body"][:-2])),
        ("sig too short", hdr(sig=parts["sig"][:-4])),
        ("sig of zeros", hdr(sig=b64u(b"\x00" * 64))),
        ("sig of random bytes", hdr(sig=b64u(os.urandom(64)))),
        ("sig flipped", hdr(sig=b64u(bytes([base64.urlsafe_b64decode(parts["sig"] + "==")[0] ^ 1])
                                     + base64.urlsafe_b64decode(parts["sig"] + "==")[1:]))),
        ("header of 600 bytes", good + " " * 600),
        ("header of 8 KB", "Refuge " + "a" * 8000),
        ("overlong UTF-8 in header", "Refuge key=\xc0\xae"),
        ("signed by another key", ok("GET", P, sig_seed=os.urandom(32))),
        ("unknown key, valid signature", ok("GET", P, seed=os.urandom(32))),
        ("signed for another path", ok("GET", "/api/v1/roster")),
        ("signed for another query", ok("GET", P + "?after=5")),
        ("signed for another method", ok("POST", P)),
        ("clock 301 s ahead", lambda: ok("GET", P, ts=str(int(time.time()) + 301))),
        ("clock 301 s behind", lambda: ok("GET", P, ts=str(int(time.time()) - 301))),
        ("clock at 0", ok("GET", P, ts="0")),
        ("clock far future", ok("GET", P, ts="999999999999999999")),
        ("signed body hash of another body", ok("GET", P, body_for_hash=b"x")),
    ]
    for n, a in auth_rows:
        if callable(a):  # signed when sent: the clock rows sit on the edge
            C.append(Case("api-auth", n, lambda a=a: get(a()), {401}, kind="json"))
            continue
        h = get(a) if a is None or "\x00" not in a and "\xc0" not in a else None
        if h is None:
            h = b"GET " + P.encode() + b" HTTP/1.1\r\nHost: a\r\nAuthorization: " + \
                a.encode("latin-1") + b"\r\n\r\n"
        C.append(Case("api-auth", n, h, {400, 401}, kind="json", close="\x00" in (a or "")))
    # a replayed nonce: the first request is good, the same bytes again are refused
    n1 = b64u(os.urandom(16))
    replay = get(ok("GET", P + "?after=0", nonce=n1), P + "?after=0")
    C.append(Case("api-auth", "replay: first use (accepted)", replay, {200}, kind="any"))
    C.append(Case("api-auth", "replay: same request again", replay, {401}, kind="json"))
    C.append(Case("api-auth", "replay: same nonce, new time", get(
        ok("GET", P, nonce=n1, ts=str(int(time.time()) + 1))), {401}, kind="json"))

    # bodies: the signature is good, the JSON is not
    def post(path, body, signed_body=None):
        return req("POST", path, ["Content-Type: application/json",
                                  "Authorization: " + ok("POST", path, body_for_hash=(
                                      signed_body if signed_body is not None else body))], body)

    bodies = [
        ("empty body", b""),
        ("not JSON", b"hello"),
        ("top level array", b"[]"),
        ("top level string", b'"x"'),
        ("trailing garbage", b'{"token":"x"} x'),
        ("duplicate keys", b'{"token":"a","token":"b","name":"n","sign_pk":"x","box_pk":"y"}'),
        ("deep nesting", b"[" * 100000 + b"]" * 100000),
        ("deep object nesting", b'{"a":' * 5000 + b"1" + b"}" * 5000),
        ("huge number", b'{"n":' + b"9" * 5000 + b"}"),
        ("huge exponent", b'{"n":1e999999999}'),
        ("NaN", b'{"n":NaN}'),
        ("invalid UTF-8 in a string", b'{"name":"\xff\xfe"}'),
        ("overlong UTF-8 in a string", b'{"name":"\xc0\xae"}'),
        ("lone surrogate escape", b'{"name":"\\ud800"}'),
        ("NUL escape in a string", b'{"name":"a\\u0000b","token":"' + b"t" * 20 + b'"}'),
        ("raw NUL in a string", b'{"name":"a\x00b"}'),
        ("unterminated string", b'{"name":"abc'),
        ("object of 20000 keys", b"{" + b",".join(b'"k%d":1' % i for i in range(20000)) + b"}"),
        ("body over the limit", b'{"a":"' + b"x" * 70000 + b'"}'),
        ("wrong types", b'{"token":1,"name":[],"sign_pk":{},"box_pk":null}'),
        ("keys of the wrong length", json.dumps({"token": "t" * 20, "name": "x", "sign_pk": "AA",
                                                 "box_pk": "AA"}).encode()),
        ("keys not base64url", json.dumps({"token": "t" * 20, "name": "x", "sign_pk": "!" * 43,
                                           "box_pk": "!" * 43}).encode()),
        ("name with control characters", json.dumps({
            "token": "t" * 20, "name": "a\u001bb", "sign_pk": b64u(os.urandom(32)),
            "box_pk": b64u(os.urandom(32))}).encode()),
        ("name of 10 KB", json.dumps({"token": "t" * 20, "name": "n" * 10000,
                                      "sign_pk": b64u(os.urandom(32)),
                                      "box_pk": b64u(os.urandom(32))}).encode()),
        ("spent token", json.dumps({"token": ctx.spent_token, "name": "Mallory",
                                    "sign_pk": ctx.enroll_pk, "box_pk": b64u(os.urandom(32))
                                    }).encode()),
        ("unknown token", json.dumps({"token": b64u(os.urandom(32)), "name": "Mallory",
                                      "sign_pk": ctx.enroll_pk, "box_pk": b64u(os.urandom(32))
                                      }).encode()),
        ("roster on a second enrollment", json.dumps({
            "token": b64u(os.urandom(32)), "name": "Mallory", "sign_pk": ctx.enroll_pk,
            "box_pk": b64u(os.urandom(32)), "roster": b64u(os.urandom(300))}).encode()),
    ]
    for n, body in bodies:
        C.append(Case("api-json", "enroll: " + n, post("/api/v1/enroll", body),
                      {400, 401, 403, 409, 413}, kind="json"))
    C.append(Case("api-json", "enroll: body hash mismatch",
                  post("/api/v1/enroll", b'{"token":"x"}', signed_body=b'{"token":"y"}'),
                  {401}, kind="json"))
    for path in ("/api/v1/tokens", "/api/v1/roster", "/api/v1/grants"):
        for n, body in bodies[:20]:
            if n in ("deep object nesting", "object of 20000 keys") and path != "/api/v1/tokens":
                continue
            C.append(Case("api-json", "%s: %s" % (path[8:], n), post(path, body),
                          {400, 401, 403, 409, 413, 422}, kind="json"))
        C.append(Case("api-json", "%s: body hash mismatch" % path[8:],
                      post(path, b"{}", signed_body=b"[]"), {401}, kind="json"))
    rp = "/api/v1/cases/%s/replies" % ctx.p1_case
    for n, body in [("empty envelope", b""), ("garbage envelope", os.urandom(2000)),
                    ("envelope header only", b"RFGE\x01" + os.urandom(100)),
                    ("JSON instead of an envelope", b'{"text":"hi"}')]:
        C.append(Case("api-json", "reply: " + n, post(rp, body), {400, 413, 422}, kind="json"))
    C.append(Case("api-json", "reply to an unknown case",
                  post("/api/v1/cases/zzzzzzzzzz/replies", os.urandom(500)), {400, 404, 422},
                  kind="json"))
    return C


def cases(ctx):
    out = []
    for fn in (http_cases, path_cases, query_cookie_cases, login_new_cases, send_cases,
               method_cases, api_cases):
        out.extend(fn(ctx))
    return out
