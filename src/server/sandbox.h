/*
 * sandbox.h - confining `refuge serve` (sandbox.c). srv_main.c calls, in
 * this order, while the process is still single-threaded for the first two:
 *
 *   rf_sandbox_drop      who to run as; checks the data directory belongs to
 *                        them; raises the locked-memory limit; switches
 *                        uid/gid for good (keeping only the right to bind a
 *                        port below 1024 when --listen asks for one)
 *   rf_sandbox_landlock  the filesystem shrinks to the data directory
 *                        (Landlock, where the kernel has ABI 2 or later)
 *   ... store, workers, pages, API, HTTP daemon (it binds here) ...
 *   rf_sandbox_lock      drops the bind right, reports the locked-memory
 *                        limit, installs the seccomp allowlist on every
 *                        thread (SECCOMP_FILTER_FLAG_TSYNC)
 *
 * With --onion, the control connection to tor is opened before
 * rf_sandbox_drop and authenticated between it and rf_sandbox_landlock;
 * rf_sandbox_opts then carries what it needs (onion.h).
 *
 * Each prints what an admin must do on stderr when it refuses; none of them
 * prints anything that came from a request. docs/hardening.md says what each
 * measure stops and how to check it on a running server.
 */
#ifndef RF_SANDBOX_H
#define RF_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

/* The locked-memory limit (RLIMIT_MEMLOCK) a root start raises to, and
 * below which a start on a machine with swap warns. */
#define RF_SANDBOX_MEMLOCK_WANT (64ULL << 20)

struct rf_sandbox_opts {
    const char *user; /* --user NAME, or NULL */
    int allow_root;   /* --allow-root: stay uid 0, without any capability */
    int no_seccomp;   /* --no-seccomp: debugging only */
    /* --onion (onion.h): what the control connection to tor needs, and
     * nothing more. All zero without --onion. */
    int keep_group;        /* started as root: keep keep_gid as the only
                            * supplementary group, if the user is in it */
    gid_t keep_gid;        /* the group of tor's cookie file */
    const char *read_file; /* one file outside the data directory it may read */
    int net_family;        /* AF_INET, AF_INET6 or AF_UNIX: socket() of that
                            * family and connect() are allowed (reconnects) */
    unsigned connect_port; /* TCP: the only port connect() reaches (Landlock) */
    /* the store's PostgreSQL server (rf_store_net), onion or not: socket()
     * of db_family and connect() allowed, TCP connect to db_port too */
    int db_family;
    unsigned db_port;
};

struct rf_sandbox {
    uid_t uid; /* who serves */
    gid_t gid;
    int keep_bind;              /* CAP_NET_BIND_SERVICE held until rf_sandbox_lock */
    int landlock_abi;           /* > 0: the Landlock ruleset is in force */
    int seccomp;                /* 1: the seccomp filter is in force */
    int swap;                   /* the machine had swap at start-up */
    unsigned long long memlock; /* RLIMIT_MEMLOCK (soft) after rf_sandbox_drop */
};

/* Decides who serves and becomes them. Started as root: --user NAME, else the
 * owner of datadir if that is not root, else only with --allow-root (uid 0
 * without capabilities); datadir and its top-level entries must belong to
 * that user. Started as anyone else: stays who it is (--user may only name
 * itself). As root also: no supplementary groups, no capability left, an
 * empty bounding set, root's powers locked out (securebits). In every case:
 * no new privileges, not dumpable. listen is --listen (its port decides
 * keep_bind).
 * RF_ERR_INVALID: refused, the reason is on stderr (exit status 2);
 * RF_ERR_IO: a system call failed (stderr says which). */
int rf_sandbox_drop(struct rf_sandbox *sb, const char *datadir, const char *listen,
                    const struct rf_sandbox_opts *o);

/* Restricts the filesystem to datadir (read, write, create, remove beneath
 * it) with Landlock, plus reading o->read_file if set; where the kernel has
 * Landlock ABI 4, TCP connect() is refused but to o->connect_port (no port
 * at all without --onion). Must run before any thread exists: Landlock binds the
 * calling thread and the threads it creates later. A kernel without Landlock
 * (or with ABI 1, which cannot rename between directories) is reported in one
 * line and the start goes on. Sanitizer builds also allow reading everything
 * (their reports read /proc/self/maps and the binaries). */
int rf_sandbox_landlock(struct rf_sandbox *sb, const char *datadir,
                        const struct rf_sandbox_opts *o);

/* After the daemon listens: drops the bind right, reports a too-small
 * locked-memory limit, and (unless o->no_seccomp) installs the allowlist on
 * every thread. RF_ERR_IO if the filter could not be installed. */
int rf_sandbox_lock(struct rf_sandbox *sb, const struct rf_sandbox_opts *o);

/* What the sanitizers' runtime needs on top (sandbox.c; `refuge serve` adds
 * it in sanitizer builds only). */
#define RF_SANDBOX_SANITIZER 1u

/* Installs the serve-time seccomp allowlist on the calling process, all of
 * its threads (exposed for tests, which install the release list in every
 * build). Anything outside it kills the process with SIGSYS. uid: the only
 * owner fchown may set. flags: 0 or RF_SANDBOX_SANITIZER. 0 or RF_ERR_IO. */
int rf_sandbox_seccomp(uid_t uid, unsigned flags);
/* The same with socket(net_family, SOCK_STREAM) and connect() allowed
 * (net_family 0: neither, as rf_sandbox_seccomp). */
int rf_sandbox_seccomp_net(uid_t uid, unsigned flags, int net_family);

/* Landlock on datadir alone for the calling thread and its future children
 * (exposed for tests); RF_SANDBOX_SANITIZER also allows reading everything.
 * Returns the ABI version in force (> 0), 0 if the kernel has no usable
 * Landlock, or RF_ERR_IO. */
int rf_sandbox_landlock_dir(const char *datadir, unsigned flags);
/* The same, plus reading read_file (NULL: none) and TCP connect() to
 * connect_port only (0: to no port). */
int rf_sandbox_landlock_dir_net(const char *datadir, unsigned flags, const char *read_file,
                                unsigned connect_port);

#endif
