#!/usr/bin/env python3
"""The Debian package, installed the way an admin installs it (issue 8, done-when 1).

`make deb` builds build-deb/refuge_VERSION_ARCH.deb with dpkg-buildpackage and
checks it with lintian (it fails on any error or warning that
debian/refuge.lintian-overrides does not list); the source tree's `git status`
is the same before and after. Then, in a fresh Debian 12 root made by
mmdebstrap from the mirror this machine uses (/etc/apt/sources.list.d/ or
REFUGE_DEB_MIRROR), with systemd and man-db installed as on a VPS but not
running (no systemd as PID 1 here):

  - `apt-get install ./refuge_*.deb` resolves the dependencies; postinst
    creates the system user refuge, /var/lib/refuge (0700, refuge's) with a new
    instance in it, and tells the admin the next step (`refuge server token`,
    run as refuge), without printing a token into apt's logs;
  - refuge.service is enabled, refuge-backup.timer is not (off by default);
  - `systemd-analyze verify` accepts the three units and
    `systemd-analyze security --offline=yes refuge.service` scores 2.0 or less;
  - the man pages render with `man -l` without warnings and cover every
    client subcommand (refuge.1), every `refuge server` subcommand
    (refuge-server.8) and every flag of `refuge serve` (refuge-serve.8);
  - the unit's ExecStart, with its Environment= and EnvironmentFile= (the
    conffile /etc/refuge/refuge.conf, edited here to pick a free port), its
    User=/Group=, UMask= and Limit*=, runs inside the root as refuge and
    serves the landing page to a client outside the root on loopback, with
    no capability, no_new_privs and its own seccomp filter; it stops cleanly
    on SIGTERM;
  - `apt-get purge` keeps /var/lib/refuge (the data) and removes the
    configuration; a reinstall finds the instance and keeps it; with
    /etc/refuge/purge-removes-data, or REFUGE_PURGE_DATA=yes, the purge
    removes the data too.

Cached between runs in build-deb/cache/: the root's tarball and the .debs apt
downloaded, so a second run needs no network. REFUGE_DEB_FRESH=1 makes the
root again. Needs root (chroot, mounts in a private mount namespace). Exits 77
only when the Debian mirror cannot be reached and nothing is cached.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import (REPO, Person, Skip, Staff, TestFailure, check, free_port, log, main,  # noqa: E402
                 on_cleanup, tempdir)

OUT = os.path.join(REPO, "build-deb")
CACHE = os.path.join(OUT, "cache")
# The root's recipe: a change here makes a new tarball (its name carries it).
SUITE = "bookworm"
INCLUDE = "systemd,man-db"
RECIPE = "minbase-%s-%s" % (SUITE, INCLUDE.replace(",", "+"))
TARBALL = os.path.join(CACHE, "root-%s.tar" % RECIPE)
ARCHIVES = os.path.join(CACHE, "apt-archives")
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
SECURITY_MAX = 2.0


def sh(cmd, timeout=600, env=None, cwd=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env=env, cwd=cwd)
    p.out = p.stdout.decode("utf-8", "replace")
    return p


# ------------------------------------------------------------- the mirror

def mirror_source():
    """What mmdebstrap is given: REFUGE_DEB_MIRROR, else the host's deb822
    sources file naming bookworm (main, updates, security), else
    deb.debian.org."""
    if os.environ.get("REFUGE_DEB_MIRROR"):
        return os.environ["REFUGE_DEB_MIRROR"]
    d = "/etc/apt/sources.list.d"
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        path = os.path.join(d, name)
        if name.endswith(".sources"):
            text = open(path, encoding="utf-8", errors="replace").read()
            if re.search(r"^Suites:.*\b%s\b" % SUITE, text, re.M) and "debian" in text:
                return path
    if os.path.exists("/etc/apt/sources.list"):
        text = open("/etc/apt/sources.list", encoding="utf-8", errors="replace").read()
        if re.search(r"^deb\s.*\b%s\b" % SUITE, text, re.M):
            return "/etc/apt/sources.list"
    return "http://deb.debian.org/debian"


def mirror_urls(source):
    if source.startswith("http"):
        return [source.split()[0]]
    text = open(source, encoding="utf-8", errors="replace").read()
    urls = re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)",
                                                                   text, re.M)
    return urls or ["http://deb.debian.org/debian"]


def mirror_reachable(source):
    url = mirror_urls(source)[0].rstrip("/") + "/dists/%s/Release" % SUITE
    try:
        with urllib.request.urlopen(url, timeout=15) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def debian_root_tarball():
    """The cached Debian 12 root, made with mmdebstrap when missing."""
    os.makedirs(ARCHIVES, exist_ok=True)
    if os.path.exists(TARBALL) and os.environ.get("REFUGE_DEB_FRESH") != "1":
        log("reusing the Debian root %s" % os.path.relpath(TARBALL, REPO))
        return TARBALL
    source = mirror_source()
    if not mirror_reachable(source):
        raise Skip("the Debian mirror (%s) cannot be reached and no root is cached in %s"
                   % (mirror_urls(source)[0], os.path.relpath(CACHE, REPO)))
    log("making a Debian 12 root with mmdebstrap from %s" % source)
    t0 = time.time()
    tmp = os.path.join(CACHE, "making-" + os.path.basename(TARBALL))
    p = sh(["mmdebstrap", "--variant=minbase", "--format=tar", "--include=" + INCLUDE,
            "--skip=cleanup/apt/lists", SUITE, tmp, source], timeout=900)
    check(p.returncode == 0, "mmdebstrap made the Debian root (status %d)" % p.returncode,
          p.out[-3000:])
    for old in os.listdir(CACHE):
        if old.startswith("root-") and old.endswith(".tar"):
            os.unlink(os.path.join(CACHE, old))  # an older recipe's
    os.rename(tmp, TARBALL)
    log("Debian root made in %.0fs" % (time.time() - t0))
    return TARBALL


# --------------------------------------------------------- inside the root

class Root:
    """An extracted root; commands run in it through chroot, in a private mount
    namespace that has /proc and the apt archive cache mounted (gone when the
    command ends, so nothing outside is left mounted)."""

    def __init__(self, tarball):
        self.path = os.path.join(tempdir("refuge-deb-"), "root")
        os.mkdir(self.path)
        p = sh(["tar", "-xf", tarball, "-C", self.path], timeout=300)
        check(p.returncode == 0, "the Debian root extracts", p.out[-2000:])
        shutil.copy("/etc/resolv.conf", os.path.join(self.path, "etc/resolv.conf"))

    def p(self, path):
        return os.path.join(self.path, path.lstrip("/"))

    def _argv(self, argv, userspec=None, prelude=""):
        mounts = ('mount -t proc proc "$R/proc" && '
                  'mount --bind "$A" "$R/var/cache/apt/archives" && ')
        chroot = ["chroot"] + (["--userspec=" + userspec] if userspec else []) + [self.path]
        script = mounts + prelude + 'exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"] + \
            chroot + list(argv)

    def _env(self, env):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
             "DEBIAN_FRONTEND": "noninteractive", "R": self.path, "A": ARCHIVES}
        e.update(env or {})
        return e

    def run(self, argv, env=None, timeout=600, userspec=None, prelude=""):
        return sh(self._argv(argv, userspec, prelude), timeout=timeout, env=self._env(env))

    def popen(self, argv, env, userspec, prelude, stdout, stderr):
        # unshare, sh and chroot all exec: the pid is refuge's
        return subprocess.Popen(self._argv(argv, userspec, prelude), env=self._env(env),
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)

    def passwd(self, name):
        for line in open(self.p("/etc/passwd"), encoding="utf-8"):
            f = line.rstrip("\n").split(":")
            if f[0] == name:
                return f
        return None


def apt_install(root, deb):
    args = ["apt-get", "install", "-y", "-q", "--no-install-recommends", deb]
    p = root.run(args)
    if p.returncode != 0:
        log("apt-get install failed at first (package lists out of date?); apt-get update")
        u = root.run(["apt-get", "update", "-q"])
        if u.returncode != 0 and not mirror_reachable(mirror_source()):
            raise Skip("the Debian mirror cannot be reached to install the dependencies")
        p = root.run(args)
    check(p.returncode == 0, "apt-get install ./refuge.deb in the Debian root (status %d)"
          % p.returncode, p.out[-4000:])
    return p.out


# -------------------------------------------------------------- unit files

def unit_path(root, name):
    for d in UNIT_DIRS:
        if os.path.exists(root.p(os.path.join(d, name))):
            return os.path.join(d, name)
    raise TestFailure("%s is not installed in %s" % (name, " or ".join(UNIT_DIRS)))


def parse_unit(text):
    """[Service] settings of a unit file, each a list of values (in order)."""
    section, out = None, {}
    lines = text.replace("\\\n", " ").splitlines()
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def parse_env_assignments(values):
    env = {}
    for v in values:
        for word in shlex.split(v):
            k, _, val = word.partition("=")
            env[k] = val
    return env


def parse_env_file(text):
    """systemd's EnvironmentFile= syntax, as far as refuge.conf uses it."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        k, sep, v = line.partition("=")
        if not sep:
            continue
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        env[k.strip()] = v
    return env


