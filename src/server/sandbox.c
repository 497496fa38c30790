/*
 * sandbox.c - what confines `refuge serve` once it has started: the user it
 * runs as, its capabilities, the files it may touch (Landlock) and the system
 * calls it may make (seccomp). The order is in sandbox.h; the reasons, and how
 * to check each measure on a running server, are in docs/hardening.md.
 *
 * Invariants:
 *  - Started as root, the process changes uid/gid before it opens the store
 *    or starts a thread, so no request is ever served as root. When --listen
 *    names a port below 1024 the main thread keeps CAP_NET_BIND_SERVICE (and
 *    nothing else) until the daemon has bound; threads created meanwhile
 *    inherit it, and the seccomp filter forbids socket() and bind() to all of
 *    them afterwards.
 *  - Once rf_sandbox_drop returns: no new privileges, not dumpable (no core
 *    file, no ptrace attach or /proc/PID/mem by the same uid), an empty
 *    bounding set, and uid 0 cannot be regained.
 *  - Landlock is applied while the process has one thread; seccomp last, with
 *    TSYNC so every thread gets it. Anything outside the allowlist kills the
 *    whole process (SIGSYS): a refused call never leaves a half-working server.
 *  - Nothing here calls mlockall: secrets are locked one sodium_malloc
 *    allocation at a time, never the upload buffers.
 *  - Sanitizer builds (RF_SANITIZER_BUILD, set by meson for b_sanitize) add
 *    what ASan/UBSan/LSan need to report and to check for leaks at exit
 *    (clone, ptrace, wait4, prctl, signals; reading /proc and the binaries),
 *    so the end-to-end suite runs with the sandbox on. Release builds never
 *    have them.
 */
#include "server/sandbox.h"
#include "lib/err.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) && !defined(RF_SANITIZER_BUILD)
#define RF_SANITIZER_BUILD 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(RF_SANITIZER_BUILD)
#define RF_SANITIZER_BUILD 1
#endif
#endif

#ifdef RF_SANITIZER_BUILD
#define BUILD_FLAGS RF_SANDBOX_SANITIZER
#else
#define BUILD_FLAGS 0u
#endif

#define NAME_MAX_LEN 64

static void say(const char *what)
{
    fprintf(stderr, "refuge: %s\n", what);
}

static void say_errno(const char *what)
{
    fprintf(stderr, "refuge: %s: %s\n", what, strerror(errno));
}

/* ------------------------------------------------------------ who serves */

/* The port in "ADDR:PORT" / "[ADDR]:PORT", or -1. */
static long listen_port(const char *listen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (colon == NULL || colon[1] < '0' || colon[1] > '9')
        return -1;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    return *end == '\0' && p >= 0 && p <= 65535 ? p : -1;
}

static void user_name(uid_t uid, char *out, size_t cap)
{
    struct passwd *pw = getpwuid(uid);
    if (pw != NULL && strlen(pw->pw_name) < cap)
        snprintf(out, cap, "%s", pw->pw_name);
    else
        snprintf(out, cap, "uid %lu", (unsigned long)uid);
}

/* The data directory and each entry directly in it (refuge.db and its -wal
 * and -shm, lock, blobs/, tmp/) must belong to uid: a root-owned database
 * file in a user's directory is the usual leftover of `server init` run as
 * root followed by a chown without -R. */
static int check_owner(const char *datadir, uid_t uid, const char *who)
{
    int rc = RF_ERR_INVALID;
    char owner[NAME_MAX_LEN];
    int fd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = NULL;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "refuge: cannot open the data directory %s: %s\n", datadir,
                strerror(errno));
        fprintf(stderr, "refuge: (a new instance is created with: refuge server init --data %s)\n",
                datadir);
        goto out;
    }
    if (st.st_uid != uid) {
        user_name(st.st_uid, owner, sizeof(owner));
        fprintf(stderr, "refuge: the data directory %s belongs to %s, not to %s, who serves it\n",
                datadir, owner, who);
        goto fix;
    }
    d = fdopendir(fd);
    if (d == NULL)
        goto out;
    fd = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (st.st_uid != uid) {
            user_name(st.st_uid, owner, sizeof(owner));
            fprintf(stderr, "refuge: %s/%s belongs to %s, not to %s, who serves it\n", datadir,
                    e->d_name, owner, who);
            goto fix;
        }
    }
    rc = 0;
    goto out;
