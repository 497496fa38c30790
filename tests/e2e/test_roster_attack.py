#!/usr/bin/env python3
"""
A compromised server tampers with the roster in its own database while it
runs (issue 3, "Done when" 2). Each time every client's `refuge sync`
refuses loudly (exit != 0, the error names the roster), `refuge reply`,
`refuge note` and `refuge rewrap` seal nothing, and no reply, event or
note is ever encrypted to the server's key:
  (a) it inserts its own key ("Mallory", keys made by the server, enrolled
      in its staff table): roster version N+1 = version N + Mallory as admin,
      correctly chained but signed by Mallory (not an admin of version N);
  (a2) the same roster claiming Alice as its signer (signature does not verify);
  (a3) a whole new chain from version 1 rooted at Mallory's key (not the pinned one);
  (b) it drops the signature of the latest roster (zeroed; and truncated);
  (c) after Alice removed Carol (version 4), it replays the roster that still
      lists Carol as the latest: version 4 deleted; version 3's bytes stored
      as version 4; and as version 5.
After each attack the honest rows are put back and everything works again.
"""
import os
import secrets
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (require_commands, Person, Server, case_ids, check, crypto_self_check, encode_roster,
                 envelope_header, keyid, log, main, make_team, object_bytes, open_db,
                 parse_roster, roster_hash, table_columns, tables, x25519_public)


def rosters(con):
    return dict(con.execute("SELECT version, raw FROM rosters").fetchall())


def put_rosters(con, rows):
    con.execute("BEGIN IMMEDIATE")
    con.execute("DELETE FROM rosters")
    for v, raw in sorted(rows.items()):
        con.execute("INSERT INTO rosters(version, raw) VALUES (?, ?)", (v, bytes(raw)))
    con.execute("COMMIT")


def plus(base, extra=None):
    """base updated with extra (int keys), as a new dict."""
    out = dict(base)
    out.update(extra or {})
    return out


def max_seq(con):
    return con.execute("SELECT coalesce(max(seq), 0) FROM objects").fetchone()[0]


