/*
 * store_commit.c - durable ops/s of 2 KB inline objects: N threads through
 * the group committer versus the same N threads each running one op per
 * transaction, with the disk's raw write+fdatasync rate as the reference,
 * all measured in one run on one directory. A benchmark, not a test: it
 * prints figures and asserts nothing.
 *
 *   store_commit DIR [threads=16] [seconds=3] [postgresql://...]
 *
 * With a PostgreSQL URL (an empty database, or a fresh schema selected with
 * ?options=-csearch_path%3DNAME) the store is that database (as `refuge
 * server init --db` makes it) and the reference is still this directory's
 * disk: put the cluster's data directory on the same disk.
 *
 * DIR must be on the disk the store will live on (not tmpfs); the program
 * creates DIR/bench-XXXXXX and removes it afterwards. Build and run it with
 * bench/store_commit.sh.
 */
#include "lib/err.h"
#include "store/commit.h"
#include "store/store.h"

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OBJ_SIZE 2048
#define THREADS_MAX 256

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The reference: what one write + fdatasync costs on this disk. */
static double raw_fsync_rate(const char *dir, double seconds)
{
    char path[1200];
    uint8_t buf[OBJ_SIZE];
    long n = 0;
    snprintf(path, sizeof(path), "%s/fsync-probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    randombytes_buf(buf, sizeof(buf));
    double t0 = now_s(), t;
    do {
        if (pwrite(fd, buf, sizeof(buf), (off_t)(n % 1024) * OBJ_SIZE) != (ssize_t)sizeof(buf) ||
            fdatasync(fd) != 0) {
            close(fd);
            return -1;
        }
        n++;
    } while ((t = now_s()) - t0 < seconds);
    close(fd);
    unlink(path);
    return (double)n / (t - t0);
}

struct run {
    struct rf_store *st;
    struct rf_committer *c; /* NULL: one op per transaction */
    int64_t source_id;
    double deadline;
    long ops, errors;
    pthread_t th;
};

static void *worker(void *p)
{
    struct run *r = p;
    uint8_t data[OBJ_SIZE];
    randombytes_buf(data, sizeof(data));
    while (now_s() < r->deadline) {
        struct rf_op op = {.type = RF_OP_OBJECT_PUT,
                           .source_id = r->source_id,
                           .kind = 1,
                           .data = data,
                           .len = sizeof(data)};
        int rc;
        if (r->c) {
            rc = rf_committer_run(r->c, &op);
        } else {
            rc = rf_store_apply(r->st, &op, 1);
            if (rc == 0)
                rc = op.status;
        }
        if (rc == 0)
            r->ops++;
        else
            r->errors++;
    }
    return NULL;
}

static double measure(struct rf_store *st, struct rf_committer *c, int64_t source_id, int threads,
                      double seconds, long *errors)
{
    static struct run runs[THREADS_MAX];
    double t0 = now_s(), deadline = t0 + seconds;
    long total = 0;
    *errors = 0;
    for (int i = 0; i < threads; i++) {
        runs[i] = (struct run){st, c, source_id, deadline, 0, 0, 0};
        pthread_create(&runs[i].th, NULL, worker, &runs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(runs[i].th, NULL);
        total += runs[i].ops;
        *errors += runs[i].errors;
    }
    return (double)total / (now_s() - t0);
}

int main(int argc, char **argv)
{
    char root[1024], data[1100];
    struct rf_store *st = NULL;
    struct rf_committer *c = NULL;
    long err1 = 0, errg = 0;
    int rc = 1;
    if (argc < 2) {
        fprintf(stderr, "usage: store_commit DIR [threads] [seconds] [postgresql://...]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 16;
    double seconds = argc > 3 ? atof(argv[3]) : 3.0;
    const char *db_url = argc > 4 && argv[4][0] ? argv[4] : NULL;
    if (threads < 1 || threads > THREADS_MAX || seconds <= 0) {
        fprintf(stderr, "store_commit: threads 1..%d, seconds > 0\n", THREADS_MAX);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    snprintf(root, sizeof(root), "%s/bench-XXXXXX", argv[1]);
    if (!mkdtemp(root)) {
        perror("store_commit: mkdtemp");
        return 1;
    }
    snprintf(data, sizeof(data), "%s/data", root);
    if (rf_store_create(&st, data, db_url) != 0 || rf_committer_new(&c, st) != 0)
        goto out;
    struct rf_op src = {.type = RF_OP_SOURCE_CREATE};
    randombytes_buf(src.lookup_id, sizeof(src.lookup_id));
    if (rf_store_apply(st, &src, 1) != 0 || src.status != 0)
        goto out;

    double raw = raw_fsync_rate(root, seconds);
    double single = measure(st, NULL, src.source.id, threads, seconds, &err1);
    uint64_t b0, o0, b1, o1;
    rf_committer_stats(c, &b0, &o0);
    double group = measure(st, c, src.source.id, threads, seconds, &errg);
    rf_committer_stats(c, &b1, &o1);

    printf("store_commit: %s, %d threads, %.1f s each, %d-byte inline objects, %s\n",
           rf_store_backend(st), threads, seconds, OBJ_SIZE,
           db_url ? "synchronous_commit=on" : "synchronous=FULL");
    printf("  %-36s %10.0f /s\n", "disk write+fdatasync (reference)", raw);
    printf("  %-36s %10.0f /s  (errors %ld)\n", "one op per transaction", single, err1);
    printf("  %-36s %10.0f /s  (errors %ld)\n", "group commit", group, errg);
    printf("  group / single: %.1fx   group / raw fsync: %.2fx   mean batch: %.1f ops\n",
           single > 0 ? group / single : 0.0, raw > 0 ? group / raw : 0.0,
           b1 > b0 ? (double)(o1 - o0) / (double)(b1 - b0) : 0.0);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "store_commit: store setup failed\n");
    rf_committer_free(c);
    rf_store_close(st);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