def expand_exec(line, env):
    """ExecStart= as systemd expands it: words split first (quotes kept
    together), then a word that is exactly $NAME becomes that variable split
    at whitespace (nothing if unset or empty) and ${NAME} is replaced in
    place."""
    line = line.lstrip("-@:+!")
    argv = []
    for w in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                               lambda mm: env.get(mm.group(1), ""), w))
    return argv


LIMITS = {"LimitMEMLOCK": "-l", "LimitCORE": "-c", "LimitNOFILE": "-n"}


def limit_prelude(unit):
    """The unit's UMask= and Limit*= as shell commands run before chroot."""
    cmds = []
    for key, flag in LIMITS.items():
        for v in unit.get(("Service", key), []):
            m = re.fullmatch(r"(\d+)([KMG]?)", v)
            check(m, "%s=%s is a size this test understands" % (key, v))
            n = int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]
            if flag in ("-l", "-c"):
                n //= 1024  # ulimit -l and -c count KiB
            # systemd (root) sets both limits; a container's root may be
            # unable to raise the hard one (no CAP_SYS_RESOURCE): then the
            # soft limit goes as high as allowed and refuge says what it got
            cmds.append("{ ulimit -H %s %d 2>/dev/null; ulimit -S %s %d 2>/dev/null || "
                        "ulimit -S %s $(ulimit -H %s); }" % (flag, n, flag, n, flag, flag))
    for v in unit.get(("Service", "UMask"), []):
        cmds.append("umask %s" % v)
    return "".join(c + " && " for c in cmds)


