#!/usr/bin/env python3
"""
`refuge serve --onion` on a private Tor network on loopback (tornet.py: 3
directory authorities and 4 relays made here with tor alone), through a
separate tor client's SOCKS port, by the .onion address. Needs tor
(scripts/deps.sh installs it with its service kept from starting); skipped
only when tor is not installed.

  - First start: the start-up line names the .onion address and says the
    proof-of-work defence is on; DATADIR/onion-key is mode 0600 and holds
    an ED25519-V3 key; DATADIR/onion-hostname holds the address; the key is
    in nothing refuge printed.
  - Restarts (one with --onion-no-pow, one with --onion-location): the same
    address each time, the key file still 0600.
  - Through the client tor, by the .onion address: the landing page; the
    caseworker enrolls and later syncs and replies with the real `refuge`
    client through the same SOCKS port (ALL_PROXY=socks5h://...); a person
    gets a codename, sends a message with a file, comes back with the
    codename and reads the reply.
  - PoW shown by tor itself: the descriptor the client tor fetched (GETINFO
    hs/client/desc/id/ADDR on its control port), decrypted here with the
    address (rend-spec-v3 2.5), carries "pow-params v1".
  - Onion-Location: the clear site's pages carry it, the onion's do not.
  - The server is sandboxed meanwhile (Seccomp: 2, NoNewPrivs: 1).
  - tor restarts (SIGTERM; SIGKILL if it hangs): refuge notices, reconnects,
    adds the service again, and the address answers again.
Every tor binds and connects on 127.0.0.1 only (tornet.py).
"""
import http.client
import json
import os
import re
import secrets
import stat
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tornet  # noqa: E402
from lib import (Browser, Member, Person, Server, Skip, TestFailure, case_ids, check,  # noqa: E402
                 free_port, json_strings, log, main, on_cleanup, parse_fingerprint, run, sha256,
                 sha256_file, tempdir)

ONION_RE = re.compile(r"onion service: http://([a-z2-7]{56}\.onion)/ \(proof-of-work defence "
                      r"(on|off)\)")


class OnionConnection(http.client.HTTPConnection):
    """http.client through the client tor's SOCKS port for a .onion host."""
    socks_port = None

    def connect(self):
        if self.host.endswith(".onion"):
            self.sock = tornet.socks5_connect(self.socks_port, self.host, self.port,
                                              timeout=self.timeout)
        else:
            super().connect()


class Site:
    """What lib.Person needs of a server: its URL."""

    def __init__(self, url):
        self.url = url


def stdout_len(srv):
    return os.path.getsize(srv.stdout_path)


def stderr_since(srv, since):
    with open(srv.stderr_path, "rb") as f:
        f.seek(since)
        return f.read()


