#!/usr/bin/env python3
"""
Moving an instance from SQLite to PostgreSQL (issue 11, done-when 4):
`refuge server migrate --from DIR --to postgresql://... --to-data NEWDIR`.

A SQLite instance is filled through the real server and the real CLI: a team
of two (Alice the admin, Bob approved), a person who sends messages with a
small file and a large one (each a blob file), a second person (a second case
with a file), replies, case events (stage, tag,
note, assignment), Bob's rewrap (grants), the audit log; last, the person
deletes the newest reply, so the highest sequence number handed out is one no
row holds any more (Alice's sync cursor stands on it). Then:

- a migration while the server runs is refused (it would lose what the server
  writes after the copy), and the database stays empty;
- with the server stopped, the migration moves it into an empty database of
  the throwaway cluster; every table's rows are the same in the new database
  as in the old file (blob files copied byte-exact, under new names; replies
  stored inline in SQLite become blob files, as PostgreSQL does not zero a
  deleted row; the onion service's key file copied too), and DIR is left as
  it was;
- the server starts on NEWDIR on the same port: the caseworkers' clients
  (their local caches kept) sync with nothing to download, list the same
  cases and show every case the same as before; `refuge audit verify` passes
  (Alice holds an anchor from before the move); the person logs in with the
  same codename and reads the reply; a message sent after the move reaches
  Alice as exactly one new object (no gap: its number is past her cursor);
- a second migration into the now non-empty database is refused with a clear
  message and changes nothing (every table's rows and the counters the same,
  no new data directory left);
- a migration that fails half-way (a blob file shorter than its row says, in
  a copy of DIR) leaves its empty target database empty (no table) and no
  data directory.

It needs both backends: it runs in the SQLite pass of the suite when
REFUGE_TEST_PG names a cluster (scripts/check starts one), and says SKIP
without one. In the PostgreSQL pass it moves the other way (test_back): an
instance on PostgreSQL, filled the same way, into SQLite with `--to sqlite`.
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib
from lib import (Person, Server, Skip, case_ids, check, log, main, make_team, pg_database,
                 restart_same_port, run, sanitizer_report, sha256, sha256_file, tempdir)

# every table and column the schema has, in a fixed order (an object's
# ciphertext, inline or a blob file, is compared through its bytes: blob
# copies get new names, and replies become blob files in PostgreSQL)
TABLES = {
    "settings": "key, value",
    "sources": "id, lookup_id, case_id, pk, day, delete_day",
    "objects": "seq, source_id, kind, size, day, roster",
    "enroll_tokens": "hash, role, day, used",
    "staff": "sign_pk, box_pk, name, day",
    "rosters": "version, raw",
    "grants": "id, seq, keyid, granter, \"grant\"",
    "audit": "id, day, actor, action, target, prev, hash, request",
    "nonces": "nonce, slot",
}
BIG = 400 * 1024  # more than one copy buffer


def refuge(*args, timeout=600):
    p = run(list(args), timeout=timeout)
    rep = sanitizer_report(p.out + p.err)
    check(rep is None, "sanitizer report from `refuge %s`" % " ".join(args[:2]), rep)
    return p


def psql(url, sql):
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, timeout=120)
    check(p.returncode == 0, "psql: %s" % sql[:80], p.stderr.decode(errors="replace"))
    return p.stdout.decode(errors="replace").strip()


def norm(v):
    if isinstance(v, memoryview):
        v = bytes(v)
    if isinstance(v, bool):
        return int(v)
    return v


def sqlite_rows(datadir):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(datadir, "refuge.db"), uri=True)
    out = {t: [tuple(norm(v) for v in r)
               for r in con.execute("SELECT %s FROM %s ORDER BY 1" % (cols, t))]
           for t, cols in TABLES.items()}
    seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'objects'").fetchone()[0]
    objs = con.execute("SELECT seq, kind, data, blob FROM objects ORDER BY seq").fetchall()
    con.close()
    return out, seq, contents(datadir, objs)


def contents(datadir, objs):
    """[(seq, kind, "inline" or "blob", sha256 of its ciphertext)]"""
    out = []
    for seq, kind, data, blob in objs:
        if data is not None:
            out.append((seq, kind, "inline", sha256(bytes(data))))
        else:
            out.append((seq, kind, "blob", sha256_file(os.path.join(datadir, "blobs", blob))))
    return out


def pg_rows(url, datadir):
    db = lib.PgDb(url)
    out = {t: [tuple(norm(v) for v in r)
               for r in db.execute("SELECT %s FROM %s ORDER BY 1" % (cols, t)).fetchall()]
           for t, cols in TABLES.items()}
    seq = db.execute("SELECT seq FROM counters").fetchone()[0]
    objs = db.execute("SELECT seq, kind, data, blob FROM objects ORDER BY seq").fetchall()
    return out, seq, contents(datadir, objs)


def pg_fingerprint(url):
    """Every relation of the database and a digest of each table's rows."""
    rels = psql(url, "SELECT relname || ':' || relkind::text FROM pg_class c JOIN pg_namespace n"
                     " ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
                     " ORDER BY 1").split("\n")
    out = {"relations": rels}
    for r in rels:
        name, _, kind = r.partition(":")
        if kind == "r":
            out[name] = psql(url, "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|'"
                                  " ORDER BY t::text), '')) FROM \"%s\" t" % name)
    return out


