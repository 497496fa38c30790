/*
 * blob_writer.c - large blobs written behind the thread that seals them.
 *
 * An upload's thread (an HTTP thread) receives, seals and writes; the write
 * into the page cache was a quarter of its time (bench/upload.sh, perf:
 * copy_folio_from_iter under write()) and the final fsync waited for a
 * whole gigabyte's writeback. Past RF_BLOB_ASYNC_MIN bytes a blob hands its
 * ciphertext, in ASYNC_BUF-byte buffers, to a small pool of writer threads
 * (started before the sandbox forbids new threads) that pwrite each buffer
 * at its offset and start its writeback at once (sync_file_range
 * SYNC_FILE_RANGE_WRITE), so that receiving and sealing overlap the writing
 * and rf_blob_commit's fsync finds little left to flush.
 *
 * Memory stays bounded: a blob holds ASYNC_NBUF buffers (malloc: this is
 * ciphertext, nothing to lock or wipe) and at most ASYNC_BLOBS blobs write
 * behind at once; the others write synchronously as before. When every
 * buffer of a blob is in flight, its thread waits for one.
 *
 * Invariants (under w->mu): a buffer is either the blob's filling buffer,
 * free, or queued/being written (inflight counts them); an error of any
 * write is kept in a->err and returned by every later call; rf_blob_async_end
 * and rf_blob_async_cancel return only once nothing of the blob is in flight,
 * so the caller may then fsync, close or unlink the file.
 */
#include "lib/err.h"
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASYNC_BUF (256 * 1024)
#define ASYNC_NBUF 4
#define ASYNC_BLOBS 4
#define QUEUE_CAP (ASYNC_BLOBS * ASYNC_NBUF)
#define WRITERS_MAX 4

struct rf_blob_async {
    struct rf_blob_writers *w;
    int fd;
    uint64_t off; /* file offset of the filling buffer's first byte */
    uint8_t *buf[ASYNC_NBUF];
    int busy[ASYNC_NBUF]; /* queued or being written */
    int fill;             /* the buffer being filled, or -1 */
    size_t fill_n;
    unsigned inflight;
    int err;
};

struct job {
    struct rf_blob_async *a;
    int buf;
    uint64_t off;
    size_t len;
};

struct rf_blob_writers {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or stopping */
    pthread_cond_t done; /* a job finished */
    struct job q[QUEUE_CAP];
    unsigned head, count;
    unsigned blobs; /* blobs writing behind now */
    int stopping;
    pthread_t threads[WRITERS_MAX];
    unsigned nthreads;
};

static int write_at(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return rf_store_errno(errno);
        if (w == 0)
            return RF_ERR_IO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static void *writer(void *arg)
{
    struct rf_blob_writers *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->count == 0 && !w->stopping)
            pthread_cond_wait(&w->work, &w->mu);
        if (w->count == 0)
            break;
        struct job j = w->q[w->head];
        w->head = (w->head + 1) % QUEUE_CAP;
        w->count--;
        int skip = j.a->err != 0;
        pthread_mutex_unlock(&w->mu);
        int rc = skip ? 0 : write_at(j.a->fd, j.a->buf[j.buf], j.len, j.off);
        if (rc == 0 && !skip) /* start its writeback now; the commit's fsync waits for it */
            (void)sync_file_range(j.a->fd, (off_t)j.off, (off_t)j.len, SYNC_FILE_RANGE_WRITE);
        pthread_mutex_lock(&w->mu);
        if (rc != 0 && j.a->err == 0)
            j.a->err = rc;
        j.a->busy[j.buf] = 0;
        j.a->inflight--;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int rf_blob_writers_start(struct rf_blob_writers **out, unsigned n)
{
    *out = NULL;
    if (n == 0 || n > WRITERS_MAX)
        return RF_ERR_INVALID;
    struct rf_blob_writers *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->done, NULL);
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, writer, w) != 0) {
            rf_blob_writers_stop(w);
            return RF_ERR_NOMEM;
        }
        w->nthreads++;
    }
    *out = w;
    return 0;
}