fix:
    fprintf(stderr, "refuge: give the whole directory to %s, then start again:\n", who);
    fprintf(stderr, "  chown -R %s: %s\n", who, datadir);
out:
    if (d != NULL)
        closedir(d);
    if (fd >= 0)
        close(fd);
    return rc;
}

static void refuse_root(const char *datadir)
{
    fprintf(stderr,
            "refuge: refusing to serve as root: the data directory %s belongs to root.\n"
            "refuge: serve as an unprivileged user that owns it, for example:\n"
            "  useradd --system --no-create-home --shell /usr/sbin/nologin refuge\n"
            "  chown -R refuge: %s\n"
            "  refuge serve --user refuge --data %s ...\n"
            "refuge: (--allow-root serves as root without capabilities, for a container\n"
            "that is itself the only thing on its machine)\n",
            datadir, datadir, datadir);
}

/* Fills sb->uid/gid from the rules in sandbox.h; *name gets a printable
 * name for messages. */
static int choose_user(struct rf_sandbox *sb, const char *datadir, const struct rf_sandbox_opts *o,
                       char *name, size_t cap)
{
    struct passwd *pw;
    if (geteuid() != 0) {
        sb->uid = geteuid();
        sb->gid = getegid();
        user_name(sb->uid, name, cap);
        if (o->user != NULL && ((pw = getpwnam(o->user)) == NULL || pw->pw_uid != sb->uid)) {
            fprintf(stderr,
                    "refuge: --user %s needs root; refuge serve runs as %s, who started it\n",
                    o->user, name);
            return RF_ERR_INVALID;
        }
        return 0;
    }
    if (o->user != NULL) {
        pw = getpwnam(o->user);
        if (pw == NULL) {
            fprintf(stderr, "refuge: --user %s: no such user on this system\n", o->user);
            return RF_ERR_INVALID;
        }
        if (pw->pw_uid == 0 && !o->allow_root) {
            say("--user names root; to serve as root anyway, add --allow-root");
            return RF_ERR_INVALID;
        }
        sb->uid = pw->pw_uid;
        sb->gid = pw->pw_gid;
        snprintf(name, cap, "%s", o->user);
        return 0;
    }
    struct stat st;
    if (stat(datadir, &st) != 0) {
        fprintf(stderr, "refuge: cannot open the data directory %s: %s\n", datadir,
                strerror(errno));
        return RF_ERR_INVALID;
    }
    if (st.st_uid == 0 && !o->allow_root) {
        refuse_root(datadir);
        return RF_ERR_INVALID;
    }
    sb->uid = st.st_uid;
    pw = getpwuid(st.st_uid);
    sb->gid = pw != NULL ? pw->pw_gid : st.st_gid;
    user_name(sb->uid, name, cap);
    if (sb->uid != 0)
        fprintf(stderr, "refuge: serving as %s, the owner of %s\n", name, datadir);
    return 0;
}

/* Whether uid (primary group gid) is a member of group g. */
static int user_in_group(uid_t uid, gid_t gid, gid_t g)
{
    if (g == gid)
        return 0; /* its own group needs no supplementary entry */
    struct passwd *pw = getpwuid(uid);
    gid_t groups[256];
    int n = (int)(sizeof(groups) / sizeof(groups[0]));
    if (pw == NULL || getgrouplist(pw->pw_name, gid, groups, &n) < 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (groups[i] == g)
            return 1;
    return 0;
}

/* ---------------------------------------------------------- capabilities */

static int caps_set(int keep_bind)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (keep_bind) {
        data[0].effective = 1u << CAP_NET_BIND_SERVICE;
        data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
    }
    return (int)syscall(SYS_capset, &hdr, data);
}

/* As root: empties the bounding set (but for the bind right if kept) and
 * locks root out of gaining capabilities from execve or setuid. */
static int caps_limit(int keep_bind)
{
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
        if (keep_bind && cap == CAP_NET_BIND_SERVICE)
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            say_errno("cannot drop a capability from the bounding set");
            return RF_ERR_IO;
        }
    }
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                         SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED | SECBIT_KEEP_CAPS_LOCKED;
    if (keep_bind)
        bits |= SECBIT_KEEP_CAPS;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) {
        say_errno("cannot lock the securebits");
        return RF_ERR_IO;
    }
    return 0;
}

/* Proves the switch cannot be undone: uid 0 and gid 0 stay out of reach and
 * no capability is left but the bind right while it is kept. */
