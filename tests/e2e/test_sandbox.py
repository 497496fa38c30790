#!/usr/bin/env python3
"""
The locked-down server, seen from outside (docs/hardening.md). Needs root
(it starts `refuge serve` as root and watches it drop); skipped otherwise.

  - As root, a data directory that belongs to root is refused (exit 2, the
    message names --user), and so is --user nobody on a directory that
    belongs to someone else (exit 2, the message gives the chown line).
  - `refuge serve --user nobody` on a directory given to nobody: the running
    process has nobody's uid and gid (real, effective, saved, filesystem),
    no supplementary groups, no capability (effective, permitted, bounding,
    ambient), no_new_privs, seccomp mode 2 (filter), core size limit 0, and
    is not dumpable: its /proc/PID files belong to root, and a process of the
    same uid can neither ptrace-attach to it nor open /proc/PID/mem; in a
    build without ASan (whose mlock does nothing) it holds locked memory.
  - The whole journey still works under the sandbox: a codename, a message
    with a 3 MB file, the caseworker decrypts both, replies, the person
    reads the reply; the server stops cleanly (exit 0, LeakSanitizer's exit
    check ran inside the sandbox in sanitizer builds) and every file in the
    data directory belongs to nobody.
"""
import ctypes
import os
import pwd
import secrets
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (BIN, Person, Server, Skip, Staff, case_ids, check, json_strings, log, main,
                 sha256, sha256_file, tempdir)

PTRACE_ATTACH = 16
PTRACE_DETACH = 17


def status_fields(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def core_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    return None


def as_user_try(uid, gid, pid):
    """In a child running as uid/gid: ptrace-attach to pid and open its
    memory. Returns (ptrace errno, open errno); 0 means it worked."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
            rc = libc.ptrace(PTRACE_ATTACH, pid, None, None)
            perr = ctypes.get_errno() if rc != 0 else 0
            if rc == 0:
                libc.ptrace(PTRACE_DETACH, pid, None, None)
            try:
                os.close(os.open("/proc/%d/mem" % pid, os.O_RDONLY))
                merr = 0
            except OSError as e:
                merr = e.errno
            os.write(w, ("%d %d" % (perr, merr)).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(child, 0)
    p, m = out.split()
    return int(p), int(m)


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(d, n), uid, gid, follow_symlinks=False)


def owners(path):
    found = {}
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(d, n)
            found[os.path.relpath(p, path)] = os.lstat(p).st_uid
    return found


def refusals(srv, nobody):
    """Root-owned data directory: refused without --user, and with a --user
    who does not own it."""
    p = subprocess.run([BIN, "serve", "--data", srv.data, "--listen", "127.0.0.1:1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 2, "as root, a root-owned data directory is refused (exit 2, got %d)" %
          p.returncode, out)
    check("--user" in out and "refusing to serve as root" in out,
          "the refusal says it will not serve as root and names --user", out)
    p = subprocess.run([BIN, "serve", "--data", srv.data, "--listen", "127.0.0.1:1", "--user",
                        nobody.pw_name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 2, "--user nobody on a root-owned directory is refused (exit 2, got %d)"
          % p.returncode, out)
    check("chown -R %s:" % nobody.pw_name in out,
          "the refusal gives the chown line that fixes it", out)
    log("root-owned data directory refused, with and without --user")


def test():
    if os.geteuid() != 0:
        raise Skip("needs root (starts refuge serve as root and watches it drop to nobody)")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody on this system")

    srv = Server().init()
    refusals(srv, nobody)

    # nobody must reach the data directory: the temporary root is traverse-only
    os.chmod(srv.root, 0o711)
    chown_tree(srv.data, nobody.pw_uid, nobody.pw_gid)
    srv.start(extra=["--user", nobody.pw_name])
    pid = srv.proc.pid
    st = status_fields(pid)
    uids, gids = st["Uid"].split(), st["Gid"].split()
    check(uids == [str(nobody.pw_uid)] * 4,
          "the server runs as nobody (real, effective, saved, fs uid)", st["Uid"])
    check(gids == [str(nobody.pw_gid)] * 4, "the server runs with nobody's group", st["Gid"])
    check(st.get("Groups", "") == "", "no supplementary groups", st.get("Groups"))
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        check(int(st[cap], 16) == 0, "%s is empty" % cap, st[cap])
    check(st["NoNewPrivs"] == "1", "no_new_privs is set", st["NoNewPrivs"])
    check(st["Seccomp"] == "2", "a seccomp filter is in force (Seccomp: 2)", st["Seccomp"])
    check(core_limit(pid) == ["0", "0"], "core dumps are off (RLIMIT_CORE 0 0)", core_limit(pid))
    check(os.stat("/proc/%d/environ" % pid).st_uid == 0,
          "not dumpable: /proc/PID/environ belongs to root although the process is nobody's")
    perr, merr = as_user_try(nobody.pw_uid, nobody.pw_gid, pid)
    check(perr != 0, "a process of the same uid cannot ptrace-attach to the server")
    check(merr != 0, "a process of the same uid cannot open /proc/PID/mem")
    log("running as %s (uid %d), no capabilities, seccomp 2, no core, not ptrace-able (%s, %s)"
        % (nobody.pw_name, nobody.pw_uid, os.strerror(perr), os.strerror(merr)))
    # secrets in locked memory: sodium_malloc locks each allocation (ASan
    # makes mlock a no-op, so only a build without it can show this)
    with open("/proc/%d/maps" % pid) as f:
        asan = "libasan" in f.read()
    if asan:
        log("locked memory: not measurable under ASan (its mlock does nothing)")
    else:
        vmlck = int(st["VmLck"].split()[0])
        check(vmlck > 0, "the server holds locked memory (sodium_malloc'd secrets)", st["VmLck"])
        log("locked memory: %d kB (VmLck)" % vmlck)
    text = srv.output().decode("utf-8", "replace")
    log(([ln for ln in text.splitlines() if "Landlock" in ln] or ["no Landlock line"])[0])

    # the journey under the sandbox
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")
    person = Person(srv)
    person.new_codename()
    message = "Under the sandbox: " + secrets.token_hex(8)
    data = os.urandom(3 * 1024 * 1024)
    resp, _ = person.send(message, files=[("scan.pdf", "application/pdf", data)])
    check(resp.status == 200, "POST /send (message + 3 MB file) answered %d" % resp.status,
          resp.text[:1500])
    alice.run("sync")
    ids = case_ids(alice.json("cases", "--json"))
    check(len(ids) == 1, "the caseworker sees one case", ids)
    strings = json_strings(alice.json("show", ids[0], "--json"))
    check(message in strings, "the caseworker decrypts the message", strings[:20])
    out = tempdir("refuge-files-")
    alice.run("files", ids[0], "--out", out)
    got = [sha256_file(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns]
    check(sha256(data) in got, "the caseworker gets the 3 MB file back byte for byte")
    reply = "Reply under the sandbox " + secrets.token_hex(4)
    alice.run("reply", ids[0], "-m", reply)
    person.login()
    check(reply in person.inbox().page.text, "the person reads the reply")
    check(srv.proc.poll() is None, "the server is still running after the journey")
    log("journey under the sandbox: message, file, reply")

    rc = srv.stop_clean()
    check(rc == 0, "the server stops cleanly under the sandbox (exit 0, got %s)" % rc)
    wrong = {p: u for p, u in owners(srv.data).items() if u != nobody.pw_uid}
    check(not wrong, "every file in the data directory belongs to nobody", wrong)
    log("stopped cleanly; %d files in the data directory, all nobody's" % len(owners(srv.data)))


if __name__ == "__main__":
    main(test)