def view(member, cases):
    """What a caseworker's client shows: the listing and every case."""
    return {"cases": member.json("cases", "--json"),
            "show": {c: member.json("show", c, "--json") for c in cases}}


def files_of(member, case):
    out = tempdir("refuge-migrate-files-")
    member.run("files", case, "--out", out)
    return {n: sha256_file(os.path.join(out, n)) for n in os.listdir(out)}


def synced(p):
    m = re.search(r"Synced (\d+) new object", p.out)
    check(m, "`refuge sync` says how many objects it downloaded", p.out + p.err)
    return int(m.group(1))


def populate(srv):
    """Fills the running instance srv through the server and the CLI (the
    module's head says with what); returns what the checks after a move
    compare with."""
    alice, bob = make_team(srv, ("Alice", "Bob"))
    person = Person(srv)
    person.new_codename()
    small = os.urandom(3000)
    big = os.urandom(BIG)
    r, _ = person.send("migrate test: the first message",
                       files=[("small.bin", "application/octet-stream", small),
                              ("big.bin", "application/octet-stream", big)])
    check(r.status == 200, "the person's message with two files was sent (%d)" % r.status)
    r, _ = person.send("migrate test: the second message")
    check(r.status == 200, "the person's second message was sent (%d)" % r.status)

    other = Person(srv)  # a second case, with a file of its own
    other.new_codename()
    r, _ = other.send("migrate test: another case",
                      files=[("other.bin", "application/octet-stream", os.urandom(5000))])
    check(r.status == 200, "the second person's message was sent (%d)" % r.status)

    alice.run("sync")
    case = [c["case"] for c in alice.json("cases", "--json")["cases"]
            if any(it.get("text") == "migrate test: the first message"
                   for it in alice.json("show", c["case"], "--json")["items"])][0]
    reply = "we read you, stay where you are"
    alice.run("reply", case, "-m", reply)
    alice.run("stage", case, "verifying")
    alice.run("tag", case, "urgent")
    alice.run("note", case, "a note for the team")
    alice.run("assign", case, "Bob")
    bob.run("sync")
    bob.run("rewrap")
    alice.run("reply", case, "-m", "a reply the person deletes")
    alice.run("sync")
    bob.run("sync")
    # the person deletes the newest reply: the highest number handed out is
    # now one no row holds, and Alice's cursor stands on it
    r = person.inbox()
    forms = [f for f in r.page.forms if f.action.endswith("/reply/delete")]
    check(len(forms) == 2, "the person sees two replies with a delete button", r.page.text[:1500])
    newest = max(forms, key=lambda f: int(f.field("seq")["value"]))
    r = person.b.submit(newest)
    check(r.status == 200, "the person deleted the newest reply (%d)" % r.status)
    p = alice.run("audit", "verify")
    check("audit log verified" in p.out, "the audit log verifies before the move", p.out)

    cases = case_ids(alice.json("cases", "--json"))
    check(len(cases) == 2, "Alice sees two cases before the move", cases)
    before = {m.name: view(m, cases) for m in (alice, bob)}
    files_before = files_of(alice, case)
    check(sha256(big) in files_before.values() and sha256(small) in files_before.values(),
          "Alice reads both files before the move", files_before)

    return alice, bob, person, case, reply, cases, before, files_before


