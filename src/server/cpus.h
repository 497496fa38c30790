/*
 * cpus.h - how many CPUs this process may use, which sizes the HTTP thread
 * pool and the KDF workers. Not the machine's online count: a container's
 * cpuset or `taskset -c 0` shows in the affinity mask (sched_getaffinity),
 * and a CPU quota shows in the cgroup v2 file cpu.max of the process's own
 * cgroup and of each cgroup above it ("QUOTA PERIOD" or "max PERIOD"):
 * QUOTA/PERIOD rounded up, at least 1. The usable count is the smaller.
 *
 * Read once at start, before the sandbox hides /proc and /sys.
 */
#ifndef RF_CPUS_H
#define RF_CPUS_H

#include <stddef.h>

#define RF_CPUS_MAX 1024

struct rf_cpus {
    unsigned affinity; /* CPUs in the affinity mask (at least 1) */
    unsigned quota;    /* cgroup CPU quota in whole CPUs, 0: none found */
    unsigned usable;   /* min(affinity, quota if any), at least 1 */
};

/* The cgroup v2 path ("0::/a/b") of a /proc/self/cgroup text, copied into
 * path (NUL-terminated, starting with '/'). RF_ERR_NOT_FOUND if there is no
 * v2 line, RF_ERR_FORMAT if it is malformed, RF_ERR_LIMIT if it does not fit. */
int rf_cpus_parse_cgroup(const char *text, size_t n, char *path, size_t pathmax);
/* A cpu.max text: *cpus = ceil(quota / period), at least 1, or 0 for "max".
 * RF_ERR_FORMAT if it is not "QUOTA PERIOD" or "max PERIOD" with a newline
 * or nothing after. */
int rf_cpus_parse_max(const char *text, size_t n, unsigned *cpus);
/* The quota of the cgroup named in the file proc_cgroup (normally
 * /proc/self/cgroup) under the cgroup v2 mount cgroup_root (normally
 * /sys/fs/cgroup): the smallest of its cpu.max and its ancestors'; 0 when
 * none is set or nothing can be read. */
unsigned rf_cpus_quota_at(const char *proc_cgroup, const char *cgroup_root);
/* The affinity count combined with the quota found at these paths. */
void rf_cpus_probe_at(struct rf_cpus *out, unsigned affinity, const char *proc_cgroup,
                      const char *cgroup_root);
/* This process: sched_getaffinity, /proc/self/cgroup, /sys/fs/cgroup. */
void rf_cpus_probe(struct rf_cpus *out);

#endif
