#!/usr/bin/env python3
"""
What the person's browser and a network observer see (DESIGN.md threat model:
phone seized, network observer): every person page carries the security
headers (CSP default-src 'none' and frame-ancestors 'none', Referrer-Policy
no-referrer, Cache-Control no-store, nosniff); cookies are HttpOnly,
SameSite=Strict session cookies (no Expires, no Max-Age); no page is over
20 KB; no page has a script or loads anything from another origin; every
form POST without its CSRF token is refused with 403.
"""
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Browser, Person, Server, Staff, case_ids, check, csrf_field, log, main

PAGE_MAX = 20 * 1024


def check_page(r, what):
    h = lambda n: r.header(n) or ""
    csp = h("content-security-policy")
    check("default-src 'none'" in csp, "%s: CSP has default-src 'none'" % what, csp)
    check("frame-ancestors 'none'" in csp, "%s: CSP has frame-ancestors 'none'" % what, csp)
    check("script-src" not in csp or "'none'" in csp.split("script-src")[1].split(";")[0],
          "%s: CSP allows no script" % what, csp)
    check(h("referrer-policy").strip().lower() == "no-referrer",
          "%s: Referrer-Policy no-referrer" % what, h("referrer-policy"))
    check("no-store" in h("cache-control").lower(), "%s: Cache-Control no-store" % what,
          h("cache-control"))
    check(h("x-content-type-options").strip().lower() == "nosniff",
          "%s: X-Content-Type-Options nosniff" % what, h("x-content-type-options"))
    check(h("content-type").lower().startswith("text/html"),
          "%s: Content-Type text/html" % what, h("content-type"))
    check(len(r.body) <= PAGE_MAX, "%s: page is %d bytes, over 20 KB" % (what, len(r.body)))
    check("<script" not in r.text.lower(), "%s: no <script" % what)
    check(r.header("server") is None or "/" not in r.header("server"),
          "%s: no server version in the Server header" % what, r.header("server"))
    for tag, attr, value in r.page.links:
        u = urllib.parse.urlsplit(value.strip())
        check(not u.scheme and not u.netloc,
              "%s: <%s %s=%r> points to another origin" % (what, tag, attr, value))
    for tag, attrs, _ in r.page.elements:
        check(tag not in ("iframe", "object", "embed", "link") or tag == "link" and
              attrs.get("rel") not in ("stylesheet", "preload", "prefetch", "dns-prefetch"),
              "%s: no external resources (<%s>)" % (what, tag))


def check_page_min(r, what):
    """The quick exit's neutral page: the same security headers, nothing else asked."""
    h = lambda n: r.header(n) or ""
    check("default-src 'none'" in h("content-security-policy"), "%s: CSP" % what)
    check(h("referrer-policy").lower() == "no-referrer", "%s: no-referrer" % what)
    check("no-store" in h("cache-control"), "%s: no-store" % what)
    check(len(r.body) <= PAGE_MAX and "<script" not in r.text.lower(), "%s: small, no script" % what)


def check_cookies(b, what):
    for raw in b.set_cookie_headers:
        first, _, rest = raw.partition(";")
        attrs = [a.strip().lower() for a in rest.split(";")]
        value = first.partition("=")[2]
        deleting = value == "" or "max-age=0" in attrs or any(
            a.startswith("expires=") and re.search(r"19[0-9][0-9]", a) for a in attrs)
        check("httponly" in attrs, "%s: cookie is HttpOnly" % what, raw)
        check("samesite=strict" in attrs, "%s: cookie is SameSite=Strict" % what, raw)
        if not deleting:
            check(not any(a.startswith("expires=") or a.startswith("max-age=") for a in attrs),
                  "%s: cookie is a session cookie (no Expires/Max-Age)" % what, raw)


def test():
    srv = Server().init().start()
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    pages = 0
    for lang in ("en", "ru", None):
        b = Browser(srv.url, lang=lang)
        for path in ("/", "/new", "/login", "/safety", "/no-such-page"):
            r = b.get(path)
            check(r.status in (200, 404), "GET %s?lang=%s answered %d" % (path, lang, r.status))
            check_page(r, "GET %s (%s)" % (path, lang or "default"))
            pages += 1
        r = b.request("GET", "/inbox")
        check(r.status in (302, 303), "GET /inbox without a session redirects (got %d)" %
              r.status)
        check_cookies(b, "lang %s" % lang)

    # a logged-in person: /new -> continue -> /inbox -> send -> sent page
    p = Person(srv)
    r = p.new_codename()
    check_page(r, "after POST /new")
    r = p.inbox()
    check_page(r, "GET /inbox (intake)")
    r, _ = p.send("headers test message")
    check(r.status == 200, "POST /send answered %d" % r.status, r.text[:500])
    check_page(r, "after POST /send")
    # a reply, so that /inbox has a delete form too
    alice.run("sync")
    cases = alice.json("cases", "--json")
    for c in case_ids(cases):
        alice.run("reply", c, "-m", "a reply")
    r = p.inbox()
    check_page(r, "GET /inbox (after the first message, with a reply)")
    check(r.page.form("/reply/delete") is not None, "/inbox shows the reply with a delete form")
    check_cookies(p.b, "logged-in person")
    bye = Browser(srv.url)
    r = bye.get("/exit")
    check(r.status == 200, "GET /exit answered %d" % r.status)
    check_page_min(r, "GET /exit")
    check(p.b.set_cookie_headers, "a session sets a cookie")
    pages += 4

    # every form without its CSRF token: 403
    forms = []
    for path in ("/new", "/login"):
        forms.append((path, Browser(srv.url).get(path).page.forms))
    forms.append(("/inbox", p.inbox().page.forms))
    tried = 0
    for where, fs in forms:
        for f in fs:
            if f.method != "post":
                continue
            tok = csrf_field(f)
            check(tok, "the form %s on %s has a CSRF token field" % (f.action, where), repr(f))
            action = urllib.parse.urlsplit(f.action).path or "/"
            b = p.b if where == "/inbox" else Browser(srv.url)
            if where != "/inbox":
                b.get(where)  # same cookies a real browser would have
            r = b.submit(f, [(n, "x") for n in f.names() if n and n not in f.names("hidden")],
                         drop=(tok,), follow=False)
            check(r.status == 403, "POST %s without the CSRF token is refused with 403 (got %d)"
                  % (action, r.status), r.text[:300])
            tried += 1
            # a forged token is refused too
            fields = [(n, ("A" * len(v) if n == tok else v)) for n, v in f.hidden()]
            r = b.post(action, fields, multipart="multipart" in f.enctype, follow=False)
            check(r.status == 403, "POST %s with a forged CSRF token is refused with 403 (got %d)"
                  % (action, r.status), r.text[:300])
    check(tried >= 4, "found the POST forms (/new, /login, /send, /reply/delete), got %d" % tried)
    log("%d pages checked, %d forms refused without a CSRF token" % (pages, tried))
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
