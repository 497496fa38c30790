#!/usr/bin/env python3
"""
Every connection gets an answer: the server pinned to one CPU (as a
container's cpuset or `taskset -c 0` leaves it), with 128, then 512, then
1,000 keep-alive connections open at once (1,000 is the default connection
limit). All connections are opened first, then every one sends a request for
the landing page at the same moment, several rounds on the same connections:
each must get a 200 within ANSWER_MAX seconds, every round.

Before the fix, libmicrohttpd's own epoll loop slept up to the connection
timeout (60 s) whenever exactly 128 (or 256, ...) connections were ready at
once on one thread, with all their requests unanswered (2-33 req/s at 128
connections in the issue's benchmark): this test timed out then.
Also checked: the server logs the thread counts it chose from the one CPU it
may use (one KDF worker; HTTP threads: one per CPU but never more than 120
connections on one, so 9 for the default limit of 1,000).
"""
import os
import re
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Server, Skip, check, log, main

COUNTS = (128, 512, 1000)
ROUNDS = 3
ANSWER_MAX = 30.0  # seconds for every connection of a round (ASan build, shared machine)
REQ = b"GET / HTTP/1.1\r\nHost: refuge.test\r\n\r\n"


def start_pinned():
    """The server inherits this process's affinity: one CPU, from the start
    (threads it starts later inherit it too)."""
    mine = os.sched_getaffinity(0)
    cpu = min(mine)
    os.sched_setaffinity(0, {cpu})
    try:
        srv = Server().init().start()
    finally:
        os.sched_setaffinity(0, mine)
    return srv, cpu


def one_response(buf):
    """(status, bytes used) if buf holds a whole response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1")
    m = re.match(r"HTTP/1\.1 (\d+)", head)
    n = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
    if not m or not n:
        return (-1, len(buf))
    total = end + 4 + int(n.group(1))
    if len(buf) < total:
        return None
    return (int(m.group(1)), total)


def round_trip(socks, sel):
    """Sends one request on every connection at once; returns (statuses,
    connections not answered, seconds to the last answer)."""
    bufs = {s: b"" for s in socks}
    for s in socks:
        s.sendall(REQ)
    t0 = time.time()
    pending = set(socks)
    statuses = []
    last = 0.0
    while pending and time.time() - t0 < ANSWER_MAX:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            if s not in pending:
                continue
            try:
                got = s.recv(65536)
            except OSError:
                got = b""
            if not got:
                pending.discard(s)
                statuses.append(None)
                continue
            bufs[s] += got
            r = one_response(bufs[s])
            if r is not None:
                statuses.append(r[0])
                pending.discard(s)
                last = time.time() - t0
    return statuses, len(pending), last


def test():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(COUNTS) + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        raise Skip("needs %d open files (hard limit %d)" % (need, hard))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    srv, cpu = start_pinned()
    out = srv.output().decode("utf-8", "replace")
    check("CPUs in the affinity mask cpus=1" in out,
          "the server pinned to one CPU says it may use one", out[-2000:])
    check("KDF workers threads=1" in out, "and runs one KDF worker", out[-2000:])
    # HTTP threads: 1 per CPU, but at least the connection limit (2,000 by
    # default) / 120 (no thread with more than 120 connections: the file's head)
    check("HTTP threads threads=17" in out, "and 17 HTTP threads for 2,000 connections",
          out[-2000:])
    summary = []
    for n in COUNTS:
        sel = selectors.DefaultSelector()
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        time.sleep(0.5)  # all accepted, idle: the next requests arrive together
        for r in range(ROUNDS):
            statuses, unanswered, secs = round_trip(socks, sel)
            counts = {s: statuses.count(s) for s in set(statuses)}
            log("%d connections, round %d: %s, last answer after %.2f s" % (n, r + 1, counts, secs))
            check(unanswered == 0, "every one of %d connections is answered within %.0f s "
                  "(round %d; %d never answered)" % (n, ANSWER_MAX, r + 1, unanswered), counts)
            check(counts.get(200) == n, "every answer is 200 (%d connections)" % n, counts)
            summary.append("%d:%.1fs" % (n, secs))
        # while these n stay open and idle, a newcomer is still answered
        t0 = time.monotonic()
        fresh = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        fresh.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        head = fresh.recv(64)
        fresh.close()
        check(head.startswith(b"HTTP/1.1 200"),
              "with %d idle keep-alive connections held, a new connection is answered "
              "(%.0f ms)" % (n, (time.monotonic() - t0) * 1000), head)
        for s in socks:
            sel.unregister(s)
            s.close()
        sel.close()
        time.sleep(1)  # the server sees the closes before the next count
    log("pinned to CPU %d; last answers: %s" % (cpu, " ".join(summary)))
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
