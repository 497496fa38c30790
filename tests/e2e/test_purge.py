#!/usr/bin/env python3
"""
Retention (issue 3, "Done when" 6): `refuge server purge --data DIR` deletes
exactly the expired cases, with their objects, grants and blob files, says
what it deleted in counts only, and leaves everything else byte for byte.

One instance (server init --retention-days 0 --inactivity-days 1), five
people, each sending a message and a 300 KB file (stored as a blob):
  P1 closed (stage closed -> deletion day = today + 0): expired, deleted;
  P2 inactive: its objects' day is moved 5 days back in the server's
     database (the only place the test fakes time): deleted;
  P3 active, stage planning: kept;
  P4 closed after the retention was raised to 30 days
     (`refuge server settings --retention-days 30`): not yet expired, kept;
  P5 closed then reopened (leaving closed cancels the deletion): kept.
Afterwards P1 cannot log in any more, P3 still reads its inbox, the
caseworker still decrypts P3's file byte for byte, and a second purge
deletes nothing.
"""
import os
import re
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Browser, Person, TeamServer, check, json_strings, log, main, make_team, open_db,
                 require_commands, restart_same_port, run, sha256, sha256_file, tempdir)


def snapshot(con, data):
    s = {}
    s["sources"] = {r[0]: r[1:] for r in con.execute(
        "SELECT id, case_id, delete_day FROM sources").fetchall()}
    s["objects"] = {r[0]: r[1:] for r in con.execute(
        "SELECT seq, source_id, kind, size, day, blob FROM objects").fetchall()}
    s["grants"] = {r[0]: r[1] for r in con.execute("SELECT id, seq FROM grants").fetchall()}
    s["blobs"] = sorted(os.listdir(os.path.join(data, "blobs")))
    s["blob_hashes"] = {n: sha256_file(os.path.join(data, "blobs", n)) for n in s["blobs"]}
    return s