# ------------------------------------------------------------------- steps

def build_package():
    before = sh(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=all"]).out
    t0 = time.time()
    p = sh(["make", "-C", REPO, "deb"], timeout=1200)
    check(p.returncode == 0, "`make deb` builds the package and lintian passes it (status %d)"
          % p.returncode, p.out[-6000:])
    log("make deb took %.0fs" % (time.time() - t0))
    after = sh(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=all"]).out
    check(before == after, "`git status` is the same after `make deb` (nothing written in the tree)",
          "before:\n%s\nafter:\n%s" % (before, after))
    version = sh(["dpkg-parsechangelog", "-l", os.path.join(REPO, "debian/changelog"), "-S",
                  "Version"]).out.strip()
    arch = sh(["dpkg-architecture", "-qDEB_HOST_ARCH"]).out.strip()
    deb = os.path.join(OUT, "refuge_%s_%s.deb" % (version, arch))
    check(os.path.isfile(deb), "make deb left %s" % os.path.relpath(deb, REPO), p.out[-2000:])
    lint = open(os.path.join(OUT, "lintian.log"), encoding="utf-8").read()
    bad = [ln for ln in lint.splitlines() if re.match(r"[EW]: ", ln)]
    check(not bad, "lintian reports no error or warning", "\n".join(bad))
    return deb


def check_installed(root, out):
    pw = root.passwd("refuge")
    check(pw is not None, "postinst created the user refuge")
    uid, gid = int(pw[2]), int(pw[3])
    check(0 < uid < 1000, "refuge is a system user (uid %d)" % uid)
    check(pw[6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"),
          "refuge has no login shell (%s)" % pw[6])
    st = os.stat(root.p("/var/lib/refuge"))
    check(st.st_uid == uid and st.st_gid == gid, "/var/lib/refuge belongs to refuge")
    check(st.st_mode & 0o777 == 0o700, "/var/lib/refuge is 0700 (is %o)" % (st.st_mode & 0o777))
    db = root.p("/var/lib/refuge/refuge.db")
    check(os.path.exists(db), "postinst created an instance in /var/lib/refuge", out[-3000:])
    for name in os.listdir(root.p("/var/lib/refuge")):
        s = os.lstat(os.path.join(root.p("/var/lib/refuge"), name))
        check(s.st_uid == uid, "/var/lib/refuge/%s belongs to refuge" % name)
        check(s.st_mode & 0o077 == 0, "/var/lib/refuge/%s is private to refuge (mode %o)"
              % (name, s.st_mode & 0o777))
    check("runuser -u refuge -- refuge server token --data /var/lib/refuge" in out,
          "postinst tells the admin how to get the first admin's token", out[-3000:])
    check(not re.search(r"--token [A-Za-z0-9_-]{40,}", out) and "enrollment token (one use" not in out,
          "postinst prints no enrollment token (apt's log would keep it)", out[-3000:])
    conffiles = open(root.p("/var/lib/dpkg/info/refuge.conffiles"), encoding="utf-8").read()
    check("/etc/refuge/refuge.conf" in conffiles.split(), "/etc/refuge/refuge.conf is a conffile",
          conffiles)
    wants = root.p("/etc/systemd/system/multi-user.target.wants/refuge.service")
    check(os.path.lexists(wants), "refuge.service is enabled (multi-user.target.wants)")
    timer = root.p("/etc/systemd/system/timers.target.wants/refuge-backup.timer")
    check(not os.path.lexists(timer), "refuge-backup.timer is off by default")
    return uid, gid


def check_units(root):
    units = [unit_path(root, n) for n in ("refuge.service", "refuge-backup.service",
                                           "refuge-backup.timer")]
    p = root.run(["systemd-analyze", "verify"] + units)
    check(p.returncode == 0 and not p.out.strip(),
          "systemd-analyze verify accepts refuge.service, refuge-backup.service and .timer "
          "(status %d)" % p.returncode, p.out[-3000:])
    p = root.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", units[0]])
    m = re.search(r"Overall exposure level for refuge\.service: (\d+\.\d+) (\S+)", p.out)
    check(m, "systemd-analyze security --offline=yes rated refuge.service (status %d)"
          % p.returncode, p.out[-3000:])
    score = float(m.group(1))
    check(score <= SECURITY_MAX, "refuge.service's exposure is %.1f, at most %.1f (%s)"
          % (score, SECURITY_MAX, m.group(2)), p.out)
    log("systemd-analyze security: %s %s" % (m.group(1), m.group(2)))
    p = root.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", units[1]])
    m = re.search(r"Overall exposure level for refuge-backup\.service: (\d+\.\d+)", p.out)
    check(m and float(m.group(1)) <= SECURITY_MAX,
          "refuge-backup.service's exposure is at most %.1f" % SECURITY_MAX, p.out[-3000:])


def man_text(root, page):
    path = root.p(page)
    check(os.path.exists(path), "%s is installed" % page)
    p = sh(["man", "--warnings", "-l", path], env=dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8",
                                                        MAN_KEEP_FORMATTING="0"))
    check(p.returncode == 0, "man -l %s renders (status %d)" % (page, p.returncode), p.out[-2000:])
    text = p.out
    warnings = [ln for ln in text.splitlines() if "warning:" in ln and ":" in ln.split()[0]]
    check(not warnings, "man -l %s renders without warnings" % page, "\n".join(warnings))
    return re.sub(r".\x08", "", text)


def commands_in_help(text):
    """The subcommand names of a `--help` listing: first word of each line
    indented by two spaces."""
    return [m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]+)\s", text, re.M)]


def check_man(root):
    client = root.run(["refuge", "--help"])
    server = root.run(["refuge", "server", "--help"])
    serve = root.run(["refuge", "serve", "--help"])
    for p in (client, server, serve):
        check(p.returncode == 0, "refuge --help works in the root", p.out)
    page1 = man_text(root, "/usr/share/man/man1/refuge.1.gz")
    cmds = commands_in_help(client.out)
    check(len(cmds) >= 15, "refuge --help lists the client commands", client.out)
    missing = [c for c in cmds if not re.search(r"\b%s\b" % re.escape(c), page1)]
    check(not missing, "man refuge covers every client command", "missing: %s" % missing)
    page_server = man_text(root, "/usr/share/man/man8/refuge-server.8.gz")
    scmds = commands_in_help(server.out)
    check(len(scmds) >= 4, "refuge server --help lists its commands", server.out)
    missing = [c for c in scmds if not re.search(r"server %s\b" % re.escape(c), page_server)]
    check(not missing, "man refuge-server covers every refuge server command",
          "missing: %s" % missing)
    page_serve = man_text(root, "/usr/share/man/man8/refuge-serve.8.gz")
    flags = sorted(set(re.findall(r"(--[a-z][a-z-]+)", serve.out)) - {"--help"})
    missing = [f for f in flags if f not in page_serve]
    check(not missing, "man refuge-serve covers every flag of refuge serve",
          "missing: %s" % missing)
    log("man pages: %d client commands, %d server commands, %d serve flags covered"
        % (len(cmds), len(scmds), len(flags)))


def unit_command(root, name):
    """The command a unit runs, as systemd would: ExecStart= expanded with
    Environment= and EnvironmentFile=, its User= and Group=, and the shell
    prelude for UMask= and Limit*=."""
    unit = parse_unit(open(root.p(unit_path(root, name)), encoding="utf-8").read())
    env = parse_env_assignments(unit.get(("Service", "Environment"), []))
    for ef in unit.get(("Service", "EnvironmentFile"), []):
        optional = ef.startswith("-")
        ef = ef.lstrip("-")
        if not os.path.exists(root.p(ef)):
            check(optional, "EnvironmentFile %s exists" % ef)
            continue
        env.update(parse_env_file(open(root.p(ef), encoding="utf-8").read()))
    execs = unit.get(("Service", "ExecStart"), [])
    check(len(execs) == 1, "%s has one ExecStart" % name, execs)
    user = unit.get(("Service", "User"), [None])[-1]
    group = unit.get(("Service", "Group"), [user])[-1]
    check(user == "refuge", "%s runs as refuge (User=%s)" % (name, user))
    return expand_exec(execs[0], env), env, user, group, limit_prelude(unit)


def run_backup_unit(root, uid):
    """refuge-backup.service's ExecStart, run as its user: an archive in
    /var/backups/refuge, private to refuge, that `refuge server restore
    --check` accepts."""
    argv, env, user, group, prelude = unit_command(root, "refuge-backup.service")
    check(argv[:3] == ["/usr/bin/refuge", "server", "backup"],
          "refuge-backup.service runs refuge server backup", argv)
    log("backup ExecStart: %s" % " ".join(argv))
    p = root.run(argv, env=env, userspec="%s:%s" % (user, group), prelude=prelude)
    check(p.returncode == 0, "the backup unit's command succeeds (status %d)" % p.returncode, p.out)
    bdir = root.p("/var/backups/refuge")
    archives = sorted(n for n in os.listdir(bdir) if re.fullmatch(r"refuge-.*\.tar", n))
    check(len(archives) == 1, "one archive in /var/backups/refuge", os.listdir(bdir))
    st = os.stat(os.path.join(bdir, archives[0]))
    check(st.st_uid == uid and st.st_mode & 0o777 == 0o600,
          "the archive is refuge's, mode 0600 (mode %o)" % (st.st_mode & 0o777))
    p = root.run(["refuge", "server", "restore", "--check", "/var/backups/refuge/" + archives[0]],
                 userspec="%s:%s" % (user, group))
    check(p.returncode == 0, "refuge server restore --check accepts it (status %d)" % p.returncode,
          p.out)
    log("the backup unit wrote %s; restore --check accepts it" % archives[0])
    return archives[0]


def run_unit(root, uid, port):
    # the admin's step: the listen address in the conffile
    conf = root.p("/etc/refuge/refuge.conf")
    text = open(conf, encoding="utf-8").read()
    check(re.search(r"^REFUGE_LISTEN=", text, re.M), "refuge.conf sets REFUGE_LISTEN", text)
    text = re.sub(r"^REFUGE_LISTEN=.*$", "REFUGE_LISTEN=127.0.0.1:%d" % port, text, flags=re.M)
    open(conf, "w", encoding="utf-8").write(text)

    argv, env, user, group, prelude = unit_command(root, "refuge.service")
    check(argv[:2] == ["/usr/bin/refuge", "serve"], "ExecStart runs /usr/bin/refuge serve", argv)
    check("--allow-root" not in argv and "--no-seccomp" not in argv,
          "ExecStart neither serves as root nor drops the seccomp filter", argv)
    log("ExecStart: %s (as %s:%s)" % (" ".join(argv), user, group))

    logdir = tempdir("refuge-deb-log-")
    out_path, err_path = os.path.join(logdir, "stdout"), os.path.join(logdir, "stderr")
    out, err = open(out_path, "wb"), open(err_path, "wb")
    proc = root.popen(argv, env, "%s:%s" % (user, group), prelude, out, err)
    out.close()
    err.close()

    def stop():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    on_cleanup(stop)

    def logs():
        return (open(out_path, errors="replace").read() + "\n" +
                open(err_path, errors="replace").read())

    deadline = time.time() + 60
    while "listening on http://" not in open(out_path, errors="replace").read():
        check(proc.poll() is None, "refuge serve started from the unit's ExecStart (exit status %s)"
              % proc.returncode, logs())
        check(time.time() < deadline, "refuge serve said `listening on` within 60 s", logs())
        time.sleep(0.1)
    check("listening on http://127.0.0.1:%d" % port in logs(),
          "it listens where /etc/refuge/refuge.conf says", logs())

    status = open("/proc/%d/status" % proc.pid, encoding="utf-8").read()
    fields = dict(ln.split(":", 1) for ln in status.splitlines() if ":" in ln)
    uids = fields["Uid"].split()
    check(all(int(u) == uid for u in uids), "refuge serve runs as refuge (Uid: %s)" % fields["Uid"])
    check(fields["CapEff"].strip() == "0000000000000000" and
          fields["CapPrm"].strip() == "0000000000000000", "it holds no capability", status)
    check(fields["NoNewPrivs"].strip() == "1", "no_new_privs is set", status)
    check(fields["Seccomp"].strip() == "2", "its own seccomp filter is on", status)

    with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=30) as r:
        body = r.read().decode("utf-8", "replace")
        check(r.status == 200, "the landing page answers 200 (got %d)" % r.status)
    check('href="/login"' in body and "<title>" in body and 'class="exit"' in body,
          "the landing page (quick exit, the way back in) is served", body[:1500])
    check("This line is not open yet." in body,
          "a fresh instance's landing page says the line is not open yet (nobody enrolled)",
          body[:3000])

    os.kill(proc.pid, 15)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise TestFailure("refuge serve did not stop within 60 s of SIGTERM:\n" + logs())
    check(rc == 0, "refuge serve stops cleanly on SIGTERM (status %d)" % rc, logs())
    log("served the landing page as refuge on 127.0.0.1:%d, stopped cleanly" % port)


