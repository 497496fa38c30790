"""
lib.py - helpers for Refuge's end-to-end tests (python3 standard library only).

What a test gets from here:
  Server     a real `refuge server init` + `refuge serve` on a free loopback
             port, in a temporary data directory, output captured to files,
             stopped (SIGTERM) and checked for sanitizer reports at the end.
  Browser    a tiny cookie-keeping HTTP client for the person's pages that
             parses forms (hidden fields, CSRF token) with html.parser and
             submits them (urlencoded or multipart).
  Staff      the real staff CLI (`refuge ...`) with its own REFUGE_HOME and
             REFUGE_PASSPHRASE_FILE.
  check()    an assertion that says what a user would have seen.
Environment: REFUGE_BIN (default build-san/refuge), REFUGE_TEST_KEEP=1 keeps
the temporary directories for a post-mortem. REFUGE_TEST_DB=postgresql makes
every instance a test creates store in a fresh database of the throwaway
cluster at REFUGE_TEST_PG (scripts/pg-test; `refuge server init --db`),
dropped at the end; without REFUGE_TEST_PG such a run is skipped, loudly.
REFUGE_TEST_SESSION_KEY=1 serves every instance with --session-key (person
sessions in the database, as several processes on PostgreSQL run).
A test exits 0 (passed), 77 (skipped, prints a line starting "SKIP") or 1.
"""

import atexit
import hashlib
import html
import html.parser
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("REFUGE_BIN") or os.path.join(REPO, "build-san", "refuge")
KEEP = os.environ.get("REFUGE_TEST_KEEP") == "1"
DB = os.environ.get("REFUGE_TEST_DB", "sqlite")

os.environ.setdefault(
    "ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:strict_string_checks=1")
os.environ.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


class TestFailure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what, detail=None):
    """Fails the test with `what` (and a short detail) unless cond holds."""
    if not cond:
        msg = what
        if detail is not None:
            d = detail if isinstance(detail, str) else repr(detail)
            msg += "\n    " + d[:2000].replace("\n", "\n    ")
        raise TestFailure(msg)


def log(msg):
    print("  " + msg, flush=True)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no output)"


_cleanups = []


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception:  # cleanup must go on
            traceback.print_exc()


atexit.register(_run_cleanups)


def on_cleanup(fn):
    _cleanups.append(fn)


def tempdir(prefix="refuge-e2e-"):
    d = tempfile.mkdtemp(prefix=prefix)
    if KEEP:
        on_cleanup(lambda: print("kept " + d))
    else:
        on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def pg_database():
    """A fresh database on the test cluster (dropped at cleanup): its URL."""
    base = os.environ.get("REFUGE_TEST_PG", "")
    if not base:
        raise Skip("REFUGE_TEST_DB=postgresql but no PostgreSQL: REFUGE_TEST_PG is not set "
                   "(scripts/check starts a throwaway cluster with scripts/pg-test)")
    name = "refuge_e2e_" + secrets.token_hex(6)
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", base, "-c",
                        "CREATE DATABASE " + name], capture_output=True, timeout=120)
    check(p.returncode == 0, "cannot create a database on the PostgreSQL test cluster",
          (p.stdout + p.stderr).decode(errors="replace"))

    def drop():
        subprocess.run(["psql", "-X", "-q", base, "-c",
                        "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name],
                       capture_output=True, timeout=120)
    if not KEEP:
        on_cleanup(drop)
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, ""))


def db_args():
    """`refuge server init` flags for the backend this run tests."""
    if DB == "sqlite":
        return []
    if DB != "postgresql":
        raise TestFailure("REFUGE_TEST_DB must be sqlite or postgresql, not %r" % DB)
    return ["--db", pg_database()]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main(test_fn):
    """Runs test_fn(); prints PASS/FAIL and exits 0, 1 or 77."""
    name = os.path.basename(sys.argv[0])
    t0 = time.time()
    if not os.access(BIN, os.X_OK):
        print("FAIL %s: no refuge binary at %s (build it: ninja -C build-san)" % (name, BIN))
        sys.exit(1)
    rc = 0
    try:
        test_fn()
        print("PASS %s (%.1fs)" % (name, time.time() - t0))
    except Skip as e:
        print("SKIP %s: %s" % (name, e))
        rc = 77
    except TestFailure as e:
        print("FAIL %s: %s" % (name, e))
        rc = 1
    except Exception:
        traceback.print_exc()
        print("FAIL %s: unexpected error (traceback above)" % name)
        rc = 1
    try:
        _run_cleanups()
    except Exception:
        traceback.print_exc()
    sys.stdout.flush()
    os._exit(rc)


