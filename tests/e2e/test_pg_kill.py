#!/usr/bin/env python3
"""
Scale-out faults (issue 11, done-when 3): three `refuge serve` processes on
one PostgreSQL database and one data directory, a flood of submissions
spread over them; one process is killed with SIGKILL in the middle of the
flood, then PostgreSQL itself is stopped as a crash would stop it
(`pg_ctl stop -m immediate`) and started again.

Several people, each with a codename, logged in on one process and sending
there (person sessions live in one process's memory); a person whose
process died logs in again on a surviving one. Every submission carries a
unique marker and is remembered with its answer:
  acked    303 to /inbox?sent=1: the person read "sent";
  refused  any other answer (the "not saved" page during the outage...);
  unknown  no answer (the process was killed mid-request).
Asserted:
  - after the kill, both surviving processes keep acknowledging;
  - while PostgreSQL is down, no answer is an acknowledgement, and the
    person gets the "Not saved" page (503);
  - once PostgreSQL is back, both survivors acknowledge again within
    RECOVER_S seconds, without a restart of theirs, and a person can log in;
  - PostgreSQL restarted while the servers sit idle: the first page, the
    first submission and the caseworker's first sync after it all succeed;
  - the caseworker's real `refuge sync` then has every acknowledged
    submission, exactly once, and nothing that no one sent; a refused one
    is not stored.

PostgreSQL only (on SQLite one process owns a data directory): skipped on
SQLite with that reason. It needs its own throwaway cluster (it crashes
PostgreSQL, which would break the other tests sharing the suite's cluster),
made with scripts/pg-test; without PostgreSQL it says so (SKIP).

Knobs: PGKILL_CLIENTS (people, default 6), PGKILL_PHASE_S (seconds of flood
before and after each fault, default 6).
"""
import http.client
import os
import random
import re
import secrets
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import (Page, Person, Server, Skip, Staff, TestFailure, check, encode_multipart,  # noqa: E402
                 log, main, on_cleanup)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_TEST = os.path.join(REPO, "scripts", "pg-test")
CLIENTS = int(os.environ.get("PGKILL_CLIENTS", "6"))
PHASE_S = float(os.environ.get("PGKILL_PHASE_S", "6"))
OUTAGE_S = 3.0     # PostgreSQL stays down this long
RECOVER_S = 20.0   # after it is back, every survivor acknowledges within this
MARK_RE = re.compile(r"pgk-\d+-\d+-[0-9a-f]{8}")


class Sub:
    __slots__ = ("mark", "srv", "t0", "t1", "outcome", "status", "notsaved")

    def __init__(self, mark, srv):
        self.mark, self.srv = mark, srv
        self.t0 = time.monotonic()
        self.t1 = None
        self.outcome = self.status = None
        self.notsaved = False


def own_cluster():
    """A throwaway cluster of this test's own: it is crashed below."""
    if lib.DB != "postgresql":
        raise Skip("PostgreSQL only: several `refuge serve` processes share one database and "
                   "one data directory only on PostgreSQL (on SQLite one process owns DIR)")
    if not os.environ.get("REFUGE_TEST_PG"):
        raise Skip("REFUGE_TEST_DB=postgresql but no PostgreSQL: REFUGE_TEST_PG is not set "
                   "(scripts/check starts a throwaway cluster with scripts/pg-test)")
    d = "/tmp/refuge-pgkill-" + secrets.token_hex(6)
    p = subprocess.run([PG_TEST, "start", d], capture_output=True, text=True, timeout=180)
    if p.returncode == 77:
        raise Skip("no PostgreSQL server to crash: " + p.stderr.strip())
    check(p.returncode == 0, "scripts/pg-test start made this test's own cluster", p.stderr)
    on_cleanup(lambda: subprocess.run([PG_TEST, "stop", d], capture_output=True, timeout=180))
    os.environ["REFUGE_TEST_PG"] = p.stdout.strip()  # lib.pg_database: a database there
    return d


