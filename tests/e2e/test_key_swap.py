#!/usr/bin/env python3
"""
Issue 13, finding 1 ("Done when" 1): the newcomer's keys are bound to the
fingerprint they read out, and a client refuses a roster that names another
key for it.

  (a) A lying proxy in front of the ADMIN's client swaps the newcomer's
      box_pk (the key replies and case data are sealed to) in every staff
      and roster answer. The admin approves with the fingerprint the newcomer
      read out: refused, with a message saying the keys differ and what to
      do; the client posts no roster and the server stores no new version.
  (b) The same with the newcomer's whole key pair swapped.
  (c) A compromised server swaps the newcomer's box_pk in its staff table and
      the admin is fooled (given the swapped keys' fingerprint): the admin's
      client signs roster v2 with it. The newcomer's own client then refuses
      that roster loudly, at sync and at every command that would encrypt,
      and nothing is stored; after the admin removes the entry and approves
      the right keys, the newcomer works again.
  (d) The same with a whole key pair of the server's under the newcomer's
      name: the newcomer's client refuses the roster that gives its name to
      another key.
On main before the fix, (a) lets the admin sign and post the swapped key
(the fingerprint covered sign_pk only) and (c)/(d) sync without a word.
"""
import base64
import hashlib
import json
import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Member, Person, Server, TamperProxy, approve, case_ids, check,
                 crypto_self_check, ed25519_public, free_port, invite, log, main, open_db,
                 require_commands, table_columns, x25519_public)


def b64u(b):
    return base64.urlsafe_b64encode(bytes(b)).decode().rstrip("=")


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def fingerprint(sign_pk, box_pk):
    """docs/protocol.md 3: fingerprint v2 over both public keys."""
    h = hashlib.blake2b(b"refuge-fingerprint-v2" + bytes(sign_pk) + bytes(box_pk),
                        digest_size=40).digest()
    return " ".join("%05d" % (int.from_bytes(h[5 * i:5 * i + 5], "big") % 100000)
                    for i in range(8))


def staff_keys(con, name):
    rows = con.execute("SELECT sign_pk, box_pk FROM staff WHERE name = ?", (name,)).fetchall()
    check(len(rows) == 1, "one staff row named %s" % name, rows)
    return bytes(rows[0][0]), bytes(rows[0][1])


def versions(con):
    return sorted(r[0] for r in con.execute("SELECT version FROM rosters").fetchall())


def max_seq(con):
    return con.execute("SELECT coalesce(max(seq), 0) FROM objects").fetchone()[0]