def run(args, env=None, timeout=300, input_bytes=None, cwd=None):
    """Runs the refuge binary; returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run([BIN] + list(args), env=env, input=input_bytes, cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def sanitizer_report(text):
    for m in SANITIZER_MARKS:
        i = text.find(m)
        if i >= 0:
            return text[max(0, i - 200):i + 3000]
    return None


# --------------------------------------------------------------------------
# the server


_session_key = None


def shared_session_key():
    """REFUGE_TEST_SESSION_KEY=1: one session key file (on /dev/shm) for every
    server this test starts, so the suite runs with sessions in the database
    (`refuge serve --session-key`, docs/scale-out.md)."""
    global _session_key
    if _session_key is None:
        d = tempfile.mkdtemp(prefix="refuge-e2e-key-", dir="/dev/shm")
        on_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
        _session_key = os.path.join(d, "session.key")
        p = run(["server", "session-key", _session_key], timeout=60)
        check(p.returncode == 0, "`refuge server session-key` for the suite", p.out + p.err)
    return _session_key


def serve_flags(extra):
    """As root, refuge serve refuses a root-owned data directory unless told
    whom to serve as; the suite serves as root (test_sandbox.py covers
    --user), with the system call filter on all the same."""
    extra = list(extra)
    if os.geteuid() == 0 and "--user" not in extra:
        extra.append("--allow-root")
    if os.environ.get("REFUGE_TEST_SESSION_KEY") == "1" and "--session-key" not in extra:
        extra += ["--session-key", shared_session_key()]
    return extra


class Server:
    """A real instance: `refuge server init` then `refuge serve`."""

    def __init__(self, cheap_kdf=True):
        self.root = tempdir()
        self.data = os.path.join(self.root, "data")
        self.port = None
        self.proc = None
        self.token = None
        self.init_output = ""
        self.cheap_kdf = cheap_kdf
        self.stdout_path = os.path.join(self.root, "serve.stdout")
        self.stderr_path = os.path.join(self.root, "serve.stderr")
        on_cleanup(self.stop)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def init(self):
        args = ["server", "init", "--data", self.data] + db_args()
        if self.cheap_kdf:
            h = run(["server", "init", "--help"], timeout=60)
            helptext = h.out + h.err
            if "--kdf-ops" in helptext and "--kdf-mem" in helptext:
                args += ["--kdf-ops", "1", "--kdf-mem", "8"]
        p = run(args, timeout=120)
        self.init_output = p.out + p.err
        check(p.returncode == 0,
              "`refuge server init` failed (status %d)" % p.returncode, self.init_output)
        rep = sanitizer_report(self.init_output)
        check(rep is None, "sanitizer report from `refuge server init`", rep)
        self.token = parse_token(self.init_output)
        check(self.token, "`refuge server init` printed no enrollment token", self.init_output)
        return self

    def start(self, extra=()):
        self.port = free_port()
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        extra = serve_flags(extra)
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:%d" % self.port] +
            extra, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("server did not start (exit status %d):\n%s" %
                                  (self.proc.returncode, tail(self.stderr_path)))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise TestFailure("server did not start listening on port %d within 60 s:\n%s" %
                          (self.port, tail(self.stderr_path)))

    def output(self):
        """Everything the server printed so far (stdout + stderr)."""
        text = b""
        for p in (self.stdout_path, self.stderr_path):
            try:
                with open(p, "rb") as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def stop(self):
        """Stops the server with SIGTERM; returns its exit status (None if not running)."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise TestFailure("server did not stop within 30 s of SIGTERM")
        return p.returncode

    def stop_clean(self):
        """Stops the server and fails on a sanitizer report or a crash."""
        rc = self.stop()
        text = self.output().decode("utf-8", "replace")
        rep = sanitizer_report(text)
        check(rep is None, "sanitizer report from `refuge serve`", rep)
        check(rc in (0, -signal.SIGTERM, None),
              "server exited with status %s on SIGTERM" % rc, tail(self.stderr_path))
        if rc == -signal.SIGTERM:
            log("note: refuge serve died of SIGTERM instead of exiting cleanly "
                "(leak check could not run)")
        return rc


    # ---- faults (test_crash, test_diskfull, test_flood): additions ----

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def kill(self):
        """SIGKILL, as a crash: no clean-up runs. Returns the exit status."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.kill()
        p.wait()
        return p.returncode

    def restart(self, extra=(), timeout=60):
        """Starts `refuge serve` again on the same port and data directory
        (after kill() or stop()), so clients and the staff CLI keep their URL."""
        check(self.port is not None, "restart() needs a server started before")
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        extra = serve_flags(extra)
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:%d" % self.port] +
            extra, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure("server did not start again (exit status %d):\n%s" %
                                  (self.proc.returncode, tail(self.stderr_path)))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise TestFailure("server did not listen again on port %d within %d s:\n%s" %
                          (self.port, timeout, tail(self.stderr_path)))

    def memory(self):
        """The running server's VmRSS and VmHWM in KiB (from /proc/PID/status)."""
        out = {}
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmRSS", "VmHWM"):
                        out[k] = int(v.split()[0])
        except (OSError, AttributeError, ValueError):
            pass
        return out

    def check_sanitizers(self):
        """Fails on a sanitizer report in anything the server printed so far."""
        rep = sanitizer_report(self.output().decode("utf-8", "replace"))
        check(rep is None, "sanitizer report from `refuge serve`", rep)


def parse_token(text):
    """The enrollment token printed by `refuge server init` / `server token`."""
    m = re.search(r"--token[ =]+['\"]?([A-Za-z0-9_\-+/=.]{16,})", text)
    if m:
        return m.group(1)
    for line in text.splitlines():
        if "token" in line.lower():
            m = re.search(r"([A-Za-z0-9_\-+/=]{20,})\s*$", line.strip())
            if m:
                return m.group(1)
    return None


# --------------------------------------------------------------------------
# HTML forms


class Form:
    def __init__(self, attrs):
        self.action = attrs.get("action") or ""
        self.method = (attrs.get("method") or "get").lower()
        self.enctype = (attrs.get("enctype") or "application/x-www-form-urlencoded").lower()
        self.attrs = attrs
        self.inputs = []     # dicts: tag, type, name, value, checked, options, attrs
        self.buttons = []

    def hidden(self):
        return [(i["name"], i["value"]) for i in self.inputs
                if i["type"] == "hidden" and i["name"]]

    def field(self, name):
        for i in self.inputs:
            if i["name"] == name:
                return i
        return None

    def names(self, kind=None):
        return [i["name"] for i in self.inputs if i["name"] and (kind is None or i["type"] == kind)]

    def __repr__(self):
        return "<form %s %s %s>" % (self.method, self.action,
                                      [(i["type"], i["name"]) for i in self.inputs])