static int verify_dropped(const struct rf_sandbox *sb)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct caps[2];
    uint32_t allowed_caps = sb->keep_bind ? 1u << CAP_NET_BIND_SERVICE : 0;
    if (syscall(SYS_capget, &hdr, caps) != 0 || (caps[0].permitted & ~allowed_caps) != 0 ||
        caps[1].permitted != 0 || caps[0].inheritable != 0 || caps[1].inheritable != 0) {
        say("capabilities are left after the switch; refusing to serve");
        return RF_ERR_IO;
    }
    if (getresuid(&r, &e, &s) != 0 || r != sb->uid || e != sb->uid || s != sb->uid ||
        getresgid(&gr, &ge, &gs) != 0 || gr != sb->gid || ge != sb->gid || gs != sb->gid) {
        say("the user switch did not take");
        return RF_ERR_IO;
    }
    if (sb->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        say("the user switch can be undone; refusing to serve");
        return RF_ERR_IO;
    }
    if (sb->gid != 0 && setgid(0) == 0) {
        say("the group switch can be undone; refusing to serve");
        return RF_ERR_IO;
    }
    return 0;
}

/* ---------------------------------------------------------- locked memory */

static int has_swap(void)
{
    FILE *f = fopen("/proc/swaps", "re");
    if (f == NULL)
        return 1; /* cannot tell: assume the worst */
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines > 1; /* the first line is the header */
}

/* Raises RLIMIT_MEMLOCK: as root to at least RF_SANDBOX_MEMLOCK_WANT (the
 * hard limit too, which the user could not; it takes CAP_SYS_RESOURCE, which
 * a container's root may lack), and the soft limit to the hard one. */
static void memlock_raise(struct rf_sandbox *sb)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
        return;
    if (geteuid() == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < RF_SANDBOX_MEMLOCK_WANT) {
        struct rlimit want = {RF_SANDBOX_MEMLOCK_WANT, RF_SANDBOX_MEMLOCK_WANT};
        if (setrlimit(RLIMIT_MEMLOCK, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_MEMLOCK, &rl);
        (void)getrlimit(RLIMIT_MEMLOCK, &rl);
    }
    sb->memlock = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (unsigned long long)rl.rlim_cur;
}

/* Says so when secrets may reach swap: a page cannot be locked at all, or
 * the limit is below what a busy server locks. */
static void memlock_report(const struct rf_sandbox *sb)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t len = page > 0 ? (size_t)page : 4096;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        if (mlock(p, len) != 0)
            fprintf(
                stderr,
                "refuge: warning: cannot lock memory (%s): keys and codenames in memory may "
                "be written to swap; raise the locked-memory limit (systemd: LimitMEMLOCK=64M)\n",
                strerror(errno));
        else
            munlock(p, len);
        munmap(p, len);
    }
    if (sb->swap && sb->memlock < RF_SANDBOX_MEMLOCK_WANT)
        fprintf(stderr,
                "refuge: warning: locked memory is limited to %llu KiB and this machine has swap: "
                "secrets past that limit may be written to swap; raise it to %llu MiB (systemd: "
                "LimitMEMLOCK=%lluM; shell: ulimit -l %llu) or start as root with --user\n",
                sb->memlock >> 10, RF_SANDBOX_MEMLOCK_WANT >> 20, RF_SANDBOX_MEMLOCK_WANT >> 20,
                RF_SANDBOX_MEMLOCK_WANT >> 10);
}

/* ------------------------------------------------------------------ drop */

