/*
 * blob_writer_test.c - large blobs written behind the caller
 * (src/store/blob_writer.c, rf_store_blob_writers): the bytes on disk are
 * exactly those written, in order, whether a blob writes behind or (when
 * every place is taken) synchronously; a failing write fails the blob and
 * leaves no temp file; an abort in the middle waits for what is in flight.
 */
#include "lib/err.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include "test_tmp.h"
#include <sodium.h>

#define BIG (5 * 1024 * 1024 + 12345) /* past the 1 MiB switch, several buffers */

struct fixture {
    char root[512];
    char dir[600];
    struct rf_store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("REFUGE_TEST_TMP");
    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/blobw-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    if (rf_store_open(&f->st, f->dir) != 0 || rf_store_blob_writers(f->st, 2) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rf_store_close(f->st);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Writes p in uneven pieces (as an upload arrives) and commits. */
static int write_blob(struct rf_store *st, const uint8_t *p, size_t n,
                      char name[RF_BLOB_NAME_LEN + 1])
{
    struct rf_blob *b = NULL;
    int rc = rf_blob_begin(st, &b);
    if (rc != 0)
        return rc;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < 65553 ? n - off : 65553;
        if ((rc = rf_blob_write(b, p + off, k)) != 0) {
            rf_blob_abort(b);
            return rc;
        }
        off += k;
    }
    return rf_blob_commit(b, name);
}

static void assert_blob_bytes(struct fixture *f, const char *name, const uint8_t *p, size_t n)
{
    char path[800];
    snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, name);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t *got = malloc(n + 1);
    size_t have = 0;
    ssize_t r;
    while ((r = read(fd, got + have, n + 1 - have)) > 0)
        have += (size_t)r;
    close(fd);
    assert_int_equal(have, n);
    assert_memory_equal(got, p, n);
    free(got);
}

static void big_blob_reads_back_exactly(void **state)
{
    struct fixture *f = *state;
    uint8_t *p = malloc(BIG);
    randombytes_buf(p, BIG);
    char name[RF_BLOB_NAME_LEN + 1];
    assert_int_equal(write_blob(f->st, p, BIG, name), 0);
    assert_blob_bytes(f, name, p, BIG);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
    free(p);
}

struct writer_arg {
    struct fixture *f;
    uint8_t *p;
    size_t n;
    char name[RF_BLOB_NAME_LEN + 1];
    int rc;
};

static void *one_upload(void *arg)
{
    struct writer_arg *a = arg;
    a->rc = write_blob(a->f->st, a->p, a->n, a->name);
    return NULL;
}

/* More large blobs at once than there are places to write behind: the
 * others write synchronously, and every one reads back exactly. */
static void many_at_once_all_exact(void **state)
{
    struct fixture *f = *state;
    enum { N = 7 };
    struct writer_arg a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = (struct writer_arg){.f = f, .n = BIG - (size_t)i * 100003};
        a[i].p = malloc(a[i].n);
        randombytes_buf(a[i].p, a[i].n);
        assert_int_equal(pthread_create(&t[i], NULL, one_upload, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, 0);
        assert_blob_bytes(f, a[i].name, a[i].p, a[i].n);
        free(a[i].p);
    }
    assert_int_equal(count_entries(f->dir, "blobs"), N);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
}

/* A write failing in the middle of a large blob (the injected fault comes
 * after the switch to writing behind) fails it whole; nothing stays. */
static void failure_past_the_switch_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    uint8_t *p = calloc(1, BIG);
    char name[RF_BLOB_NAME_LEN + 1];
    rf_store_fault_inject(f->st, 40, RF_ERR_NOSPACE); /* 40 pieces of 64 KiB: past 1 MiB */
    assert_int_equal(write_blob(f->st, p, BIG, name), RF_ERR_NOSPACE);
    rf_store_fault_inject(f->st, -1, 0);
    assert_int_equal(count_entries(f->dir, "tmp"), 0);
    assert_int_equal(count_entries(f->dir, "blobs"), 0);
    /* and the next one works */
    assert_int_equal(write_blob(f->st, p, BIG, name), 0);
    assert_blob_bytes(f, name, p, BIG);
    free(p);
}

/* Aborting a blob with buffers in flight waits for them and removes the
 * temp file; the writers stay usable. */
static void abort_in_flight(void **state)
{
    struct fixture *f = *state;
    uint8_t *p = calloc(1, BIG);
    struct rf_blob *b = NULL;
    for (int round = 0; round < 5; round++) {
        assert_int_equal(rf_blob_begin(f->st, &b), 0);
        assert_int_equal(rf_blob_write(b, p, 3 * 1024 * 1024 + round), 0);
        rf_blob_abort(b);
        assert_int_equal(count_entries(f->dir, "tmp"), 0);
    }
    char name[RF_BLOB_NAME_LEN + 1];
    assert_int_equal(write_blob(f->st, p, BIG, name), 0);
    free(p);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(big_blob_reads_back_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(many_at_once_all_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(failure_past_the_switch_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