class Page(html.parser.HTMLParser):
    """Parses a page: forms with their fields, text, and elements by class/id."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.title = ""
        self.texts = []
        self.links = []         # every href/src/action value
        self.stack = []         # open elements: (tag, attrs, text-parts)
        self.elements = []      # closed elements: (tag, attrs, text)
        self._form = None
        self._select = None
        self._option = None
        self._textarea = None
        self._in_title = False
        self._button = None
        self._hidden = 0        # inside <style> or <script>: not text a person reads
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs_list):
        attrs = {k: (v if v is not None else "") for k, v in attrs_list}
        for k in ("href", "src", "action", "formaction", "poster", "srcset", "data"):
            if k in attrs:
                self.links.append((tag, k, attrs[k]))
        if tag not in self.VOID:
            self.stack.append((tag, attrs, []))
        if tag == "form":
            self._form = Form(attrs)
            self.forms.append(self._form)
        elif tag == "title":
            self._in_title = True
        elif tag in ("style", "script"):
            self._hidden += 1
        elif tag == "input" and self._form is not None:
            t = (attrs.get("type") or "text").lower()
            entry = {"tag": "input", "type": t, "name": attrs.get("name"),
                     "value": attrs.get("value", "on" if t in ("checkbox", "radio") else ""),
                     "checked": "checked" in attrs, "attrs": attrs}
            if t in ("submit", "image", "button", "reset"):
                self._form.buttons.append(entry)
            else:
                self._form.inputs.append(entry)
        elif tag == "button" and self._form is not None:
            self._button = {"tag": "button", "type": (attrs.get("type") or "submit").lower(),
                            "name": attrs.get("name"), "value": attrs.get("value", ""),
                            "attrs": attrs, "text": ""}
            self._form.buttons.append(self._button)
        elif tag == "select" and self._form is not None:
            self._select = {"tag": "select", "type": "select", "name": attrs.get("name"),
                            "value": None, "checked": False, "options": [],
                            "multiple": "multiple" in attrs, "attrs": attrs}
            self._form.inputs.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = {"value": attrs.get("value"), "text": "",
                            "selected": "selected" in attrs}
            self._select["options"].append(self._option)
        elif tag == "textarea" and self._form is not None:
            self._textarea = {"tag": "textarea", "type": "textarea", "name": attrs.get("name"),
                              "value": "", "checked": False, "attrs": attrs}
            self._form.inputs.append(self._textarea)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "option":
            self._option = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "title":
            self._in_title = False
        elif tag in ("style", "script"):
            self._hidden = max(0, self._hidden - 1)
        elif tag == "button":
            self._button = None
        # close the innermost matching element
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                t, attrs, parts = self.stack[i]
                text = "".join(parts)
                self.elements.append((t, attrs, text))
                del self.stack[i:]
                break

    def handle_data(self, data):
        if not self._hidden:
            self.texts.append(data)
        for _, _, parts in self.stack:
            parts.append(data)
        if self._in_title:
            self.title += data
        if self._option is not None:
            self._option["text"] += data
        if self._textarea is not None:
            self._textarea["value"] += data
        if self._button is not None:
            self._button["text"] += data

    @property
    def text(self):
        return re.sub(r"\s+", " ", " ".join(self.texts)).strip()

    def form(self, action_suffix, method="post"):
        """The form whose action path ends with action_suffix (query ignored)."""
        for f in self.forms:
            path = urllib.parse.urlsplit(f.action).path
            if path.endswith(action_suffix) and f.method == method:
                return f
        return None

    def by_class_or_id(self, word):
        out = []
        for tag, attrs, text in self.elements:
            classes = (attrs.get("class") or "").split()
            if word in classes or attrs.get("id") == word or word in (attrs.get("id") or ""):
                out.append((tag, attrs, text))
            elif any(word in c for c in classes):
                out.append((tag, attrs, text))
        return out


# --------------------------------------------------------------------------
# the person's browser


class Response:
    def __init__(self, status, headers, body, url):
        self.status = status
        self.headers = headers  # list of (name, value), names lower-cased
        self.body = body
        self.url = url
        self._page = None

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def page(self):
        if self._page is None:
            self._page = Page(self.text)
        return self._page

    def __repr__(self):
        return "<%d %s, %d bytes>" % (self.status, self.url, len(self.body))


def encode_multipart(fields):
    """fields: list of (name, value) where value is str or (filename, content_type, bytes)."""
    boundary = "----refugeTest" + secrets.token_hex(12)
    parts = []
    for name, value in fields:
        if isinstance(value, tuple):
            filename, ctype, data = value
            head = ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: %s\r\n\r\n' % (boundary, name, filename, ctype))
            parts.append(head.encode("utf-8") + data + b"\r\n")
        else:
            head = ('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n' %
                    (boundary, name))
            parts.append(head.encode("utf-8") + value.encode("utf-8") + b"\r\n")
    parts.append(("--%s--\r\n" % boundary).encode())
    return b"".join(parts), "multipart/form-data; boundary=" + boundary


class Browser:
    """A cookie-keeping HTTP/1.1 client, one new connection per request."""

    # Every person's connection comes from this loopback address when set, so
    # a test can search the server's disk and output for the address itself.
    source_address = None
    # How a request reaches the server: test_onion.py swaps in one that goes
    # through tor's SOCKS port for a .onion base.
    connection_class = http.client.HTTPConnection

    def __init__(self, base, lang=None):
        self.base = base.rstrip("/")
        u = urllib.parse.urlsplit(self.base)
        self.host, self.port = u.hostname, u.port
        self.cookies = {}
        self.set_cookie_headers = []   # every Set-Cookie seen, raw
        self.lang = lang
        self.history = []

    def _store_cookies(self, resp):
        for raw in resp.header_all("set-cookie"):
            self.set_cookie_headers.append(raw)
            first, _, rest = raw.partition(";")
            name, _, value = first.strip().partition("=")
            attrs = rest.lower()
            expired = ("max-age=0" in attrs.replace(" ", "") or
                       re.search(r"expires=[^;]*19[0-9][0-9]", attrs) is not None)
            if expired or value == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def request(self, method, path, body=None, content_type=None, headers=None,
                follow=False, timeout=120):
        url = path if path.startswith("/") else "/" + path
        if self.lang and "lang=" not in url and method == "GET":
            url += ("&" if "?" in url else "?") + "lang=" + self.lang
        for _ in range(10):
            src = (Browser.source_address, 0) if Browser.source_address else None
            conn = self.connection_class(self.host, self.port, timeout=timeout,
                                         source_address=src)
            h = {"User-Agent": "refuge-e2e", "Accept-Language": "en"}
            if self.lang:
                h["Accept-Language"] = self.lang
            if self.cookies:
                h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
            if content_type:
                h["Content-Type"] = content_type
            if headers:
                h.update(headers)
            try:
                conn.request(method, url, body=body, headers=h)
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException) as e:
                raise TestFailure("%s %s: no answer from the server (%s)" % (method, url, e))
            finally:
                conn.close()
            resp = Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], data, url)
            self._store_cookies(resp)
            self.history.append(resp)
            if follow and resp.status in (301, 302, 303, 307) and resp.header("location"):
                loc = resp.header("location")
                u = urllib.parse.urlsplit(loc)
                url = (u.path or "/") + ("?" + u.query if u.query else "")
                if resp.status != 307:
                    method, body, content_type = "GET", None, None
                continue
            return resp
        raise TestFailure("too many redirects from %s" % path)

    def get(self, path, follow=True):
        return self.request("GET", path, follow=follow)

    def post(self, path, fields, files=None, multipart=False, follow=True):
        if files or multipart:
            body, ctype = encode_multipart(list(fields) + list(files or []))
        else:
            body = urllib.parse.urlencode(list(fields)).encode()
            ctype = "application/x-www-form-urlencoded"
        return self.request("POST", path, body=body, content_type=ctype, follow=follow)

    def submit(self, form, values=None, files=None, follow=True, drop=()):
        """Submits form with its hidden fields plus values (list of pairs) and files.
        Fields named in drop are left out (e.g. the CSRF token)."""
        fields = [(n, v) for n, v in form.hidden() if n not in drop]
        fields += list(values or [])
        action = form.action or "/"
        u = urllib.parse.urlsplit(action)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        multipart = "multipart" in form.enctype
        return self.post(path, fields, files=files, multipart=multipart, follow=follow)


def csrf_field(form):
    """The name of the form's CSRF hidden field (the one that looks like it)."""
    names = form.names("hidden")
    for n in names:
        if "csrf" in n.lower() or "token" in n.lower():
            return n
    return names[0] if names else None


def visible_text_fields(form):
    return [i for i in form.inputs if i["name"] and i["type"] in
            ("text", "password", "search", "textarea", "email", "tel", "url", "")]


def fill_form(form, text_value, message_value=None, choose=0):
    """Answers every visible field of form: the first (or `choose`-th) option of
    each radio group and select, the first checkbox of each group, text_value in
    one-line fields, message_value in textareas. Returns a list of pairs and a
    dict name -> value of what was chosen."""
    values, chosen, seen_radio, seen_check = [], {}, set(), set()
    radios = {}
    for i in form.inputs:
        if i["type"] == "radio" and i["name"]:
            radios.setdefault(i["name"], []).append(i["value"])
    for i in form.inputs:
        name, t = i["name"], i["type"]
        if not name or t in ("hidden", "file"):
            continue
        if t == "radio":
            if name in seen_radio:
                continue
            seen_radio.add(name)
            opts = radios[name]
            v = opts[min(choose, len(opts) - 1)]
            values.append((name, v))
            chosen[name] = v
        elif t == "checkbox":
            if name in seen_check:
                continue
            seen_check.add(name)
            values.append((name, i["value"]))
            chosen[name] = i["value"]
        elif t == "select":
            opts = [o for o in i["options"] if (o["value"] if o["value"] is not None
                                                else o["text"]).strip()]
            if opts:
                o = opts[min(choose, len(opts) - 1)]
                v = o["value"] if o["value"] is not None else o["text"]
                values.append((name, v))
                chosen[name] = v
        elif t == "textarea":
            v = message_value if message_value is not None else text_value
            values.append((name, v))
            chosen[name] = v
        else:
            values.append((name, text_value))
            chosen[name] = text_value
    return values, chosen


