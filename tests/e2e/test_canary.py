#!/usr/bin/env python3
"""
Server seized, disk imaged (DESIGN.md threat model): nothing a person typed or
uploaded, and no codename, may be found at rest or in the server's output.

Two people (one writing in Russian, one in English) send unique random canary
strings in the intake answers, the message, a file name and a file's content;
a caseworker replies with another canary. Then every byte under the data
directory and the server's temporary directory (database, WAL, SHM, blobs,
temporary files, everything) is searched for each canary and each codename in
their common encodings: UTF-8, UTF-16LE/BE, base64 at the three alignments
(standard and URL-safe), hex lower and upper, URL-encoded, reversed. Zero hits,
while the server runs and after it stopped. The server's stdout/stderr must
hold no canary and no run of codename words, and once the people have left
(quick exit) no codename may be left in the running server's memory (read
from /proc/PID/mem: a memory dump of a seized, running machine).
"""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Browser, Person, Server, Staff, case_ids, check, encodings, log, main,
                 rand_letters, search_tree, tempdir)


MEM_LABELS = ("utf-8", "url", "url+", "utf-16le")


def scan_memory(pid, needles):
    """Searches the server's writable memory for needles in the encodings
    that can sit in a buffer (UTF-8, URL-encoded form bodies, UTF-16)."""
    hits = []
    try:
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read().splitlines()
        mem = open("/proc/%d/mem" % pid, "rb", 0)
    except OSError as e:
        return None, str(e)
    with mem:
        for line in maps:
            parts = line.split()
            if "rw" not in parts[1]:
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if hi - lo > 1 << 30:
                continue  # sanitizer shadow memory
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            for what, label, pat in needles:
                if label in MEM_LABELS and pat in data:
                    hits.append("%s (%s) in %s" % (what, label, " ".join(parts[5:]) or "anon"))
    return hits, None


def self_check():
    """The search finds every encoding it looks for (else a clean result means nothing)."""
    d = tempdir("refuge-canary-self-")
    s = "cnry" + rand_letters(24) + " тест"
    needles = [("planted", label, pat) for label, pat in encodings(s)]
    for i, (_, label, pat) in enumerate(needles):
        with open(os.path.join(d, "f%d" % i), "wb") as f:
            f.write(os.urandom(1000) + pat + os.urandom(1000))
    hits, _, _ = search_tree([d], needles)
    found = {h.split(" in ")[0] for h in hits}
    for _, label, _ in needles:
        check("planted (%s)" % label in found, "the search finds a planted %s copy" % label)
    # base64 of the plain text at every alignment, inside a longer text
    for off in range(3):
        blob = base64.b64encode(os.urandom(off) + s.encode() + os.urandom(5))
        with open(os.path.join(d, "b64-%d" % off), "wb") as f:
            f.write(blob)
        hits, _, _ = search_tree([d], needles)
        check(any("b64-%d" % off in h for h in hits),
              "the search finds base64 at alignment %d" % off)


PERSON_ADDRESS = "127.77.66.55"  # the people connect from here (any 127/8 works on Linux)


