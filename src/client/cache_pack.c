/*
 * cache_pack.c - the objects' pack: the ciphertext of every object up to
 * RF_CACHE_INLINE_MAX, appended to one file (objects/pack, 0600) instead of
 * a blob in its SQLite row (cache.h).
 *
 * Why: a cold sync of 1,100,000 objects wrote each one's ciphertext into
 * SQLite's WAL and then again into the database at every checkpoint, one
 * 4 KiB page per system call: about 1.2 GB written twice, and the store
 * waited on the disk for most of its 22 s (docs/performance.md). In the pack
 * each ciphertext is written once, in large sequential writes; its row keeps
 * only where it is (objects.pack, the offset; objects.size, its length).
 *
 * Rules (the database's rows must never name bytes that are not on disk):
 * - Appends happen only inside a write transaction (rf_cache_begin: BEGIN
 *   IMMEDIATE holds SQLite's write lock, so no other process appends at the
 *   same time). They go to a buffer, written out when full.
 * - rf_cache_commit writes the buffer and fdatasync()s the pack before the
 *   COMMIT; a crash between the two leaves bytes no row names (the next
 *   transaction appends after them).
 * - rf_cache_rollback truncates the pack back to its size at the
 *   transaction's first append.
 * - Reads inside this process's write transaction go through a read window
 *   (a sync's digest reads objects in seq order, nearly sequential); other
 *   reads are a pread of exactly the object's bytes. The pack holds only
 *   ciphertext, as the rows did.
 */
#include "client/cache.h"
#include "client/cache_internal.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PACK_BUF (4u * 1024 * 1024)
#define PACK_WIN (1u * 1024 * 1024)

static int pack_open(struct rf_cache *c)
{
    if (c->pack_fd >= 0)
        return 0;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/pack", c->objdir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return RF_ERR_LIMIT;
    c->pack_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return c->pack_fd >= 0 ? 0 : RF_ERR_IO;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, int64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return RF_ERR_IO;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int flush(struct rf_cache *c)
{
    if (c->pack_buflen == 0)
        return 0;
    int rc =
        pwrite_all(c->pack_fd, c->pack_buf, c->pack_buflen, c->pack_end - (int64_t)c->pack_buflen);
    c->pack_buflen = 0;
    return rc;
}

void rf_pack_begin(struct rf_cache *c)
{
    c->pack_known = 0;
    c->pack_buflen = 0;
    c->win_len = 0;
    c->in_wtx = 1;
}

int rf_pack_append(struct rf_cache *c, const uint8_t *p, size_t n, int64_t *off)
{
    if (!c->in_wtx || n > PACK_BUF)
        return RF_ERR_INVALID; /* the caller stores it in its row */
    int rc = pack_open(c);
    if (rc != 0)
        return rc;
    if (!c->pack_known) {
        struct stat sb;
        if (fstat(c->pack_fd, &sb) != 0)
            return RF_ERR_IO;
        c->pack_base = c->pack_end = (int64_t)sb.st_size;
        c->pack_known = 1;
    }
    if (!c->pack_buf && !(c->pack_buf = malloc(PACK_BUF)))
        return RF_ERR_NOMEM;
    if (c->pack_buflen + n > PACK_BUF && (rc = flush(c)) != 0)
        return rc;
    memcpy(c->pack_buf + c->pack_buflen, p, n);
    c->pack_buflen += n;
    *off = c->pack_end;
    c->pack_end += (int64_t)n;
    return 0;
}

int rf_pack_commit(struct rf_cache *c)
{
    int rc = 0;
    if (c->pack_known && c->pack_end > c->pack_base) {
        rc = flush(c);
        if (rc == 0 && fdatasync(c->pack_fd) != 0)
            rc = RF_ERR_IO;
    }
    return rc;
}

void rf_pack_end(struct rf_cache *c, int committed)
{
    if (!committed && c->pack_known && c->pack_end > c->pack_base)
        (void)!ftruncate(c->pack_fd, (off_t)c->pack_base); /* bytes no row names */
    c->pack_known = 0;
    c->pack_buflen = 0;
    c->win_len = 0;
    c->in_wtx = 0;
}

static int pread_all(int fd, uint8_t *p, size_t n, int64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = pread(fd, p + *got, n - *got, (off_t)(off + (int64_t)*got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return RF_ERR_IO;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

int rf_pack_read(struct rf_cache *c, int64_t off, size_t n, rf_sink_fn sink, void *ctx)
{
    if (off < 0 || n > RF_CACHE_INLINE_MAX)
        return RF_ERR_FORMAT;
    int rc = pack_open(c);
    if (rc != 0)
        return rc;
    /* still in this transaction's buffer */
    if (c->pack_known && c->pack_buflen > 0 && off >= c->pack_end - (int64_t)c->pack_buflen &&
        off + (int64_t)n <= c->pack_end)
        return sink(ctx, c->pack_buf + (c->pack_buflen - (size_t)(c->pack_end - off)), n);
    if (c->pack_known && c->pack_buflen > 0 && (rc = flush(c)) != 0)
        return rc;
    if (c->in_wtx && n <= PACK_WIN) {
        if (!c->win && !(c->win = malloc(PACK_WIN)))
            return RF_ERR_NOMEM;
        if (c->win_len == 0 || off < c->win_off ||
            off + (int64_t)n > c->win_off + (int64_t)c->win_len) {
            size_t got = 0;
            c->win_len = 0;
            rc = pread_all(c->pack_fd, c->win, PACK_WIN, off, &got);
            if (rc != 0)
                return rc;
            c->win_off = off;
            c->win_len = got;
        }
        if (off + (int64_t)n > c->win_off + (int64_t)c->win_len)
            return RF_ERR_NOT_FOUND; /* the pack is shorter than its rows say */
        return sink(ctx, c->win + (off - c->win_off), n);
    }
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return RF_ERR_NOMEM;
    size_t got = 0;
    rc = pread_all(c->pack_fd, b, n, off, &got);
    if (rc == 0 && got != n)
        rc = RF_ERR_NOT_FOUND;
    if (rc == 0)
        rc = sink(ctx, b, n);
    free(b);
    return rc;
}

void rf_pack_close(struct rf_cache *c)
{
    if (c->pack_fd >= 0)
        close(c->pack_fd);
    c->pack_fd = -1;
    free(c->pack_buf);
    free(c->win);
    c->pack_buf = c->win = NULL;
}
