#!/usr/bin/env python3
"""
bench/sync.py (run by bench/sync.sh): staff sync and listing at scale.

A real server and team (Alice, Bob; tests/e2e/lib.py). The server is
stopped and its store filled directly (bench/syncfill.c) with NCASES cases
(a person's source and sealed intake each) and NEVENTS events signed by
Alice, as the CLI makes them in the team's format: by default format 2
(docs/protocol.md 12: a case key per case, sealed to the roster, and each
event sealed under it) with Alice's checkpoint over every event (13), as
her client posts it after a sync; then it serves again and Bob, whose home
has synced nothing yet, runs:
- `refuge sync` cold: every object listed, downloaded, opened, verified
  and digested into his local case database; three times (SYNC_BENCH_COLD_RUNS),
  each from his home as it was before (cache removed), the median the figure;
- `refuge sync` again with nothing new (warm), median of 5;
- `refuge cases` and `refuge cases --json` from the local cache, median of 5,
  after `refuge unlock` (as a caseworker at work runs them), and `refuge
  cases` with the passphrase each time (its Argon2id included).
Each figure is printed beside the reference from the same run: the bare
public-key work of a sync on every core (bench/syncfill.c --floor), so the
ratio says how close the sync is to what its format allows.
SYNC_BENCH_PERF=FILE records the cold sync's client with `perf record -e
cpu-clock --call-graph dwarf` (SYNC_BENCH_PERF_FREQ samples a second, default
4000: lower it at full size). SYNC_BENCH_FORMAT=1 fills today's version 1
events instead of format 2 (case keys, events version 2). SYNC_BENCH_KEEP=DIR
copies Bob's synced home there at the end (REFUGE_HOME=DIR/home,
REFUGE_PASSPHRASE_FILE=DIR/passphrase) to profile the listing on it.
"""
import ctypes
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from lib import BIN, Server, check, log, main, make_team  # noqa: E402

NCASES = int(os.environ.get("SYNC_BENCH_CASES", "100000"))
NEVENTS = int(os.environ.get("SYNC_BENCH_EVENTS", "1000000"))
FILL = os.environ.get("SYNC_BENCH_FILL") or os.path.join(ROOT, "build", "bench",
                                                          "refuge-bench-syncfill")
FORMAT = os.environ.get("SYNC_BENCH_FORMAT", "2")
COLD_S, WARM_S, LIST_MS = 30.0, 1.0, 100.0
COLD_RUNS = int(os.environ.get("SYNC_BENCH_COLD_RUNS", "3"))