int rf_sandbox_drop(struct rf_sandbox *sb, const char *datadir, const char *listen,
                    const struct rf_sandbox_opts *o)
{
    char name[NAME_MAX_LEN];
    memset(sb, 0, sizeof(*sb));
    int root = geteuid() == 0;
    int rc = choose_user(sb, datadir, o, name, sizeof(name));
    if (rc != 0)
        return rc;
    if (root && (rc = check_owner(datadir, sb->uid, name)) != 0)
        return rc;
    sb->swap = has_swap();
    memlock_raise(sb);
    if (root) {
        long port = listen_port(listen);
        sb->keep_bind = port > 0 && port < 1024;
        if ((rc = caps_limit(sb->keep_bind)) != 0)
            return rc;
        gid_t keep[1] = {o->keep_gid};
        size_t nkeep = o->keep_group && user_in_group(sb->uid, sb->gid, o->keep_gid) ? 1 : 0;
        if (setgroups(nkeep, nkeep ? keep : NULL) != 0 ||
            (sb->uid != 0 && (setresgid(sb->gid, sb->gid, sb->gid) != 0 ||
                              setresuid(sb->uid, sb->uid, sb->uid) != 0))) {
            say_errno("cannot switch to the serving user");
            return RF_ERR_IO;
        }
        if (caps_set(sb->keep_bind) != 0) {
            say_errno("cannot drop capabilities");
            return RF_ERR_IO;
        }
        if ((rc = verify_dropped(sb)) != 0)
            return rc;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        say_errno("cannot set no_new_privs");
        return RF_ERR_IO;
    }
    /* a uid change resets dumpable to fs.suid_dumpable: say 0 again */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        say_errno("cannot mark the process non-dumpable");
        return RF_ERR_IO;
    }
    return 0;
}

/* -------------------------------------------------------------- Landlock */

/* The kernel's ABI, written out here so that older headers build it. */
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */
#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13)                  /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14)               /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)              /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4: TCP connect, to the tor control port only */
    uint64_t scoped;             /* ABI 6 */
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
} __attribute__((packed));

static int ll_abi(void)
{
#ifdef SYS_landlock_create_ruleset
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return v > 0 ? (int)v : 0;
#else
    return 0;
#endif
}

static int ll_add(int ruleset, const char *path, uint64_t access)
{
    struct ll_path_beneath_attr pb;
    int rc = 0;
    pb.allowed_access = access;
    pb.parent_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pb.parent_fd < 0)
        return RF_ERR_IO;
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) != 0)
        rc = RF_ERR_IO;
    close(pb.parent_fd);
    return rc;
}

/* One file (not a directory) that may be read. */
static int ll_add_file(int ruleset, const char *path)
{
    struct ll_path_beneath_attr pb;
    int rc = 0;
    pb.allowed_access = LL_FS_READ_FILE;
    pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
    if (pb.parent_fd < 0)
        return RF_ERR_IO;
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) != 0)
        rc = RF_ERR_IO;
    close(pb.parent_fd);
    return rc;
}

int rf_sandbox_landlock_dir(const char *datadir, unsigned flags)
{
    return rf_sandbox_landlock_dir_net(datadir, flags, NULL, 0);
}

static int landlock_ports(const char *datadir, unsigned flags, const char *read_file,
                          const unsigned *ports, size_t nports);

int rf_sandbox_landlock_dir_net(const char *datadir, unsigned flags, const char *read_file,
                                unsigned connect_port)
{
    return landlock_ports(datadir, flags, read_file, &connect_port, 1);
}

/* The ruleset with TCP connect() to ports[0..nports) (0s skipped). */
static int landlock_ports(const char *datadir, unsigned flags, const char *read_file,
                          const unsigned *ports, size_t nports)
{
    int abi = ll_abi();
    if (abi < 2)
        return 0;
    struct ll_ruleset_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.handled_access_fs = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_READ_DIR |
                             LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR |
                             LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO |
                             LL_FS_MAKE_BLOCK | LL_FS_MAKE_SYM | LL_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= LL_FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= LL_FS_IOCTL_DEV;
    if (abi >= 6)
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
    /* TCP connect: nowhere, or to tor's control port alone (--onion). The
     * rule names a port, not an address: docs/hardening.md says why that is
     * enough with seccomp's socket() rule. Bind is not handled: the HTTP
     * daemon binds after this (and seccomp forbids bind() once it has). */
    if (abi >= 4)
        attr.handled_access_net = LL_NET_CONNECT_TCP;
    /* the store reads, writes, creates, renames (tmp/ -> blobs/) and removes
     * files beneath the data directory; it never executes, links or makes
     * anything but regular files and directories there */
    uint64_t data = LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_REMOVE_DIR |
                    LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_REFER;
    if (abi >= 3)
        data |= LL_FS_TRUNCATE;
    int rc = RF_ERR_IO;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0)
        return RF_ERR_IO;
    if (ll_add(ruleset, datadir, data) != 0)
        goto out;
    if (read_file != NULL && ll_add_file(ruleset, read_file) != 0)
        goto out;
    for (size_t i = 0; abi >= 4 && i < nports; i++) {
        if (ports[i] == 0 || ports[i] > 65535)
            continue;
        struct ll_net_port_attr np = {LL_NET_CONNECT_TCP, ports[i]};
        if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &np, 0) != 0)
            goto out;
    }
    /* sanitizer reports read /proc/self/maps and the binaries' symbols */
    if ((flags & RF_SANDBOX_SANITIZER) &&
        ll_add(ruleset, "/", LL_FS_READ_FILE | LL_FS_READ_DIR) != 0)
        goto out;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
        goto out;
    rc = abi;
