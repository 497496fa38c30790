#!/usr/bin/env python3
"""
Issue 13, finding 2 ("Done when" 2, this part): the first admin's key is
compared before anything is pinned. A lying proxy in front of a NEWCOMER's
client serves a forked first roster: a version 1 signed by a key of the
attacker's (named like the real first admin). `refuge init` must refuse it,
pin nothing and leave no set-up home (no config.json, no key file):
  (1) with the invite token `refuge staff invite` printed (it carries the
      first admin's pin, nothing extra to type);
  (2) with a bare token and --admin-fingerprint (the real first admin's);
  (3) with a bare token, no fingerprint and no terminal (never pin silently;
      refused before the token is spent);
  (4) the proxy answers 404 on the roster to the holder of an invite token
      (the server pretends there is no team, to make them a first admin):
      refused before enrolling;
  (5) a damaged invite token is refused, and an invite token whose pin is
      another team's is refused even by the honest server;
  (6) on a terminal (a pty), the newcomer is shown the fingerprint and asked
      y/N: "n" (and a bare Enter) refuses, "y" enrolls;
  and through the honest server, the invite token and --admin-fingerprint
  enroll as before. On main before the fix, (1) and (3) pinned the forged key.
"""
import base64
import json
import os
import pty
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (BIN, Member, Server, TamperProxy, check, crypto_self_check, encode_roster,
                 ed25519_public, enroll_first_admin, free_port, log, main, open_db,
                 parse_init_line, require_commands, x25519_public)


def b64u(b):
    return base64.urlsafe_b64encode(bytes(b)).decode().rstrip("=")


def home_state(m):
    home = m.env["REFUGE_HOME"]
    return {f: os.path.exists(os.path.join(home, f)) for f in ("config.json", "key.rfk")}


