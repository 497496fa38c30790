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
the temporary directories for a post-mortem.
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
        args = ["server", "init", "--data", self.data]
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
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:%d" % self.port] +
            list(extra), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
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
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
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