def start_line(srv, since, timeout=60):
    """The (address, pow) of the start-up line refuge printed on stdout
    after byte `since`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(srv.stdout_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        m = ONION_RE.search(text)
        if m:
            return m.group(1), m.group(2)
        if srv.proc is not None and srv.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise TestFailure("refuge serve --onion printed no onion start-up line:\n" +
                      srv.output().decode("utf-8", "replace")[-3000:])


def key_file_checks(srv):
    path = os.path.join(srv.data, "onion-key")
    st = os.stat(path)
    check(stat.S_IMODE(st.st_mode) == 0o600, "onion-key is mode 0600 (got %o)" %
          stat.S_IMODE(st.st_mode))
    with open(path) as f:
        key = f.read().strip()
    check(re.fullmatch(r"ED25519-V3:[A-Za-z0-9+/]{86}==", key), "onion-key holds an ED25519-V3 key")
    return key


def wait_onion(url, timeout, what, before_try=None, try_timeout=30):
    """GET / through tor until it answers 200; returns the response."""
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        if before_try:
            before_try()
        try:
            r = Browser(url).request("GET", "/", timeout=try_timeout)
            if r.status == 200:
                log("%s: the onion answered after %.0f s" % (what, time.time() - t0))
                return r
            last = "status %d" % r.status
        except TestFailure as e:
            last = str(e)
        time.sleep(1)
    raise TestFailure("%s: %s did not answer through tor within %d s (last: %s)" %
                      (what, url, timeout, last))


def inet_sockets():
    """inode -> (proto, local addr, remote addr) of every TCP/UDP socket."""
    out = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open("/proc/net/" + proto) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            out[cols[9]] = (proto, cols[1].split(":")[0], cols[2].split(":")[0])
    return out


def off_loopback(pids):
    """The sockets of these processes with an end neither loopback nor
    unbound/unconnected: ([(pid, proto, local, remote)] in /proc's hex, how
    many sockets were looked at)."""
    socks = inet_sockets()
    ok = {"0100007F", "00000000",  # 127.0.0.1, unbound
          "00000000000000000000000001000000", "00000000000000000000000000000000"}  # ::1, ::
    bad, seen = [], 0
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", target)
            if m and m.group(1) in socks:
                proto, local, remote = socks[m.group(1)]
                seen += 1
                if local not in ok or remote not in ok:
                    bad.append((pid, proto, local, remote))
    return bad, seen


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def onion_up_metric(port):
    """refuge_onion_service_up from refuge serve --metrics (None if absent)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        text = r.read().decode()
    m = re.search(r"^refuge_onion_service_up (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def test():
    why = tornet.available()
    if why:
        raise Skip(why)
    t0 = time.time()
    net = tornet.Network(tempdir("refuge-tornet-"))
    on_cleanup(net.stop)
    net.build()
    cport, client_cport, socks = tornet.free_port(), tornet.free_port(), tornet.free_port()
    svc_tor = net.add("service", "SocksPort 0\nControlPort 127.0.0.1:%d\n"
                      "CookieAuthentication 1\n" % cport).start()
    client_tor = net.add("client", "SocksPort 127.0.0.1:%d\nControlPort 127.0.0.1:%d\n"
                         "CookieAuthentication 1\n" % (socks, client_cport)).start()
    log("private Tor network: 3 authorities, 4 relays, a service tor and a client tor "
        "(%.1f s)" % (time.time() - t0))

    onion = ["--onion", "--tor-control", "127.0.0.1:%d" % cport]
    srv = Server().init()
    srv.start(onion)
    addr, pow_ = start_line(srv, 0)
    check(pow_ == "on", "the start-up line says the proof-of-work defence is on")
    key = key_file_checks(srv)
    with open(os.path.join(srv.data, "onion-hostname")) as f:
        check(f.read().strip() == addr, "onion-hostname holds the address of the start-up line")
    check(key.split(":", 1)[1].encode() not in srv.output(), "refuge never prints the key")
    log("first start: %s, PoW on, key 0600" % addr)

    # restarts: the same address (one without PoW, then with Onion-Location);
    # from now on with the metrics listener (issue 8), whose onion gauge follows
    mport = free_port()
    for extra, want_pow in ((["--onion-no-pow"], "off"),
                            (["--onion-location", "http://%s/" % addr], "on")):
        check(srv.stop() == 0, "refuge serve --onion stops cleanly on SIGTERM")
        since = stdout_len(srv)
        srv.restart(onion + extra + ["--metrics", "127.0.0.1:%d" % mport])
        again, pow_ = start_line(srv, since)
        check(again == addr, "after a restart the address is the same (%s, then %s)" %
              (addr, again))
        check(pow_ == want_pow, "with %s the defence is %s" % (extra[0], want_pow))
        check(key_file_checks(srv) == key, "the key file is unchanged by a restart")
    log("restarts: same address, key still 0600")
    check(onion_up_metric(mport) == 1, "the metrics say the onion service is up")
    p = run(["server", "status", "--data", srv.data, "--json"])
    check(p.returncode == 0 and json.loads(p.out)["onion"] == addr,
          "refuge server status shows the onion address", p.out + p.err)
    check(b"onion-key" not in p.stdout and key.split(":", 1)[1].encode() not in p.stdout,
          "status never shows the key")

    # the server is still sandboxed
    st = proc_status(srv.pid)
    check(st.get("Seccomp") == "2", "refuge serve --onion runs under seccomp (Seccomp: %s)" %
          st.get("Seccomp"))
    check(st.get("NoNewPrivs") == "1", "refuge serve --onion has no_new_privs")

    # through tor, by the .onion address
    Browser.connection_class = OnionConnection
    OnionConnection.socks_port = socks
    url = "http://" + addr
    def forget_first():
        """A descriptor the client fetched before the last restart names
        introduction points that are gone: the client forgets it and fetches
        the one the service tor uploads after the re-add (on a loaded machine
        that upload comes late)."""
        ctl = tornet.Control(client_cport)
        ctl.cmd("SIGNAL NEWNYM")
        ctl.close()
    r = wait_onion(url, 240, "first publication", before_try=forget_first, try_timeout=20)
    check(r.header("onion-location") is None, "the onion's own pages carry no Onion-Location")
    for _ in range(2):  # the landing page is a cached response: once made, once from the cache
        clear = Browser(srv.url).get("/")
        check(clear.header("onion-location") == "http://%s/" % addr,
              "the clear site's landing page carries Onion-Location: http://%s/ (got %r)" %
              (addr, clear.header("onion-location")))
        check(Browser(srv.url).get("/login").header("onion-location") == "http://%s/" % addr,
              "the clear site's login page carries Onion-Location")
        r = Browser(url).get("/")
        check(r.status == 200 and r.header("onion-location") is None,
              "the onion's landing page never carries Onion-Location, before or after the "
              "clear site's")

    # PoW, as tor publishes it: the descriptor the client fetched
    ctl = tornet.Control(client_cport)
    desc = ctl.getinfo("hs/client/desc/id/" + addr[:-len(".onion")])
    ctl.close()
    check(desc, "the client tor holds the service's descriptor (GETINFO hs/client/desc/id)")
    inner = tornet.descriptor_inner(desc, addr)
    check(re.search(r"^pow-params v1 \S+ \d+ \S+$", inner, re.M),
          "the service's descriptor carries pow-params v1 (tor's PoW defence is on)",
          inner[:1500])
    log("the descriptor the client fetched has %s" %
        re.search(r"^pow-params .*$", inner, re.M).group(0)[:40])

    # the caseworker, through the same SOCKS port
    alice = Member("Alice")
    alice.env["ALL_PROXY"] = "socks5h://127.0.0.1:%d" % socks
    alice.env.pop("NO_PROXY", None)
    alice.env.pop("no_proxy", None)
    p = alice.run("init", "--server", url, "--token", srv.token, "--name", "Alice")
    alice.fp = parse_fingerprint(p.out)

    # the person, through tor
    site = Site(url)
    person = Person(site)
    person.new_codename()
    message = "Written over the onion, " + secrets.token_hex(8)
    data = os.urandom(300 * 1024)
    resp, _ = person.send(message, files=[("passport.jpg", "image/jpeg", data)])
    check(resp.status == 200, "POST /send over the onion answered %d" % resp.status,
          resp.text[:1500])
    check("error" not in resp.page.title.lower(), "POST /send over the onion shows no error",
          resp.page.text[:1500])
    log("the person sent a message with a file over the onion")

    alice.run("sync", timeout=300)
    ids = case_ids(alice.json("cases", "--json"))
    check(len(ids) == 1, "the caseworker sees one case", ids)
    case = ids[0]
    check(message in json_strings(alice.json("show", case, "--json")),
          "the caseworker reads the message")
    out = tempdir("refuge-files-")
    alice.run("files", case, "--out", out)
    got = [sha256_file(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns]
    check(sha256(data) in got, "the caseworker gets the file back byte for byte")
    reply = "We read you, over the onion " + secrets.token_hex(6)
    alice.run("reply", case, "-m", reply)
    r = person.login(person.codename)
    check(r.status == 200, "POST /login over the onion answered %d" % r.status, r.text[:800])
    check(reply in person.inbox().page.text, "the person reads the reply over the onion")
    log("journey over the onion done")

    # nothing of this left loopback: every socket of every tor and of refuge
    pids = [t.proc.pid for t in net.tors if t.alive()] + [srv.pid]
    bad, seen = off_loopback(pids)
    check(seen > len(pids), "the tors and refuge hold sockets (%d seen)" % seen)
    check(not bad, "every socket of the %d tors and of refuge is on 127.0.0.1" % (len(pids) - 1),
          bad)
    log("%d sockets of %d tors and refuge, all on 127.0.0.1" % (seen, len(pids) - 1))

    # tor restarts: refuge adds the service again
    since = os.path.getsize(srv.stderr_path)
    svc_tor.stop()
    svc_tor.start()
    deadline = time.time() + 90
    while b"onion service added again" not in stderr_since(srv, since):
        check(time.time() < deadline, "refuge added the service again within 90 s of tor's "
              "restart", stderr_since(srv, since).decode("utf-8", "replace")[-2000:])
        check(srv.proc.poll() is None, "refuge serve is still running after tor restarted",
              stderr_since(srv, since).decode("utf-8", "replace")[-2000:])
        time.sleep(0.2)
    text = stderr_since(srv, since).decode("utf-8", "replace")
    check("lost the control connection to tor" in text, "refuge says it lost tor", text)
    check(onion_up_metric(mport) == 1, "the onion metric is up again after tor's restart")

    def forget():
        """The client forgets the descriptor it has (its introduction points
        died with the old tor): it fetches the service's new one, once the
        service tor has uploaded it (a second or two after the re-add)."""
        ctl = tornet.Control(client_cport)
        ctl.cmd("SIGNAL NEWNYM")
        ctl.close()
    wait_onion(url, 120, "after tor restarted", before_try=forget, try_timeout=12)
    r = person.login(person.codename)
    check(reply in person.inbox().page.text, "after tor's restart the person logs in again")
    st = proc_status(srv.pid)
    check(st.get("Seccomp") == "2", "still under seccomp after reconnecting")

    Browser.connection_class = http.client.HTTPConnection
    srv.stop_clean()
    check(key.split(":", 1)[1].encode() not in srv.output(), "refuge never prints the key")
    log("done in %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    main(test)