# tor in the booted root must not join the public Tor network from a test
# machine: its only bridge is a closed port on loopback, so it connects to
# nothing, but it opens its control socket and answers ADD_ONION (the service
# is made and refuge gets its address; it is never published).
TORRC_NOWHERE = """# written by tests/e2e/test_deb.py: no connection to the Tor network
UseBridges 1
Bridge 127.0.0.1:1
"""


def onion_setup(root):
    """The admin's onion steps of docs/deploy.md (step 2) in the root: tor
    installed (started by nobody during the install: policy-rc.d), refuge in
    the group debian-tor, REFUGE_ONION uncommented in /etc/refuge/refuge.conf."""
    policy = root.p("/usr/sbin/policy-rc.d")
    with open(policy, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(policy, 0o755)
    try:
        p = root.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "tor"])
        if p.returncode != 0:
            root.run(["apt-get", "update", "-q"])
            p = root.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "tor"])
        check(p.returncode == 0, "apt-get install tor in the root (status %d)" % p.returncode,
              p.out[-3000:])
    finally:
        os.unlink(policy)
    with open(root.p("/etc/tor/torrc"), "w") as f:
        f.write(TORRC_NOWHERE)
    p = root.run(["adduser", "refuge", "debian-tor"])
    check(p.returncode == 0, "adduser refuge debian-tor", p.out)
    conf = root.p("/etc/refuge/refuge.conf")
    text = open(conf, encoding="utf-8").read()
    check(re.search(r"^#REFUGE_ONION=--onion --tor-control unix:/run/tor/control$", text, re.M),
          "refuge.conf has the commented onion line docs/deploy.md tells the admin to uncomment",
          text)
    text = re.sub(r"^#REFUGE_ONION=", "REFUGE_ONION=", text, flags=re.M)
    open(conf, "w", encoding="utf-8").write(text)