def file_field(form):
    for i in form.inputs:
        if i["type"] == "file" and i["name"]:
            return i["name"]
    return None


def find_codename(page):
    """The codename shown on /new: an element marked "codename" or "words"
    (e.g. <ol class="words"><li>..</li></ol>), or failing that a
    <code>/<kbd>/<samp>/<output>/list/readonly field holding 7 words."""
    def seven_words(s):
        s = re.sub(r"\s+", " ", s or "").strip()
        return s if len(s.split(" ")) == 7 else None

    for tag, attrs, text in page.by_class_or_id("codename") + page.by_class_or_id("words"):
        for cand in (text, attrs.get("value")):
            s = seven_words(cand)
            if s:
                return s
    for tag, attrs, text in page.elements:
        if tag in ("code", "kbd", "samp", "output", "strong", "p", "div", "span", "textarea",
                   "ol", "ul"):
            s = seven_words(text)
            if s:
                return s
    for f in page.forms:
        for i in f.inputs:
            if "readonly" in i["attrs"]:
                s = seven_words(i["value"])
                if s:
                    return s
    return None


# --------------------------------------------------------------------------
# a person's journey steps


class Person:
    """A person on the person's pages: get a codename, log in, send, read."""

    def __init__(self, server, lang=None):
        self.server = server
        self.lang = lang
        self.b = Browser(server.url, lang=lang)
        self.codename = None

    def new_codename(self):
        r = self.b.get("/")
        check(r.status == 200, "GET / answered %d" % r.status, r.text[:500])
        r = self.b.get("/new")
        check(r.status == 200, "GET /new answered %d" % r.status, r.text[:500])
        self.codename = find_codename(r.page)
        check(self.codename, "GET /new shows no 7-word codename", r.page.text[:1500])
        f = r.page.form("/new")
        check(f is not None, "GET /new has no continue form (POST /new)",
              [repr(x) for x in r.page.forms])
        r = self.b.submit(f)
        check(r.status == 200, "POST /new (continue) answered %d" % r.status, r.text[:800])
        return r

    def login(self, codename=None, fresh=True):
        if fresh:
            self.b = Browser(self.server.url, lang=self.lang)
        r = self.b.get("/login")
        check(r.status == 200, "GET /login answered %d" % r.status, r.text[:500])
        f = r.page.form("/login")
        check(f is not None, "GET /login has no login form", r.text[:1500])
        fields = visible_text_fields(f)
        check(fields, "the login form has no field for the codename", repr(f))
        return self.b.submit(f, [(fields[0]["name"], codename or self.codename)])

    def inbox(self):
        r = self.b.get("/inbox")
        check(r.status == 200, "GET /inbox answered %d" % r.status, r.text[:500])
        return r

    def send(self, text, files=(), field_text="test", choose=0, inbox=None):
        """Fills and sends the form on /inbox (intake on first contact).
        files: list of (filename, content_type, bytes). Returns (response, chosen)."""
        r = inbox or self.inbox()
        f = r.page.form("/send")
        check(f is not None, "/inbox has no form posting to /send", r.text[:2000])
        values, chosen = fill_form(f, field_text, text, choose=choose)
        up = []
        if files:
            name = file_field(f)
            check(name, "the /send form has no file field", repr(f))
            up = [(name, fdesc) for fdesc in files]
        resp = self.b.submit(f, values, files=up)
        return resp, chosen


# --------------------------------------------------------------------------
# the staff CLI