def test():
    require_commands("staff", "stage", "server purge", "server settings")
    today = int(time.time() // 86400)
    srv = TeamServer(["--retention-days", "0", "--inactivity-days", "1"]).init().start()
    alice, bob = make_team(srv, ("Alice", "Bob"))

    people, texts, files = [], [], []
    for i in range(5):
        p = Person(srv)
        p.new_codename()
        text = "purge test person %d %s" % (i + 1, secrets.token_hex(4))
        data = os.urandom(300 * 1024)
        resp, _ = p.send(text, files=[("doc%d.bin" % (i + 1), "application/octet-stream", data)])
        check(resp.status == 200, "P%d: POST /send answered %d" % (i + 1, resp.status),
              resp.text[:800])
        people.append(p)
        texts.append(text)
        files.append(data)
    alice.run("sync")
    # which case is whose: the message text, decrypted by the caseworker
    case_of = {}
    for row in alice.cases():
        strings = json_strings(alice.json("show", row["case"], "--json"))
        for i, t in enumerate(texts):
            if t in strings:
                case_of[i] = row["case"]
    check(sorted(case_of) == [0, 1, 2, 3, 4], "the caseworker sees the five cases", case_of)
    c1, c2, c3, c4, c5 = (case_of[i] for i in range(5))

    alice.run("stage", c1, "closed")
    alice.run("stage", c3, "planning")
    bob.run("sync")
    bob.run("stage", c5, "closed")
    bob.run("stage", c5, "verifying")

    # raise the retention to 30 days; P4 closed now is kept for 30 days
    srv.stop_clean()
    p = run(["server", "settings", "--data", srv.data, "--retention-days", "30"])
    check(p.returncode == 0, "`refuge server settings --retention-days 30` works",
          (p.out + p.err)[-1500:])
    restart_same_port(srv)
    alice.run("sync")
    alice.run("stage", c4, "closed")
    srv.stop_clean()

    con = open_db(srv)
    ids = dict(con.execute("SELECT case_id, id FROM sources").fetchall())
    days = {c: con.execute("SELECT delete_day FROM sources WHERE case_id = ?", (c,)).fetchone()[0]
            for c in (c1, c2, c3, c4, c5)}
    check(days[c1] == today and days[c4] == today + 30 and days[c2] is None and
          days[c3] is None and days[c5] is None,
          "deletion days: P1 today (retention 0), P4 today + 30, P5 cancelled, others none",
          days)
    # P2 falls silent: its objects arrived 5 days ago (inactivity 1 day)
    con.execute("UPDATE objects SET day = day - 5 WHERE source_id = ?", (ids[c2],))
    before = snapshot(con, srv.data)
    gone_src = {ids[c1], ids[c2]}
    gone_obj = {s for s, v in before["objects"].items() if v[0] in gone_src}
    gone_blobs = {v[4] for s, v in before["objects"].items() if v[0] in gone_src and v[4]}
    check(len(gone_blobs) == 2, "each expired person's file is a blob", gone_blobs)
    con.close()

    p = run(["server", "purge", "--data", srv.data])
    out = p.out + p.err
    check(p.returncode == 0, "`refuge server purge` works", out[-1500:])
    log("purge said: %s" % " / ".join(out.strip().splitlines()))
    nums = [int(x) for x in re.findall(r"\d+", out)]
    check(2 in nums and len(gone_obj) in nums,
          "purge reports 2 cases and %d objects" % len(gone_obj), out)
    for c in (c1, c2, c3, c4, c5):
        check(c not in out, "purge's output names no case id", out)
    for b in before["blobs"]:
        check(b not in out, "purge's output names no blob", out)

    con = open_db(srv)
    after = snapshot(con, srv.data)
    check(set(after["sources"]) == set(before["sources"]) - gone_src,
          "exactly P1's and P2's cases are deleted (sources)",
          (sorted(before["sources"]), sorted(after["sources"]), sorted(gone_src)))
    check(after["objects"] == {s: v for s, v in before["objects"].items() if s not in gone_obj},
          "exactly their objects are deleted; every other object row is unchanged",
          (len(before["objects"]), len(after["objects"]), len(gone_obj)))
    check(after["grants"] == {g: s for g, s in before["grants"].items() if s not in gone_obj},
          "their grants are deleted, others kept", (before["grants"], after["grants"]))
    check(after["blobs"] == sorted(set(before["blobs"]) - gone_blobs),
          "exactly their blob files are deleted from the blob directory",
          (before["blobs"], after["blobs"], sorted(gone_blobs)))
    check(all(after["blob_hashes"][n] == before["blob_hashes"][n] for n in after["blobs"]),
          "every kept blob is unchanged")
    last = con.execute("SELECT action, target FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    check(last and last[0] == "purge" and last[1] == "cases=2 objects=%d" % len(gone_obj),
          "the purge is in the audit log with its counts", last)
    con.close()
    log("deleted 2 cases, %d objects, 2 blobs; %d objects and %d blobs kept" %
        (len(gone_obj), len(after["objects"]), len(after["blobs"])))

    # a second purge finds nothing
    p = run(["server", "purge", "--data", srv.data])
    check(p.returncode == 0 and 2 not in [int(x) for x in re.findall(r"\d+", p.out + p.err)],
          "a second purge deletes nothing", p.out + p.err)

    # the people and the team, after
    restart_same_port(srv)
    b = Browser(srv.url)
    people[0].b = b
    r = people[0].login(fresh=False)
    check(b.request("GET", "/inbox").status in (302, 303),
          "P1's codename opens nothing after the purge", r.text[:500])
    people[2].login()
    r = people[2].inbox()
    check(r.status == 200 and people[2].b.request("GET", "/inbox").status == 200,
          "P3 still logs in and sees the inbox")
    alice.run("sync")
    out_dir = tempdir("refuge-purge-files-")
    alice.run("files", c3, "--out", out_dir)
    got = [sha256_file(os.path.join(d, n)) for d, _, ns in os.walk(out_dir) for n in ns]
    check(sha256(files[2]) in got, "P3's file still decrypts byte for byte", got)
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
