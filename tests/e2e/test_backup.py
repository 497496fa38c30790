#!/usr/bin/env python3
"""
Backup and restore (issue 8, done-when 2).

A team (make_team) runs an instance; several people (threads, each with its
own codename, from the address 127.77.66.55) send messages with files of
varied size (small ones inline, large ones as blob files) in a loop, and
`refuge server backup --out FILE` runs in the middle of it. Every submission
is remembered with when its acknowledgement (303 to /inbox?sent=1) came.

The archive is restored with `refuge server restore FILE --data NEW` into a
new data directory, a second `refuge serve` starts on another port on it, and
a copy of a caseworker's client (the original team's key file, an empty local
cache, the new server's URL) syncs from it and reads everything:
  acknowledged before the backup began   present, text and file bytes exact;
  acknowledged while it ran              whole or absent, never in part;
  acknowledged after it ended            absent.
A canary scan of the archive finds no canary text (in the messages and
inside the files), no codename, no address. Corrupted copies (a byte flipped
in a header, in the database, in a blob, in the manifest, in padding and in
the trailer; truncated; an extra member, canonical or not; a member missing;
a manifest digest changed, with and without its end line recomputed; a
symlink and a path escaping the directory) are refused with a clear error
and leave the target empty.

On PostgreSQL (REFUGE_TEST_DB=postgresql) the same, on an instance that
stores in PostgreSQL: its archive's database is a SQLite copy of its rows
(one snapshot), the backup says so, and the restore gives a SQLite instance,
served and read back the same way.
"""
import hashlib
import http.client
import io
import os
import random
import shutil
import struct
import subprocess
import sys
import tarfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (DB, Browser, Page, Person, Server, check, encode_multipart, encodings, log, main,
                 make_team, open_db, rand_letters, run, sanitizer_report, search_tree, sha256,
                 sha256_file, tempdir)

PERSON_ADDRESS = "127.77.66.55"
CLIENTS = int(os.environ.get("BACKUP_CLIENTS", "4"))
BEFORE = int(os.environ.get("BACKUP_BEFORE", "40"))  # acknowledged before the backup starts
AFTER_S = 1.5                                        # seconds of load after it ends
BULK_BYTES = int(os.environ.get("BACKUP_BULK_BYTES", str(12 << 20)))
PER_CLIENT_MAX = 180  # submissions per person (the server's daily quota is 200)
SIZES = [300, 5000, 60000, 300000, 900000]           # > 256 KiB of ciphertext: a blob file


class Sub:
    __slots__ = ("sid", "text", "files", "sent_at", "acked_at", "outcome")

    def __init__(self, sid, text, files):
        self.sid, self.text, self.files = sid, text, files  # files: [(name, sha256, size)]
        self.sent_at = self.acked_at = None
        self.outcome = None


class Client(threading.Thread):
    def __init__(self, idx, srv, canary, stop, seed):
        super().__init__(daemon=True)
        self.idx, self.srv, self.canary, self.stop = idx, srv, canary, stop
        self.rnd = random.Random(seed)
        self.person = Person(srv)
        self.subs = []
        self.error = None
        self.csrf = None

    def prepare(self):
        self.person.new_codename()
        r, _ = self.person.send("intake %d %s" % (self.idx, self.canary))
        check(r.status == 200, "the intake of person %d was sent" % self.idx, r.text[:500])
        r = self.person.b.request("GET", "/inbox")
        self.csrf = dict(Page(r.text).form("/send").hidden()).get("csrf")
        check(self.csrf, "the inbox has a CSRF token")

    def post(self, text, files):
        body, ctype = encode_multipart(
            [("csrf", self.csrf), ("text", text)] +
            [("file", (n, "application/octet-stream", d)) for n, d in files])
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=120,
                                          source_address=(PERSON_ADDRESS, 0))
        try:
            conn.request("POST", "/send", body=body, headers={
                "Content-Type": ctype,
                "Cookie": "; ".join("%s=%s" % kv for kv in self.person.b.cookies.items())})
            r = conn.getresponse()
            body = r.read()
            if r.status != 303:
                self.last_body = body[body.find(b"<main"):][:1500]
            return r.status, r.getheader("Location") or ""
        finally:
            conn.close()

    def run(self):
        n = 0
        try:
            while not self.stop.is_set() and n < PER_CLIENT_MAX:
                time.sleep(self.rnd.uniform(0, 0.03))
                n += 1
                sid = "b%d-%d-%08x" % (self.idx, n, self.rnd.getrandbits(32))
                text = "backup test %s %s %s" % (sid, self.canary, "y" * self.rnd.randrange(4000))
                files = []
                for k in range(self.rnd.choice([0, 1, 1, 2])):
                    size = self.rnd.choice(SIZES)
                    data = self.canary.encode() + self.rnd.randbytes(size)
                    files.append(("%s-%d.bin" % (sid, k), data))
                s = Sub(sid, text, [(nm, sha256(d), len(d)) for nm, d in files])
                s.sent_at = time.monotonic()
                status, loc = self.post(text, files)
                s.acked_at = time.monotonic()
                s.outcome = "acked" if status == 303 and loc.endswith("/inbox?sent=1") else \
                    "refused %d" % status
                self.subs.append(s)
                check(s.outcome == "acked", "a submission is acknowledged",
                      (status, loc, getattr(self, "last_body", b"")))
        except Exception as e:  # reported by the main thread
            self.error = e


