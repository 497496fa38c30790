#!/usr/bin/env python3
"""
`refuge unlock [--for MINUTES]` and `refuge lock` (issue 10, the listing's
unlock; docs/staff.md "Unlocking once"). The test joins a fresh anonymous
session keyring first (keyctl JOIN_SESSION_KEYRING), so every refuge it
starts shares that keyring and nothing reaches the keyring of whoever runs
it.

- A wrong passphrase unlocks nothing.
- After `refuge unlock`, Alice's commands need no passphrase (the
  passphrase file is gone): `refuge cases` (text and --json, the same bytes
  as with the passphrase), `refuge show`, `refuge sync`.
- The kept key is readable by its possessors only (permissions possessor
  view/read/write/search/setattr, nothing for the user), expires (a timeout
  is set), and is named after Alice's home only: Bob's home still asks, and
  a refuge started in another session keyring asks too.
- `refuge lock` forgets it: the next command asks for the passphrase again;
  locking twice says nothing was unlocked. The desk's lock (its idle lock
  here) forgets it too.
- Bad --for values are refused before any passphrase is asked.
Client-only: the server is there to make a case; run in the SQLite pass.
"""
import ctypes
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (BIN, DB, Person, Server, Skip, case_ids, check, free_port, main,  # noqa: E402
                 make_team)

SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
KEYCTL_JOIN, KEYCTL_DESCRIBE, KEYCTL_READ = 1, 6, 11
KEY_SPEC_SESSION_KEYRING = -3
libc = ctypes.CDLL(None, use_errno=True)


def keyctl(*args):
    return libc.syscall(SYS_KEYCTL, *args)


def join_fresh_session():
    if SYS_KEYCTL is None:
        raise Skip("keyctl(2) number unknown on %s" % os.uname().machine)
    if keyctl(KEYCTL_JOIN, None) < 0:
        raise Skip("no kernel keyring here (keyctl: %s)" % os.strerror(ctypes.get_errno()))


def refuge_keys():
    """(description, permissions) of every refuge key in the session keyring."""
    out = []
    buf = ctypes.create_string_buffer(512)
    # the session keyring's contents: KEYCTL_READ of a keyring lists its key ids
    ids = ctypes.create_string_buffer(4096)
    n = keyctl(KEYCTL_READ, ctypes.c_long(KEY_SPEC_SESSION_KEYRING), ids, 4096)
    for i in range(0, max(n, 0), 4):
        kid = int.from_bytes(ids.raw[i:i + 4], sys.byteorder, signed=True)
        k = keyctl(KEYCTL_DESCRIBE, kid, buf, 512)
        if k <= 0:
            continue
        typ, uid, gid, perm, desc = buf.value.decode().split(";", 4)
        if desc.startswith("refuge:"):
            out.append((typ, desc, int(perm, 16)))
    return out