def after_move(srv, alice, bob, person, case, reply, cases, before, files_before, move):
    """The server on the moved instance, on the same port: the clients (their
    caches kept) sync nothing, list and show every case the same, verify the
    audit log, read the same files; the person logs in with the same codename,
    reads the reply and sends, which Alice gets as exactly one new object."""
    restart_same_port(srv)
    for m in (alice, bob):
        p = m.run("sync")
        check(synced(p) == 0, "%s's sync after %s downloads nothing again" % (m.name, move),
              p.out)
        after = view(m, cases)
        check(after == before[m.name], "%s's client lists and shows every case the same after %s"
              % (m.name, move),
              json.dumps(after)[:1500] + "\n---\n" + json.dumps(before[m.name])[:1500])
        p = m.run("audit", "verify")
        check("audit log verified" in p.out, "%s: the audit log verifies after %s" %
              (m.name, move), p.out)
    check(files_of(alice, case) == files_before, "Alice reads the same files after %s" % move)
    person.login()
    r = person.inbox()
    check(reply in r.page.text, "the person logs in with the same codename and reads the reply",
          r.page.text[:1500])
    r, _ = person.send("migrate test: sent after " + move)
    check(r.status == 200, "the person sends after %s (%d)" % (move, r.status))
    p = alice.run("sync")
    check(synced(p) == 1, "Alice's sync gets exactly the one new message (no gap)", p.out)


def test_back():
    """The PostgreSQL pass: the way back, `--to sqlite`. An instance on
    PostgreSQL, filled as above, moved into a new SQLite instance: every
    table's rows, the counter and every object's ciphertext the same; the
    server on it serves the same clients, who sync nothing, list and show the
    same, verify the audit log, and the person reads the reply and sends one
    new object past every number handed out before."""
    srv = Server().init().start()
    alice, bob, person, case, reply, cases, before, files_before = populate(srv)
    srv.stop_clean()
    with open(os.path.join(srv.data, "database")) as f:
        url = f.read().strip()
    rows0, seq0, blobs0 = pg_rows(url, srv.data)
    newdir = os.path.join(tempdir("refuge-migrate-"), "data")
    p = refuge("server", "migrate", "--from", srv.data, "--to", "sqlite", "--to-data", newdir)
    check(p.returncode == 0, "`refuge server migrate --to sqlite` succeeded", p.out + p.err)
    check(url not in p.out + p.err, "migrate never prints the database URL")
    check(not os.path.exists(os.path.join(newdir, "database")) and
          os.path.exists(os.path.join(newdir, "refuge.db")),
          "NEWDIR is a SQLite instance (refuge.db, no database file)", os.listdir(newdir))
    rows1, seq1, blobs1 = sqlite_rows(newdir)
    for t in TABLES:
        check(rows1[t] == rows0[t], "the table %s holds the same rows after the move back "
              "(%d before, %d after)" % (t, len(rows0[t]), len(rows1[t])))
    check(seq1 == seq0, "the sequence counter is carried (%d, was %d)" % (seq1, seq0))
    check([(q, k, h) for q, k, _, h in blobs1] == [(q, k, h) for q, k, _, h in blobs0],
          "every object's ciphertext is carried byte-exact")
    log("%d rows in %d tables the same in SQLite; counter %d"
        % (sum(len(v) for v in rows1.values()), len(TABLES), seq1))

    srv.data = newdir
    after_move(srv, alice, bob, person, case, reply, cases, before, files_before, "the move back")
    srv.stop_clean()