void rf_blob_writers_stop(struct rf_blob_writers *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int rf_blob_async_begin(struct rf_blob_writers *w, int fd, uint64_t off, struct rf_blob_async **out)
{
    *out = NULL;
    if (w == NULL)
        return RF_ERR_BUSY;
    pthread_mutex_lock(&w->mu);
    int full = w->stopping || w->blobs >= ASYNC_BLOBS;
    if (!full)
        w->blobs++;
    pthread_mutex_unlock(&w->mu);
    if (full)
        return RF_ERR_BUSY;
    struct rf_blob_async *a = calloc(1, sizeof(*a));
    int rc = a ? 0 : RF_ERR_NOMEM;
    for (int i = 0; rc == 0 && i < ASYNC_NBUF; i++)
        if ((a->buf[i] = malloc(ASYNC_BUF)) == NULL)
            rc = RF_ERR_NOMEM;
    if (rc != 0) {
        for (int i = 0; a != NULL && i < ASYNC_NBUF; i++)
            free(a->buf[i]);
        free(a);
        pthread_mutex_lock(&w->mu);
        w->blobs--;
        pthread_mutex_unlock(&w->mu);
        return rc;
    }
    a->w = w;
    a->fd = fd;
    a->off = off;
    a->fill = -1;
    *out = a;
    return 0;
}

/* Under w->mu: queues the filling buffer (fill_n > 0). The queue has room:
 * it holds at most ASYNC_NBUF jobs per blob and ASYNC_BLOBS blobs. */
static void submit(struct rf_blob_async *a)
{
    struct rf_blob_writers *w = a->w;
    w->q[(w->head + w->count) % QUEUE_CAP] =
        (struct job){.a = a, .buf = a->fill, .off = a->off, .len = a->fill_n};
    w->count++;
    a->busy[a->fill] = 1;
    a->inflight++;
    a->off += a->fill_n;
    a->fill = -1;
    a->fill_n = 0;
    pthread_cond_signal(&w->work);
}

int rf_blob_async_write(struct rf_blob_async *a, const uint8_t *p, size_t n)
{
    struct rf_blob_writers *w = a->w;
    pthread_mutex_lock(&w->mu);
    while (n > 0 && a->err == 0) {
        if (a->fill < 0) {
            for (;;) {
                for (int i = 0; i < ASYNC_NBUF && a->fill < 0; i++)
                    if (!a->busy[i])
                        a->fill = i;
                if (a->fill >= 0 || a->err != 0)
                    break;
                pthread_cond_wait(&w->done, &w->mu);
            }
            if (a->err != 0)
                break;
        }
        size_t take = ASYNC_BUF - a->fill_n < n ? ASYNC_BUF - a->fill_n : n;
        uint8_t *dst = a->buf[a->fill] + a->fill_n;
        /* the filling buffer is this thread's alone: copy outside the lock */
        pthread_mutex_unlock(&w->mu);
        memcpy(dst, p, take);
        pthread_mutex_lock(&w->mu);
        a->fill_n += take;
        p += take;
        n -= take;
        if (a->fill_n == ASYNC_BUF)
            submit(a);
    }
    int rc = a->err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Waits until nothing of a is in flight, then frees it. */
static int async_free(struct rf_blob_async *a)
{
    struct rf_blob_writers *w = a->w;
    pthread_mutex_lock(&w->mu);
    while (a->inflight > 0)
        pthread_cond_wait(&w->done, &w->mu);
    int rc = a->err;
    w->blobs--;
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < ASYNC_NBUF; i++)
        free(a->buf[i]);
    free(a);
    return rc;
}

int rf_blob_async_end(struct rf_blob_async *a)
{
    pthread_mutex_lock(&a->w->mu);
    if (a->fill >= 0 && a->fill_n > 0 && a->err == 0)
        submit(a);
    pthread_mutex_unlock(&a->w->mu);
    return async_free(a);
}

void rf_blob_async_cancel(struct rf_blob_async *a)
{
    pthread_mutex_lock(&a->w->mu);
    if (a->err == 0)
        a->err = RF_ERR_INVALID; /* what is still queued is skipped */
    pthread_mutex_unlock(&a->w->mu);
    (void)async_free(a);
}
