#!/usr/bin/env python3
"""
Who wrote a reply (finding 9 of the trust review): a caseworker's client signs
every reply (docs/protocol.md 10), and a colleague's client names the author
only from a signature that verifies for the reply's case, under a key of the
verified roster. A compromised server (or a member who can seal to the team)
that posts replies "from Alice" is not believed:
  - a reply of the older, unsigned format whose JSON says "author":"Alice";
  - a signed reply whose signer field is Alice's key but whose signature is
    not hers (what Bob, or the server, can make);
  - Alice's genuine signed reply copied to another person's case;
  - a reply validly signed by a key on no roster.
Each is shown to Carol with its text, marked "author unverified", never as
Alice's; Alice's honest reply is shown as hers. The person still reads every
reply, text only, with no caseworker's name on the page.
The forged objects are written into the server's SQLite file while it is
stopped, as a compromised server would; they are sealed (envelope version 2,
with its key commitment) to the person and every roster member, with
libsodium through ctypes.
"""
import ctypes
import ctypes.util
import hashlib
import json
import os
import secrets
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (DB, KEYID_KEY, Person, Server, case_ids, check, log, main, make_team,
                 object_bytes, open_db, parse_roster, require_commands, table_columns)


def sodium():
    name = ctypes.util.find_library("sodium")
    check(name, "libsodium is installed (the refuge binary links it)")
    lib = ctypes.CDLL(name)
    check(lib.sodium_init() >= 0, "sodium_init")
    return lib


def seal_v2(sod, kind, pks, plain):
    """docs/protocol.md 1: an envelope version 2 of kind to pks (plain < 255 bytes)."""
    check(len(plain) < 255, "a forged reply fits one 256-byte padded chunk")
    key = os.urandom(32)
    hdr = b"RFGE" + bytes([2, kind]) + struct.pack(">H", len(pks))
    for pk in pks:
        sealed = ctypes.create_string_buffer(32 + 48)
        check(sod.crypto_box_seal(sealed, key, ctypes.c_ulonglong(32), bytes(pk)) == 0,
              "crypto_box_seal")
        hdr += hashlib.blake2b(bytes(pk), digest_size=8, key=KEYID_KEY).digest() + sealed.raw
    state = ctypes.create_string_buffer(sod.crypto_secretstream_xchacha20poly1305_statebytes())
    ssh = ctypes.create_string_buffer(24)
    check(sod.crypto_secretstream_xchacha20poly1305_init_push(state, ssh, key) == 0, "init_push")
    hdr += ssh.raw
    hdr += hashlib.blake2b(b"refuge-envelope-commit-v2" + hdr, key=key, digest_size=32).digest()
    padded = plain + b"\x80" + b"\0" * (256 - len(plain) - 1)
    ct = ctypes.create_string_buffer(256 + 17)
    clen = ctypes.c_ulonglong(0)
    check(sod.crypto_secretstream_xchacha20poly1305_push(
        state, ct, ctypes.byref(clen), padded, ctypes.c_ulonglong(256), hdr,
        ctypes.c_ulonglong(len(hdr)), ctypes.c_ubyte(3)) == 0, "secretstream push")
    return hdr + ct.raw[:clen.value]


def signed_reply(sod, case, text, signer_pk=None):
    """docs/protocol.md 10: a version 2 reply signed by a fresh key; with
    signer_pk, that key is written in the signer field instead (a forgery)."""
    pk = ctypes.create_string_buffer(32)
    sk = ctypes.create_string_buffer(64)
    sod.crypto_sign_keypair(pk, sk)
    body = json.dumps({"v": 2, "type": "reply", "text": text}, separators=(",", ":")).encode()
    msg = b"refuge-reply-v2" + case.encode() + body
    sig = ctypes.create_string_buffer(64)
    sod.crypto_sign_detached(sig, None, msg, ctypes.c_ulonglong(len(msg)), sk)
    return b"RFGY\x02" + (bytes(signer_pk) if signer_pk else pk.raw) + sig.raw + body


def replies_of(member, case):
    shown = member.json("show", case, "--json")
    return [it for it in shown.get("items", []) if it.get("kind") == "reply"]