def test():
    require_commands("staff", "fingerprint", "note", "stage", "rewrap")
    crypto_self_check()
    srv = Server().init().start()
    con = open_db(srv)
    alice, bob, carol = team = make_team(srv)
    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("roster attack test " + secrets.token_hex(4))
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])
    for m in team:
        m.run("sync")
    case = case_ids(alice.json("cases", "--json"))
    check(len(case) == 1, "one case", case)
    case = case[0]
    honest = rosters(con)
    check(sorted(honest) == [1, 2, 3], "roster versions 1..3 after approving Bob and Carol",
          sorted(honest))
    v3 = parse_roster(honest[3])

    # the server's own keys, enrolled in its own staff table
    m_seed, m_box_sk = os.urandom(32), os.urandom(32)
    from lib import ed25519_public
    m_sign, m_box = ed25519_public(m_seed), x25519_public(m_box_sk)
    cols = table_columns(con, "staff")
    row = {"sign_pk": m_sign, "box_pk": m_box, "name": "Mallory", "day": 20000}
    for c in cols:  # columns added later get a plausible value
        row.setdefault(c, 0)
    con.execute("INSERT INTO staff(%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
                [row[c] for c in cols])
    evil = keyid(m_box)
    mallory = {"name": "Mallory", "role": 1, "box_pk": m_box, "sign_pk": m_sign}
    # our encoder is the real format: v3 re-encoded with its own signature is byte-identical
    check(encode_roster(3, v3["prev_hash"], v3["members"], signer_pk=v3["signer"],
                        sig=v3["sig"]) == bytes(honest[3]),
          "the test's roster encoder reproduces the stored roster byte for byte")

    start = max_seq(con)

    def attacked(label, clients, rows):
        """Installs rows as the server's roster table; every client must refuse."""
        put_rosters(con, rows)
        seq0 = max_seq(con)
        for m in clients:
            p = m.run("sync", ok=False)
            check(p.returncode != 0, "(%s) %s's `refuge sync` refuses the roster (exit %d)" %
                  (label, m.name, p.returncode), (p.out + p.err)[-1500:])
            check("roster" in p.err.lower(), "(%s) %s's refusal names the roster on stderr" %
                  (label, m.name), p.err[-1500:])
            if m is clients[0]:
                log("(%s) %s's sync said: %s" %
                    (label, m.name, " | ".join(p.err.strip().splitlines())))
        # nothing is sealed while the roster is bad
        for m in clients:
            p = m.run("reply", case, "-m", "must not be sent (%s)" % label, ok=False)
            check(p.returncode != 0, "(%s) %s's `refuge reply` refuses" % (label, m.name),
                  (p.out + p.err)[-1500:])
            p = m.run("note", case, "must not be written (%s)" % label, ok=False)
            check(p.returncode != 0, "(%s) %s's `refuge note` refuses" % (label, m.name),
                  (p.out + p.err)[-1500:])
            p = m.run("stage", case, "verifying", ok=False)
            check(p.returncode != 0, "(%s) %s's `refuge stage` refuses" % (label, m.name),
                  (p.out + p.err)[-1500:])
            if m is clients[0]:
                said = (p.out + p.err).strip().splitlines()
                log("(%s) %s's `refuge stage` said: %s" % (label, m.name, said[-1:]))
        kinds = con.execute("SELECT seq, kind FROM objects WHERE seq > ?", (seq0,)).fetchall()
        check(not [k for k in kinds if k[1] in (3, 4, 5)],
              "(%s) no reply, event or note was stored while the roster was bad" % label, kinds)
        alice.run("rewrap", ok=False)
        log("(%s) every client refused; nothing sealed" % label)

    def restore(clients, rows):
        put_rosters(con, rows)
        for m in clients:
            m.run("sync")

    # (a) Mallory's roster version 4: v3 + Mallory (admin), chained, signed by Mallory
    a = encode_roster(4, roster_hash(honest[3]), v3["members"] + [mallory], signer_seed=m_seed)
    attacked("a: own key, signed by a non-admin", team, plus(honest, {4: a}))
    restore(team, honest)
    # (a2) the same roster, claiming Alice's key as the signer
    a2 = a[:-96] + bytes(v3["signer"]) + a[-64:]
    attacked("a2: own key, forged admin signature", team, plus(honest, {4: a2}))
    restore(team, honest)
    # (a3) a new chain rooted at Mallory, one version longer than the real one
    chain, prev = {}, b"\0" * 32
    for v in (1, 2, 3, 4):
        chain[v] = encode_roster(v, prev, [mallory] + v3["members"], signer_seed=m_seed)
        prev = roster_hash(chain[v])
    attacked("a3: a chain rooted at the server's key", team, chain)
    restore(team, honest)
    # (b) the latest roster's signature dropped: zeroed, then cut off
    attacked("b: signature zeroed", team, plus(honest, {3: honest[3][:-64] + b"\0" * 64}))
    restore(team, honest)
    attacked("b2: signature cut off", team, plus(honest, {3: honest[3][:-64]}))
    restore(team, honest)
    log("(a), (b): refused; honest roster back, every client syncs")

    # (c) Alice removes Carol; the server replays the roster that still lists her
    alice.run("staff", "remove", "Carol")
    for m in (alice, bob):
        m.run("sync")
    p = carol.run("sync", ok=False)
    log("Carol's sync after her removal: exit %d: %s" % (p.returncode,
                                                         (p.out + p.err).strip()[:200]))
    honest = rosters(con)
    check(sorted(honest) == [1, 2, 3, 4], "roster version 4 after removing Carol", sorted(honest))
    stale = {1: honest[1], 2: honest[2], 3: honest[3]}
    attacked("c: latest version deleted (Carol back)", (alice, bob), stale)
    restore((alice, bob), honest)
    attacked("c2: version 3 stored as version 4", (alice, bob), plus(stale, {4: honest[3]}))
    restore((alice, bob), honest)
    attacked("c3: version 3 stored as version 5", (alice, bob), plus(honest, {5: honest[3]}))
    restore((alice, bob), honest)
    log("(c): the replayed roster is refused by Alice and Bob")

    # honest again: the team works, and nothing since the first attack is sealed to Mallory
    alice.run("note", case, "after the attacks " + secrets.token_hex(3))
    bob.run("reply", case, "-m", "after the attacks " + secrets.token_hex(3))
    alice.run("rewrap")
    bob.run("rewrap")
    checked = 0
    for seq, kind in con.execute("SELECT seq, kind FROM objects WHERE seq > ?",
                                 (start,)).fetchall():
        data = object_bytes(srv, con, seq)
        if kind == 4 and data[:4] == b"RFE2":
            checked += 1  # an event version 2: its case key's CASEKEY (kind 9) is checked
            continue
        k, ids = envelope_header(data)
        check(evil not in ids, "object #%d (kind %d) is not sealed to the server's key" %
              (seq, k), ids)
        checked += 1
    check(checked >= 2, "the note and the reply after the attacks were stored", checked)
    for t in tables(con):
        if "grant" in t:
            kc = [c for c in table_columns(con, t) if "keyid" in c or "key_id" in c]
            for c in kc:
                n = con.execute("SELECT count(*) FROM %s WHERE %s = ?" % (t, c),
                                (bytes.fromhex(evil),)).fetchone()[0]
                check(n == 0, "no grant for the server's key in %s" % t, n)
    log("%d objects stored since the first attack; none sealed to the server's key" % checked)
    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
