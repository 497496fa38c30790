/*
 * cpus.c - the CPUs this process may use (cpus.h).
 *
 * sysconf(_SC_NPROCESSORS_ONLN) counts the machine's CPUs; a server pinned
 * to one of them (a container's cpuset, taskset) or held to a quota (a
 * container's --cpus, systemd's CPUQuota=) that sizes its pools from it runs
 * more busy threads than it has CPU for. The affinity mask and the cgroup v2
 * quota say what the process really gets.
 *
 * The files are kernel text, read whole (bounded) and parsed by the two
 * parsers below, which check every length; anything unexpected means "no
 * quota found", never a failure to start.
 */

#include "server/cpus.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CPUS_FILE_MAX 4096
#define CPUS_PATH_MAX 1024

int rf_cpus_parse_cgroup(const char *text, size_t n, char *path, size_t pathmax)
{
    size_t i = 0;
    if (pathmax == 0)
        return RF_ERR_LIMIT;
    path[0] = '\0';
    while (i < n) {
        size_t end = i;
        while (end < n && text[end] != '\n')
            end++;
        /* the unified hierarchy's line: "0::/path" */
        if (end - i >= 3 && memcmp(text + i, "0::", 3) == 0) {
            const char *p = text + i + 3;
            size_t len = end - i - 3;
            if (len == 0 || p[0] != '/' || memchr(p, '\0', len) != NULL)
                return RF_ERR_FORMAT;
            if (len >= pathmax)
                return RF_ERR_LIMIT;
            memcpy(path, p, len);
            path[len] = '\0';
            return 0;
        }
        i = end + 1;
    }
    return RF_ERR_NOT_FOUND;
}

/* A decimal number of at most 18 digits at text[*i]; advances *i. */
static int parse_num(const char *text, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;
    while (*i < n && text[*i] >= '0' && text[*i] <= '9') {
        if (*i - start >= 18)
            return RF_ERR_FORMAT;
        v = v * 10 + (uint64_t)(text[*i] - '0');
        (*i)++;
    }
    if (*i == start)
        return RF_ERR_FORMAT;
    *out = v;
    return 0;
}

int rf_cpus_parse_max(const char *text, size_t n, unsigned *cpus)
{
    size_t i = 0;
    uint64_t quota = 0, period = 0;
    int unlimited = 0;
    *cpus = 0;
    if (n >= 3 && memcmp(text, "max", 3) == 0) {
        unlimited = 1;
        i = 3;
    } else if (parse_num(text, n, &i, &quota) != 0) {
        return RF_ERR_FORMAT;
    }
    if (i >= n || text[i] != ' ')
        return RF_ERR_FORMAT;
    i++;
    if (parse_num(text, n, &i, &period) != 0 || period == 0)
        return RF_ERR_FORMAT;
    if (i < n && text[i] == '\n')
        i++;
    if (i != n)
        return RF_ERR_FORMAT;
    if (unlimited)
        return 0;
    uint64_t c = quota / period + (quota % period != 0);
    if (c < 1)
        c = 1;
    *cpus = c > RF_CPUS_MAX ? RF_CPUS_MAX : (unsigned)c;
    return 0;
}

/* Reads a small file whole into buf; its length, or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len < cap) {
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    return len < cap ? (ssize_t)len : -1; /* a full buffer: too long to be ours */
}

unsigned rf_cpus_quota_at(const char *proc_cgroup, const char *cgroup_root)
{
    char text[CPUS_FILE_MAX];
    char cg[CPUS_PATH_MAX];
    char file[2 * CPUS_PATH_MAX + 16];
    ssize_t n = read_small(proc_cgroup, text, sizeof(text));
    if (n < 0 || rf_cpus_parse_cgroup(text, (size_t)n, cg, sizeof(cg)) != 0)
        return 0;
    unsigned best = 0;
    /* the own cgroup, then each parent up to the root ("/") */
    for (;;) {
        int w = snprintf(file, sizeof(file), "%s%s/cpu.max", cgroup_root,
                         strcmp(cg, "/") == 0 ? "" : cg);
        if (w > 0 && (size_t)w < sizeof(file)) {
            unsigned q = 0;
            ssize_t m = read_small(file, text, sizeof(text));
            if (m >= 0 && rf_cpus_parse_max(text, (size_t)m, &q) == 0 && q > 0 &&
                (best == 0 || q < best))
                best = q;
        }
        char *slash = strrchr(cg, '/');
        if (slash == NULL || strcmp(cg, "/") == 0)
            break;
        if (slash == cg)
            cg[1] = '\0';
        else
            *slash = '\0';
    }
    return best;
}

void rf_cpus_probe_at(struct rf_cpus *out, unsigned affinity, const char *proc_cgroup,
                      const char *cgroup_root)
{
    out->affinity = affinity < 1 ? 1 : affinity;
    out->quota = rf_cpus_quota_at(proc_cgroup, cgroup_root);
    out->usable = out->affinity;
    if (out->quota > 0 && out->quota < out->usable)
        out->usable = out->quota;
}

void rf_cpus_probe(struct rf_cpus *out)
{
    cpu_set_t set;
    unsigned affinity = 0;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        affinity = (unsigned)CPU_COUNT(&set);
    if (affinity == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        affinity = n > 0 ? (unsigned)n : 1;
    }
    rf_cpus_probe_at(out, affinity, "/proc/self/cgroup", "/sys/fs/cgroup");
}