def test():
    require_commands("staff", "reply", "show")
    sod = sodium()
    srv = Server().init().start()
    alice, bob, carol = make_team(srv, ("Alice", "Bob", "Carol"))
    person, other = Person(srv), Person(srv)
    person.new_codename()
    r, _ = person.send("help me " + secrets.token_hex(3))
    check(r.status == 200, "POST /send answered %d" % r.status, r.text[:800])
    other.new_codename()
    r, _ = other.send("another person " + secrets.token_hex(3))
    check(r.status == 200, "POST /send answered %d" % r.status, r.text[:800])
    alice.run("sync")
    con = open_db(srv)
    cases = [c for (c,) in con.execute(
        "SELECT case_id FROM sources WHERE case_id <> 'teamconfig' ORDER BY id").fetchall()]
    check(len(cases) == 2 and set(cases) <= set(case_ids(alice.json("cases", "--json"))),
          "two cases, both synced", cases)
    case, case2 = cases

    honest = "We will call you " + secrets.token_hex(4)
    alice.run("reply", case, "-m", honest)
    carol.run("sync")
    got = replies_of(carol, case)
    check(len(got) == 1 and got[0].get("text") == honest, "Carol reads Alice's reply", got)
    check(got[0].get("author") == "Alice" and got[0].get("author_verified") is True,
          "Alice's signed reply is shown as Alice's (from the verified roster)", got)
    p = carol.run("show", case)
    check("reply from Alice" in p.out, "`refuge show` says \"reply from Alice\"", p.out[-1500:])
    log("honest: Carol's client shows the reply as Alice's")

    # every writer produces envelope version 2: the server's streaming
    # sealer (the person's message) and the client (Alice's reply)
    for kind, what in ((1, "the person's message"), (3, "Alice's reply")):
        row = con.execute("SELECT seq FROM objects WHERE kind = ? ORDER BY seq LIMIT 1",
                          (kind,)).fetchone()
        data = object_bytes(srv, con, row[0])
        check(data[:5] == b"RFGE\x02", "%s is stored as envelope version 2" % what, data[:8])

    # what the compromised server adds, while it is stopped
    srv.stop_clean()
    raw = con.execute("SELECT raw FROM rosters ORDER BY version DESC LIMIT 1").fetchone()[0]
    ro = parse_roster(raw)
    alice_pk = [m["sign_pk"] for m in ro["members"] if m["name"] == "Alice"][0]
    team_box = [m["box_pk"] for m in ro["members"]]
    src = dict((c, (i, bytes(pk))) for c, i, pk in
               con.execute("SELECT case_id, id, pk FROM sources").fetchall())
    day = con.execute("SELECT max(day) FROM objects").fetchone()[0]
    forged = {
        "unsigned v1 claiming Alice": (case, json.dumps(
            {"v": 1, "type": "reply", "author": "Alice",
             "text": "forged v1 " + secrets.token_hex(3)}).encode()),
        "Alice's key, not her signature": (case, signed_reply(
            sod, case, "forged signer " + secrets.token_hex(3), signer_pk=alice_pk)),
        "signed by a key on no roster": (case, signed_reply(
            sod, case, "stranger " + secrets.token_hex(3))),
    }
    texts = {}
    # a consistent server also says which roster version each object was
    # stored under (the column of finding 3, where the schema has it)
    extra, vals = "", ()
    if "roster" in table_columns(con, "objects"):
        extra = ", roster"
        vals = (con.execute("SELECT max(roster) FROM objects").fetchone()[0],)

    def insert(source_id, env):
        con.execute("INSERT INTO objects(source_id, kind, size, day, data%s) VALUES (?,3,?,?,?%s)"
                    % (extra, ",?" * len(vals)), (source_id, len(env), day, env) + vals)

    con.execute("BEGIN IMMEDIATE")
    for label, (c, plain) in forged.items():
        insert(src[c][0], seal_v2(sod, 3, [src[c][1]] + team_box, plain))
    # Alice's genuine reply, copied into the other person's case
    (seq, data, blob) = con.execute("SELECT seq, data, blob FROM objects WHERE kind = 3 AND "
                                    "source_id = ? ORDER BY seq LIMIT 1",
                                    (src[case][0],)).fetchone()
    if DB == "sqlite":
        check(data is not None, "Alice's reply is stored inline", seq)
    else:
        # PostgreSQL keeps replies (which a person may delete) as blob files:
        # it does not zero deleted rows (docs/scale-out.md); the attacker
        # copies the file's bytes into an inline row
        check(data is None and blob, "Alice's reply is stored as a blob file", seq)
        with open(os.path.join(srv.data, "blobs", blob), "rb") as f:
            data = f.read()
    insert(src[case2][0], bytes(data))
    con.execute("COMMIT")
    for label, (c, plain) in forged.items():
        texts[label] = (json.loads(plain)["text"] if plain[:1] == b"{"
                        else json.loads(plain[101:])["text"])
    srv.restart()

    carol.run("sync")
    got = replies_of(carol, case)
    check(len(got) == 4, "Carol sees Alice's reply and the three forged ones", got)
    for it in got:
        if it.get("text") == honest:
            check(it.get("author") == "Alice" and it.get("author_verified") is True,
                  "the honest reply is still Alice's", it)
            continue
        label = [k for k, t in texts.items() if t == it.get("text")]
        check(label, "a forged reply's text is shown as it was sealed", it)
        check(it.get("author") != "Alice" and it.get("author") == "" and
              it.get("author_verified") is False and it.get("author_note"),
              "(%s) not shown as Alice's: author unverified, with the reason" % label[0], it)
        log("(%s) shown as: author unverified (%s)" % (label[0], it.get("author_note")))
    p = carol.run("show", case)
    check(p.out.count("reply from Alice") == 1,
          "`refuge show` names Alice for her one reply only", p.out[-3000:])
    check(p.out.count("author unverified") == 3,
          "`refuge show` marks the three forged replies \"author unverified\"", p.out[-3000:])
    moved = replies_of(carol, case2)
    check(len(moved) == 1 and moved[0].get("text") == honest and
          moved[0].get("author_verified") is False and moved[0].get("author") == "",
          "Alice's reply moved to another case is not shown as hers there", moved)
    log("moved to another case: author unverified (%s)" % moved[0].get("author_note"))

    # the person reads the replies: text only, no caseworker's name
    person.login()
    page = person.inbox().page.text
    check(honest in page, "the person reads Alice's signed reply on /inbox", page[:3000])
    for label, t in texts.items():
        check(t in page, "the person's page shows the text of the %s reply" % label, page[:3000])
    for name in ("Alice", "Bob", "Carol"):
        check(name not in page, "the person's page names no caseworker (%s)" % name, page[:3000])
    log("the person reads every reply's text, with no author name")
    con.close()
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