def boot(root):
    """Boots the root with systemd (systemd-nspawn -b, the host's network).
    Returns (pid of the container's init, stop(), the boot log) once systemctl
    answers in it, or None if systemd cannot be booted here (said in the log)."""
    if not shutil.which("systemd-nspawn") or not shutil.which("nsenter"):
        log("systemd-nspawn is not installed: the unit was not run under systemd")
        return None
    logdir = tempdir("refuge-deb-nspawn-")
    out = open(os.path.join(logdir, "nspawn.log"), "wb")
    proc = subprocess.Popen(["systemd-nspawn", "-q", "-D", root.path, "-b", "--register=no",
                             "--keep-unit"], stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT)
    out.close()

    def stop():
        if proc.poll() is None:
            proc.terminate()  # nspawn shuts the container down
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    on_cleanup(stop)

    def nspawn_log():
        return open(os.path.join(logdir, "nspawn.log"), errors="replace").read()[-4000:]

    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        kids = sh(["ps", "-o", "pid=", "--ppid", str(proc.pid)]).out.split()
        if kids:
            state = sh(["nsenter", "-t", kids[0], "-a", "systemctl", "is-system-running"],
                       timeout=30).out.strip()
            if state in ("running", "degraded"):
                return kids[0], stop, nspawn_log
        time.sleep(0.5)
    stop()
    log("systemd could not be booted in the root here (systemd-nspawn): the unit was not run "
        "under systemd. nspawn said:\n%s" % nspawn_log()[-1500:])
    return None


