#!/usr/bin/env python3
"""
`refuge server status` and the metrics endpoint (issue 8, done-when 3).

status:
  - on a fresh instance (no server, nobody enrolled): text and --json, the
    warnings an admin must act on (server not running, no caseworker, no
    backup), and nothing in the data directory changed by it (it only reads);
  - while the server runs: "running", its pid, the people logged in now (the
    live sessions, from the server's status file), the metrics address;
  - with a team and cases: caseworkers on the roster / waiting for approval,
    cases and objects counted, the warnings follow (one caseworker, someone
    waiting);
  - after a clean stop (not running, no status file left) and after a crash
    (SIGKILL: the stale status file is recognised, "stopped uncleanly").
metrics:
  - off unless --metrics: no second listening socket; with it, exactly one
    more, on loopback; a non-loopback --metrics is refused at start;
  - GET /metrics parses with a strict parser of the Prometheus text format
    0.0.4 (written here); everything else on that port is 404;
  - the counters move with the journey: a person sends a message -> stored
    submissions +1, message and file objects +1, logins ok / wrong counted,
    sessions active up and down;
  - no address, codename, session cookie, message text or file name in the
    /metrics body, the status outputs or the status file, in every encoding
    lib.encodings() knows, with people connecting from 127.77.66.55;
  - the sandbox stays on with --metrics (Seccomp: 2, NoNewPrivs: 1).
"""
import datetime
import json
import math
import os
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (BIN, Browser, Person, Server, approve, check, encodings, enroll_first_admin,
                 free_port, invite, log, main, rand_letters, run, sanitizer_report)
import lib  # noqa: E402  (lib.open_db: the database on either backend)

PERSON_ADDRESS = "127.77.66.55"  # the people connect from here (any 127/8 works on Linux)

# ------------------------------------------------------------ the format


NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_value(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    check(re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", s) is not None,
          "a sample value is a number (%s)" % where, s)
    return float(s)


def parse_labels(s, where):
    """The inside of {...}: name="value" pairs, escapes \\\\ \\" \\n only."""
    labels, i = {}, 0
    while i < len(s):
        m = re.compile(LABEL).match(s, i)
        check(m is not None, "a label name (%s)" % where, s[i:])
        name = m.group(0)
        i = m.end()
        check(s[i:i + 2] == '="', "label %s is followed by =\" (%s)" % (name, where), s)
        i += 2
        val = []
        while True:
            check(i < len(s), "label %s's value ends with a quote (%s)" % (name, where), s)
            c = s[i]
            if c == "\\":
                check(i + 1 < len(s) and s[i + 1] in '\\"n',
                      "only \\\\, \\\" and \\n escapes in a label value (%s)" % where, s)
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                check(c != "\n", "no raw newline in a label value (%s)" % where, s)
                val.append(c)
                i += 1
        check(name not in labels, "label %s once per sample (%s)" % (name, where), s)
        labels[name] = "".join(val)
        if i < len(s):
            check(s[i] == ",", "labels are separated by commas (%s)" % where, s)
            i += 1
            check(i < len(s), "no trailing comma in the labels (%s)" % where, s)  # 0.0.4: allowed, but we never write one
    return labels


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return name


def parse_exposition(text):
    """Strict parser of the text format 0.0.4. Returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}; fails the test on anything the
    format does not allow or that Prometheus would reject."""
    check(text.endswith("\n"), "the exposition ends with a newline")
    fams, types, seen_series, done = {}, {}, set(), set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d" % n
        check(line.strip() != "" or line == "", "no whitespace-only lines (%s)" % where, line)
        if line == "":
            continue
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (%s) (.*)" % NAME, line)
            if m is None:
                continue  # a plain comment
            kind, name, rest = m.groups()
            fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            check(name not in done, "%s %s comes before the family's samples end (%s)" %
                  (kind, name, where))
            if kind == "TYPE":
                check(rest in TYPES, "TYPE %s is a known type (%s)" % (name, where), rest)
                check(fam["type"] is None, "one TYPE line for %s" % name)
                check(not fam["samples"], "TYPE %s before its samples" % name)
                fam["type"] = types[name] = rest
            else:
                check(fam["help"] is None, "one HELP line for %s" % name)
                check("\n" not in rest, "HELP is one line")
                fam["help"] = rest
            continue
        m = re.fullmatch(r"(%s)(\{(.*)\})? (\S+)( -?\d+)?" % NAME, line)
        check(m is not None, "a sample line: name{labels} value [timestamp] (%s)" % where, line)
        name, _, labels_s, value_s, _ = m.groups()
        labels = parse_labels(labels_s or "", where)
        value = parse_value(value_s, where)
        family = family_of(name, types)
        if current is not None and family != current:
            done.add(current)
        check(family not in done, "the samples of %s are together (%s)" % (family, where))
        current = family
        fam = fams.setdefault(family, {"type": None, "help": None, "samples": []})
        key = (name, tuple(sorted(labels.items())))
        check(key not in seen_series, "no duplicate series (%s)" % where, line)
        seen_series.add(key)
        if fam["type"] == "counter":
            check(value >= 0, "a counter is not negative (%s)" % where, line)
        fam["samples"].append((name, labels, value))
    for family, fam in fams.items():
        if fam["type"] == "histogram":
            check_histogram(family, fam["samples"])
    return fams


def check_histogram(family, samples):
    groups = {}
    for name, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        g = groups[rest]
        if name == family + "_bucket":
            check("le" in labels, "%s_bucket has an le label" % family)
            g["buckets"].append((parse_value(labels["le"], family), value))
        elif name == family + "_sum":
            g["sum"] = value
        elif name == family + "_count":
            g["count"] = value
        else:
            check(False, "a histogram's samples are _bucket, _sum, _count", name)
    for g in groups.values():
        les = [le for le, _ in g["buckets"]]
        check(les == sorted(les) and len(set(les)) == len(les),
              "%s's buckets ascend by le" % family, les)
        check(les and les[-1] == math.inf, "%s has an le=\"+Inf\" bucket" % family, les)
        counts = [c for _, c in g["buckets"]]
        check(all(a <= b for a, b in zip(counts, counts[1:])),
              "%s's buckets are cumulative" % family, counts)
        check(g["count"] is not None and g["sum"] is not None, "%s has _sum and _count" % family)
        check(counts[-1] == g["count"], "%s: the +Inf bucket equals _count" % family,
              (counts[-1], g["count"]))


def self_check_parser():
    """The parser refuses what it must (else a pass means nothing)."""
    good = ("# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n"
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n"
            "h_count 2\n")
    parse_exposition(good)
    bad = [good.rstrip("\n"),                                    # no final newline
           good.replace('{x="1"}', '{x="1}'),                    # unterminated value
           good.replace('{x="1"}', '{x=1}'),                     # unquoted value
           good.replace('a_total{x="1"} 2', 'a_total{x="1"} two'),
           good.replace('h_count 2', 'h_count 3'),               # +Inf != count
           good.replace('h_bucket{le="+Inf"} 2', 'h_bucket{le="+Inf"} 0'),
           good + 'a_total{x="1"} 2\n',                          # duplicate / not together
           good.replace("# TYPE a_total counter", "# TYPE a_total countr"),
           good.replace('a_total{x="1"} 2', 'a_total{x="1"} -2'),  # negative counter
           good.replace('{x="1"}', '{x="a\\tb"}')]               # bad escape
    for b in bad:
        try:
            parse_exposition(b)
        except Exception:
            continue
        check(False, "the strict parser refuses a broken exposition", b)


# ------------------------------------------------------------ helpers


def status(data, *extra):
    p = run(["server", "status", "--data", data] + list(extra), timeout=120)
    rep = sanitizer_report(p.err)
    check(rep is None, "sanitizer report from `refuge server status`", rep)
    check(p.returncode == 0, "`refuge server status` succeeds (status %d)" % p.returncode,
          p.err + p.out)
    return p


def status_json(data):
    p = status(data, "--json")
    try:
        return json.loads(p.out), p.out
    except ValueError:
        raise AssertionError("`refuge server status --json` printed no JSON:\n" + p.out[:2000])


def codes(doc):
    return [w["code"] for w in doc["warnings"]]


def snapshot(data):
    """Every file under data: (relative path, size, mtime_ns, mode)."""
    out = []
    for d, dirs, names in os.walk(data):
        for n in sorted(names + dirs):
            p = os.path.join(d, n)
            st = os.lstat(p)
            out.append((os.path.relpath(p, data), st.st_size, st.st_mtime_ns, st.st_mode))
    return sorted(out)


def http_get(port, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def metrics(port):
    st, headers, body = http_get(port, "/metrics")
    check(st == 200, "GET /metrics answers 200", st)
    ct = headers.get("Content-Type", "")
    check(ct.startswith("text/plain") and "version=0.0.4" in ct,
          "/metrics is text/plain; version=0.0.4", ct)
    text = body.decode("utf-8")
    return parse_exposition(text), body


def value(fams, sample, **labels):
    """The value of the sample named so (a histogram's _count and _sum too)."""
    family = family_of(sample, {k: f["type"] for k, f in fams.items()})
    fam = fams.get(family)
    check(fam is not None, "/metrics has %s" % family, sorted(fams))
    for name, lab, v in fam["samples"]:
        if name == sample and all(lab.get(k) == str(x) for k, x in labels.items()):
            return v
    check(False, "/metrics has %s%s" % (sample, labels), fam["samples"][:20])


def listening_ports(pid):
    """TCP ports the process listens on (its socket inodes in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", t)
        if m:
            inodes.add(m.group(1))
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                addr, port = cols[1].rsplit(":", 1)
                ports.append((addr, int(port, 16)))
    return ports


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def wait_for(pred, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.5)
    check(False, what)


# ------------------------------------------------------------ the test


def test():
    self_check_parser()
    Browser.source_address = PERSON_ADDRESS

    # ---- a fresh instance, no server ----
    srv = Server().init()
    before = snapshot(srv.data)
    p = status(srv.data)
    text = p.out
    for want in ("not running", "Storage", "Disk left", "Last backup  never",
                 "No caseworker has enrolled yet", "refuge server token", "No backup"):
        check(want in text, "status of a fresh instance says %r" % want, text)
    doc, _ = status_json(srv.data)
    check(doc["format"] == 1 and doc["server"]["running"] is False,
          "--json: format 1, not running", doc)
    check(doc["server"]["sessions_active"] is None, "no sessions count without a server", doc)
    check(doc["counts"]["cases"] == 0 and doc["counts"]["staff"]["roster"] == 0,
          "--json: no cases, nobody on the roster", doc["counts"])
    for c in ("server_not_running", "no_caseworker", "no_backup"):
        check(c in codes(doc), "--json warns %s on a fresh instance" % c, codes(doc))
    check(doc["ok"] is False, "--json: ok is false with warnings", doc)
    check(doc["schema"]["database"] == doc["schema"]["program"] > 0, "schema versions", doc)
    check(doc["storage"]["database_bytes"] > 0 and doc["disk"]["free_bytes"] > 0,
          "storage used and disk left are measured", doc)
    check(doc["last_purge_day"] is None and doc["last_backup_day"] is None and
          doc["onion"] is None, "never purged, never backed up, no onion", doc)
    check(snapshot(srv.data) == before,
          "`refuge server status` changed nothing in the data directory (it only reads)",
          (before, snapshot(srv.data)))
    log("fresh instance: not running, no caseworker, no backup; data directory untouched")

    # ---- a non-loopback --metrics is refused at start ----
    for bad in ("0.0.0.0:9464", "192.0.2.1:9464", "[::]:9464", "127.0.0.1", "127.0.0.1:0",
                "example.org:9464"):
        p = subprocess.run([BIN, "serve", "--data", srv.data, "--listen",
                            "127.0.0.1:%d" % free_port(), "--metrics", bad],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode("utf-8", "replace")
        check(p.returncode == 2, "--metrics %s is refused (exit 2)" % bad, out)
        check("loopback" in out, "the refusal of --metrics %s says loopback" % bad, out)
    log("--metrics on a non-loopback address (or no port) refused at start")

    # ---- off by default ----
    srv.start()
    ports = listening_ports(srv.pid)
    check(len(ports) == 1 and ports[0][1] == srv.port,
          "without --metrics the server listens on --listen alone", ports)
    doc = wait_for(lambda: (lambda d: d if d["server"]["running"] else None)(
        status_json(srv.data)[0]), "status sees the running server")
    check(doc["server"]["metrics"] is None, "status: metrics off", doc["server"])
    srv.stop_clean()

    # ---- on: --metrics on a loopback port ----
    mport = free_port()
    srv.restart(["--metrics", "127.0.0.1:%d" % mport])
    pid = srv.pid
    ports = sorted(p for _, p in listening_ports(pid))
    check(ports == sorted([srv.port, mport]),
          "with --metrics the server listens on --listen and the metrics port", ports)
    ps = proc_status(pid)
    check(ps.get("Seccomp") == "2", "the seccomp filter is in force with --metrics", ps)
    check(ps.get("NoNewPrivs") == "1", "no_new_privs with --metrics", ps)
    for path, method in (("/", "GET"), ("/metrics/x", "GET"), ("/metrics", "POST"),
                         ("/api/v1/roster", "GET"), ("/metricsx", "GET")):
        s, _, _ = http_get(mport, path, method)
        check(s == 404, "%s %s on the metrics port answers 404" % (method, path), s)
    fams, _ = metrics(mport)
    check(value(fams, "refuge_build_info", version=doc["version"]) == 1, "build info")
    check(fams["refuge_http_requests_total"]["type"] == "counter", "requests is a counter")
    check(fams["refuge_kdf_wait_seconds"]["type"] == "histogram", "KDF wait is a histogram")
    check(fams["refuge_commit_seconds"]["type"] == "histogram", "commit time is a histogram")
    check(all(f["help"] for f in fams.values()), "every family has HELP",
          [k for k, f in fams.items() if not f["help"]])
    routes = {lab.get("route") for _, lab, _ in fams["refuge_http_requests_total"]["samples"]}
    check("GET /" in routes and "POST /send" in routes, "route labels from the route table",
          routes)

    running = wait_for(lambda: (lambda d: d if d["server"]["running"] and
                                d["server"]["pid"] == pid else None)(status_json(srv.data)[0]),
                       "status sees the restarted server")
    check(running["server"]["metrics"] == "127.0.0.1:%d" % mport, "status shows the metrics "
          "address", running["server"])
    check("http://127.0.0.1:%d/metrics" % mport in status(srv.data).out,
          "status text shows the metrics URL")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    check(running["last_purge_day"] == today.isoformat(),
          "the server's daily purge ran at start: last purge today", running["last_purge_day"])

    # ---- a team ----
    alice = enroll_first_admin(srv, "Alice")
    doc, _ = status_json(srv.data)
    check(doc["counts"]["staff"]["roster"] == 1 and doc["counts"]["staff"]["admins"] == 1,
          "one admin on the roster", doc["counts"]["staff"])
    check("no_caseworker" not in codes(doc) and "one_caseworker" in codes(doc),
          "status warns about a single caseworker, not about none", codes(doc))
    bob = invite(srv, alice, "Bob")
    doc, _ = status_json(srv.data)
    check(doc["counts"]["staff"]["pending"] == 1, "Bob waits for approval", doc["counts"])
    check("staff_waiting" in codes(doc), "status says someone waits for approval", codes(doc))
    check("refuge staff approve" in status(srv.data).out, "the text says how to approve")
    approve(alice, bob)
    doc, _ = status_json(srv.data)
    check(doc["counts"]["staff"]["roster"] == 2 and doc["counts"]["staff"]["pending"] == 0,
          "two on the roster, nobody waiting", doc["counts"]["staff"])
    check("one_caseworker" not in codes(doc) and "staff_waiting" not in codes(doc),
          "the team warnings are gone", codes(doc))
    log("team: 1 admin -> Bob waiting -> 2 on the roster, warnings follow")

    # ---- the journey, with canaries ----
    fams0, _ = metrics(mport)
    stored0 = value(fams0, "refuge_submissions_total", outcome="stored")
    msg0 = value(fams0, "refuge_objects_stored_total", kind="message")
    file0 = value(fams0, "refuge_objects_stored_total", kind="file")
    ok0 = value(fams0, "refuge_logins_total", outcome="ok")
    wrong0 = value(fams0, "refuge_logins_total", outcome="wrong")
    send0 = value(fams0, "refuge_http_requests_total", route="POST /send", **{"class": "3xx"})

    core = "cnry" + rand_letters(24)
    message = "Canary message %s, for the caseworkers only." % core
    fname = "passport-" + rand_letters(12) + ".jpg"
    person = Person(srv, lang="en")
    person.new_codename()
    cookie = person.b.cookies.get("s")
    check(cookie, "the person has a session cookie after continuing")
    resp, _ = person.send(message, files=[(fname, "image/jpeg", os.urandom(5000))],
                          field_text="answer " + core)
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])

    fams, body = metrics(mport)
    check(value(fams, "refuge_submissions_total", outcome="stored") == stored0 + 1,
          "a message sent: stored submissions +1", body.decode()[:3000])
    check(value(fams, "refuge_objects_stored_total", kind="message") == msg0 + 1,
          "a message object stored")
    check(value(fams, "refuge_objects_stored_total", kind="file") == file0 + 1,
          "a file object stored")
    check(value(fams, "refuge_http_requests_total", route="POST /send", **{"class": "3xx"}) ==
          send0 + 1, "POST /send counted once with its 303")
    check(value(fams, "refuge_sessions_active") >= 1, "a session is active")
    check(value(fams, "refuge_stored_bytes_total") > 5000, "stored bytes counted")
    hist_count = value(fams, "refuge_commit_batch_ops_count")
    check(hist_count >= 1, "group commits measured", hist_count)
    check(value(fams, "refuge_kdf_wait_seconds_count") >= 1, "KDF waits measured")

    # status sees the live session (the status file is rewritten every 5 s)
    doc = wait_for(lambda: (lambda d: d if d["server"]["sessions_active"] == 1 else None)(
        status_json(srv.data)[0]), "status shows the one person logged in", timeout=20)
    check(doc["counts"]["cases"] == 1, "one case", doc["counts"])
    check(doc["counts"]["objects"]["message"] >= 1 and doc["counts"]["objects"]["file"] == 1,
          "the message and the file counted", doc["counts"]["objects"])
    check("1 person logged in now" in status(srv.data).out, "the text shows the person")

    # log-ins: right and wrong; then everyone leaves
    person.b.request("GET", "/exit")
    r = person.login()
    check(r.status == 200, "the person logs in again", r.status)
    cookie2 = person.b.cookies.get("s")
    other = Person(srv, lang="en")
    r = other.login(codename=" ".join(["wrong"] * 7))
    fams, _ = metrics(mport)
    check(value(fams, "refuge_logins_total", outcome="ok") == ok0 + 1, "a right log-in: ok +1")
    check(value(fams, "refuge_logins_total", outcome="wrong") == wrong0 + 1,
          "a wrong codename: wrong +1")
    person.b.request("GET", "/exit")
    doc = wait_for(lambda: (lambda d: d if d["server"]["sessions_active"] == 0 else None)(
        status_json(srv.data)[0]), "status shows nobody logged in after the quick exit")
    fams, body_after = metrics(mport)
    check(value(fams, "refuge_sessions_active") == 0, "no session active after the exit")
    log("journey: submissions, objects, log-ins and sessions counted")

    # ---- no personal data anywhere in what status and metrics show ----
    outputs = {"/metrics": body + body_after,
               "status text": status(srv.data).out.encode(),
               "status --json": status_json(srv.data)[1].encode()}
    with open(os.path.join(srv.data, "serve.status"), "rb") as f:
        outputs["serve.status"] = f.read()
    needles = []
    for what, s in (("codename", person.codename), ("message", message), ("canary", core),
                    ("file name", fname), ("session cookie", cookie),
                    ("session cookie 2", cookie2), ("address", PERSON_ADDRESS)):
        if s:
            needles += [(what, label, pat) for label, pat in encodings(s)]
    needles += [("address", "mapped", ("::ffff:" + PERSON_ADDRESS).encode()),
                ("address", "binary", bytes([127, 77, 66, 55]))]
    words = person.codename.split()  # any two words in a row (one alone may be "people")
    for i in range(len(words) - 1):
        needles.append(("codename words", "utf-8", (words[i] + " " + words[i + 1]).encode()))
    # positive control: the same search finds each secret where it is
    control = (person.codename + " " + message + " " + fname + " " + cookie + " " +
               PERSON_ADDRESS).encode()
    for what in ("codename", "message", "file name", "session cookie", "address"):
        check(any(w == what and pat in control for w, _, pat in needles),
              "the search finds the %s where it is" % what)
    hits = []
    for where, data in outputs.items():
        low = data.lower()
        for what, label, pat in needles:
            hay = low if label in ("hex", "url-lower") else data
            if pat in hay:
                hits.append("%s (%s) in %s" % (what, label, where))
    check(not hits, "no address, codename, session id or text in metrics or status", hits)
    log("canaries: none in /metrics, status text, --json or serve.status (%d patterns)" %
        len(needles))

    # ---- stopped cleanly, then crashed ----
    srv.stop_clean()
    check(not os.path.exists(os.path.join(srv.data, "serve.status")),
          "a clean stop removes the status file")
    doc, _ = status_json(srv.data)
    check(doc["server"]["running"] is False and "server_not_running" in codes(doc),
          "after a stop: not running", doc["server"])
    srv.restart(["--metrics", "127.0.0.1:%d" % free_port()])
    wait_for(lambda: status_json(srv.data)[0]["server"]["running"], "running again")
    srv.kill()
    doc, _ = status_json(srv.data)
    check(doc["server"]["running"] is False and "server_stopped_uncleanly" in codes(doc),
          "after SIGKILL: not running, stopped uncleanly", (doc["server"], codes(doc)))
    check("crashed or was killed" in status(srv.data).out, "the text says it crashed")
    log("clean stop and crash told apart")

    # ---- the last backup: the setting `refuge server backup` writes ----
    epoch_day = (today - datetime.date(1970, 1, 1)).days
    for ago, warned in ((10, "backup_old"), (0, None)):
        con = lib.open_db(srv)
        con.execute("INSERT INTO settings(key, value) VALUES ('backup.last_day', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (struct.pack(">I", epoch_day - ago),))
        con.commit()
        con.close()
        doc, _ = status_json(srv.data)
        want = (today - datetime.timedelta(days=ago)).isoformat()
        check(doc["last_backup_day"] == want, "status reads the last backup's day", doc)
        check("no_backup" not in codes(doc), "a backup was made: no no_backup", codes(doc))
        check((warned in codes(doc)) if warned else ("backup_old" not in codes(doc)),
              "a backup %d days old: %s" % (ago, warned or "no warning"), codes(doc))
    check("Last backup  %s (today)" % today.isoformat() in status(srv.data).out,
          "the text shows the last backup's day")
    log("last backup read from backup.last_day; a 10-day-old one is flagged")


if __name__ == "__main__":
    main(test)