def timed_run(member, *args, timeout=7200, phases=None):
    """(seconds, CPU seconds, stdout); phases, a list: the command's
    REFUGE_PHASES marks appended, (name, seconds)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(member.env, REFUGE_PHASES="1") if phases is not None else member.env
    t = time.perf_counter()
    p = subprocess.run([BIN] + list(args), env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    check(p.returncode == 0, "refuge %s" % " ".join(args), p.stderr[-600:])
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    for line in p.stderr.decode("utf-8", "replace").splitlines():
        if phases is not None and line.startswith("phase "):
            name, secs = line[6:].rsplit(" ", 1)
            phases.append((name, float(secs)))
    return dt, cpu, p.stdout.decode("utf-8", "replace")


def bench():
    ncpu = len(os.sched_getaffinity(0))
    floor = subprocess.run([FILL, "--floor", "2"], capture_output=True, text=True, check=True).stdout
    fl = {l.split()[0]: float(l.split()[1]) for l in floor.splitlines() if l.strip()}
    per_s = fl["floor_open_verify_per_s"]
    us_open, us_verify = fl["floor_open_us_per_core"], fl["floor_verify_us_per_core"]

    srv = Server().init().start()
    alice, bob = make_team(srv, ("Alice", "Bob"))
    srv.stop()
    log("filling the server: %d cases, %d events" % (NCASES, NEVENTS))
    t = time.time()
    r = subprocess.run([FILL, srv.data, str(NCASES), str(NEVENTS), FORMAT], env=alice.env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=7200)
    check(r.returncode == 0, "syncfill filled the server", r.stdout + r.stderr)
    fill_s = time.time() - t
    srv.restart()

    def server_cpu():
        with open("/proc/%d/stat" % srv.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    srv_cpu0 = server_cpu()
    phases, cold_runs = [], []
    if os.environ.get("SYNC_BENCH_PERF"):
        perf_args = ["perf", "record", "-e", "cpu-clock", "-F",
                     os.environ.get("SYNC_BENCH_PERF_FREQ", "4000"), "--call-graph", "dwarf", "-o",
                     os.environ["SYNC_BENCH_PERF"], "--", BIN, "sync"]
        t = time.perf_counter()
        p = subprocess.run(perf_args, env=bob.env, stdin=subprocess.DEVNULL, capture_output=True)
        cold, cold_cpu, out = time.perf_counter() - t, 0.0, p.stdout.decode()
        check(p.returncode == 0, "perf record refuge sync", p.stderr[-600:])
    else:
        # COLD_RUNS cold syncs, each from Bob's home as it was before any
        # (his cache removed): the median is the figure, every run printed
        fresh = os.path.join(os.path.dirname(bob.env["REFUGE_HOME"]), "home-before-sync")
        subprocess.run(["cp", "-a", bob.env["REFUGE_HOME"], fresh], check=True)
        runs = []
        for k in range(COLD_RUNS):
            if k:
                subprocess.run(["rm", "-rf", bob.env["REFUGE_HOME"]], check=True)
                subprocess.run(["cp", "-a", fresh, bob.env["REFUGE_HOME"]], check=True)
            # what the fill and the run before wrote is on the disk first, so
            # that its writeback is not part of this run (the page cache is
            # kept: a caseworker's machine is not flushing a server's gigabyte)
            os.sync()
            ph = []
            runs.append(timed_run(bob, "sync", phases=ph) + (ph,))
        cold_runs = [r[0] for r in runs]
        cold, cold_cpu, out, phases = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    srv_cpu = (server_cpu() - srv_cpu0) / (1 if os.environ.get("SYNC_BENCH_PERF") else COLD_RUNS)
    nkeys = NCASES if FORMAT == "2" else 0  # a CASEKEY object per case in format 2
    check("Synced %d new objects" % (NCASES + nkeys + NEVENTS) in out,
          "the cold sync took every object", out)
    check("unverified" not in out, "no event was refused", out)
    check(NEVENTS == 0 or "events verified by Alice's checkpoint" in out,
          "the cold sync used the admin's checkpoint", out)
    warm = [timed_run(bob, "sync")[0] for _ in range(5)]
    warm_out = timed_run(bob, "sync")[2]
    check("Synced 0 new objects" in warm_out, "the warm sync found nothing new", warm_out)
    # the listing as a caseworker at work runs it: after `refuge unlock`
    # (the key kept in this process's own session keyring, joined fresh so
    # it never reaches the runner's), and each command alone with the
    # passphrase (Argon2id included)
    ctypes.CDLL(None).syscall(250, 1, None)  # keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)
    runs_pass = [timed_run(bob, "cases") for _ in range(5)]
    lst_pass = [r[0] for r in runs_pass]
    timed_run(bob, "unlock", "--for", "5")
    runs = [timed_run(bob, "cases") for _ in range(5)]
    lst = [r[0] for r in runs]
    # with the passphrase the rows are read (ahead, while Argon2id runs);
    # unlocked, the board pages (docs/protocol.md 16): the same bytes
    check(runs[-1][2] == runs_pass[-1][2] and runs[-1][2].count("\n") > NCASES,
          "the listing from the board pages is the listing from the rows",
          (len(runs[-1][2]), len(runs_pass[-1][2])))
    lst_json = [timed_run(bob, "cases", "--json")[0] for _ in range(5)]
    timed_run(bob, "lock")
    srv.stop()
    if os.environ.get("SYNC_BENCH_KEEP"):  # the synced caseworker, for profiling the listing
        subprocess.run(["cp", "-a", bob.home, os.environ["SYNC_BENCH_KEEP"]], check=True)

    nobj = NCASES + nkeys + NEVENTS
    # the floor of today's format (1): one open per object, one verify per
    # event, on every core, from the all-CPU pair rate (the single-core
    # figures only split it into open and verify: measured alone they suffer
    # more from other load); of format 2 with a checkpoint: one open per
    # intake and per case key, nothing public-key per event
    floor1_s = (NEVENTS + NCASES * us_open / (us_open + us_verify)) / per_s
    open_per_s = per_s * (us_open + us_verify) / us_open
    floor_s = floor1_s if FORMAT == "1" else 2 * NCASES / open_per_s
    print("sync_fixture %d cases, %d events (%d objects); filled in %.0f s (%s)" % (
        NCASES, NEVENTS, nobj, fill_s, r.stdout.strip()))
    print("sync_cold_s %.1f  (%s%.0f objects/s; CPU: client %.1f s = %.0f us/object, server "
          "%.1f s = %.0f us/object)" % (
              cold, "median of %d cold syncs: %s; " % (
                  len(cold_runs), ", ".join("%.1f" % c for c in cold_runs)) if cold_runs else "",
              nobj / cold, cold_cpu, cold_cpu * 1e6 / nobj, srv_cpu, srv_cpu * 1e6 / nobj))
    if phases:
        print("sync_cold_phases %s  (REFUGE_PHASES)" % "; ".join(
            "%s %.1f s" % (name, secs) for name, secs in phases))
    print("reference_open_verify_per_s %.0f  (crypto_box_seal_open + Ed25519 verify on %d CPUs; "
          "one core: open %.1f us, verify %.1f us)" % (per_s, ncpu, us_open, us_verify))
    if FORMAT == "1":
        print("reference_floor_s %.1f  (an open per object and a verify per event at that rate on "
              "%d CPUs, nothing else)" % (floor_s, ncpu))
    else:
        print("reference_floor_s %.1f  (format 2: an open per intake and per case key at that rate "
              "on %d CPUs, nothing else; format 1's floor for the same objects: %.1f s)" % (
                  floor_s, ncpu, floor1_s))
    print("ratio_cold_to_floor %.1f" % (cold / floor_s))
    print("sync_warm_s median %.3f  max %.3f  (nothing new, 5 runs)" % (
        statistics.median(warm), max(warm)))
    print("cases_list_ms median %.0f  max %.0f  (refuge cases after refuge unlock, a whole process, "
          "5 runs)" % (
        statistics.median(lst) * 1000, max(lst) * 1000))
    print("cases_json_ms median %.0f  max %.0f  (refuge cases --json, unlocked)" % (
        statistics.median(lst_json) * 1000, max(lst_json) * 1000))
    print("cases_list_passphrase_ms median %.0f  max %.0f  (refuge cases with the passphrase: its "
          "Argon2id included)" % (statistics.median(lst_pass) * 1000, max(lst_pass) * 1000))
    if NCASES < 100000 or NEVENTS < 1000000:
        k = (100000 + (100000 if FORMAT == "2" else 0) + 1000000) / nobj
        print("extrapolated_cold_s_at_100000_1000000 %.0f  (EXTRAPOLATION, not measured: "
              "cold time x %.1f, linear in objects; floor there %.0f s)" % (
                  cold * k, k, floor_s * k))
    print("load_average %s  (other work on this machine while measured)" %
          " ".join("%.2f" % v for v in os.getloadavg()))
    print("target_cold_under_%ds %s" % (COLD_S, "yes" if cold < COLD_S and NEVENTS >= 1000000
                                         else "NO" if cold >= COLD_S else "not measured at full size"))
    print("target_warm_under_%ds %s" % (WARM_S, "yes" if max(warm) < WARM_S else "NO"))
    print("target_list_under_%dms %s" % (LIST_MS, "yes" if max(lst) * 1000 < LIST_MS else "NO"))


if __name__ == "__main__":
    main(bench)
