/* sandbox_test.c - what confines `refuge serve`, seen from outside: a child
 * that installs the serve-time seccomp filter and then makes a call the
 * server never needs (execve, socket, connect, ptrace, executable memory,
 * signalling another process, setting a limit, setuid) dies of SIGSYS, while
 * everything the store does (create, write, fsync, rename, unlink, memfd,
 * random bytes) still works under it; Landlock lets a child create and
 * rename files in its data directory and nowhere else; as root, the user
 * switch refuses a root-owned data directory, refuses a directory that
 * belongs to someone else, and otherwise leaves no way back to uid 0, no
 * capability, no new privileges, nothing dumpable, and a port below 1024
 * bindable only until the sandbox is locked. Every check runs in a forked
 * child, since none of it can be undone. */
#include "server/sandbox.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

static char tmp_root[512];

/* Runs fn in a child; returns its wait status. */
static int in_child(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void assert_killed_by_sigsys(int status, const char *what)
{
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS) {
        fprintf(stderr, "%s: child %s %d, not killed by SIGSYS\n", what,
                WIFSIGNALED(status) ? "died of signal" : "exited with",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        fail();
    }
}

static void assert_exited_ok(int status, const char *what)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: child %s %d\n", what,
                WIFSIGNALED(status) ? "died of signal" : "exited with",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        fail();
    }
}

/* ----------------------------------------------------- seccomp: forbidden */

static int call_execve(void)
{
    char *const argv[] = {"/bin/true", NULL};
    char *const envp[] = {NULL};
    return execve("/bin/true", argv, envp);
}

static int call_socket(void)
{
    return socket(AF_INET, SOCK_STREAM, 0);
}

static int call_connect(void)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(9);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect(0, (struct sockaddr *)&sin, sizeof(sin));
}

static int call_exec_memory(void)
{
    void *p =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? -1 : 0;
}

static int call_mprotect_exec(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    return mprotect(p, 4096, PROT_READ | PROT_EXEC);
}

static int call_setuid(void)
{
    return (int)syscall(SYS_setuid, 0);
}

static int call_setrlimit(void)
{
    struct rlimit rl = {0, 0};
    return setrlimit(RLIMIT_NOFILE, &rl);
}

static int call_unlimited_prctl(void)
{
    return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

static int call_ptrace(void)
{
    return (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
}

static int call_kill_parent(void)
{
    return kill(getppid(), 0);
}

static int call_setpriority_up(void)
{
    return setpriority(PRIO_PROCESS, 0, -5);
}

struct forbidden {
    const char *name;
    int (*call)(void);
};

static const struct forbidden forbidden[] = {
    {"execve", call_execve},
    {"socket(AF_INET)", call_socket},
    {"connect", call_connect},
    {"mmap(PROT_EXEC)", call_exec_memory},
    {"mprotect(PROT_EXEC)", call_mprotect_exec},
    {"setuid(0)", call_setuid},
    {"setrlimit", call_setrlimit},
    {"setpriority(-5)", call_setpriority_up},
    {"prctl(PR_SET_DUMPABLE)", call_unlimited_prctl},
    {"ptrace", call_ptrace},
    {"kill(parent)", call_kill_parent},
};

static int filtered_call(void *arg)
{
    const struct forbidden *f = arg;
    if (rf_sandbox_seccomp(getuid(), 0) != 0)
        return 3;
    f->call();
    return 4; /* still alive: the call went through */
}

static void forbidden_calls_kill_the_process(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        int status = in_child(filtered_call, (void *)&forbidden[i]);
        assert_killed_by_sigsys(status, forbidden[i].name);
    }
}

/* The forbidden call made from a second thread kills the whole process. */
static int gate[2];

static void *thread_execve(void *arg)
{
    (void)arg;
    char c;
    if (read(gate[0], &c, 1) == 1) /* waits until the filter is in */
        call_execve();
    return NULL;
}

static int filter_then_thread(void *arg)
{
    (void)arg;
    pthread_t th;
    if (pipe(gate) != 0 || pthread_create(&th, NULL, thread_execve, NULL) != 0)
        return 5;
    /* the thread exists before the filter: TSYNC gives it the filter too */
    if (rf_sandbox_seccomp(getuid(), 0) != 0)
        return 3;
    if (write(gate[1], "x", 1) != 1)
        return 6;
    pthread_join(th, NULL);
    return 4;
}

static void filter_reaches_threads_that_already_run(void **state)
{
    (void)state;
    assert_killed_by_sigsys(in_child(filter_then_thread, NULL), "execve from another thread");
}

/* ------------------------------------------------------- seccomp: allowed */

static int store_like_work(void *arg)
{
    const char *dir = arg;
    char a[600], b[600];
    uint8_t buf[4096];
    if (rf_sandbox_seccomp(getuid(), 0) != 0)
        return 3;
    snprintf(a, sizeof(a), "%s/tmp-file", dir);
    snprintf(b, sizeof(b), "%s/blob-file", dir);
    int fd = open(a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return 10;
    memset(buf, 'x', sizeof(buf));
    if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) != 0 ||
        fdatasync(fd) != 0 || ftruncate(fd, 100) != 0)
        return 11;
    close(fd);
    if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_NOREPLACE) != 0)
        return 12;
    struct stat st;
    if (stat(b, &st) != 0 || st.st_size != 100)
        return 13;
    fd = open(b, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || pread(fd, buf, 10, 0) != 10)
        return 14;
    close(fd);
    if (unlink(b) != 0)
        return 15;
    int mfd = memfd_create("refuge-test", MFD_CLOEXEC);
    if (mfd < 0 || write(mfd, buf, 10) != 10 || lseek(mfd, 0, SEEK_SET) != 0)
        return 16;
    close(mfd);
    if (getrandom(buf, 32, 0) != 32)
        return 17;
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect(p, 4096, PROT_NONE) != 0 || munmap(p, 1 << 20) != 0)
        return 18;
    /* stdio's terminal probe is answered "not a terminal", not killed */
    if (isatty(2) || errno != ENOTTY)
        return 19;
    return 0;
}