class Staff:
    """A caseworker: the real `refuge` client with its own home and passphrase."""

    def __init__(self, name="Alice", passphrase=None):
        self.name = name
        self.home = tempdir("refuge-staff-")
        self.passfile = os.path.join(self.home, "passphrase")
        with open(os.open(self.passfile, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(passphrase or ("test passphrase " + secrets.token_hex(8)) + "\n")
        self.env = dict(os.environ)
        self.env["REFUGE_HOME"] = os.path.join(self.home, "home")
        self.env["REFUGE_PASSPHRASE_FILE"] = self.passfile

    def run(self, *args, ok=True, timeout=600):
        p = run(list(args), env=self.env, timeout=timeout)
        rep = sanitizer_report(p.err)
        check(rep is None, "sanitizer report from `refuge %s`" % " ".join(args[:2]), rep)
        if ok:
            check(p.returncode == 0, "`refuge %s` failed (status %d)" %
                  (" ".join(args), p.returncode), (p.err + p.out)[-3000:])
        return p

    def json(self, *args):
        p = self.run(*args)
        try:
            return json.loads(p.out)
        except ValueError:
            raise TestFailure("`refuge %s` did not print JSON" % " ".join(args) + "\n    " +
                              p.out[:1500])


def walk_json(obj):
    """Yields every (key, value) pair and every scalar in a JSON value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from walk_json(v)
    elif isinstance(obj, list):
        for v in obj:
            yield None, v
            yield from walk_json(v)


def json_strings(obj):
    return [v for _, v in walk_json(obj) if isinstance(v, str)]


def case_ids(obj):
    """Case ids in the output of `refuge cases --json`."""
    items = obj
    if isinstance(obj, dict):
        items = obj.get("cases", [])
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, str):
            out.append(it)
        elif isinstance(it, dict):
            for k in ("case", "id", "case_id"):
                if isinstance(it.get(k), str):
                    out.append(it[k])
                    break
    return out


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def unescape(s):
    return html.unescape(s)


# --------------------------------------------------------------------------
# teams and casework (issue 3): enrolment, the server's database seen as an
# attacker sees it, envelope headers, the audit chain, canary searches.
# (Added by the team tests; everything above is unchanged.)

import base64
import sqlite3
import string
import struct

FINGERPRINT_RE = re.compile(r"\d{5}(?:[ ]\d{5}){7}")


def parse_fingerprint(text):
    """The last fingerprint (8 groups of 5 digits) printed in text, or None."""
    found = FINGERPRINT_RE.findall(text or "")
    return found[-1] if found else None


def parse_init_line(text):
    """The token in the `refuge init --server URL --token TOKEN --name NAME`
    line that `refuge staff invite` prints."""
    for line in (text or "").splitlines():
        if "init" in line and "--token" in line:
            t = parse_token(line)
            if t:
                return t
    return parse_token(text or "")


class Member(Staff):
    """A caseworker of a team: Staff plus the team commands' helpers. Every
    command runs with stdin from /dev/null (not a tty), as in scripts/check."""

    def __init__(self, name, passphrase=None):
        super().__init__(name, passphrase)
        self.fp = None

    def run(self, *args, ok=True, timeout=600):
        p = subprocess.run([BIN] + list(args), env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        rep = sanitizer_report(p.err)
        check(rep is None, "sanitizer report from `refuge %s`" % " ".join(args[:2]), rep)
        if ok:
            check(p.returncode == 0, "%s: `refuge %s` failed (status %d)" %
                  (self.name, " ".join(args), p.returncode), (p.err + p.out)[-3000:])
        return p

    def refused(self, *args):
        """Runs a command that must fail; returns it (status checked != 0)."""
        p = self.run(*args, ok=False)
        check(p.returncode != 0, "%s: `refuge %s` must be refused, but it exited 0" %
              (self.name, " ".join(args)), (p.out + p.err)[-2000:])
        return p

    def fingerprint(self):
        p = self.run("fingerprint")
        fp = parse_fingerprint(p.out)
        check(fp, "`refuge fingerprint` prints 8 groups of 5 digits", p.out[:500])
        return fp

    def state(self, case):
        """`refuge show CASE --json`'s "state"."""
        shown = self.json("show", case, "--json")
        check(isinstance(shown, dict) and isinstance(shown.get("state"), dict),
              "%s: `refuge show %s --json` has a \"state\" object" % (self.name, case),
              json.dumps(shown)[:1500])
        return shown["state"]

    def cases(self, *extra):
        obj = self.json("cases", "--json", *extra)
        check(isinstance(obj, dict) and isinstance(obj.get("cases"), list),
              "%s: `refuge cases --json` is {\"cases\": [...]}" % self.name,
              json.dumps(obj)[:1500])
        return obj["cases"]


def same_listing(member, *filters):
    """`refuge cases` (text and --json) with filters from the board rows is
    exactly the listing from the summaries (an empty --search matches every
    case and takes that path): every field, order and mark. Returns the
    text listing."""
    text = None
    for fmt in ((), ("--json",)):
        fast = member.run("cases", *(filters + fmt))
        slow = member.run("cases", "--search", "", *(filters + fmt))
        check(fast.out == slow.out,
              "%s: `refuge cases %s` from the board rows is the listing from the summaries" %
              (member.name, " ".join(filters + fmt)),
              "board rows:\n%s\nsummaries:\n%s" % (fast.out[:2000], slow.out[:2000]))
        text = fast.out if text is None else text
    return text


def enroll_first_admin(srv, name="Alice"):
    a = Member(name)
    p = a.run("init", "--server", srv.url, "--token", srv.token, "--name", name)
    a.fp = parse_fingerprint(p.out)
    return a


def invite(srv, admin, name, as_admin=False):
    """admin invites NAME, NAME enrolls with the printed line; returns the
    Member (not approved yet) and the fingerprint its init printed."""
    args = ["staff", "invite"] + (["--admin"] if as_admin else [])
    p = admin.run(*args)
    token = parse_init_line(p.out + p.err)
    check(token, "`refuge staff invite` prints the init line with a token", p.out + p.err)
    check("refuge init" in p.out and "--server" in p.out,
          "`refuge staff invite` prints the exact `refuge init --server URL --token ...` line",
          p.out)
    m = Member(name)
    p = m.run("init", "--server", srv.url, "--token", token, "--name", name)
    m.fp = parse_fingerprint(p.out)
    check(m.fp, "%s's `refuge init` prints the newcomer's fingerprint" % name, p.out)
    return m


def approve(admin, member, as_admin=False):
    """Compares the fingerprint the newcomer reads out with `refuge
    fingerprint` and approves non-interactively with --fingerprint."""
    fp = member.fingerprint()
    check(fp == member.fp, "`refuge fingerprint` shows what `refuge init` printed",
          (fp, member.fp))
    args = ["staff", "approve", member.name, "--fingerprint", fp]
    if as_admin:
        args.append("--admin")
    return admin.run(*args)


def make_team(srv, names=("Alice", "Bob", "Carol")):
    """First admin + invited, enrolled and approved members (all synced)."""
    admin = enroll_first_admin(srv, names[0])
    team = [admin]
    for n in names[1:]:
        m = invite(srv, admin, n)
        approve(admin, m)
        team.append(m)
    for m in team:
        m.run("sync")
    return team


# ---- the server's database, as a compromised server sees it ----

class _PgCursor:
    def __init__(self, rows, rowcount):
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def fetchall(self):
        return list(self._rows)

    def __iter__(self):
        return iter(self._rows)


class PgDb:
    """The server's PostgreSQL database as a compromised server sees it, with
    the sqlite3 calls the tests make (execute with ? parameters, fetchone,
    fetchall, executemany, close), through psql (the standard library has no
    PostgreSQL driver). Each statement commits on its own: BEGIN [IMMEDIATE]
    and COMMIT are accepted and do nothing. SQLite spellings the tests use are
    translated: x'..' blobs, PRAGMA integrity_check (PostgreSQL checks its
    own pages: "ok"), rowid (the table's first column)."""

    SEP, REC, NUL, SPLIT = "\x1f", "\x1e", "\x1d", "--refuge-e2e-split--"

    def __init__(self, url):
        self.url = url
        self.isolation_level = None

    @staticmethod
    def _literal(v):
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, (bytes, bytearray, memoryview)):
            return "'\\x%s'::bytea" % bytes(v).hex()
        return "'" + str(v).replace("'", "''") + "'"

    def _sql(self, sql, params):
        sql = re.sub(r"\bBEGIN IMMEDIATE\b", "BEGIN", sql)
        sql = re.sub(r"(?i)\bx'([0-9a-f]*)'", lambda m: "'\\x%s'::bytea" % m.group(1), sql)
        parts = sql.split("?")
        check(len(parts) == len(params) + 1, "PgDb: parameters do not match the SQL", sql)
        out = parts[0]
        for v, rest in zip(params, parts[1:]):
            out += self._literal(v) + rest
        return out

    def execute(self, sql, params=()):
        stripped = sql.strip().rstrip(";").upper()
        if stripped in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "END"):
            return _PgCursor([], 0)
        if stripped == "PRAGMA INTEGRITY_CHECK":
            return _PgCursor([("ok",)], 1)
        m = re.search(r"(?i)ORDER BY rowid", sql)
        if m:
            sql = sql[:m.start()] + "ORDER BY 1" + sql[m.end():]
        q = self._sql(sql, tuple(params)).strip().rstrip(";")
        # the column types first (\\gdesc), then the rows, so each value
        # comes back as the type sqlite3 would give (text stays text)
        script = "%s \\gdesc\n\\echo %s\n%s;\n" % (q, self.SPLIT, q)
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-F", self.SEP, "-R", self.REC, "-P", "null=" + self.NUL,
                            self.url], input=script.encode(), capture_output=True, timeout=120)
        if p.returncode != 0:
            raise sqlite3.OperationalError(p.stderr.decode(errors="replace").strip())
        text = p.stdout.decode(errors="replace")
        desc, _, text = text.partition(self.SPLIT + "\n")
        types = [d.split(self.SEP)[1].strip() for d in desc.split(self.REC)
                 if d.count(self.SEP) == 1]
        if text.endswith("\n"):
            text = text[:-1]
        rows = [tuple(self._typed(v, types[i] if i < len(types) else "")
                      for i, v in enumerate(r.split(self.SEP)))
                for r in text.split(self.REC) if r != ""] if text and types else []
        return _PgCursor(rows, len(rows))

    @staticmethod
    def _typed(v, t):
        if v == PgDb.NUL:
            return None
        if t in ("bigint", "integer", "smallint"):
            return int(v)
        if t == "bytea":
            return bytes.fromhex(v[2:])
        if t == "boolean":
            return v == "t"
        return v

    def executemany(self, sql, seq):
        for params in seq:
            self.execute(sql, params)

    def commit(self):
        pass

    def close(self):
        pass