def test():
    self_check()
    Browser.source_address = PERSON_ADDRESS
    srv = Server()
    srv.init()
    tmp = os.path.join(srv.root, "tmp")
    os.makedirs(tmp)
    os.environ["TMPDIR"] = tmp  # the server's temporary files land where we search
    srv.start()

    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    core = "cnry" + rand_letters(24)          # in answers, message, file name, file
    core_msg2 = "cnry" + rand_letters(24)     # the English person's message
    core_reply = "cnry" + rand_letters(24)    # the caseworker's reply
    message = "Канарейка %s: секретное сообщение, не для сервера." % core
    file_bytes = (core.encode() * 4096) + os.urandom(65536) + (core.encode() * 4096)

    ru = Person(srv, lang="ru")
    ru.new_codename()
    resp, chosen = ru.send(message, files=[(core + ".jpg", "image/jpeg", file_bytes)],
                           field_text="ответ " + core)
    check(resp.status == 200, "POST /send answered %d" % resp.status, resp.text[:800])

    en = Person(srv, lang="en")
    en.new_codename()
    resp, _ = en.send("second person " + core_msg2, field_text=core_msg2)
    check(resp.status == 200, "POST /send (second person) answered %d" % resp.status,
          resp.text[:800])
    log("two people sent canaries; codenames %d and %d words" %
        (len(ru.codename.split()), len(en.codename.split())))

    alice.run("sync")
    cases = case_ids(alice.json("cases", "--json"))
    check(len(cases) == 2, "the caseworker sees the two cases", cases)
    for c in cases:
        alice.run("reply", c, "-m", "reply " + core_reply)
    # both people come back (a login derives keys from the codename again)
    for p in (ru, en):
        r = p.login()
        r = p.inbox()
        check(core_reply in r.page.text, "the reply reached the person", r.page.text[:1000])
        p.b.request("GET", "/exit")

    needles = []
    for what, s in (("canary", core), ("canary-msg2", core_msg2), ("canary-reply", core_reply),
                    ("message", message)):
        needles += [(what, label, pat) for label, pat in encodings(s)]
    # The server logs and stores no address: the people's own loopback address,
    # as text and as the 4 bytes of a sockaddr (and its IPv6-mapped text).
    needles += [("ip-address", "text", PERSON_ADDRESS.encode()),
                ("ip-address", "mapped", ("::ffff:" + PERSON_ADDRESS).encode()),
                ("ip-address", "binary", bytes([127, 77, 66, 55]))]
    for who, p in (("ru", ru), ("en", en)):
        words = p.codename.split()
        needles += [("codename-" + who, label, pat) for label, pat in encodings(p.codename)]
        for i in range(len(words) - 1):
            pair = words[i] + " " + words[i + 1]
            needles.append(("codename-%s words %d-%d" % (who, i, i + 1), "utf-8",
                            pair.encode("utf-8")))

    # the running server's memory once both sessions ended (quick exit): no
    # codename (sessions and pending codenames are wiped); residues of what
    # was sent are reported, not failed (they sit in HTTP buffers we do not own)
    mem_hits, err = scan_memory(srv.proc.pid, needles)
    if err:
        log("note: could not read server memory: %s" % err)
    else:
        cn = sorted({h for h in mem_hits if h.startswith("codename")})
        check(not cn, "a codename is still in the server's memory after the session ended", cn)
        rest = sorted(set(mem_hits) - set(cn))
        if rest:
            log("note: still in the running server's memory (not failed): %s" % rest[:8])
        else:
            log("server memory: no canary and no codename after the sessions ended")

    hits, files, total = search_tree([srv.data, tmp], needles)
    check(total >= len(file_bytes), "the data directory holds the upload's ciphertext "
          "(%d bytes in %d files)" % (total, files))
    check(not hits, "plaintext found at rest while the server runs", hits[:20])
    log("running: %d files, %d bytes searched for %d patterns: clean" %
        (files, total, len(needles)))

    srv.stop_clean()
    hits, files, total = search_tree([srv.data, tmp], needles)
    check(not hits, "plaintext found at rest after the server stopped", hits[:20])
    log("stopped: %d files, %d bytes: clean" % (files, total))

    out = srv.output()
    leaks = [what for what, label, pat in needles if label in ("utf-8", "text", "mapped") and pat in out]
    for p in (ru, en):
        w = p.codename.split()
        for i in range(len(w) - 2):
            if " ".join(w[i:i + 3]).encode() in out:
                leaks.append("codename words %d-%d" % (i, i + 2))
    check(not leaks, "the server printed what it must not", leaks)
    log("server output (%d bytes): clean" % len(out))


if __name__ == "__main__":
    main(test)