def test():
    require_commands("staff", "fingerprint", "note", "reply")
    crypto_self_check()
    srv = Server().init().start()
    con = open_db(srv)
    port = free_port()
    proxy = TamperProxy(port, srv.port)
    proxy_url = "http://127.0.0.1:%d" % port

    # Alice, the first admin, talks to the server only through the proxy.
    alice = Member("Alice")
    alice.run("init", "--server", proxy_url, "--token", srv.token, "--name", "Alice")
    alice.run("sync")
    bob = invite(srv, alice, "Bob")  # Bob talks to the server directly
    bob_sign, bob_box = staff_keys(con, "Bob")
    check(fingerprint(bob_sign, bob_box) == bob.fingerprint(),
          "`refuge fingerprint` is fingerprint v2 over sign_pk || box_pk (docs/protocol.md)",
          (fingerprint(bob_sign, bob_box), bob.fingerprint()))

    fake_seed, fake_box_sk = os.urandom(32), os.urandom(32)
    fake_sign, fake_box = ed25519_public(fake_seed), x25519_public(fake_box_sk)
    posted = []

    def lying(swap_sign):
        def rewrite(method, path, body):
            if method == "POST" and path.startswith("/api/v1/roster"):
                posted.append(path)
            if method != "GET":
                return None
            if path.startswith("/api/v1/staff"):
                j = json.loads(body)
                for s in j.get("staff", []):
                    if s.get("sign_pk") == b64u(bob_sign):
                        s["box_pk"] = b64u(fake_box)
                        if swap_sign:
                            s["sign_pk"] = b64u(fake_sign)
                return json.dumps(j).encode()
            if path.startswith("/api/v1/roster"):
                j = json.loads(body)
                chain = [unb64u(c) for c in j.get("chain", [])]
                if not any(bob_box in c for c in chain):
                    return None
                j["chain"] = [b64u(c.replace(bob_box, fake_box).replace(
                    bob_sign, fake_sign if swap_sign else bob_sign)) for c in chain]
                return json.dumps(j).encode()
            return None
        return rewrite

    for label, swap_sign in (("a: box_pk swapped", False), ("b: whole key pair swapped", True)):
        posted.clear()
        proxy.rewritten = 0
        proxy.rewrite = lying(swap_sign)
        before = versions(con)
        p = alice.refused("staff", "approve", "Bob", "--fingerprint", bob.fingerprint())
        proxy.rewrite = None
        check(proxy.rewritten > 0, "(%s) the proxy really rewrote the staff answer" % label)
        err = p.err
        check("FINGERPRINTS DO NOT MATCH" in err and "not approved" in err,
              "(%s) the admin is told loudly that the fingerprints differ and nothing was "
              "approved" % label, err[-1500:])
        check("swapped" in err and "Do not approve" in err,
              "(%s) the message says what it means (keys swapped) and what to do" % label,
              err[-1500:])
        check(not posted, "(%s) the admin's client posted no roster" % label, posted)
        check(versions(con) == before, "(%s) no new roster version on the server" % label,
              (before, versions(con)))
        log("(%s) refused: %s" % (label, " | ".join(l for l in err.splitlines()[:3])))

    # (c) a compromised server swaps Bob's box_pk in its own staff table;
    # Alice is fooled: she is given the fingerprint of the swapped keys.
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("key swap test " + secrets.token_hex(4))
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])
    alice.run("sync")
    case = case_ids(alice.json("cases", "--json"))[0]
    con.execute("UPDATE staff SET box_pk = ? WHERE sign_pk = ?", (fake_box, bob_sign))
    alice.run("staff", "approve", "Bob", "--fingerprint", fingerprint(bob_sign, fake_box))
    check(versions(con) == [1, 2], "the fooled admin's roster v2 is stored", versions(con))

    def refuses_everything(m, label):
        seq0 = max_seq(con)
        p = m.refused("sync")
        check("ROSTER CHECK FAILED" in p.err and "lists you" in p.err and
              "not yours" in p.err,
              "(%s) %s's sync refuses loudly: the roster lists them with a key not theirs" %
              (label, m.name), p.err[-1500:])
        check("Nothing was encrypted or sent" in p.err and "refuge staff remove" in p.err,
              "(%s) the refusal says nothing was sent and what the admin must do" % label,
              p.err[-1500:])
        log("(%s) %s's sync said: %s" % (label, m.name, " | ".join(p.err.strip().splitlines()[:2])))
        for args in (("reply", case, "-m", "must not be sent"), ("note", case, "must not be"),
                     ("stage", case, "verifying")):
            p = m.refused(*args)
            check("ROSTER CHECK FAILED" in p.err,
                  "(%s) %s's `refuge %s` refuses loudly" % (label, m.name, args[0]),
                  p.err[-1500:])
        kinds = con.execute("SELECT seq, kind FROM objects WHERE seq > ?", (seq0,)).fetchall()
        check(not [k for k in kinds if k[1] in (3, 4, 5)],
              "(%s) no reply, event or note was stored" % label, kinds)

    refuses_everything(bob, "c: box_pk swapped on the roster")

    # the team repairs it: Alice removes the entry, the server's row is put
    # back, Alice approves Bob's real keys; Bob works again.
    alice.run("staff", "remove", "Bob")
    con.execute("UPDATE staff SET box_pk = ? WHERE sign_pk = ?", (bob_box, bob_sign))
    approve(alice, bob)
    bob.run("sync")
    bob.run("note", case, "Bob is back with his own key")
    log("(c) repaired: Bob removed and approved again with his real keys; he syncs and writes")

    # (d) Carol enrolls; the server gives "Carol" a key pair of its own and
    # the fooled admin approves that one.
    carol = invite(srv, alice, "Carol")
    carol.run("sync", ok=False)  # not on the roster yet: refused, as expected
    # (its staff table holds one row per name: it renames the real Carol's
    # row, which still lets her key in, and adds its own "Carol")
    m_seed, m_box_sk = os.urandom(32), os.urandom(32)
    m_sign, m_box = ed25519_public(m_seed), x25519_public(m_box_sk)
    con.execute("UPDATE staff SET name = 'Carol (enrolled)' WHERE name = 'Carol'")
    cols = table_columns(con, "staff")
    row = {"sign_pk": m_sign, "box_pk": m_box, "name": "Carol", "day": 20000}
    for c in cols:
        row.setdefault(c, 0)
    con.execute("INSERT INTO staff(%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
                [row[c] for c in cols])
    alice.run("staff", "approve", "Carol", "--fingerprint", fingerprint(m_sign, m_box))
    refuses_everything(carol, "d: another key pair under Carol's name")
    # the others are not concerned: Bob still works
    bob.run("sync")


if __name__ == "__main__":
    main(test)
