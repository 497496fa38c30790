"""
A private Tor network on loopback, built with tor alone, for the onion test
(test_onion.py): 3 directory authorities and 4 relays (TestingTorNetwork),
plus any number of extra tors that use it (a tor for `refuge serve --onion`
with a control port, a client with a SOCKS port).

Written for this project after the shape of tor's own chutney "basic"
network; nothing of chutney is needed or used.

  - Keys are made here: each authority's v3 identity, signing key and
    certificate with `tor-gencert`, each node's relay identity with
    `tor --list-fingerprint`.
  - Every tor binds and connects on 127.0.0.1 only: Address 127.0.0.1, the
    DirAuthority lines name loopback ports (so no public authority is ever
    asked), no exit (ExitRelay 0, ExitPolicy reject *:*: no DNS, no
    connection leaves the relays), ClientUseIPv6 0, no DNSPort. Debian's tor
    is started with its own -f torrc and --defaults-torrc /dev/null, so
    /etc/tor/torrc (which may hold anything) is never read.
  - Voting every 10 s (TestingV3AuthInitialVotingInterval 10, 2 s vote and
    distribution delays): the first consensus comes in about 20-30 s.
  - Every tor runs in the foreground as a child of the test (RunAsDaemon 0);
    stop() sends SIGTERM and SIGKILLs a tor that has not gone within 5 s
    (ShutdownWaitLength 0 makes a healthy one go at once). Each also watches
    the test's own process (__OwningControllerProcess) and exits when it is
    gone, so a test killed by a timeout leaves no tor behind.

Python standard library only.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

TOR = shutil.which("tor") or "/usr/sbin/tor"
GENCERT = shutil.which("tor-gencert") or "/usr/bin/tor-gencert"

COMMON = """TestingTorNetwork 1
AssumeReachable 1
PathsNeededToBuildCircuits 0.25
TestingDirAuthVoteExit *
TestingDirAuthVoteGuard *
TestingDirAuthVoteHSDir *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
DataDirectory {dir}
RunAsDaemon 0
Nickname {nick}
ShutdownWaitLength 0
PidFile {dir}/pid
Log notice file {dir}/notice.log
SafeLogging 1
ClientUseIPv6 0
ClientUseIPv4 1
ClientPreferIPv6ORPort 0
DisableDebuggerAttachment 0
DormantCanceledByStartup 1
__OwningControllerProcess {owner}
{authorities}
"""

AUTHORITY = """SocksPort 0
ORPort 127.0.0.1:{orport}
DirPort 127.0.0.1:{dirport}
Address 127.0.0.1
ExitRelay 0
ExitPolicy reject *:*
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
ContactInfo {nick}@test.invalid
TestingV3AuthInitialVotingInterval 10
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
"""

RELAY = """SocksPort 0
ORPort 127.0.0.1:{orport}
DirPort 127.0.0.1:{dirport}
Address 127.0.0.1
ExitRelay 0
ExitPolicy reject *:*
ContactInfo {nick}@test.invalid
"""


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def available():
    """None if tor and tor-gencert run here, else why not."""
    for prog in (TOR, GENCERT):
        if not os.access(prog, os.X_OK):
            return "%s is not installed (apt-get install tor)" % prog
    return None


class Tor:
    """One tor process of the network."""

    def __init__(self, net, nick, extra):
        self.net = net
        self.nick = nick
        self.dir = os.path.join(net.root, nick)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.torrc = os.path.join(self.dir, "torrc")
        self.extra = extra
        self.proc = None

    def write_torrc(self):
        text = COMMON.format(dir=self.dir, nick=self.nick, owner=os.getpid(),
                             authorities=self.net.dirauth_lines())
        if os.environ.get("REFUGE_TOR_INFO_LOG") == "1":  # for a post-mortem
            text += "Log info file %s/info.log\n" % self.dir
        with open(self.torrc, "w") as f:
            f.write(text + self.extra)

    def start(self):
        self.write_torrc()
        log = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen([TOR, "-f", self.torrc, "--defaults-torrc", os.devnull],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        """Stops it; SIGKILL if it has not gone 5 s after SIGTERM."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def notice_log(self):
        try:
            with open(os.path.join(self.dir, "notice.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Network:
    """3 authorities + 4 relays on 127.0.0.1, and the tors added with add()."""

    AUTHORITIES = 3
    RELAYS = 4

    def __init__(self, root):
        self.root = root
        self.auths = []   # (Tor, orport, dirport, v3ident, fingerprint)
        self.tors = []

    def dirauth_lines(self):
        return "\n".join(
            "DirAuthority %s orport=%d no-v2 v3ident=%s 127.0.0.1:%d %s" %
            (t.nick, orport, v3, dirport, fp) for t, orport, dirport, v3, fp in self.auths)

    def _fingerprint(self, tor, orport):
        subprocess.run([TOR, "--list-fingerprint", "--defaults-torrc", os.devnull,
                        "-f", os.devnull, "--ignore-missing-torrc",
                        "--DataDirectory", tor.dir, "--ORPort", "127.0.0.1:%d" % orport,
                        "--Address", "127.0.0.1", "--Log", "err stdout"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        with open(os.path.join(tor.dir, "fingerprint")) as f:
            return f.read().split()[1]

    def _authority_keys(self, tor, dirport):
        keys = os.path.join(tor.dir, "keys")
        os.makedirs(keys, mode=0o700, exist_ok=True)
        subprocess.run([GENCERT, "--create-identity-key", "-m", "12",
                        "-a", "127.0.0.1:%d" % dirport, "--passphrase-fd", "0",
                        "-i", os.path.join(keys, "authority_identity_key"),
                        "-s", os.path.join(keys, "authority_signing_key"),
                        "-c", os.path.join(keys, "authority_certificate")],
                       input=b"\n", check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        with open(os.path.join(keys, "authority_certificate")) as f:
            m = re.search(r"^fingerprint ([0-9A-F]{40})", f.read(), re.M)
        return m.group(1)

    def build(self):
        """Makes every key and starts the 7 nodes."""
        for i in range(self.AUTHORITIES):
            orport, dirport = free_port(), free_port()
            t = Tor(self, "auth%d" % i, "")
            v3 = self._authority_keys(t, dirport)
            fp = self._fingerprint(t, orport)
            t.extra = AUTHORITY.format(orport=orport, dirport=dirport, nick=t.nick)
            self.auths.append((t, orport, dirport, v3, fp))
        for t, *_ in self.auths:
            self.tors.append(t.start())
        for i in range(self.RELAYS):
            orport, dirport = free_port(), free_port()
            t = Tor(self, "relay%d" % i,
                    RELAY.format(orport=orport, dirport=dirport, nick="relay%d" % i))
            self.tors.append(t.start())
        return self

    def add(self, nick, extra):
        """A further tor on this network (not started): extra is its own torrc lines."""
        t = Tor(self, nick, extra)
        self.tors.append(t)
        return t

    def dead(self):
        """The nodes of the network that have exited (a tor refusing its torrc)."""
        return [t for t in self.tors[:self.AUTHORITIES + self.RELAYS] if not t.alive()]

    def stop(self):
        for t in self.tors:
            t.stop()


# --------------------------------------------------------------------------
# a control-port and SOCKS client, just enough for the test


class Control:
    """A tor control connection authenticated with the cookie."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rwb")
        r = self.cmd("PROTOCOLINFO 1")
        m = re.search(r'COOKIEFILE="((?:[^"\\]|\\.)*)"', "\n".join(r))
        with open(m.group(1), "rb") as f:
            cookie = f.read()
        r = self.cmd("AUTHENTICATE " + cookie.hex())
        if not r or not r[-1].startswith("250"):
            raise OSError("tor refused the cookie: %r" % r)

    def cmd(self, line):
        """Sends one command; returns the reply's lines (data lines included)."""
        self.f.write(line.encode() + b"\r\n")
        self.f.flush()
        out = []
        while True:
            raw = self.f.readline()
            if not raw:
                raise OSError("tor closed the control connection")
            s = raw.decode("utf-8", "replace").rstrip("\r\n")
            out.append(s)
            if len(s) >= 4 and s[3] == "+":
                while True:
                    d = self.f.readline().decode("utf-8", "replace").rstrip("\r\n")
                    if d == ".":
                        break
                    out.append(d)
                continue
            if len(s) >= 4 and s[3] == " ":
                return out

    def getinfo(self, key):
        """The value of one GETINFO key (multi-line values joined), or None."""
        r = self.cmd("GETINFO " + key)
        if not r or not r[-1].startswith("250"):
            return None
        first = r[0]
        if first.startswith("250+"):
            return "\n".join(r[1:-1])
        if first.startswith("250-") and "=" in first:
            return first.split("=", 1)[1]
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def socks5_connect(proxy_port, host, port, timeout=60):
    """A TCP connection to host:port through tor's SOCKS5 port; the name is
    resolved by tor (a .onion never leaves it as DNS)."""
    s = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
    try:
        s.sendall(b"\x05\x01\x00")
        if _recv(s, 2) != b"\x05\x00":
            raise OSError("SOCKS5: tor refused the no-auth method")
        h = host.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(h)]) + h + port.to_bytes(2, "big"))
        rep = _recv(s, 4)
        if rep[1] != 0:
            raise OSError("SOCKS5: tor answered 0x%02x for %s" % (rep[1], host))
        atyp = rep[3]
        _recv(s, {1: 4, 4: 16}.get(atyp, 0) or _recv(s, 1)[0])
        _recv(s, 2)
        return s
    except BaseException:
        s.close()
        raise


def _recv(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("SOCKS5: connection closed")
        out += chunk
    return out


# --------------------------------------------------------------------------
# reading an onion service's descriptor (rend-spec-v3 section 2.5), to see the
# proof-of-work parameters tor publishes in its encrypted part


def _sbox():
    sbox = [0] * 256
    p = q = 1
    while True:
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ (q << 1 | q >> 7) ^ (q << 2 | q >> 6) ^ (q << 3 | q >> 5) ^ (q << 4 | q >> 4)
        sbox[p] = (x ^ 0x63) & 0xFF
        if p == 1:
            break
    sbox[0] = 0x63
    return sbox


_SBOX = _sbox()


def _xt(a):
    return ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1


def _aes256_round_keys(key):
    w = [list(key[i:i + 4]) for i in range(0, 32, 4)]
    rcon = 1
    for i in range(8, 60):
        t = list(w[i - 1])
        if i % 8 == 0:
            t = [_SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _xt(rcon)
        elif i % 8 == 4:
            t = [_SBOX[b] for b in t]
        w.append([a ^ b for a, b in zip(w[i - 8], t)])
    return [sum(w[r * 4:r * 4 + 4], []) for r in range(15)]


def _aes_block(rk, block):
    s = [a ^ b for a, b in zip(block, rk[0])]
    for r in range(1, 15):
        s = [_SBOX[b] for b in s]
        s = [s[(i + 4 * (i % 4)) % 16] for i in range(16)]  # ShiftRows (column-major)
        if r != 14:
            m = []
            for c in range(4):
                a = s[4 * c:4 * c + 4]
                t = a[0] ^ a[1] ^ a[2] ^ a[3]
                m += [a[i] ^ t ^ _xt(a[i] ^ a[(i + 1) % 4]) for i in range(4)]
            s = m
        s = [a ^ b for a, b in zip(s, rk[r])]
    return bytes(s)


def aes256_ctr(key, iv, data):
    rk = _aes256_round_keys(key)
    ctr = int.from_bytes(iv, "big")
    out = bytearray()
    for i in range(0, len(data), 16):
        ks = _aes_block(rk, list(ctr.to_bytes(16, "big")))
        out += bytes(a ^ b for a, b in zip(data[i:i + 16], ks))
        ctr = (ctr + 1) % (1 << 128)
    return bytes(out)


def _b32decode(s):
    import base64
    s = s.upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def _message(text, keyword):
    import base64
    m = re.search(keyword + r"\n-----BEGIN MESSAGE-----\n(.*?)\n-----END MESSAGE-----",
                  text, re.S)
    return base64.b64decode(m.group(1).replace("\n", "")) if m else None


def _layer(blob, blinded, subcred, revision, constant):
    import hashlib
    import hmac
    salt, enc, mac = blob[:16], blob[16:-32], blob[-32:]
    keys = hashlib.shake_256(blinded + subcred + revision.to_bytes(8, "big") + salt +
                             constant).digest(32 + 16 + 32)
    key, iv, mac_key = keys[:32], keys[32:48], keys[48:]
    want = hashlib.sha3_256(len(mac_key).to_bytes(8, "big") + mac_key +
                            len(salt).to_bytes(8, "big") + salt + enc).digest()
    if not hmac.compare_digest(want, mac):
        raise ValueError("descriptor layer MAC mismatch")
    return aes256_ctr(key, iv, enc).rstrip(b"\0").decode("utf-8", "replace")


def descriptor_inner(desc, onion):
    """The plaintext of a v3 descriptor's inner (second) layer: the
    introduction points and, where the service has it on, pow-params."""
    import base64
    import hashlib
    pubkey = _b32decode(onion.replace(".onion", ""))[:32]
    m = re.search(r"descriptor-signing-key-cert\n-----BEGIN ED25519 CERT-----\n(.*?)\n-----END",
                  desc, re.S)
    cert = base64.b64decode(m.group(1).replace("\n", ""))
    blinded = None
    off, n_ext = 39, cert[39]
    off += 1
    for _ in range(n_ext):
        ln, typ = int.from_bytes(cert[off:off + 2], "big"), cert[off + 2]
        if typ == 4:
            blinded = cert[off + 4:off + 4 + ln]
        off += 4 + ln
    revision = int(re.search(r"^revision-counter (\d+)", desc, re.M).group(1))
    cred = hashlib.sha3_256(b"credential" + pubkey).digest()
    subcred = hashlib.sha3_256(b"subcredential" + cred + blinded).digest()
    outer = _layer(_message(desc, "superencrypted"), blinded, subcred, revision,
                   b"hsdir-superencrypted-data")
    return _layer(_message(outer, "encrypted"), blinded, subcred, revision,
                  b"hsdir-encrypted-data")