def test():
    if DB != "sqlite":
        raise Skip("client-only (the session keyring): run in the SQLite pass")
    join_fresh_session()
    srv = Server().init().start()
    alice, bob = make_team(srv, ("Alice", "Bob"))
    person = Person(srv)
    person.new_codename()
    person.send("unlock test")
    alice.run("sync")
    listing = alice.run("cases").out
    listing_json = alice.run("cases", "--json").out
    cid = case_ids(alice.json("cases", "--json"))[0]

    good = alice.env["REFUGE_PASSPHRASE_FILE"]
    wrong = os.path.join(alice.home, "wrong")
    with open(wrong, "w") as f:
        f.write("not the passphrase\n")

    def as_alice(*args, passfile):
        alice.env["REFUGE_PASSPHRASE_FILE"] = passfile
        try:
            return alice.run(*args, ok=False)
        finally:
            alice.env["REFUGE_PASSPHRASE_FILE"] = good

    gone = os.path.join(alice.home, "no-such-file")
    p = as_alice("cases", passfile=gone)
    check(p.returncode != 0, "without the passphrase, `refuge cases` is refused", p.out + p.err)

    for bad in ("0", "721", "ten", "5x"):
        p = as_alice("unlock", "--for", bad, passfile=gone)
        check(p.returncode == 2 and "--for" in p.err,
              "`refuge unlock --for %s` is a usage error, before any passphrase" % bad,
              p.out + p.err)
    p = as_alice("unlock", passfile=wrong)
    check(p.returncode != 0 and "wrong passphrase" in p.err,
          "a wrong passphrase unlocks nothing", p.out + p.err)
    check(refuge_keys() == [], "nothing kept after a wrong passphrase", refuge_keys())

    p = alice.run("unlock", "--for", "2")
    check("Unlocked for 2 minutes" in p.out, "`refuge unlock --for 2` says for how long", p.out)
    keys = refuge_keys()
    check(len(keys) == 1 and keys[0][0] == "user" and keys[0][1].startswith("refuge:v1:"),
          "one user key named refuge:v1:... in the session keyring", keys)
    check(keys[0][2] == 0x2f000000,
          "the key is the possessor's only (view, read, write, search, setattr), not the user's",
          hex(keys[0][2]))

    p = as_alice("cases", passfile=gone)
    check(p.returncode == 0 and p.out == listing,
          "unlocked: `refuge cases` needs no passphrase and prints the same listing",
          p.out[:500] + p.err)
    p = as_alice("cases", "--json", passfile=gone)
    check(p.returncode == 0 and p.out == listing_json, "unlocked: `refuge cases --json` the same",
          p.err)
    p = as_alice("show", cid, passfile=gone)
    check(p.returncode == 0 and "unlock test" in p.out, "unlocked: `refuge show` reads the case",
          p.out[:500] + p.err)
    p = as_alice("sync", passfile=gone)
    check(p.returncode == 0, "unlocked: `refuge sync` works", p.out + p.err)

    # Bob's home is not Alice's
    bob.env["REFUGE_PASSPHRASE_FILE"] = gone
    p = bob.run("cases", ok=False)
    check(p.returncode != 0, "Alice's unlock does not unlock Bob's home", p.out + p.err)
    # another session keyring does not see it
    alice.env["REFUGE_PASSPHRASE_FILE"] = gone
    q = subprocess.run([sys.executable, "-c",
                        "import ctypes, os, sys; l = ctypes.CDLL(None); "
                        "l.syscall(%d, 1, None); os.execv(sys.argv[1], sys.argv[1:])" % SYS_KEYCTL,
                        BIN, "cases"], env=alice.env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
    alice.env["REFUGE_PASSPHRASE_FILE"] = good
    check(q.returncode != 0, "a refuge in another session keyring asks for the passphrase",
          (q.stdout + q.stderr).decode(errors="replace"))

    p = alice.run("lock")
    check("Locked" in p.out, "`refuge lock` says it forgot the key", p.out)
    check(refuge_keys() == [], "nothing kept after `refuge lock`", refuge_keys())
    p = as_alice("cases", passfile=gone)
    check(p.returncode != 0, "locked: the passphrase is asked again", p.out + p.err)
    p = alice.run("lock")
    check("Nothing was unlocked" in p.out, "locking twice says nothing was unlocked", p.out)

    # the desk's lock (here its idle lock) forgets a kept key too: "your keys
    # are forgotten" holds for the next `refuge desk`
    alice.run("unlock", "--for", "2")
    check(len(refuge_keys()) == 1, "unlocked again", refuge_keys())
    d = subprocess.run([BIN, "desk", "--no-open", "--port", str(free_port()), "--sync-every", "0",
                        "--idle-lock", "5s"], env=dict(alice.env, REFUGE_PASSPHRASE_FILE=gone),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    check(d.returncode == 0 and b"locked after" in d.stdout,
          "the desk opened with the kept key (no passphrase) and locked itself when idle",
          (d.stdout + d.stderr).decode(errors="replace"))
    check(refuge_keys() == [], "the desk's lock dropped the kept key", refuge_keys())
    # and with the passphrase everything is as before
    check(alice.run("cases").out == listing, "after lock, the passphrase opens the same listing")


if __name__ == "__main__":
    main(test)