def docs_block(first_line):
    """The fenced block of docs/scale-out.md that starts with first_line."""
    text = open(os.path.join(REPO, "docs", "scale-out.md"), encoding="utf-8").read()
    for b in re.findall(r"^```\n(.*?)^```", text, re.S | re.M):
        if b.startswith(first_line):
            return b
    raise TestFailure("docs/scale-out.md has no block starting with %r" % first_line)


def pg_deployment(root, port, db):
    """docs/scale-out.md, step 4, on the installed package: the tmpfiles line
    and the unit's drop-in read from that page (the database's hosts there
    replaced by the test cluster's address), the instance made as refuge in
    /srv/refuge on the PostgreSQL database db, the root booted with systemd,
    the session key written as refuge on the tmpfs; then the unit serves a
    person (codename, message) with the unit's whole sandbox, the message
    and the person's session are rows in PostgreSQL, and a caseworker reads
    the case."""
    host = urllib.parse.urlsplit(db).hostname
    tmpfiles = docs_block("# /etc/tmpfiles.d/refuge.conf")
    dropin = docs_block("# /etc/systemd/system/refuge.service.d/scale-out.conf")
    check(re.search(r"^IPAddressAllow=", dropin, re.M) and "--session-key" in dropin,
          "the drop-in of docs/scale-out.md opens the database's hosts and sets the session key",
          dropin)
    dropin = re.sub(r"^IPAddressAllow=.*$", "IPAddressAllow=%s" % host, dropin, flags=re.M)
    with open(root.p("/etc/tmpfiles.d/refuge.conf"), "w") as f:
        f.write(tmpfiles)
    os.makedirs(root.p("/etc/systemd/system/refuge.service.d"), exist_ok=True)
    with open(root.p("/etc/systemd/system/refuge.service.d/scale-out.conf"), "w") as f:
        f.write(dropin)
    conf = root.p("/etc/refuge/refuge.conf")
    text = open(conf, encoding="utf-8").read()
    text = re.sub(r"^REFUGE_LISTEN=.*$", "REFUGE_LISTEN=127.0.0.1:%d" % port, text, flags=re.M)
    open(conf, "w", encoding="utf-8").write(text)
    # the shared directory, as the admin mounts it: refuge's, 0700
    p = root.run(["install", "-d", "-o", "refuge", "-g", "refuge", "-m", "700", "/srv/refuge"])
    check(p.returncode == 0, "install -d /srv/refuge", p.out)
    p = root.run(["refuge", "server", "init", "--data", "/srv/refuge", "--db", db],
                 userspec="refuge:refuge", env={"HOME": "/srv/refuge"})
    check(p.returncode == 0, "refuge server init --data /srv/refuge --db URL, as refuge",
          p.out[-3000:])
    # started below, once its session key is there
    p = root.run(["systemctl", "disable", "refuge.service"])
    check(p.returncode == 0, "systemctl disable refuge (offline)", p.out)

    booted = boot(root)
    if booted is None:
        return
    init, stop, nspawn_log = booted

    def inside(*argv, timeout=120):
        return sh(["nsenter", "-t", init, "-a"] + list(argv), timeout=timeout)

    p = inside("systemd-analyze", "verify", "refuge.service")
    check(p.returncode == 0 and "scale-out.conf" not in p.out,
          "systemd-analyze verify accepts the unit with the drop-in", p.out[-2000:])
    st = inside("stat", "-f", "-c", "%T", "/run/refuge").out.split()
    own = inside("stat", "-c", "%U %a", "/run/refuge").out.split()
    check(own == ["refuge", "700"] and st == ["tmpfs"],
          "the tmpfiles line made /run/refuge (refuge's, 0700) on a tmpfs at boot", (own, st))
    p = inside("runuser", "-u", "refuge", "--", "refuge", "server", "session-key",
               "/run/refuge/session.key")
    check(p.returncode == 0, "refuge server session-key /run/refuge/session.key, as refuge", p.out)
    p = inside("systemctl", "start", "refuge")
    journal = inside("journalctl", "-u", "refuge", "--no-pager", "-o", "cat").out
    check(p.returncode == 0 and inside("systemctl", "is-active", "refuge").out.strip() == "active",
          "with the drop-in, refuge.service starts under systemd on PostgreSQL", p.out + journal[-3000:])
    url = "http://127.0.0.1:%d" % port
    body, deadline = "", time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/", timeout=10) as r:
                body = r.read().decode("utf-8", "replace")
                break
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    check('href="/login"' in body, "the unit with the drop-in serves the landing page",
          journal[-3000:])
    p = inside("runuser", "-u", "refuge", "--", "refuge", "server", "token", "--data",
               "/srv/refuge", "--listen", "127.0.0.1:%d" % port)
    m = re.search(r"--token[ =]+(\S+)", p.out)
    check(p.returncode == 0 and m, "refuge server token, as refuge, prints a token", p.out)
    alice = Staff("Alice")
    alice.run("init", "--server", url, "--token", m.group(1), "--name", "Alice")

    class At:  # what lib.Person needs of a server
        pass
    srv = At()
    srv.url, srv.port = url, port
    person = Person(srv)
    person.new_codename()
    r, _ = person.send("through the packaged unit, on PostgreSQL")
    check(r.status == 200, "a person sends a message to the packaged unit on PostgreSQL",
          r.text[:500])

    def count(sql):
        q = subprocess.run(["psql", "-X", "-A", "-t", "-q", db, "-c", sql], capture_output=True,
                           text=True, timeout=60)
        check(q.returncode == 0, "psql: " + sql, q.stderr)
        return int(q.stdout.strip())
    check(count("SELECT count(*) FROM sources WHERE case_id <> 'teamconfig'") == 1,
          "the person's case is a row in PostgreSQL")
    check(count("SELECT count(*) FROM sessions") >= 1,
          "the person's session is a row in PostgreSQL (--session-key from the drop-in)")
    alice.run("sync")
    cases = alice.json("cases", "--json")["cases"]
    check(len(cases) == 1, "the caseworker reads the one case", cases)
    journal = inside("journalctl", "-u", "refuge", "--no-pager", "-o", "cat").out
    check("sessions: in the database, sealed under the session key" in journal and
          "in this process's memory only" not in journal,
          "the service says its sessions are in the database, sealed (--session-key)",
          journal[-3000:])
    pid = inside("systemctl", "show", "-P", "MainPID", "refuge").out.strip()
    status = inside("cat", "/proc/%s/status" % pid).out
    check(re.search(r"^NoNewPrivs:\s*1$", status, re.M) and re.search(r"^Seccomp:\s*2$", status,
                                                                     re.M),
          "on PostgreSQL too it runs with no_new_privs and its seccomp filter", status)
    p = inside("systemctl", "stop", "refuge", timeout=120)
    check(p.returncode == 0 and inside("systemctl", "show", "-P", "Result", "refuge").out.strip()
          == "success", "refuge.service stops cleanly", p.out)
    stop()
    log("the package with docs/scale-out.md's drop-in served a person on PostgreSQL under systemd "
        "(session key on /run/refuge, instance in /srv/refuge); the caseworker read the case")