def pg(cmd, d):
    p = subprocess.run([PG_TEST, cmd, d], capture_output=True, text=True, timeout=180)
    check(p.returncode == 0, "scripts/pg-test %s" % cmd, p.stdout + p.stderr)


class Client(threading.Thread):
    """One person sending in a loop to the process they are logged in on."""

    def __init__(self, idx, servers, home, dead, stop, seed):
        super().__init__(daemon=True)
        self.idx = idx
        self.servers = servers
        self.home = home
        self.dead = dead      # indices of killed processes (the main thread's)
        self.stop = stop
        self.rnd = random.Random(seed)
        self.person = Person(servers[home])
        self.subs = []
        self.csrf = None
        self.moves = 0
        self.error = None

    def prepare(self):
        self.person.new_codename()
        r, _ = self.person.send("intake of person %d" % self.idx)
        check(r.status == 200, "the first message (intake) of person %d was sent" % self.idx,
              r.text[:500])
        self.csrf = self.inbox_csrf()
        check(self.csrf, "person %d's inbox has the send form" % self.idx)

    def inbox_csrf(self):
        r = self.person.b.request("GET", "/inbox")
        if r.status != 200:
            return None
        f = Page(r.text).form("/send")
        return dict(f.hidden()).get("csrf") if f else None

    def relogin(self):
        """Logs in again: on the same process, or on a live one if it died."""
        while not self.stop.is_set():
            if self.home in self.dead:
                live = [i for i in range(len(self.servers)) if i not in self.dead]
                self.home = live[self.idx % len(live)]
                self.person.server = self.servers[self.home]
                self.moves += 1
            try:
                r = self.person.login()
                if r.status == 200:
                    self.csrf = self.inbox_csrf()
                    if self.csrf:
                        return True
            except TestFailure:
                pass
            time.sleep(0.1)
        return False

    def post(self, text):
        body, ctype = encode_multipart([("csrf", self.csrf), ("text", text)])
        conn = http.client.HTTPConnection("127.0.0.1", self.servers[self.home].port, timeout=60)
        try:
            conn.request("POST", "/send", body=body, headers={
                "Content-Type": ctype,
                "Cookie": "; ".join("%s=%s" % kv for kv in self.person.b.cookies.items())})
            r = conn.getresponse()
            page = r.read().decode("utf-8", "replace")
            return r.status, r.getheader("Location") or "", page
        finally:
            conn.close()

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                if self.csrf is None and not self.relogin():
                    break
                n += 1
                mark = "pgk-%d-%d-%08x" % (self.idx, n, self.rnd.getrandbits(32))
                sub = Sub(mark, self.home)
                self.subs.append(sub)
                text = "flood %s %s" % (mark, "y" * self.rnd.randrange(100, 2000))
                try:
                    status, loc, page = self.post(text)
                except ConnectionRefusedError:  # the process is gone: nothing was sent
                    sub.t1, sub.outcome = time.monotonic(), "refused"
                    self.csrf = None
                    continue
                except (OSError, http.client.HTTPException):
                    sub.t1, sub.outcome = time.monotonic(), "unknown"
                    self.csrf = None
                    continue
                sub.t1, sub.status = time.monotonic(), status
                if status == 303 and loc.endswith("/inbox?sent=1"):
                    sub.outcome = "acked"
                else:
                    sub.outcome = "refused"
                    sub.notsaved = status == 503 and "Not saved" in page
                    if sub.notsaved:
                        time.sleep(0.05)  # the person tries again a moment later
                    else:
                        self.csrf = None  # session gone, busy...: log in afresh
        except Exception as e:  # reported by the main thread
            self.error = e