static void store_work_survives_the_filter(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/allowed", tmp_root);
    mkdir(dir, 0700);
    assert_exited_ok(in_child(store_like_work, dir), "store-like work under seccomp");
}

/* -------------------------------------------------------------- Landlock */
/* --onion (onion.h): two listeners on loopback stand for tor's control
 * port and for anything else; a cookie file outside the data directory. */
struct net_case {
    char data[700];
    char cookie[700];
    uint16_t allowed, other;
};

static int tcp_connect(uint16_t port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static int landlocked_net(void *arg)
{
    const struct net_case *c = arg;
    int abi = rf_sandbox_landlock_dir_net(c->data, 0, c->cookie, c->allowed);
    if (abi == 0)
        return 77;
    if (abi < 0)
        return 30;
    char b[8];
    int fd = open(c->cookie, O_RDONLY);
    if (fd < 0 || read(fd, b, sizeof(b)) <= 0)
        return 31; /* the cookie stays readable */
    close(fd);
    fd = open(c->cookie, O_WRONLY);
    if (fd >= 0 || errno != EACCES)
        return 32; /* but not writable */
    if (abi < 4)
        return 0; /* no network rules on this kernel */
    if (tcp_connect(c->allowed) != 0)
        return 33; /* tor's control port: reachable */
    if (tcp_connect(c->other) == 0 || errno != EACCES)
        return 34; /* any other port: refused */
    /* and after the seccomp filter of --onion, a reconnect still works */
    if (rf_sandbox_seccomp_net(getuid(), 0, AF_INET) != 0)
        return 35;
    if (tcp_connect(c->allowed) != 0)
        return 36;
    return 0;
}

static int listener(uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void landlock_allows_only_the_control_connection(void **state)
{
    (void)state;
    struct net_case c;
    char base[600];
    snprintf(base, sizeof(base), "%s/landlock-net", tmp_root);
    mkdir(base, 0700);
    snprintf(c.data, sizeof(c.data), "%s/data", base);
    mkdir(c.data, 0700);
    snprintf(c.cookie, sizeof(c.cookie), "%s/control_auth_cookie", base);
    FILE *f = fopen(c.cookie, "w");
    assert_non_null(f);
    fputs("cookie", f);
    fclose(f);
    int a = listener(&c.allowed), b = listener(&c.other);
    int status = in_child(landlocked_net, &c);
    close(a);
    close(b);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        skip();
    assert_exited_ok(status, "Landlock for --onion");
}

static int landlocked(void *arg)
{
    const char *base = arg;
    char data[600], tmpf[700], blob[700], outside[700];
    /* each length checked: a release build's -Wformat-truncation wants it */
    if (snprintf(data, sizeof(data), "%s/data", base) >= (int)sizeof(data) ||
        snprintf(tmpf, sizeof(tmpf), "%s/tmp/x", data) >= (int)sizeof(tmpf) ||
        snprintf(blob, sizeof(blob), "%s/blobs/x", data) >= (int)sizeof(blob) ||
        snprintf(outside, sizeof(outside), "%s/outside", base) >= (int)sizeof(outside))
        return 1;
    int abi = rf_sandbox_landlock_dir(data, 0);
    if (abi == 0)
        return 77; /* no Landlock here */
    if (abi < 0)
        return 20;
    int fd = open(tmpf, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return 21;
    close(fd);
    /* tmp/ -> blobs/ is how every blob is committed */
    if (renameat2(AT_FDCWD, tmpf, AT_FDCWD, blob, RENAME_NOREPLACE) != 0)
        return 22;
    if (unlink(blob) != 0)
        return 23;
    fd = open(outside, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0 || errno != EACCES)
        return 24;
    /* nothing outside the data directory can be read either */
    fd = open("/etc/passwd", O_RDONLY);
    if (fd >= 0 || errno != EACCES)
        return 25;
    return 0;
}

static void landlock_keeps_files_in_the_data_directory(void **state)
{
    (void)state;
    char base[600], sub[700];
    snprintf(base, sizeof(base), "%s/landlock", tmp_root);
    mkdir(base, 0700);
    snprintf(sub, sizeof(sub), "%s/data", base);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/data/tmp", base);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/data/blobs", base);
    mkdir(sub, 0700);
    int status = in_child(landlocked, base);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        skip();
    assert_exited_ok(status, "Landlock");
}

/* --------------------------------------- sanitizer reports in the sandbox */

#ifdef SANITIZED
/* The end-to-end suite runs the ASan build with the sandbox on: a memory
 * error or a leak in the server must still come out as a full sanitizer
 * report, not as a SIGSYS or a hang. */
static int report_pipe[2];
/* volatile: the compiler must not see the bugs coming */
static char *volatile hidden;

static int sandboxed_bug(void *arg)
{
    const char *kind = arg;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/asan", tmp_root);
    dup2(report_pipe[1], 2);
    if (rf_sandbox_landlock_dir(dir, RF_SANDBOX_SANITIZER) < 0 ||
        rf_sandbox_seccomp(getuid(), RF_SANDBOX_SANITIZER) != 0)
        return 3;
    if (strcmp(kind, "use-after-free") == 0) {
        hidden = malloc(16);
        free(hidden);
        return hidden[3]; /* ASan reports and aborts */
    }
    hidden = malloc(77);
    hidden = NULL; /* lost: a leak */
    exit(0);       /* LeakSanitizer runs its exit-time check here */
}

static void expect_report(const char *kind, const char *marker)
{
    char dir[600], buf[65536];
    snprintf(dir, sizeof(dir), "%s/asan", tmp_root);
    mkdir(dir, 0700);
    assert_int_equal(pipe(report_pipe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(report_pipe[0]);
        _exit(sandboxed_bug((void *)kind));
    }
    close(report_pipe[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(report_pipe[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(report_pipe[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
        fprintf(stderr, "%s: the sandbox killed the sanitizer's report:\n%s\n", kind, buf);
        fail();
    }
    if (strstr(buf, marker) == NULL || strstr(buf, "sandbox_test.c") == NULL) {
        fprintf(stderr, "%s: no symbolized report (%s) from the sandboxed child:\n%s\n", kind,
                marker, buf);
        fail();
    }
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void sanitizer_reports_survive_the_sandbox(void **state)
{
    (void)state;
    expect_report("use-after-free", "ERROR: AddressSanitizer: heap-use-after-free");
    expect_report("leak", "ERROR: LeakSanitizer: detected memory leaks");
}
#endif

/* ------------------------------------------------------- the user switch */

struct drop_case {
    const char *datadir;
    const char *user;
    const char *listen;
    int allow_root;
    int expect;         /* rf_sandbox_drop's result */
    int raised_memlock; /* root may raise RLIMIT_MEMLOCK here */
};

static int run_drop(void *arg)
{
    struct drop_case *c = arg;
    struct rf_sandbox sb;
    struct rf_sandbox_opts o;
    memset(&o, 0, sizeof(o));
    o.user = c->user;
    o.allow_root = c->allow_root;
    o.no_seccomp = 1;
    int rc = rf_sandbox_drop(&sb, c->datadir, c->listen, &o);
    if (rc != c->expect)
        return 30;
    if (rc != 0)
        return 0;
    if (getuid() != sb.uid || geteuid() != sb.uid || getgid() != sb.gid)
        return 31;
    if (sb.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0))
        return 32;
    if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return 33;
    if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)
        return 34;
    /* the locked-memory limit is as high as root could make it */
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur != rl.rlim_max ||
        (c->raised_memlock && rl.rlim_cur < RF_SANDBOX_MEMLOCK_WANT) || sb.memlock != rl.rlim_cur)
        return 35;
    if (!sb.keep_bind)
        return 0;
    /* a port below 1024 can be bound until the sandbox is locked */
    int port = atoi(strrchr(c->listen, ':') + 1);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        return 36;
    close(s);
    if (rf_sandbox_lock(&sb, &o) != 0)
        return 37;
    s = socket(AF_INET, SOCK_STREAM, 0);
    sin.sin_port = htons((uint16_t)(port + 1));
    if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 || errno != EACCES)
        return 38;
    return 0;
}

static int try_raise_memlock(void *arg)
{
    (void)arg;
    struct rlimit rl = {RF_SANDBOX_MEMLOCK_WANT, RF_SANDBOX_MEMLOCK_WANT};
    struct rlimit now;
    if (getrlimit(RLIMIT_MEMLOCK, &now) == 0 && now.rlim_max >= RF_SANDBOX_MEMLOCK_WANT)
        return 0;
    return setrlimit(RLIMIT_MEMLOCK, &rl) == 0 ? 0 : 1;
}

static void user_switch(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct passwd *nobody = getpwnam("nobody");
    if (nobody == NULL)
        skip();
    char rootdir[600], userdir[600], db[700];
    snprintf(rootdir, sizeof(rootdir), "%s/root-owned", tmp_root);
    snprintf(userdir, sizeof(userdir), "%s/nobody-owned", tmp_root);
    mkdir(rootdir, 0700);
    mkdir(userdir, 0700);
    assert_int_equal(chown(userdir, nobody->pw_uid, nobody->pw_gid), 0);
    /* the test tree must be reachable by nobody */
    chmod(tmp_root, 0755);
    /* without CAP_SYS_RESOURCE (some containers) root cannot raise it */
    int st = in_child(try_raise_memlock, NULL);
    int can_raise = WIFEXITED(st) && WEXITSTATUS(st) == 0;

    struct drop_case refused_root = {rootdir, NULL, "127.0.0.1:8080", 0, RF_ERR_INVALID, 0};
    assert_exited_ok(in_child(run_drop, &refused_root), "root-owned directory, no --user");
    struct drop_case refused_owner = {rootdir, "nobody", "127.0.0.1:8080", 0, RF_ERR_INVALID, 0};
    assert_exited_ok(in_child(run_drop, &refused_owner), "--user nobody on a root-owned directory");
    struct drop_case unknown = {userdir, "no-such-user-refuge", "127.0.0.1:8080",
                                0,       RF_ERR_INVALID,        0};
    assert_exited_ok(in_child(run_drop, &unknown), "--user with an unknown name");
    struct drop_case owner = {userdir, NULL, "127.0.0.1:8080", 0, 0, can_raise};
    assert_exited_ok(in_child(run_drop, &owner), "no --user: the directory's owner");
    struct drop_case named = {userdir, "nobody", "127.0.0.1:8080", 0, 0, can_raise};
    assert_exited_ok(in_child(run_drop, &named), "--user nobody");
    struct drop_case as_root = {rootdir, NULL, "127.0.0.1:8080", 1, 0, can_raise};
    assert_exited_ok(in_child(run_drop, &as_root), "--allow-root");
    struct drop_case low = {userdir, "nobody", "127.0.0.1:842", 0, 0, can_raise};
    assert_exited_ok(in_child(run_drop, &low), "a port below 1024");

    /* a root-owned file inside the user's directory is named */
    snprintf(db, sizeof(db), "%s/refuge.db", userdir);
    int fd = open(db, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct drop_case leftover = {userdir, "nobody", "127.0.0.1:8080", 0, RF_ERR_INVALID, 0};
    assert_exited_ok(in_child(run_drop, &leftover), "a root-owned refuge.db in the directory");
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("REFUGE_TEST_TMP");
    snprintf(tmp_root, sizeof(tmp_root), "%s/sandbox-test-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(tmp_root));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forbidden_calls_kill_the_process),
        cmocka_unit_test(filter_reaches_threads_that_already_run),
        cmocka_unit_test(store_work_survives_the_filter),
        cmocka_unit_test(landlock_keeps_files_in_the_data_directory),
        cmocka_unit_test(landlock_allows_only_the_control_connection),
        cmocka_unit_test(user_switch),
#ifdef SANITIZED
        cmocka_unit_test(sanitizer_reports_survive_the_sandbox),
#endif
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