def test():
    require_commands("staff", "fingerprint")
    crypto_self_check()
    srv = Server().init().start()
    con = open_db(srv)
    alice = enroll_first_admin(srv, "Alice")
    alice.run("sync")
    alice_fp = alice.fingerprint()
    port = free_port()
    proxy = TamperProxy(port, srv.port)
    proxy_url = "http://127.0.0.1:%d" % port

    # the attacker's own first roster, naming its key "Alice"
    m_seed, m_box_sk = os.urandom(32), os.urandom(32)
    m_sign, m_box = ed25519_public(m_seed), x25519_public(m_box_sk)
    forged = encode_roster(1, b"\0" * 32, [{"name": "Alice", "role": 1, "box_pk": m_box,
                                             "sign_pk": m_sign}], signer_seed=m_seed)

    def fork(method, path, body):
        if method == "GET" and path.startswith("/api/v1/roster"):
            return json.dumps({"version": 1, "chain": [b64u(forged)]}).encode()
        return None

    def invite_token():
        p = alice.run("staff", "invite")
        t = parse_init_line(p.out)
        check(t, "`refuge staff invite` prints a token", p.out)
        return t

    def refused(name, label, token, extra=(), server=proxy_url, want=()):
        m = Member(name)
        p = m.refused("init", "--server", server, "--token", token, "--name", name, *extra)
        for w in want:
            check(w in p.err + p.out, "(%s) init says %r" % (label, w), (p.out + p.err)[-2000:])
        st = home_state(m)
        check(not st["config.json"] and not st["key.rfk"],
              "(%s) nothing pinned or kept: no config.json, no key file" % label, st)
        log("(%s) refused: %s" % (label, " | ".join((p.err.strip().splitlines() or [""])[:2])))
        return p

    # ---- the forked first roster
    proxy.rewrite = fork
    tok = invite_token()
    check(len(tok) == 66 and tok[0] == "i",
          "an invite token is 66 base64url characters starting with 'i'", tok)
    refused("Dave", "1: invite token", tok,
            want=("NOT THE ONE YOUR INVITE TOKEN NAMES", "Do not use this server"))
    bare = invite_token()[-43:]
    refused("Erin", "2: --admin-fingerprint", bare, ("--admin-fingerprint", alice_fp),
            want=("FINGERPRINT DOES NOT MATCH", alice_fp))
    t3 = invite_token()[-43:]
    refused("Finn", "3: no terminal, no fingerprint", t3,
            want=("not set up", "--admin-fingerprint", "invite token"))
    check(proxy.rewritten >= 3, "the proxy served the forked roster", proxy.rewritten)

    # ---- a server that says there is no team yet (404 on the roster): a
    # fresh instance stands in for a compromised server that hides its roster
    proxy.rewrite = None
    tok = invite_token()
    empty = Server().init().start()
    econ = open_db(empty)
    refused("Gina", "4: 404 with an invite token", tok, server=empty.url,
            want=("HAS NO TEAM YET", "invite token"))
    refused("Gina", "4b: 404 with --admin-fingerprint", empty.token,
            ("--admin-fingerprint", alice_fp), server=empty.url, want=("HAS NO TEAM YET",))
    check(econ.execute("SELECT count(*) FROM staff").fetchone()[0] == 0 and
          econ.execute("SELECT count(*) FROM rosters").fetchone()[0] == 0,
          "(4) nothing enrolled where the server said 'no team': nobody made a first admin")

    # ---- damaged and foreign tokens
    other = tok[:5] + ("A" if tok[5] != "A" else "B") + tok[6:]
    refused("Hana", "5: invite token with another team's pin", other, server=srv.url,
            want=("NOT THE ONE YOUR INVITE TOKEN NAMES",))
    damaged = tok[:22] + "B" + tok[23:]  # the pin's last character with padding bits set
    m = Member("Ivan")
    p = m.run("init", "--server", srv.url, "--token", damaged, "--name", "Ivan", ok=False)
    check(p.returncode == 2 and "damaged" in p.err,
          "(5) an invite token with a damaged pin is refused as such", p.err[-1000:])
    tok = invite_token()  # Hana spent the last one

    # ---- the honest server: the invite token and --admin-fingerprint enroll
    j = Member("Jana")
    p = j.run("init", "--server", srv.url, "--token", tok, "--name", "Jana")
    check("matches your invite token" in p.out and alice_fp in p.out,
          "the invite token's check passes and shows the first admin's fingerprint", p.out)
    k = Member("Kyle")
    p = k.run("init", "--server", srv.url, "--token", t3, "--name", "Kyle",
              "--admin-fingerprint", alice_fp)
    check("matches" in p.out, "--admin-fingerprint's check passes (with the token (3) was "
          "refused with: it was not spent)", p.out)
    log("through the honest server: invite token and --admin-fingerprint enroll")

    # ---- on a terminal: y/N, default no
    def on_pty(name, token, answer):
        m = Member(name)
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(BIN, [BIN, "init", "--server", srv.url, "--token", token, "--name", name],
                      m.env)
        out, sent, deadline = b"", False, time.time() + 120
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 1.0)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if not sent and b"[y/N]" in out:
                    os.write(fd, answer)
                    sent = True
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return m, os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")

    for name, answer, ok in (("Lena", b"n\n", False), ("Mark", b"\n", False),
                             ("Nora", b"y\n", True)):
        m, rc, out = on_pty(name, invite_token()[-43:], answer)
        check("[y/N]" in out and alice_fp in out,
              "on a terminal, init shows the first admin's fingerprint and asks y/N", out[-2000:])
        check((rc == 0) == ok, "answer %r: init %s" % (answer, "enrolls" if ok else "refuses"),
              out[-2000:])
        check(home_state(m)["config.json"] == ok, "answer %r: config.json %s" %
              (answer, "written" if ok else "not written"), out[-2000:])
    log("on a terminal: 'n' and Enter refuse, 'y' enrolls")


if __name__ == "__main__":
    main(test)