def db_url_of(datadir):
    """The PostgreSQL URL an instance stores in (DIR/database), or None."""
    try:
        with open(os.path.join(datadir, "database")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def _pg_admin(url, sql):
    """Runs sql on the cluster's postgres database (CREATE/DROP DATABASE)."""
    u = urllib.parse.urlsplit(url)
    admin = urllib.parse.urlunsplit((u.scheme, u.netloc, "/postgres", u.query, ""))
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", admin, "-c", sql],
                       capture_output=True, timeout=120)
    check(p.returncode == 0, "PostgreSQL test cluster: %s" % sql,
          (p.stdout + p.stderr).decode(errors="replace"))


def db_save(datadir, tag):
    """With the server stopped: keeps a copy of an instance's PostgreSQL
    database under tag (copying DATA copies a SQLite store; nothing to do)."""
    url = db_url_of(datadir)
    if not url:
        return
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    _pg_admin(url, "DROP DATABASE IF EXISTS %s_%s" % (name, tag))
    _pg_admin(url, "CREATE DATABASE %s_%s TEMPLATE %s" % (name, tag, name))
    if not KEEP:
        on_cleanup(lambda: _pg_admin(url, "DROP DATABASE IF EXISTS %s_%s WITH (FORCE)" %
                                     (name, tag)))


def db_restore(datadir, tag):
    """With the server stopped: puts back the copy db_save kept under tag."""
    url = db_url_of(datadir)
    if not url:
        return
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    _pg_admin(url, "DROP DATABASE %s WITH (FORCE)" % name)
    _pg_admin(url, "CREATE DATABASE %s TEMPLATE %s_%s" % (name, name, tag))


def open_db(srv, readonly=False):
    """The server's database (srv: a Server or a data directory): sqlite3 on
    DIR/refuge.db, or PgDb when the instance stores in PostgreSQL."""
    datadir = srv if isinstance(srv, str) else srv.data
    url = db_url_of(datadir)
    if url:
        return PgDb(url)
    path = os.path.join(datadir, "refuge.db")
    if readonly:
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    else:
        con = sqlite3.connect(path, timeout=30)
    con.isolation_level = None
    return con