def boot_with_systemd(root, port):
    """Where systemd-nspawn can boot the root (systemd as its PID 1), the
    installed, enabled refuge.service starts under systemd with the whole
    sandbox of the unit (SystemCallFilter=, PrivateUsers=, ...) and serves the
    landing page. Machines that cannot boot a container say so in the log and
    this part is not checked; a unit that systemd started and that failed is a
    failure."""
    onion_setup(root)
    booted = boot(root)
    if booted is None:
        return
    init, stop, nspawn_log = booted
    state, deadline = "", time.time() + 90
    while time.time() < deadline:
        state = sh(["nsenter", "-t", init, "-a", "systemctl", "is-active", "refuge"],
                   timeout=30).out.strip()
        if state not in ("activating", "inactive"):
            break
        time.sleep(0.5)
    journal = sh(["nsenter", "-t", init, "-a", "journalctl", "-u", "refuge", "--no-pager", "-o",
                  "cat"], timeout=30).out
    check(state == "active", "under systemd (booted with systemd-nspawn) refuge.service is active",
          journal[-3000:])
    deadline = time.time() + 30
    body = ""
    while time.time() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as r:
                body = r.read().decode("utf-8", "replace")
                break
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    check('href="/login"' in body, "refuge.service under systemd serves the landing page",
          journal[-3000:])
    restarts = sh(["nsenter", "-t", init, "-a", "systemctl", "show", "-P", "NRestarts",
                   "refuge"]).out.strip()
    check(restarts == "0", "refuge.service did not die and restart under systemd (NRestarts=%s)"
          % restarts, journal[:3000])
    # the onion line comes once tor answered on its control socket, which may
    # be after the landing page is served: read the journal until it shows
    m, deadline = None, time.time() + 60
    while True:
        m = re.search(r"onion service: http://([a-z2-7]{56})\.onion/", journal)
        if m or time.time() > deadline:
            break
        time.sleep(1)
        journal = sh(["nsenter", "-t", init, "-a", "journalctl", "-u", "refuge", "--no-pager",
                      "-o", "cat"], timeout=30).out
    check(m, "with REFUGE_ONION on, refuge.service (in the group debian-tor) got its onion "
          "service from tor's control socket", journal[-3000:])
    hostname = open(root.p("/var/lib/refuge/onion-hostname"), encoding="utf-8").read().strip()
    check(hostname == m.group(1) + ".onion", "/var/lib/refuge/onion-hostname holds the address",
          hostname)
    pid = sh(["nsenter", "-t", init, "-a", "systemctl", "show", "-P", "MainPID", "refuge"]).out.strip()
    status = sh(["nsenter", "-t", init, "-a", "cat", "/proc/%s/status" % pid]).out
    check(re.search(r"^NoNewPrivs:\s*1$", status, re.M) and
          re.search(r"^CapBnd:\s*0+$", status, re.M) and re.search(r"^Seccomp:\s*2$", status, re.M),
          "under systemd it runs with no_new_privs, an empty bounding set and seccomp", status)
    p = sh(["nsenter", "-t", init, "-a", "systemctl", "start", "refuge-backup.service"], timeout=120)
    result = sh(["nsenter", "-t", init, "-a", "systemctl", "show", "-P", "Result",
                 "refuge-backup.service"]).out.strip()
    bj = sh(["nsenter", "-t", init, "-a", "journalctl", "-u", "refuge-backup", "--no-pager", "-o",
             "cat"], timeout=30).out
    check(p.returncode == 0 and result == "success",
          "under systemd refuge-backup.service runs to success (%s)" % result, bj[-3000:])
    stop()
    log("refuge.service ran under systemd (systemd-nspawn), served the landing page and got its "
        "onion service (%s.onion); refuge-backup.service succeeded" % m.group(1)[:8])