out:
    close(ruleset);
    return rc;
}

/* Threads in this process, from /proc/self/status; 0 if unknown. */
static long thread_count(void)
{
    char line[256];
    long n = 0;
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "Threads:", 8) == 0)
            n = strtol(line + 8, NULL, 10);
    fclose(f);
    return n;
}

int rf_sandbox_landlock(struct rf_sandbox *sb, const char *datadir, const struct rf_sandbox_opts *o)
{
    long threads = thread_count();
    if (threads > 1) {
        /* Landlock would bind this thread only: a bug in the start-up order */
        rf_log_num(RF_LOG_ERROR, "sandbox: Landlock must come before any thread", "threads",
                   threads);
        return RF_ERR_INVALID;
    }
    int abi = ll_abi();
    if (abi == 0) {
        rf_log_warn("sandbox: this kernel has no Landlock; files are limited by permissions only");
        return 0;
    }
    if (abi < 2) {
        rf_log_warn("sandbox: Landlock ABI 1 cannot allow renames between directories; not used");
        return 0;
    }
    const unsigned ports[2] = {o->connect_port, o->db_port};
    int rc = landlock_ports(datadir, BUILD_FLAGS, o->read_file, ports, 2);
    if (rc < 0) {
        say_errno("cannot apply the Landlock ruleset to the data directory");
        return rc;
    }
    sb->landlock_abi = rc;
    rf_log_num(RF_LOG_INFO, "sandbox: Landlock limits files to the data directory", "abi", rc);
    if (o->read_file != NULL)
        rf_log_info("sandbox: Landlock also allows reading tor's cookie file");
    if (rc >= 4 && o->connect_port > 0)
        rf_log_num(RF_LOG_INFO, "sandbox: Landlock allows TCP connect to tor's control port only",
                   "port", o->connect_port);
    if (rc >= 4 && o->db_port > 0)
        rf_log_num(RF_LOG_INFO, "sandbox: Landlock allows TCP connect to the database's port",
                   "port", o->db_port);
    if (rc >= 4 && o->connect_port == 0 && o->db_port == 0)
        rf_log_info("sandbox: Landlock allows no TCP connect");
    return 0;
}

/* --------------------------------------------------------------- seccomp */

/* What `refuge serve` calls once it listens, by name (libseccomp resolves
 * them for this architecture; a name it does not know is skipped). Calls
 * with an argument rule are in add_arg_rules. */
// clang-format off
static const char *const allowed[] = {
    /* files and descriptors: the store (blobs, SQLite and its WAL, temp
     * files), memfd for inline object fetches; Landlock decides where */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "lseek", "close", "open", "openat", "fstat", "newfstatat", "stat", "lstat", "statx",
    "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getcwd",
    "getdents", "getdents64", "fsync", "fdatasync", "sync_file_range", "ftruncate", "fallocate", "fcntl",
    "flock", "unlink", "unlinkat", "rename", "renameat", "renameat2", "fchmod",
    "memfd_create",
    /* memory (mmap and mprotect: see add_arg_rules) */
    "munmap", "mremap", "madvise", "brk", "mlock", "mlock2", "munlock",
    /* threads (a thread may still be starting when the filter comes) and time */
    "futex", "sched_yield", "sched_getaffinity", "set_robust_list", "rseq",
    "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday",
    "time", "getrandom", "sysinfo",
    /* the network: only on sockets that exist (no socket, bind, connect) */
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll",
    "accept", "accept4", "recvfrom", "recvmsg", "sendto", "sendmsg", "sendfile",
    "shutdown", "setsockopt", "getsockopt", "getsockname", "getpeername",
    /* signals (SIGTERM is waited for), identity, exit */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack",
    "restart_syscall", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
    "getegid", "exit", "exit_group",
};
// clang-format on

/* ASan/UBSan reports and LeakSanitizer's exit-time check: LSan stops the
 * world from a clone()d tracer that ptrace-attaches to every thread, reads
 * /proc/self/task and /proc/self/maps and waits for it (wait4). */