def table_columns(con, table):
    if isinstance(con, PgDb):
        return [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema() ORDER BY ordinal_position", (table,)).fetchall()]
    return [r[1] for r in con.execute("PRAGMA table_info(%s)" % table).fetchall()]


def tables(con):
    if isinstance(con, PgDb):
        return [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()").fetchall()]
    return [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]


def cached_object(member, seq, flip_at=None):
    """The ciphertext of object seq in a caseworker's local cache: its row's
    data, a range of objects/pack (cache_pack.c) or the file objects/<seq>.
    flip_at: an offset from the object's end whose byte is flipped (xor 0x55)
    in place first, to damage it. None if the cache has no such object."""
    home = member.env["REFUGE_HOME"]
    con = sqlite3.connect(os.path.join(home, "cache.db"), timeout=30)
    try:
        row = con.execute("SELECT data, pack, size FROM objects WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            return None
        data, pack, size = row
        if data is not None:
            data = bytearray(data)
            if flip_at is not None:
                data[-flip_at] ^= 0x55
                con.execute("UPDATE objects SET data = ? WHERE seq = ?", (bytes(data), seq))
                con.commit()
            return bytes(data)
        path, off = ((os.path.join(home, "objects", "pack"), pack) if pack is not None
                     else (os.path.join(home, "objects", str(seq)), 0))
        with open(path, "r+b") as f:
            if flip_at is not None:
                f.seek(off + size - flip_at)
                x = f.read(1)
                f.seek(off + size - flip_at)
                f.write(bytes([x[0] ^ 0x55]))
            f.seek(off)
            return f.read(size)
    finally:
        con.close()


def object_bytes(srv, con, seq):
    """The stored ciphertext of object seq (inline row or blob file)."""
    row = con.execute("SELECT data, blob FROM objects WHERE seq = ?", (seq,)).fetchone()
    if row is None:
        return None
    if row[0] is not None:
        return bytes(row[0])
    with open(os.path.join(srv.data, "blobs", row[1]), "rb") as f:
        return f.read(8 + 88 * 256 + 24 + 32)


KEYID_KEY = b"refuge-keyid-v1\0"


def keyid(pk):
    """docs/protocol.md 1.1: BLAKE2b-64 keyed with "refuge-keyid-v1\\0"."""
    return hashlib.blake2b(bytes(pk), digest_size=8, key=KEYID_KEY).hexdigest()


def envelope_header(data):
    """(kind, [recipient key ids as hex]) of an envelope, or raises TestFailure."""
    check(data is not None and len(data) >= 8 and data[:4] == b"RFGE",
          "a stored object starts with the envelope magic RFGE", (data or b"")[:16])
    kind = data[5]
    (n,) = struct.unpack(">H", data[6:8])
    ids = []
    for i in range(n):
        off = 8 + 88 * i
        check(off + 88 <= len(data), "envelope header holds its %d stanzas" % n)
        ids.append(data[off:off + 8].hex())
    return kind, ids


def parse_roster(raw):
    """docs/protocol.md 4: the signed roster's fields (no signature check)."""
    raw = bytes(raw)
    check(raw[:4] == b"RFGR", "a stored roster starts with RFGR", raw[:8])
    (version,) = struct.unpack(">I", raw[5:9])
    prev = raw[9:41]
    (n,) = struct.unpack(">H", raw[41:43])
    off, members = 43, []
    for _ in range(n):
        ln = raw[off]
        name = raw[off + 1:off + 1 + ln].decode("utf-8", "replace")
        off += 1 + ln
        role = raw[off]
        box, sign = raw[off + 1:off + 33], raw[off + 33:off + 65]
        off += 65
        members.append({"name": name, "role": role, "box_pk": box, "sign_pk": sign})
    return {"version": version, "prev_hash": prev, "members": members,
            "body": raw[:off], "signer": raw[off:off + 32], "sig": raw[off + 32:off + 96]}


def roster_hash(raw):
    return hashlib.blake2b(bytes(raw), digest_size=32).digest()


# ---- the audit chain (src/lib/audit.h) ----

def audit_hash(eid, day, actor, action, target, prev, request=None):
    """BLAKE2b-256("refuge-audit-v1" || id u64 || day u32 || actor ||
    action_len u8 || action || target_len u8 || target || prev); with a
    signed request (version 2, docs/protocol.md 9): "refuge-audit-v2" and
    || request_len u16 || request appended."""
    action = action.encode() if isinstance(action, str) else bytes(action)
    target = target.encode() if isinstance(target, str) else bytes(target)
    actor = bytes(actor) if actor else b"\0" * 32
    domain = b"refuge-audit-v2" if request else b"refuge-audit-v1"
    m = (domain + struct.pack(">QI", eid, day) + actor +
         bytes([len(action)]) + action + bytes([len(target)]) + target + bytes(prev))
    if request:
        m += struct.pack(">H", len(request)) + bytes(request)
    return hashlib.blake2b(m, digest_size=32).digest()


# ---- canary searches (the same encodings as test_canary.py) ----

def rand_letters(n):
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(n))


def b64_cores(data):
    """Base64 of data at each of the 3 alignments, keeping only the characters
    that do not depend on the neighbouring bytes; standard and URL-safe."""
    out = []
    for off in range(3):
        enc = base64.b64encode(b"\0" * off + data + b"\0\0\0").decode()
        start = -(-(8 * off) // 6)
        end = (8 * (off + len(data))) // 6
        core = enc[start:end]
        if len(core) >= 8:
            out.append(core.encode())
            out.append(core.replace("+", "-").replace("/", "_").encode())
    return out


def encodings(s):
    """Every encoding of s a canary search looks for, as (label, bytes)."""
    u8 = s.encode("utf-8")
    pats = [("utf-8", u8), ("utf-16le", s.encode("utf-16-le")),
            ("utf-16be", s.encode("utf-16-be")),
            ("hex", u8.hex().encode()), ("HEX", u8.hex().upper().encode()),
            ("url", urllib.parse.quote(s).encode()),
            ("url+", urllib.parse.quote_plus(s).encode()),
            ("url-lower", urllib.parse.quote(s).lower().encode()),
            ("reversed", s[::-1].encode("utf-8")),
            ("reversed-bytes", u8[::-1])]
    pats += [("base64", p) for p in b64_cores(u8)]
    seen, out = set(), []
    for label, p in pats:
        if p not in seen and len(p) >= 6:
            seen.add(p)
            out.append((label, p))
    return out


def search_tree(roots, needles):
    """needles: list of (what, label, bytes). Returns (hits, files, bytes)."""
    hits, files, total = [], 0, 0
    for root in roots:
        for d, _, names in os.walk(root):
            for n in names:
                p = os.path.join(d, n)
                try:
                    with open(p, "rb") as f:
                        data = f.read()
                except OSError:
                    continue  # a file removed while we walk (journal, temp)
                files += 1
                total += len(data)
                low = None
                for what, label, pat in needles:
                    hay = data
                    if label in ("hex", "url-lower"):
                        if low is None:
                            low = data.lower()
                        hay = low
                    i = hay.find(pat)
                    if i >= 0:
                        hits.append("%s (%s) in %s at byte %d" % (what, label, p, i))
    return hits, files, total


class TeamServer(Server):
    """A Server whose `refuge server init` takes extra flags (e.g.
    --retention-days 0 --inactivity-days 1)."""

    def __init__(self, init_args=(), cheap_kdf=True):
        super().__init__(cheap_kdf=cheap_kdf)
        self.init_args = list(init_args)

    def init(self):
        if not self.init_args:
            return super().init()
        args = ["server", "init", "--data", self.data] + self.init_args + db_args()
        h = run(["server", "init", "--help"], timeout=60)
        helptext = h.out + h.err
        for flag in self.init_args:
            if flag.startswith("--"):
                check(flag in helptext, "`refuge server init --help` documents %s" % flag,
                      helptext[-1500:])
        if self.cheap_kdf and "--kdf-ops" in helptext and "--kdf-mem" in helptext:
            args += ["--kdf-ops", "1", "--kdf-mem", "8"]
        p = run(args, timeout=120)
        self.init_output = p.out + p.err
        check(p.returncode == 0,
              "`refuge server init %s` failed (status %d)" % (" ".join(self.init_args),
                                                            p.returncode), self.init_output)
        rep = sanitizer_report(self.init_output)
        check(rep is None, "sanitizer report from `refuge server init`", rep)
        self.token = parse_token(self.init_output)
        check(self.token, "`refuge server init` printed no enrollment token", self.init_output)
        return self


def checklist_done(state):
    """The checklist items marked done in a "state" (dict name -> bool, or a list)."""
    c = state.get("checklist")
    if isinstance(c, dict):
        return sorted(k for k, v in c.items() if v)
    if isinstance(c, list):
        return sorted(x if isinstance(x, str) else x.get("item") for x in c
                      if isinstance(x, str) or x.get("done"))
    return c


def norm_state(state):
    """A "state" with its lists sorted (comparing what, not the order shown)."""
    return {"stage": state.get("stage"), "assigned": sorted(state.get("assigned") or []),
            "tags": sorted(state.get("tags") or []), "due": state.get("due"),
            "checklist": checklist_done(state)}


def events_of(shown):
    """The event items of `refuge show --json`, as comparable tuples."""
    out = []
    for it in shown.get("items", []) if isinstance(shown, dict) else []:
        if isinstance(it, dict) and it.get("kind") == "event":
            out.append((it.get("op"), it.get("value"), it.get("author"), it.get("seq")))
    return out


# --------------------------------------------------------------------------
# raw HTTP and the store's tables (test_hostile, test_crash, test_diskfull)


class RawAnswer:
    """What came back on a raw connection: status None if no HTTP answer."""

    def __init__(self, raw, closed, error=None):
        self.raw = raw
        self.closed = closed      # the server closed the connection
        self.error = error        # e.g. "reset", "timeout"
        self.status = None
        self.headers = []
        self.body = b""
        head, sep, rest = raw.partition(b"\r\n\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        if sep and m:
            self.status = int(m.group(1))
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                self.headers.append((k.strip().lower().decode("latin-1"),
                                     v.strip().decode("latin-1")))
            self.body = rest

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<raw %s %s%s, %d bytes>" % (self.status, "closed" if self.closed else "open",
                                            " " + self.error if self.error else "", len(self.raw))


def _answer_complete(buf):
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    if m:
        return len(rest) >= int(m.group(1))
    return re.match(rb"HTTP/1\.[01] (1\d\d|204|304)", head) is not None


def raw_exchange(port, data, timeout=10.0, host="127.0.0.1", pieces=None, pause=0.0,
                 shut=False, shut_after=0.0):
    """Sends data (bytes) on a fresh TCP connection, exactly as given, and reads
    the first answer: until it is complete (Content-Length), the server
    closes, or timeout. pieces: a list of byte strings sent one by one with
    `pause` seconds between (instead of data). shut: close the sending side
    after the data (the server reads an end of stream), shut_after seconds
    after it. Returns a RawAnswer."""
    s = socket.create_connection((host, port), timeout=timeout)
    buf, closed, error = b"", False, None
    deadline = time.time() + timeout
    try:
        try:
            for i, piece in enumerate(pieces if pieces is not None else [data]):
                if i and pause:
                    time.sleep(pause)
                s.sendall(piece)
            if shut:
                if shut_after:
                    time.sleep(shut_after)
                s.shutdown(socket.SHUT_WR)
        except OSError as e:  # the server may answer and close before reading all
            error = "send: " + type(e).__name__
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            try:
                got = s.recv(65536)
            except socket.timeout:
                error = error or "timeout"
                break
            except OSError as e:
                error = type(e).__name__
                closed = True
                break
            if not got:
                closed = True
                break
            buf += got
            if _answer_complete(buf):
                break
    finally:
        s.close()
    return RawAnswer(buf, closed, error)


STORE_TABLES = ("objects", "sources", "staff", "rosters", "enroll_tokens")


def store_snapshot(datadir, tables=STORE_TABLES):
    """A comparable picture of the store: sha256 of every row of the named
    tables (sqlite3, read-only) and the names and sizes of DATA/blobs."""
    con = open_db(datadir, readonly=True)
    snap = {}
    try:
        for t in tables:
            rows = con.execute("SELECT * FROM %s ORDER BY rowid" % t).fetchall()
            snap[t] = [hashlib.sha256(repr(r).encode()).hexdigest()[:16] for r in rows]
    finally:
        con.close()
    bdir = os.path.join(datadir, "blobs")
    snap["blobs"] = sorted((n, os.path.getsize(os.path.join(bdir, n))) for n in os.listdir(bdir))
    return snap


def snapshot_diff(before, after):
    """A short description of what changed between two store_snapshot()s, or None."""
    out = []
    for k in sorted(set(before) | set(after)):
        a, b = before.get(k, []), after.get(k, [])
        if a != b:
            out.append("%s: %d -> %d entries, %d new, %d gone" %
                       (k, len(a), len(b), len(set(b) - set(a)), len(set(a) - set(b))))
    return "; ".join(out) or None


# ---- keys a compromised server makes for itself (pure python, tests only) ----
# Ed25519 (RFC 8032, section 5.1 / 6) and X25519 (RFC 7748): slow but exact,
# so a test can forge a roster signed by a key that is not an admin.

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493


def _inv(x):
    return pow(x, _P - 2, _P)


_D = -121665 * _inv(121666) % _P
_SQRTM1 = pow(2, (_P - 1) // 4, _P)


def _xrecover(y):
    xx = (y * y - 1) * _inv(_D * y * y + 1)
    x = pow(xx, (_P + 3) // 8, _P)
    if (x * x - xx) % _P != 0:
        x = x * _SQRTM1 % _P
    if x % 2 != 0:
        x = _P - x
    return x


_BY = 4 * _inv(5) % _P
_BX = _xrecover(_BY)
_BASE = (_BX, _BY, 1, _BX * _BY % _P)


def _padd(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _pmul(s, p):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _padd(q, p)
        p = _padd(p, p)
        s >>= 1
    return q


def _penc(p):
    zi = _inv(p[2])
    x, y = p[0] * zi % _P, p[1] * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _ed_secret(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed25519_public(seed):
    return _penc(_pmul(_ed_secret(seed)[0], _BASE))


def ed25519_sign(seed, msg):
    a, prefix = _ed_secret(seed)
    pk = _penc(_pmul(a, _BASE))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % _L
    big_r = _penc(_pmul(r, _BASE))
    k = int.from_bytes(hashlib.sha512(big_r + pk + msg).digest(), "little") % _L
    return big_r + ((r + k * a) % _L).to_bytes(32, "little")


def x25519_public(sk):
    k = bytearray(sk)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1, x2, z2, x3, z3, swap = 9, 1, 0, 9, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a % _P, b * b % _P
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a % _P, c * b % _P
        x3, z3 = (da + cb) ** 2 % _P, x1 * (da - cb) ** 2 % _P
        x2, z2 = aa * bb % _P, e * (aa + 121665 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * _inv(z2) % _P).to_bytes(32, "little")


def crypto_self_check():
    """RFC 8032 test 1 and RFC 7748 section 6.1: the forger is a real signer."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    check(ed25519_public(seed).hex() ==
          "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
          "pure-python Ed25519 public key matches RFC 8032 test 1")
    check(ed25519_sign(seed, b"").hex() ==
          "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
          "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
          "pure-python Ed25519 signature matches RFC 8032 test 1")
    sk = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    check(x25519_public(sk).hex() ==
          "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
          "pure-python X25519 public key matches RFC 7748 6.1")


def encode_roster(version, prev_hash, members, signer_seed=None, signer_pk=None, sig=None):
    """docs/protocol.md 4: a roster; signed with signer_seed (Ed25519) unless
    signer_pk and sig are given as they are."""
    body = b"RFGR" + bytes([1]) + struct.pack(">I", version) + bytes(prev_hash) + \
        struct.pack(">H", len(members))
    for m in members:
        name = m["name"].encode("utf-8")
        body += bytes([len(name)]) + name + bytes([m["role"]]) + bytes(m["box_pk"]) + \
            bytes(m["sign_pk"])
    if signer_seed is not None:
        signer_pk = ed25519_public(signer_seed)
        sig = ed25519_sign(signer_seed, b"refuge-roster-v1" + body)
    return body + bytes(signer_pk) + bytes(sig)


def restart_same_port(srv, extra=()):
    """Starts a stopped Server again on the port it had (the caseworkers'
    clients keep the server's URL); Server.restart with a retry while the
    port is still held for a moment."""
    deadline = time.time() + 30
    while True:
        try:
            return srv.restart(extra)
        except TestFailure:
            if time.time() > deadline:
                raise
            srv.proc = None
            time.sleep(0.5)


def require_commands(*commands):
    """Skips the test (exit 77) while a command it needs is not built yet:
    `refuge CMD --help` answers "unknown command". Each entry is a string
    ("staff", "server purge") split on spaces."""
    missing = []
    for c in commands:
        p = run(c.split() + ["--help"], timeout=60)
        text = p.out + p.err
        last = c.split()[-1]
        if "unknown command" in text.lower() or (p.returncode == 2 and last not in text):
            missing.append(c)
    if missing:
        raise Skip("not built yet: refuge " + ", refuge ".join(missing))


class TamperProxy:
    """A server that lies in its answers: an HTTP proxy on listen_port that
    forwards every request unchanged to the real server on upstream_port
    (staff API signatures cover method, path and body, not the address) and
    lets a test rewrite answers: set .rewrite = fn(method, path, body) ->
    body (None: unchanged), or cut a request off (the connection closed
    without an answer): set .cut = fn(method, path) -> True."""

    def __init__(self, listen_port, upstream_port):
        import http.server
        import threading
        proxy = self
        self.rewrite = None
        self.rewritten = 0
        self.cut = None
        self.url = "http://127.0.0.1:%d" % listen_port

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def _forward(self):
                cut = proxy.cut
                if cut is not None and cut(self.command, self.path):
                    self.close_connection = True
                    self.connection.close()
                    return
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "content-length")}
                conn.request(self.command, self.path, body=body, headers=hdrs)
                r = conn.getresponse()
                data = r.read()
                conn.close()
                fn = proxy.rewrite
                if fn is not None:
                    new = fn(self.command, self.path, data)
                    if new is not None:
                        data = new
                        proxy.rewritten += 1
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                         "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", listen_port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        on_cleanup(self.close)

    def close(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
