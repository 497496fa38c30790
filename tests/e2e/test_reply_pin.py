#!/usr/bin/env python3
"""
The person's key is pinned per case, and plain http:// goes only where no one
can listen in (issue 13, finding 6).

  - A server that lies (a proxy in front of the real one) swaps the person's
    public key in its answer to `GET /api/v1/cases/CASE` after the first
    reply: the second `refuge reply` refuses loudly and seals nothing (no new
    reply stored); once the answer is honest again, replies work.
  - `refuge init --server http://HOST` is refused, with a clear message and
    without a connection, when HOST is neither this computer nor a .onion
    name; .onion and loopback are allowed; `--insecure-http` (a TLS-
    terminating proxy on the same host) allows it and is recorded in
    config.json, which later commands honour; without it, they refuse.
"""
import base64
import json
import os
import secrets
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Member, Person, Server, TamperProxy, case_ids, check, enroll_first_admin, free_port,
                 log, main, open_db, parse_init_line, require_commands)


class Via:
    """The server as a client reaches it through url (a proxy)."""

    def __init__(self, srv, url):
        self._srv = srv
        self.url = url

    def __getattr__(self, name):
        return getattr(self._srv, name)


def replies(con):
    return con.execute("SELECT count(*) FROM objects WHERE kind = 3").fetchone()[0]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def non_loopback_ipv4():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("203.0.113.1", 9))  # no packet is sent for a UDP connect
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


class Relay:
    """A TCP relay on (ip, port) to 127.0.0.1:upstream that counts connections."""

    def __init__(self, ip, upstream):
        self.count = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.upstream = upstream
        threading.Thread(target=self._serve, daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            u = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()

    def close(self):
        self.sock.close()


def test():
    require_commands("reply", "staff")
    srv = Server().init().start()
    proxy_port = free_port()
    proxy = TamperProxy(proxy_port, srv.port)
    alice = enroll_first_admin(Via(srv, "http://127.0.0.1:%d" % proxy_port), "Alice")
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("hello, I need help " + secrets.token_hex(4))
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])
    alice.run("sync")
    case = case_ids(alice.json("cases", "--json"))
    check(len(case) == 1, "one case", case)
    case = case[0]
    con = open_db(srv)

    # ---- the person's key, pinned on first sight ----
    alice.run("reply", case, "-m", "first reply")
    check(replies(con) == 1, "the first reply is stored")
    fake = b64url(os.urandom(32))
    posted = []

    def swap(method, path, body):
        if method == "POST" and path.endswith("/replies"):
            posted.append(path)
        if method == "GET" and path.split("?")[0] == "/api/v1/cases/" + case:
            j = json.loads(body)
            j["pk"] = fake
            return json.dumps(j).encode()
        return None
    proxy.rewrite = swap
    p = alice.run("reply", case, "-m", "second reply, to the server's key", ok=False)
    check(proxy.rewritten >= 1, "the proxy swapped the person's key", proxy.rewritten)
    check(p.returncode != 0, "`refuge reply` refuses when the person's key changed", p.out + p.err)
    check("PERSON'S KEY CHANGED" in p.err and "Nothing was sealed" in p.err,
          "the refusal is loud and says nothing was sealed", p.err)
    check(not posted, "the client sent no reply to the server", posted)
    check(replies(con) == 1, "no reply was stored after the key changed", replies(con))
    log("a swapped person key: reply refused loudly, nothing stored")
    proxy.rewrite = None
    alice.run("reply", case, "-m", "third reply")
    check(replies(con) == 2, "with the honest key again, the reply is stored", replies(con))
    person.login()
    text = person.inbox().text
    check("first reply" in text and "third reply" in text and "second reply" not in text,
          "the person reads the replies sealed to their key", text[:1500])

    # ---- plain http:// ----
    dave = Member("Dave")
    p = dave.run("init", "--server", "http://refuge-e2e.invalid:8080", "--token", "x" * 20,
                 "--name", "Dave", ok=False)
    check(p.returncode == 2 and "refused to talk plain http://" in p.err and "https://" in p.err,
          "`refuge init` with plain http:// to a name is refused with a clear message",
          (p.returncode, p.err))
    check(not os.path.exists(os.path.join(dave.env["REFUGE_HOME"], "config.json")),
          "nothing is set up after the refusal")
    onion = "http://" + "a" * 56 + ".onion"
    p = dave.run("init", "--server", onion, "--token", "x" * 20, "--name", "Dave", ok=False)
    check("refused to talk plain http://" not in p.err,
          "plain http:// to a .onion address is allowed (it fails only to connect here)", p.err)

    ip = non_loopback_ipv4()
    if not ip:
        log("no non-loopback IPv4 address here: the --insecure-http part is skipped")
    else:
        relay = Relay(ip, srv.port)
        url = "http://%s:%d" % (ip, relay.port)
        p = alice.run("staff", "invite")
        token = parse_init_line(p.out + p.err)
        p = dave.run("init", "--server", url, "--token", token, "--name", "Dave", ok=False)
        check(p.returncode == 2 and "refused to talk plain http://" in p.err,
              "plain http:// to %s (not loopback) is refused" % ip, p.err)
        check(relay.count == 0, "and no connection was made", relay.count)
        p = dave.run("init", "--insecure-http", "--server", url, "--token", token, "--name", "Dave")
        check(relay.count >= 1, "with --insecure-http it connects", relay.count)
        cfg_path = os.path.join(dave.env["REFUGE_HOME"], "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        check(cfg.get("insecure_http") is True, "--insecure-http is recorded in config.json", cfg)
        before = relay.count
        dave.run("fingerprint")
        p = dave.run("sync", ok=False)
        check("refused to talk plain http://" not in p.err and relay.count > before,
              "later commands honour the recorded setting", (p.err, relay.count))
        cfg.pop("insecure_http")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        before = relay.count
        p = dave.run("sync", ok=False)
        check(p.returncode != 0 and "refused to talk plain http://" in p.err and
              relay.count == before,
              "without the setting, `refuge sync` to %s is refused without a connection" % ip,
              (p.err, relay.count))
        relay.close()
        log("plain http:// to %s: refused without a connection; allowed with --insecure-http" % ip)

    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