def test():
    pgdir = own_cluster()
    rnd = random.Random(os.environ.get("PGKILL_SEED") or os.urandom(8))
    first = Server().init().start()
    # the caseworker first: a process reads the roster (the line opens) when
    # it starts, so the other two start after the enrolment
    alice = Staff("Alice")
    alice.run("init", "--server", first.url, "--token", first.token, "--name", "Alice")
    servers = [first]
    for _ in range(2):
        s = Server()
        s.data = first.data  # one data directory, one database
        servers.append(s.start())
    victim = rnd.randrange(1, 3)  # not the caseworker's process: she syncs at the end

    stop = threading.Event()
    dead = set()
    clients = [Client(i, servers, i % 3, dead, stop, rnd.getrandbits(64))
               for i in range(CLIENTS)]
    for c in clients:
        c.prepare()
    log("3 processes on one database, %d people ready (each on one process)" % len(clients))
    for c in clients:
        c.start()

    def subs():
        return [s for c in clients for s in list(c.subs)]

    def acked_after(t, srv=None):
        return [s for s in subs() if s.outcome == "acked" and s.t0 > t and
                (srv is None or s.srv == srv)]

    def wait_acks(t, srvs, limit, what):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(acked_after(t, i) for i in srvs):
                return time.monotonic()
            if any(c.error for c in clients):
                raise next(c.error for c in clients if c.error)
            time.sleep(0.05)
        raise TestFailure("%s: no acknowledged submission within %.0f s on process(es) %s"
                          % (what, limit, [i for i in srvs if not acked_after(t, i)]))

    # -- a process killed in the middle of the flood
    t_start = time.monotonic()
    wait_acks(t_start, range(3), 60, "the flood on three processes")
    time.sleep(PHASE_S)
    before_kill = len(acked_after(t_start))
    t_kill = time.monotonic()
    servers[victim].kill()
    dead.add(victim)
    survivors = [i for i in range(3) if i != victim]
    wait_acks(t_kill, survivors, 30, "after process %d was killed" % victim)
    time.sleep(PHASE_S)
    after_kill = {i: len(acked_after(t_kill, i)) for i in survivors}
    log("process %d killed after %d acknowledged submissions; since then acknowledged by "
        "the survivors: %s" % (victim, before_kill, after_kill))

    # -- PostgreSQL crashed in the middle of the flood, then started again
    t_crash = time.monotonic()
    pg("crash", pgdir)
    t_down = time.monotonic()
    time.sleep(OUTAGE_S)
    t_restart = time.monotonic()
    pg("restart", pgdir)
    t_up = time.monotonic()
    t_back = wait_acks(t_up, survivors, RECOVER_S, "after PostgreSQL was started again")
    recovered = {i: min(s.t1 for s in acked_after(t_up, i)) - t_up for i in survivors}
    log("PostgreSQL down %.1f s (crash took %.1f s, start %.1f s); acknowledged again after "
        "%s s" % (t_up - t_down, t_down - t_crash, t_up - t_restart,
                  {i: round(v, 2) for i, v in recovered.items()}))
    # a login (reads) and a new person (writes) on every survivor, no restart
    for i in survivors:
        p = Person(servers[i])
        r = p.new_codename()
        r, _ = p.send("after the outage %d" % i)
        check(r.status == 200, "a new person sends on process %d after the outage" % i,
              r.text[:400])
        r = p.login()
        check(r.status == 200 and "/send" in r.text,
              "a person logs in on process %d after the outage" % i, r.text[:400])
    time.sleep(PHASE_S / 2)
    stop.set()
    for c in clients:
        c.join(120)
        check(not c.is_alive(), "client %d stopped" % c.idx)
        if c.error is not None:
            raise c.error

    # what the people were told
    all_subs = [s for s in subs() if s.outcome is not None]
    by = {k: [s for s in all_subs if s.outcome == k] for k in ("acked", "refused", "unknown")}
    during = [s for s in all_subs if s.t0 >= t_down and s.t1 is not None and s.t1 <= t_restart]
    false_acks = [s.mark for s in during if s.outcome == "acked"]
    check(not false_acks, "no submission is acknowledged while PostgreSQL is down (%d)"
          % len(false_acks), false_acks[:10])
    notsaved = [s for s in during if s.notsaved]
    check(notsaved, "during the outage the person reads the \"Not saved\" page (503): %d of "
          "%d answers" % (len(notsaved), len(during)),
          sorted(set((s.status, s.outcome) for s in during)))
    after_up = [s for s in all_subs if s.t0 >= t_up and s.outcome == "refused"]
    log("refused after PostgreSQL was back: %d %s" % (
        len(after_up), sorted(set((s.status, s.notsaved) for s in after_up))))
    log("submissions tried %d: acknowledged %d, refused %d (of them %d \"not saved\" while "
        "PostgreSQL was down), no answer %d; moved to a live process %d times"
        % (len(all_subs), len(by["acked"]), len(by["refused"]), len(notsaved),
           len(by["unknown"]), sum(c.moves for c in clients)))

    # a restart while the servers sit idle: their connections are stale, and
    # the first request of each kind must not pay for it. Each person first
    # logs in afresh: a session that met its daily quota in the flood (429)
    # or was told to log in again has no send form to post with.
    for c in clients[:len(survivors) * 2]:
        r = c.person.login()
        c.csrf = c.inbox_csrf() if r.status == 200 else None
        check(c.csrf, "person %d logs in again before the idle restart (%d)" % (c.idx, r.status))
    pg("restart", pgdir)
    for c in clients[:len(survivors) * 2]:
        r = c.person.b.request("GET", "/inbox")
        check(r.status == 200, "the first inbox after an idle restart of PostgreSQL (process "
              "%d) answered %d" % (c.home, r.status), r.text[:300])
        status, loc, _ = c.post("after the idle restart, person %d" % c.idx)
        check(status == 303 and loc.endswith("/inbox?sent=1"), "the first submission after an "
              "idle restart of PostgreSQL is acknowledged (process %d: %d)" % (c.home, status))

    # what the caseworker gets (its first sync after that restart)
    t1 = time.time()
    alice.run("sync", timeout=900)
    cases = alice.json("cases", "--json")["cases"]
    check(len(cases) == len(clients) + len(survivors),
          "one case per person (%d)" % len(cases), cases)
    seen = {}
    for case in cases:
        shown = alice.json("show", case["case"], "--json")
        for it in shown["items"]:
            check(it["kind"] != "unreadable", "every stored item decrypts", it)
            if it["kind"] == "message":
                for m in MARK_RE.findall(it.get("text", "")):
                    seen[m] = seen.get(m, 0) + 1
    twice = [m for m, k in seen.items() if k > 1]
    check(not twice, "no submission is stored twice (%d)" % len(twice), twice[:10])
    lost = [s.mark for s in by["acked"] if s.mark not in seen]
    check(not lost, "every acknowledged submission is there for the caseworker (%d of %d lost)"
          % (len(lost), len(by["acked"])), lost[:10])
    leaked = [(s.mark, s.status) for s in by["refused"] if s.mark in seen]
    check(not leaked, "no refused submission is stored (%d)" % len(leaked), leaked[:10])
    marks = {s.mark for s in all_subs}
    strangers = [m for m in seen if m not in marks]
    check(not strangers, "nothing is stored that no one sent", strangers[:10])
    stored_unknown = sum(1 for s in by["unknown"] if s.mark in seen)
    log("caseworker: %d messages synced through process 0, every acknowledged one once "
        "(%.1f s); of %d unanswered, %d stored" % (len(seen),
                                                  time.time() - t1, len(by["unknown"]),
                                                  stored_unknown))

    servers[victim].check_sanitizers()
    for i in survivors:
        servers[i].stop_clean()
    print("FIGURES pg_kill: 3 processes, %d people; acknowledged %d before the kill, %s by "
          "the survivors after it; PostgreSQL down %.1f s, acknowledged again after %s s; "
          "%d acknowledged in all, lost 0, twice 0"
          % (len(clients), before_kill, after_kill, t_up - t_down,
             {i: round(v, 2) for i, v in recovered.items()}, len(by["acked"])))


if __name__ == "__main__":
    main(test)