def test():
    if lib.DB == "postgresql":
        return test_back()
    if not os.environ.get("REFUGE_TEST_PG"):
        raise Skip("needs a PostgreSQL cluster to migrate into: REFUGE_TEST_PG is not set "
                   "(scripts/check starts a throwaway cluster with scripts/pg-test)")
    h = refuge("server", "migrate", "--help")
    check(h.returncode == 0 and "--to-data" in h.out, "`refuge server migrate --help` documents "
          "--from, --to and --to-data", h.out + h.err)

    srv = Server().init().start()
    alice, bob, person, case, reply, cases, before, files_before = populate(srv)

    url = pg_database()
    newdir = os.path.join(tempdir("refuge-migrate-"), "data")
    # the server runs: refused, nothing written
    p = refuge("server", "migrate", "--from", srv.data, "--to", url, "--to-data", newdir)
    check(p.returncode != 0 and "stop it first" in p.err,
          "a migration while refuge serve runs on DIR is refused", p.out + p.err)
    check(not os.path.exists(newdir), "the refused migration left no data directory")
    check(pg_fingerprint(url) == {"relations": [""]},
          "the refused migration wrote nothing to the database", pg_fingerprint(url))

    srv.stop_clean()
    old_dir = srv.data
    # the instance's own file beside the store: an onion service's key
    onion_key = b"ED25519-V3:" + os.urandom(48).hex().encode() + b"\n"
    with open(os.open(os.path.join(old_dir, "onion-key"), os.O_WRONLY | os.O_CREAT, 0o600),
              "wb") as f:
        f.write(onion_key)
    rows0, seq0, blobs0 = sqlite_rows(old_dir)
    check(len([c for c in blobs0 if c[2] == "blob"]) == 3,
          "the three files are blob files in the SQLite instance", blobs0)
    check(any(c[1] == 3 and c[2] == "inline" for c in blobs0),
          "a reply is stored inline in the SQLite instance", blobs0)
    check(seq0 > max(r[0] for r in rows0["objects"]),
          "the deleted reply's number is above every stored one (sqlite_sequence)", seq0)
    def listing(d):  # SQLite's -wal and -shm come and go with every opener
        return sorted(n for n in os.listdir(d) if not n.endswith(("-wal", "-shm")))
    listing0 = listing(old_dir)

    p = refuge("server", "migrate", "--from", old_dir, "--to", url, "--to-data", newdir)
    check(p.returncode == 0, "`refuge server migrate` succeeded", p.out + p.err)
    check("moved to PostgreSQL" in p.out and "refuge serve --data" in p.out,
          "migrate prints what it moved and the next step", p.out)
    check(url not in p.out + p.err, "migrate never prints the database URL")
    log("migrate: %s" % p.out.strip().splitlines()[0])
    with open(os.path.join(newdir, "database")) as f:
        check(f.read().strip() == url, "NEWDIR/database names the new database")
    check(os.stat(os.path.join(newdir, "database")).st_mode & 0o777 == 0o600,
          "NEWDIR/database is mode 0600")
    with open(os.path.join(newdir, "onion-key"), "rb") as f:
        check(f.read() == onion_key, "the onion service's key is copied (the address stays)")
    check(os.stat(os.path.join(newdir, "onion-key")).st_mode & 0o777 == 0o600,
          "NEWDIR/onion-key is mode 0600")
    check(listing(old_dir) == listing0, "DIR keeps its files (the SQLite instance, for going "
          "back)", (listing0, listing(old_dir)))
    check(sqlite_rows(old_dir) == (rows0, seq0, blobs0), "DIR's database is left as it was")

    rows1, seq1, blobs1 = pg_rows(url, newdir)
    for t in TABLES:
        check(rows1[t] == rows0[t], "the table %s holds the same rows after the move "
              "(%d before, %d after)" % (t, len(rows0[t]), len(rows1[t])))
    check(seq1 == seq0, "the sequence counter is carried (%d, was %d)" % (seq1, seq0))
    check([(q, k, h) for q, k, _, h in blobs1] == [(q, k, h) for q, k, _, h in blobs0],
          "every object's ciphertext is carried byte-exact (blob files copied)")
    # replies (a person may delete them) become blob files: PostgreSQL does
    # not zero a deleted row (docs/scale-out.md); the rest stays where it was
    check([w for _, _, w, _ in blobs1] ==
          ["blob" if k == 3 else w for _, k, w, _ in blobs0],
          "in PostgreSQL every reply is a blob file, every other object where it was",
          (blobs0, blobs1))
    log("%d rows in %d tables the same in PostgreSQL; counter %d; %d blob file(s), %d of "
        "them replies" % (sum(len(v) for v in rows1.values()), len(TABLES), seq1,
                          len([c for c in blobs1 if c[2] == "blob"]),
                          len([c for c in blobs1 if c[2] == "blob" and c[1] == 3])))

    # the server on the new instance, on the same port: the clients keep their URL
    srv.data = newdir
    after_move(srv, alice, bob, person, case, reply, cases, before, files_before, "the move")
    shown = alice.json("show", case, "--json")
    texts = [it.get("text") for it in shown["items"] if it.get("kind") == "message"]
    check("migrate test: sent after the move" in texts, "Alice reads the message sent after "
          "the move", texts)
    new_seq = int(psql(url, "SELECT max(seq) FROM objects"))
    check(new_seq > seq0, "the new message's number (%d) is past every number handed out "
          "before (%d)" % (new_seq, seq0))
    srv.stop_clean()

    # a second migration into the now non-empty database: refused, nothing changes
    fp = pg_fingerprint(url)
    newdir2 = os.path.join(tempdir("refuge-migrate-"), "data")
    p = refuge("server", "migrate", "--from", old_dir, "--to", url, "--to-data", newdir2)
    check(p.returncode == 1 and "not empty" in p.err,
          "a migration into a non-empty database is refused, saying so", p.out + p.err)
    check(pg_fingerprint(url) == fp, "the refused migration changed nothing in the database")
    check(not os.path.exists(newdir2), "the refused migration left no data directory")
    log("refused: %s" % p.err.strip().splitlines()[0])

    # a migration that fails half-way leaves its target empty
    broken = os.path.join(tempdir("refuge-migrate-"), "data")
    shutil.copytree(old_dir, broken)
    blob = [n for n in os.listdir(os.path.join(broken, "blobs"))][0]
    with open(os.path.join(broken, "blobs", blob), "r+b") as f:
        f.truncate(1000)
    url3 = pg_database()
    newdir3 = os.path.join(tempdir("refuge-migrate-"), "data")
    p = refuge("server", "migrate", "--from", broken, "--to", url3, "--to-data", newdir3)
    check(p.returncode == 1 and "nothing was kept" in p.err,
          "a migration that fails half-way says so", p.out + p.err)
    check(pg_fingerprint(url3) == {"relations": [""]},
          "a migration that failed half-way leaves the database empty (no table)",
          pg_fingerprint(url3))
    check(not os.path.exists(newdir3), "a migration that failed left no data directory")
    log("failed half-way: %s" % p.err.strip().splitlines()[0])


if __name__ == "__main__":
    main(test)
