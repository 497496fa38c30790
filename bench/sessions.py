#!/usr/bin/env python3
"""bench/sessions.py BASE_URL N OUT.lua - logs N people in through the real
/new flow and writes their session cookies and CSRF tokens as a Lua table
for wrk (bench/submit.lua). Benchmark fixture only."""
import http.client
import re
import sys
import urllib.parse

base, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
u = urllib.parse.urlparse(base)


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


def hidden(text, name):
    m = re.search(r'name="%s" value="([^"]*)"' % name, text)
    return m.group(1) if m else ""


rows = []
conn = http.client.HTTPConnection(u.hostname, u.port)
for i in range(count):
    ck = {}
    st, text = req(conn, "GET", "/new", ck)
    form = {"csrf": hidden(text, "csrf"), "pending": hidden(text, "pending")}
    names = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', text)
    form = dict(names)
    st, text = req(conn, "POST", "/new", ck, urllib.parse.urlencode(form))
    if st != 303 or "s" not in ck:
        sys.exit("session %d: POST /new answered %d" % (i, st))
    st, text = req(conn, "GET", "/inbox", ck)
    rows.append((ck["s"], hidden(text, "csrf")))
with open(out, "w") as f:
    f.write("sessions = {\n")
    for s, c in rows:
        f.write('  {cookie = "s=%s", csrf = "%s"},\n' % (s, c))
    f.write("}\n")