// clang-format off
static const char *const allowed_sanitizer[] = {
    "clone", "ptrace", "wait4", "waitid", "prctl", "kill", "tgkill", "tkill", "pipe2",
    "sched_getparam", "sched_getscheduler", "uname",
};
// clang-format on

static int allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0)
            return RF_ERR_IO;
    }
    return 0;
}

static int add_arg_rules(scmp_filter_ctx ctx, uid_t uid, unsigned flags)
{
    int rc = 0;
    /* no new executable memory: W^X for anything injected at run time */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (flags & RF_SANDBOX_SANITIZER) /* where these are allowed outright */
        goto rest;
    /* signals to itself only (abort() raises SIGABRT with tgkill) */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    /* a thread names itself as it starts (libmicrohttpd's workers) */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                           SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0));
rest:
    /* resource limits may be read, never set */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getrlimit), 0);
    /* a KDF worker lowers its own priority as it starts (nice 0..19) */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 2,
                           SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS, 0), SCMP_A2(SCMP_CMP_LE, 19, 0));
    /* stdio asks whether a stream is a terminal: it is not */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 1,
                           SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS, 0));
    /* SQLite, when it runs as root (--allow-root), gives its -wal and -shm
     * files the database's owner: that is us, never anyone else */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fchown), 1,
                           SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)uid, 0));
    return rc != 0 ? RF_ERR_IO : 0;
}

int rf_sandbox_seccomp(uid_t uid, unsigned flags)
{
    return rf_sandbox_seccomp_net(uid, flags, 0);
}

/* --onion: the control connection to tor may be opened again (tor
 * restarted). socket() only for that family and a stream; connect()
 * cannot be filtered on its address here (seccomp does not read memory):
 * Landlock limits TCP connect to the control port (docs/hardening.md). */
static int add_net_rules(scmp_filter_ctx ctx, int family, int with_connect)
{
    int rc = 0;
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family, 0),
                           SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff, SOCK_STREAM));
    if (with_connect)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
    return rc != 0 ? RF_ERR_IO : 0;
}

static int seccomp_families(uid_t uid, unsigned flags, int fam1, int fam2);

int rf_sandbox_seccomp_net(uid_t uid, unsigned flags, int net_family)
{
    return seccomp_families(uid, flags, net_family, 0);
}

static int seccomp_families(uid_t uid, unsigned flags, int net_family, int fam2)
{
    int rc = RF_ERR_IO;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return RF_ERR_NOMEM;
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1) != 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0)
        goto out;
    if ((flags & RF_SANDBOX_SANITIZER) &&
        allow_names(ctx, allowed_sanitizer,
                    sizeof(allowed_sanitizer) / sizeof(allowed_sanitizer[0])) != 0)
        goto out;
    if (allow_names(ctx, allowed, sizeof(allowed) / sizeof(allowed[0])) != 0)
        goto out;
    if (add_arg_rules(ctx, uid, flags) != 0)
        goto out;
    /* the store's database (fam2) may be on another family than tor's */
    if (net_family != 0 && add_net_rules(ctx, net_family, 1) != 0)
        goto out;
    if (fam2 != 0 && fam2 != net_family && add_net_rules(ctx, fam2, net_family == 0) != 0)
        goto out;
    if (seccomp_load(ctx) != 0)
        goto out;
    rc = 0;
out:
    seccomp_release(ctx);
    return rc;
}

/* ------------------------------------------------------------------ lock */

int rf_sandbox_lock(struct rf_sandbox *sb, const struct rf_sandbox_opts *o)
{
    if (sb->keep_bind) {
        if (caps_set(0) != 0) {
            say_errno("cannot drop the bind capability");
            return RF_ERR_IO;
        }
        sb->keep_bind = 0;
    }
    memlock_report(sb);
    if (o->no_seccomp) {
        rf_log_warn("sandbox: seccomp is off (--no-seccomp)");
        return 0;
    }
    int rc = seccomp_families(sb->uid, BUILD_FLAGS, o->net_family, o->db_family);
    if (rc != 0) {
        say("cannot install the seccomp filter (--no-seccomp starts without it, for debugging)");
        return rc;
    }
    sb->seccomp = 1;
    rf_log_info("sandbox: seccomp allowlist in force");
    return 0;
}