def refuge(*args, timeout=600):
    p = run(list(args), timeout=timeout)
    rep = sanitizer_report(p.out + p.err)
    check(rep is None, "sanitizer report from `refuge %s`" % " ".join(args[:2]), rep)
    return p


def empty_or_absent(d):
    return not os.path.exists(d) or os.listdir(d) == []


def read_members(path):
    """[(name, header offset, data offset, size)] of the archive."""
    with tarfile.open(path, "r:") as t:
        return [(m.name, m.offset, m.offset_data, m.size) for m in t.getmembers()]


def canonical_header(name, size, mtime):
    """The header refuge writes (lib/archive.c), to forge a well-formed member."""
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000600\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % mtime
    h[156:157] = b"0"
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[329:337] = b"0000000\0"
    h[337:345] = b"0000000\0"
    h[148:156] = b" " * 8
    h[148:155] = b"%06o\0" % sum(h)
    h[155:156] = b" "
    return bytes(h)


def pad(n):
    return b"\0" * ((512 - n % 512) % 512)


def corruptions(archive):
    """(label, bytes) of damaged copies."""
    with open(archive, "rb") as f:
        good = f.read()
    members = read_members(archive)
    names = [m[0] for m in members]
    check(names[0] == "refuge-backup/refuge.db" and names[-1] == "refuge-backup/MANIFEST",
          "the archive holds the database first and the manifest last", names[:3] + names[-2:])
    blobs = [m for m in members if m[0].startswith("refuge-backup/blobs/")]
    check(blobs, "the archive holds blob files", names)
    db, blob, man = members[0], blobs[len(blobs) // 2], members[-1]
    end_of_members = man[2] + man[3] + len(pad(man[3]))

    def flip(off):
        b = bytearray(good)
        b[off] ^= 0x01
        return bytes(b)

    out = [
        ("a byte flipped in the database's header", flip(db[1] + 130)),
        ("a byte flipped in the database", flip(db[2] + db[3] // 2)),
        ("a byte flipped in a blob", flip(blob[2] + blob[3] // 3)),
        ("a byte flipped in a blob's header name", flip(blob[1] + 30)),
        ("a byte flipped in the manifest", flip(man[2] + man[3] // 2)),
        ("a byte flipped in a padding", flip(man[2] + man[3])),
        ("a byte flipped in the trailer", flip(end_of_members + 700)),
        ("truncated in the middle", good[:len(good) // 2]),
        ("truncated before the trailer", good[:end_of_members]),
        ("truncated by one byte", good[:-1]),
        ("empty", b""),
        ("a byte appended", good + b"\0"),
    ]
    # a member missing: the middle blob cut out (the manifest still lists it)
    cut_end = blob[2] + blob[3] + len(pad(blob[3]))
    out.append(("a blob member missing", good[:blob[1]] + good[cut_end:]))
    # an extra, well-formed member the manifest does not list (name sorts last)
    mtime = int(good[db[1] + 136:db[1] + 147], 8)
    extra = os.urandom(1000)
    xname = "refuge-backup/blobs/" + "f" * 32
    out.append(("an extra canonical member",
                good[:man[1]] + canonical_header(xname, len(extra), mtime) + extra + pad(1000) +
                good[man[1]:]))
    # an extra member written by Python's tarfile (not refuge's header form)
    buf = io.BytesIO(good[:end_of_members] + b"\0" * 1024)
    with tarfile.open(fileobj=buf, mode="a") as t:
        ti = tarfile.TarInfo("refuge-backup/extra")
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"abc"))
    out.append(("an extra member added by tar", buf.getvalue()))
    for label, ti in (("a symlink member", tarfile.TarInfo("refuge-backup/blobs/" + "0" * 32)),
                      ("a member escaping the directory", tarfile.TarInfo("../../etc/evil"))):
        if label.startswith("a symlink"):
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/etc/passwd"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
            t.addfile(ti, io.BytesIO(b"" if ti.type == tarfile.SYMTYPE else b""))
        out.append((label, buf.getvalue() + good))
    # the manifest's digest of a blob changed (end line left, then recomputed)
    text = good[man[2]:man[2] + man[3]]
    lines = text.split(b"\n")
    i = next(k for k, ln in enumerate(lines) if ln.startswith(b"member") and b"/blobs/" in ln)
    d = bytearray(lines[i])
    d[7] = ord("0") if d[7] != ord("0") else ord("1")
    lines[i] = bytes(d)
    changed = b"\n".join(lines)
    out.append(("a manifest digest changed",
                good[:man[2]] + changed + good[man[2] + man[3]:]))
    body = b"\n".join(lines[:-2]) + b"\n"
    resealed = body + b"end " + hashlib.blake2b(body, digest_size=32).hexdigest().encode() + b"\n"
    check(len(resealed) == len(text), "the resealed manifest keeps its length")
    out.append(("a manifest digest changed and its end line recomputed",
                good[:man[2]] + resealed + good[man[2] + man[3]:]))
    return out


def test():
    Browser.source_address = PERSON_ADDRESS
    canary = "kanarejka" + rand_letters(14)
    srv = Server().init().start()
    alice, bob = make_team(srv, ("Alice", "Bob"))

    stop = threading.Event()
    rnd = random.Random(os.urandom(8))
    clients = [Client(i, srv, canary, stop, rnd.getrandbits(64)) for i in range(CLIENTS)]
    for c in clients:
        c.prepare()
    # one person sends large files first, so the backup takes a while
    bulk = Client(CLIENTS, srv, canary, stop, rnd.getrandbits(64))
    bulk.prepare()
    big = [("bulk-%d.bin" % k, canary.encode() + os.urandom(BULK_BYTES)) for k in range(3)]
    s = Sub("bulk", "backup test bulk %s" % canary, [(n, sha256(d), len(d)) for n, d in big])
    s.sent_at = time.monotonic()
    status, loc = bulk.post(s.text, big)
    s.acked_at = time.monotonic()
    check(status == 303, "the large files were acknowledged", status)
    s.outcome = "acked"
    bulk.subs.append(s)
    for c in clients:
        c.start()

    def acked():
        return sum(1 for c in clients for s in list(c.subs) if s.outcome == "acked")

    deadline = time.time() + 240
    while acked() < BEFORE and time.time() < deadline and not any(c.error for c in clients):
        time.sleep(0.1)
    check(acked() >= BEFORE, "%d submissions acknowledged before the backup" % BEFORE, acked())

    root = tempdir("refuge-backup-")
    archive = os.path.join(root, "backup.tar")
    t_begin = time.monotonic()
    p = refuge("server", "backup", "--data", srv.data, "--out", archive)
    t_end = time.monotonic()
    check(p.returncode == 0, "`refuge server backup` succeeded under load", p.out + p.err)
    log("backup: %s" % p.out.strip().replace("\n", " | "))
    # on PostgreSQL the archive's database is a SQLite copy of the rows, and the
    # backup says that restore gives a SQLite instance (a SQLite backup has
    # nothing to say about it)
    said = "restore gives a SQLite instance" in p.out
    check(said == (DB == "postgresql"),
          "the backup says whether its database is a SQLite copy of PostgreSQL rows", p.out)
    time.sleep(AFTER_S)
    stop.set()
    for c in clients:
        c.join(300)
        check(not c.is_alive(), "client %d stopped" % c.idx)
        if c.error is not None:
            raise c.error

    subs = [s for c in clients + [bulk] for s in c.subs]
    before = [s for s in subs if s.acked_at < t_begin]
    during = [s for s in subs if s.acked_at >= t_begin and s.sent_at <= t_end]
    after = [s for s in subs if s.sent_at > t_end]
    log("submissions: %d acknowledged before the backup, %d around it, %d after; %.2f s"
        % (len(before), len(during), len(after), t_end - t_begin))
    check(after, "submissions went on after the backup")

    st = os.stat(archive)
    check(st.st_mode & 0o777 == 0o600, "the archive is mode 0600", oct(st.st_mode))
    check(not os.path.exists(archive + ".tmp"), "no FILE.tmp is left")
    leftovers = [n for n in os.listdir(os.path.join(srv.data, "tmp")) if n.startswith("backup-")]
    check(not leftovers, "the database copy is gone from the data directory's tmp/", leftovers)
    with open(archive, "rb") as f:
        f.seek(512)
        check(f.read(16) == b"SQLite format 3\0",
              "the archive's database member is a SQLite file (%s instance)" % DB)

    # the day of the last backup, for `refuge server status`
    con = open_db(srv)
    row = con.execute("SELECT value FROM settings WHERE key = 'backup.last_day'").fetchone()
    con.close()
    today = int(time.time()) // 86400
    check(row is not None and bytes(row[0]) == struct.pack(">I", today),
          "the setting backup.last_day holds today (u32, big-endian)", row)

    # the nightly form: a dated name in a directory, the oldest beyond --keep deleted
    nightly = tempdir("refuge-backup-nightly-")
    old = ["refuge-2020-01-0%d.tar" % d for d in (1, 2, 3)]
    for n in old + ["notes.txt", "refuge-2020-01-04.tar.tmp"]:
        with open(os.path.join(nightly, n), "w") as f:
            f.write("x")
    p = refuge("server", "backup", "--data", srv.data, "--out-dir", nightly, "--keep", "2")
    check(p.returncode == 0, "`refuge server backup --out-dir DIR --keep 2` succeeded",
          p.out + p.err)
    dated = time.strftime("refuge-%Y-%m-%d.tar", time.gmtime(today * 86400))
    left = sorted(os.listdir(nightly))
    check(left == sorted([old[2], dated, "notes.txt", "refuge-2020-01-04.tar.tmp"]),
          "--keep 2 keeps the newest two archives and touches nothing else", left)
    check(os.stat(os.path.join(nightly, dated)).st_mode & 0o777 == 0o600,
          "the nightly archive is mode 0600")

    # the archive holds no canary, codename or address
    needles = [("canary", label, pat) for label, pat in encodings(canary)]
    # the address as text (the 4-byte binary form, which test_canary.py looks
    # for in a small data directory, matches random ciphertext once in 4 GiB:
    # over an archive of megabytes it would fail a run in a few hundred)
    needles += [("ip-address", "text", PERSON_ADDRESS.encode()),
                ("ip-address", "mapped", ("::ffff:" + PERSON_ADDRESS).encode())]
    for c in clients + [bulk]:
        needles += [("codename-%d" % c.idx, label, pat)
                    for label, pat in encodings(c.person.codename)]
        for s in c.subs[:3]:
            needles += [("message", label, pat) for label, pat in encodings(s.text[:60])]
    hits, files, total = search_tree([root], needles)
    check(not hits, "the archive holds no canary, codename, message or address", hits[:10])
    log("canary scan of the archive: %d bytes, %d needles, no hit" % (total, len(needles)))

    # restore on a "new machine": a new data directory, a second server
    check_p = refuge("server", "restore", "--check", archive)
    check(check_p.returncode == 0, "`refuge server restore --check` accepts the archive",
          check_p.out + check_p.err)
    srv2 = Server()
    p = refuge("server", "restore", archive, "--data", srv2.data)
    check(p.returncode == 0, "`refuge server restore` succeeded", p.out + p.err)
    check("restored" in p.out and "refuge serve --data" in p.out,
          "restore prints what came back and the next step", p.out)
    log("restore: %s" % p.out.strip().replace("\n", " | "))
    check("It stores in SQLite" in p.out and "refuge server migrate" in p.out,
          "restore says the instance it gives is SQLite, and how to move it to PostgreSQL", p.out)
    check(os.path.exists(os.path.join(srv2.data, "refuge.db")) and
          not os.path.exists(os.path.join(srv2.data, "database")),
          "the restored instance stores in SQLite (DIR/refuge.db, no DIR/database)",
          os.listdir(srv2.data))
    for d, _, names in os.walk(srv2.data):
        check(os.stat(d).st_mode & 0o777 == 0o700, "restored directories are 0700", d)
        for n in names:
            m = os.stat(os.path.join(d, n)).st_mode & 0o777
            check(m == 0o600, "restored files are 0600", (n, oct(m)))
    p = refuge("server", "restore", archive, "--data", srv2.data)
    check(p.returncode != 0 and "not empty" in p.err,
          "restore refuses a non-empty target directory", p.out + p.err)
    srv2.start()
    srv.stop_clean()  # the first server is gone: everything comes from the second

    # a caseworker of the original team, with an empty cache, on the new server
    reader = type(alice)("Alice", passphrase=None)
    shutil.rmtree(reader.home)
    shutil.copytree(alice.home, reader.home)
    reader.passfile = os.path.join(reader.home, "passphrase")
    reader.env = dict(alice.env)
    reader.env["REFUGE_HOME"] = os.path.join(reader.home, "home")
    reader.env["REFUGE_PASSPHRASE_FILE"] = reader.passfile
    home = reader.env["REFUGE_HOME"]
    for n in os.listdir(home):
        if n.startswith("cache"):
            os.remove(os.path.join(home, n))
    import json
    cfgp = os.path.join(home, "config.json")
    with open(cfgp) as f:
        cfg = json.load(f)
    cfg["server"] = srv2.url
    with open(cfgp, "w") as f:
        json.dump(cfg, f)
    reader.run("sync", timeout=900)
    cases = reader.json("cases", "--json")["cases"]
    check(len(cases) == CLIENTS + 1,
          "one case per person on the restored server (%d)" % len(cases))
    texts, files, listed = {}, {}, {}
    for case in cases:
        shown = reader.json("show", case["case"], "--json")
        for it in shown["items"]:
            check(it["kind"] != "unreadable", "every restored item decrypts", it)
            if it["kind"] == "message" and it["text"].startswith("backup test "):
                sid = it["text"].split(" ")[2]
                check(sid not in texts, "a message is restored once", sid)
                texts[sid] = it["text"]
            elif it["kind"] == "file":
                listed[it["name"]] = it["size"]
        out = tempdir("refuge-backup-files-")
        reader.run("files", case["case"], "--out", out, timeout=900)
        for name in os.listdir(out):
            files[name] = sha256_file(os.path.join(out, name))

    def present(s):
        got = [n for n, _, _ in s.files if n in files]
        if s.sid not in texts:
            return "absent" if not got else "partial"
        if len(got) != len(s.files):
            return "partial"
        ok = texts[s.sid] == s.text and all(files[n] == h and listed[n] == sz
                                            for n, h, sz in s.files)
        return "whole" if ok else "different"

    lost = [s.sid for s in before if present(s) != "whole"]
    check(not lost, "every submission acknowledged before the backup is restored byte-exact "
          "(%d of %d missing or different)" % (len(lost), len(before)), lost[:10])
    bad = [(s.sid, present(s)) for s in during if present(s) not in ("whole", "absent")]
    check(not bad, "submissions acknowledged during the backup are whole or absent", bad[:10])
    late = [s.sid for s in after if present(s) != "absent"]
    check(not late, "nothing acknowledged after the backup is in it", late[:10])
    nfiles = sum(len(s.files) for s in before)
    log("restored server: %d messages and %d files acknowledged before the backup read back "
        "byte-exact; of %d around it %d whole" %
        (len(before), nfiles, len(during), sum(1 for s in during if present(s) == "whole")))

    # a reply through the restored server still works for the team
    reader.run("reply", cases[0]["case"], "-m", "after restore")
    srv2.stop_clean()

    # damaged archives: refused, clearly, and the target stays empty
    bad_dir = tempdir("refuge-backup-bad-")
    for i, (label, data) in enumerate(corruptions(archive)):
        path = os.path.join(bad_dir, "bad%d.tar" % i)
        with open(path, "wb") as f:
            f.write(data)
        for target in (os.path.join(bad_dir, "new%d" % i), os.path.join(bad_dir, "empty%d" % i)):
            if "empty" in target:
                os.mkdir(target, 0o700)
            p = refuge("server", "restore", path, "--data", target)
            check(p.returncode != 0, "restore refuses an archive with %s" % label, p.out + p.err)
            check("refused" in p.err and p.err.count("\n") <= 4,
                  "the refusal of an archive with %s says why" % label, p.err)
            check(empty_or_absent(target),
                  "an archive with %s leaves the target empty" % label,
                  os.listdir(target) if os.path.isdir(target) else None)
        log("refused (%s): %s" % (label, p.err.strip().splitlines()[0]))


if __name__ == "__main__":
    main(test)