def purge(root, env=None):
    p = root.run(["apt-get", "purge", "-y", "-q", "refuge"], env=env)
    check(p.returncode == 0, "apt-get purge refuge (status %d)" % p.returncode, p.out[-3000:])
    check(not os.path.exists(root.p("/usr/bin/refuge")), "the program is gone after the purge")
    check(not os.path.exists(root.p("/etc/refuge/refuge.conf")), "the configuration is purged")
    check(not os.path.lexists(root.p("/etc/systemd/system/multi-user.target.wants/refuge.service")),
          "refuge.service is no longer enabled")
    return p.out


def test():
    check(os.geteuid() == 0, "this test runs as root (chroot, mounts); make check runs as root")
    for tool in ("dpkg-buildpackage", "lintian", "mmdebstrap", "unshare", "chroot", "man"):
        check(shutil.which(tool), "%s is installed (scripts/deps.sh deb)" % tool)
    t0 = time.time()
    deb = build_package()
    root = Root(debian_root_tarball())
    shutil.copy(deb, root.p("/tmp/"))
    in_root_deb = "/tmp/" + os.path.basename(deb)

    out = apt_install(root, in_root_deb)
    log("installed in %.0fs from the start" % (time.time() - t0))
    if lib.DB == "postgresql":
        # the package itself is checked in the SQLite pass; here: the
        # deployment of docs/scale-out.md on it
        pg_deployment(root, free_port(), lib.pg_database())
        log("whole test %.0fs" % (time.time() - t0))
        return
    uid, _ = check_installed(root, out)
    check_units(root)
    check_man(root)
    port = free_port()
    run_unit(root, uid, port)
    run_backup_unit(root, uid)
    boot_with_systemd(root, port)

    # purge: the data stays
    db_before = open(root.p("/var/lib/refuge/refuge.db"), "rb").read()
    out = purge(root)
    check(os.path.exists(root.p("/var/lib/refuge/refuge.db")), "purge keeps /var/lib/refuge", out)
    check(os.path.isdir(root.p("/var/backups/refuge")), "purge keeps /var/backups/refuge", out)
    check("data was kept" in out, "purge says the data was kept and how to remove it", out)
    check(root.passwd("refuge") is not None, "the refuge user stays")

    # reinstall: the instance is found and kept (no new instance over it)
    out = apt_install(root, in_root_deb)
    check("new Refuge instance was created" not in out, "a reinstall keeps the existing instance",
          out[-3000:])
    check(open(root.p("/var/lib/refuge/refuge.db"), "rb").read()[:100] == db_before[:100],
          "the instance is the same one")

    # asked for: a flag file
    open(root.p("/etc/refuge/purge-removes-data"), "w").close()
    out = purge(root)
    check(not os.path.exists(root.p("/var/lib/refuge")),
          "with /etc/refuge/purge-removes-data, purge removes /var/lib/refuge", out)
    check(not os.path.exists(root.p("/var/backups/refuge")), "... and /var/backups/refuge", out)
    check(not os.path.exists(root.p("/etc/refuge")), "... and /etc/refuge", out)

    # asked for: the environment variable
    out = apt_install(root, in_root_deb)
    check("new Refuge instance was created" in out, "a fresh install after that makes a new instance",
          out[-3000:])
    out = purge(root, env={"REFUGE_PURGE_DATA": "yes"})
    check(not os.path.exists(root.p("/var/lib/refuge")),
          "with REFUGE_PURGE_DATA=yes, purge removes /var/lib/refuge", out)
    log("whole test %.0fs" % (time.time() - t0))


if __name__ == "__main__":
    main(test)
