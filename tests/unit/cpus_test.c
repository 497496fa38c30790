/* cpus_test.c - the CPU count that sizes the HTTP loops and KDF workers:
 * the cgroup line of /proc/self/cgroup and cpu.max parsed from fake file
 * contents (v2 line among v1 lines, root, malformed, too long), the quota
 * rounded up and at least 1, the smallest quota from the own cgroup up to
 * the root in a fake /sys/fs/cgroup tree, and the usable count as the
 * smaller of affinity and quota. */
#include "server/cpus.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S(x) x, sizeof(x) - 1

static void parse_cgroup(void **state)
{
    (void)state;
    char path[64];
    assert_int_equal(rf_cpus_parse_cgroup(S("0::/\n"), path, sizeof(path)), 0);
    assert_string_equal(path, "/");
    assert_int_equal(
        rf_cpus_parse_cgroup(S("4:memory:/x\n1:cpu:/\n0::/system.slice/refuge.service\n"), path,
                             sizeof(path)),
        0);
    assert_string_equal(path, "/system.slice/refuge.service");
    /* no newline at the end */
    assert_int_equal(rf_cpus_parse_cgroup(S("0::/a/b"), path, sizeof(path)), 0);
    assert_string_equal(path, "/a/b");
    /* v1 only */
    assert_int_equal(rf_cpus_parse_cgroup(S("1:cpu:/\n2:memory:/\n"), path, sizeof(path)),
                     RF_ERR_NOT_FOUND);
    assert_int_equal(rf_cpus_parse_cgroup(S(""), path, sizeof(path)), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_cpus_parse_cgroup(S("0::\n"), path, sizeof(path)), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_cgroup(S("0::relative\n"), path, sizeof(path)), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_cgroup(S("0::/a\0b\n"), path, sizeof(path)), RF_ERR_FORMAT);
    char small[4];
    assert_int_equal(rf_cpus_parse_cgroup(S("0::/abcd\n"), small, sizeof(small)), RF_ERR_LIMIT);
}

static void parse_max(void **state)
{
    (void)state;
    unsigned c = 99;
    assert_int_equal(rf_cpus_parse_max(S("max 100000\n"), &c), 0);
    assert_int_equal(c, 0);
    assert_int_equal(rf_cpus_parse_max(S("100000 100000\n"), &c), 0);
    assert_int_equal(c, 1);
    assert_int_equal(rf_cpus_parse_max(S("150000 100000\n"), &c), 0);
    assert_int_equal(c, 2); /* rounded up */
    assert_int_equal(rf_cpus_parse_max(S("200000 100000"), &c), 0);
    assert_int_equal(c, 2);
    assert_int_equal(rf_cpus_parse_max(S("1000 100000\n"), &c), 0);
    assert_int_equal(c, 1); /* a tenth of a CPU is still one thread */
    assert_int_equal(rf_cpus_parse_max(S("999999999999999 1\n"), &c), 0);
    assert_int_equal(c, RF_CPUS_MAX);
    assert_int_equal(rf_cpus_parse_max(S(""), &c), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_max(S("max\n"), &c), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_max(S("100000 0\n"), &c), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_max(S("-1 100000\n"), &c), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_max(S("100000  100000\n"), &c), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_max(S("100000 100000\nx"), &c), RF_ERR_FORMAT);
    assert_int_equal(rf_cpus_parse_max(S("1234567890123456789 100000\n"), &c), RF_ERR_FORMAT);
}

static char root[512];

static void put(const char *rel, const char *text)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mk(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    assert_int_equal(mkdir(p, 0700), 0);
}

static void quota_tree(void **state)
{
    (void)state;
    const char *base = getenv("REFUGE_TEST_TMP");
    snprintf(root, sizeof(root), "%s/cpus-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(root));
    char proc[600], sys[600];
    snprintf(proc, sizeof(proc), "%s/cgroup", root);
    snprintf(sys, sizeof(sys), "%s/sys", root);
    mk("sys");
    mk("sys/a");
    mk("sys/a/b");
    put("cgroup", "0::/a/b\n");

    /* nothing set anywhere: no quota, affinity rules */
    struct rf_cpus c;
    rf_cpus_probe_at(&c, 8, proc, sys);
    assert_int_equal(c.quota, 0);
    assert_int_equal(c.usable, 8);

    put("sys/a/b/cpu.max", "max 100000\n");
    put("sys/a/cpu.max", "250000 100000\n"); /* a parent's quota binds too */
    rf_cpus_probe_at(&c, 8, proc, sys);
    assert_int_equal(c.affinity, 8);
    assert_int_equal(c.quota, 3);
    assert_int_equal(c.usable, 3);

    put("sys/a/b/cpu.max", "50000 100000\n"); /* the smallest wins */
    rf_cpus_probe_at(&c, 8, proc, sys);
    assert_int_equal(c.quota, 1);
    assert_int_equal(c.usable, 1);

    /* a quota above the affinity mask: the mask rules */
    put("sys/a/b/cpu.max", "max 100000\n");
    put("sys/a/cpu.max", "1600000 100000\n");
    rf_cpus_probe_at(&c, 2, proc, sys);
    assert_int_equal(c.quota, 16);
    assert_int_equal(c.usable, 2);

    /* the root of a cgroup namespace (a container): /sys/fs/cgroup/cpu.max */
    put("cgroup", "0::/\n");
    put("sys/cpu.max", "200000 100000\n");
    rf_cpus_probe_at(&c, 4, proc, sys);
    assert_int_equal(c.quota, 2);
    assert_int_equal(c.usable, 2);

    /* damaged or missing files: no quota, never zero CPUs */
    put("sys/cpu.max", "garbage\n");
    rf_cpus_probe_at(&c, 0, proc, sys);
    assert_int_equal(c.quota, 0);
    assert_int_equal(c.affinity, 1);
    assert_int_equal(c.usable, 1);
    put("cgroup", "1:cpu:/\n");
    rf_cpus_probe_at(&c, 4, proc, sys);
    assert_int_equal(c.usable, 4);
    char missing[620];
    snprintf(missing, sizeof(missing), "%s/nope", root);
    rf_cpus_probe_at(&c, 4, missing, sys);
    assert_int_equal(c.usable, 4);

    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static void this_process(void **state)
{
    (void)state;
    struct rf_cpus c;
    rf_cpus_probe(&c);
    assert_true(c.affinity >= 1);
    assert_true(c.usable >= 1 && c.usable <= c.affinity);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0)
        assert_true(c.affinity <= (unsigned)online);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_cgroup),
        cmocka_unit_test(parse_max),
        cmocka_unit_test(quota_tree),
        cmocka_unit_test(this_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
