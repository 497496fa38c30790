/*
 * blob.c - blob files and the housekeeping of the data directory.
 *
 * A blob is written to DIR/tmp/<hex>.tmp (created O_EXCL, 0600), fsynced,
 * renamed (never replacing) to DIR/blobs/<hex>, and DIR/blobs is fsynced: only
 * then does rf_blob_commit return its name, and only then may an object row
 * name it. So a committed row always names a complete, durable file, and a
 * crash leaves at worst a temp file or an unnamed blob, both removed on the
 * next open (rf_blobdir_clear_tmp, rf_blobdir_sweep).
 *
 * Invariants: a struct rf_blob whose write failed has already unlinked its
 * temp file (space is handed back at once on a full disk) and every later
 * call on it fails with that error; rf_blob_commit and rf_blob_abort free b
 * and leave no temp file behind whatever happens. Blob contents are
 * ciphertext; names are random and say nothing.
 *
 * DIR/tmp is not fsynced after the rename: a temp entry surviving a crash is
 * deleted by the next open, so its durability buys nothing.
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/commit.h"
#include "store/store_internal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_SUFFIX ".tmp"
#define TMP_NAME_LEN (RF_BLOB_NAME_LEN + sizeof(TMP_SUFFIX) - 1)

struct rf_blob {
    struct rf_store_files *f;
    int fd;
    int err; /* first failure; the temp file is gone once set */
    uint64_t size;
    struct rf_blob_async *async; /* writing behind (blob_writer.c), or NULL */
    char name[RF_BLOB_NAME_LEN + 1];
    char tmpname[TMP_NAME_LEN + 1];
};

int rf_store_errno(int e)
{
    switch (e) {
    case ENOSPC:
    case EDQUOT:
        return RF_ERR_NOSPACE;
    case ENOMEM:
        return RF_ERR_NOMEM;
    case ENOENT:
        return RF_ERR_NOT_FOUND;
    case EEXIST:
        return RF_ERR_EXISTS;
    default:
        return RF_ERR_IO;
    }
}

int rf_store_fault_hit(struct rf_store_files *f)
{
    int rc = 0;
    pthread_mutex_lock(&f->fault_mu);
    if (f->fault_armed) {
        if (f->fault_left > 0)
            f->fault_left--;
        else
            rc = f->fault_err;
    }
    pthread_mutex_unlock(&f->fault_mu);
    return rc;
}

void rf_store_fault_inject(struct rf_store *st, int after_n_ok, int err)
{
    struct rf_store_files *f = rf_store_files_of(st);
    pthread_mutex_lock(&f->fault_mu);
    f->fault_armed = after_n_ok >= 0 && err != 0;
    f->fault_left = after_n_ok;
    f->fault_err = err;
    pthread_mutex_unlock(&f->fault_mu);
}

int rf_blob_name_valid(const char *name)
{
    size_t i;
    for (i = 0; i < RF_BLOB_NAME_LEN; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return name[i] == '\0';
}

static int fsync_fd(struct rf_store_files *f, int fd)
{
    int rc = rf_store_fault_hit(f);
    if (rc != 0)
        return rc;
    if (fsync(fd) != 0)
        return rf_store_errno(errno);
    return 0;
}

/* ---- the data directory ---- */

static int open_subdir(int dir_fd, const char *name, int *out)
{
    if (mkdirat(dir_fd, name, 0700) != 0 && errno != EEXIST)
        return rf_store_errno(errno);
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return rf_store_errno(errno);
    *out = fd;
    return 0;
}

int rf_blobdir_open(struct rf_store_files *f, const char *datadir, int *recover,
                    int (*referenced)(struct rf_store *st, const char *name))
{
    int rc;
    f->dir_fd = f->blobs_fd = f->tmp_fd = f->lock_fd = -1;
    f->writers = NULL;
    f->referenced = referenced;
    *recover = 0;
    if (mkdir(datadir, 0700) != 0 && errno != EEXIST)
        return rf_store_errno(errno);
    f->dir_fd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd < 0) {
        rc = rf_store_errno(errno);
        goto out;
    }
    if ((rc = open_subdir(f->dir_fd, "blobs", &f->blobs_fd)) != 0)
        goto out;
    if ((rc = open_subdir(f->dir_fd, "tmp", &f->tmp_fd)) != 0)
        goto out;
    int lfd = openat(f->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0) {
        rc = rf_store_errno(errno);
        goto out;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) == 0) {
        f->lock_fd = lfd;
        *recover = 1;
    } else {
        close(lfd);
    }
    /* the new directory entries themselves must survive a crash */
    if (fsync(f->dir_fd) != 0) {
        rc = rf_store_errno(errno);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        rf_blobdir_close(f);
    return rc;
}

int rf_blobdir_open_readonly(struct rf_store_files *f, const char *datadir)
{
    f->dir_fd = f->blobs_fd = f->tmp_fd = f->lock_fd = -1;
    f->writers = NULL;
    f->readonly = 1;
    f->dir_fd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? RF_ERR_NOT_FOUND : rf_store_errno(errno);
    f->blobs_fd = openat(f->dir_fd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (f->blobs_fd < 0 && errno != ENOENT) {
        int rc = rf_store_errno(errno);
        rf_blobdir_close(f);
        return rc;
    }
    return 0;
}

int rf_store_blob_writers(struct rf_store *st, unsigned n)
{
    struct rf_store_files *f = rf_store_files_of(st);
    if (f->readonly || f->writers != NULL)
        return RF_ERR_INVALID;
    return rf_blob_writers_start(&f->writers, n);
}

void rf_blobdir_close(struct rf_store_files *f)
{
    rf_blob_writers_stop(f->writers); /* every blob is committed or aborted by now */
    f->writers = NULL;
    int *fds[] = {&f->tmp_fd, &f->blobs_fd, &f->lock_fd, &f->dir_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* Iterates dir_fd's entries (dup'ed so the original keeps its offset). */
static int dir_open_stream(int dir_fd, DIR **out)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rf_store_errno(errno);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return rf_store_errno(errno);
    }
    *out = d;
    return 0;
}

static int is_dot(const char *n)
{
    return strcmp(n, ".") == 0 || strcmp(n, "..") == 0;
}

int rf_blobdir_usage(struct rf_store_files *f, uint64_t *bytes, uint64_t *files)
{
    DIR *d = NULL;
    struct dirent *e;
    *bytes = *files = 0;
    if (f->blobs_fd < 0)
        return 0;
    int rc = dir_open_stream(f->blobs_fd, &d);
    if (rc != 0)
        return rc;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (!rf_blob_name_valid(e->d_name))
            continue;
        if (fstatat(f->blobs_fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue; /* deleted meanwhile (a purge), or not ours */
        *bytes += (uint64_t)sb.st_size;
        (*files)++;
    }
    closedir(d);
    return 0;
}

/* Unlinks dfd/name; a directory: its entries first, depth levels deep. */
static int remove_entry(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0)
        return 0;
    if ((errno != EISDIR && errno != EPERM) || depth == 0)
        return rf_store_errno(errno);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *d = NULL;
    if (fd < 0 || dir_open_stream(fd, &d) != 0) {
        if (fd >= 0)
            close(fd);
        return RF_ERR_IO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (!is_dot(e->d_name))
            remove_entry(fd, e->d_name, depth - 1);
    closedir(d);
    close(fd);
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0 ? 0 : rf_store_errno(errno);
}

int rf_blobdir_tmp_remove(struct rf_store_files *f, const char *name)
{
    /* a backup's temporary store: DIR/tmp/X.d/{refuge.db*,lock,blobs/,tmp/} */
    return remove_entry(f->tmp_fd, name, 2);
}

int rf_blobdir_clear_tmp(struct rf_store_files *f, long *n)
{
    DIR *d = NULL;
    struct dirent *e;
    int rc = dir_open_stream(f->tmp_fd, &d);
    *n = 0;
    if (rc != 0)
        return rc;
    while ((e = readdir(d)) != NULL) {
        if (is_dot(e->d_name))
            continue;
        if (rf_blobdir_tmp_remove(f, e->d_name) == 0)
            (*n)++;
        else
            rf_log_warn_err("store: cannot remove an entry of tmp", rf_store_errno(errno));
    }
    closedir(d);
    if (*n > 0 && fsync(f->tmp_fd) != 0)
        return rf_store_errno(errno);
    return 0;
}

int rf_blobdir_sweep(struct rf_store_files *f, int (*referenced)(void *ctx, const char *name),
                     void *ctx, long *n)
{
    DIR *d = NULL;
    struct dirent *e;
    long strange = 0;
    int rc = dir_open_stream(f->blobs_fd, &d);
    *n = 0;
    if (rc != 0)
        return rc;
    while ((e = readdir(d)) != NULL) {
        if (is_dot(e->d_name))
            continue;
        if (!rf_blob_name_valid(e->d_name)) {
            strange++; /* not ours to delete */
            continue;
        }
        int r = referenced(ctx, e->d_name);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r == 0) {
            if (unlinkat(f->blobs_fd, e->d_name, 0) == 0)
                (*n)++;
            else
                rf_log_warn_err("store: cannot remove an orphan blob", rf_store_errno(errno));
        }
    }
    if (strange > 0)
        rf_log_num(RF_LOG_WARN, "store: unexpected entries in blobs", "count", strange);
    if (*n > 0 && fsync(f->blobs_fd) != 0)
        rc = rf_store_errno(errno);
out:
    closedir(d);
    return rc;
}

int rf_blobdir_stat(struct rf_store_files *f, const char *name, uint64_t *size)
{
    struct stat sb;
    if (!rf_blob_name_valid(name))
        return RF_ERR_INVALID;
    if (fstatat(f->blobs_fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return rf_store_errno(errno);
    if (!S_ISREG(sb.st_mode))
        return RF_ERR_NOT_FOUND;
    *size = (uint64_t)sb.st_size;
    return 0;
}

int rf_blobdir_open_blob(struct rf_store_files *f, const char *name, int *fd, uint64_t *size)
{
    struct stat sb;
    if (!rf_blob_name_valid(name))
        return RF_ERR_INVALID;
    int bfd = openat(f->blobs_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (bfd < 0)
        return rf_store_errno(errno);
    if (fstat(bfd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(bfd);
        return RF_ERR_IO;
    }
    *fd = bfd;
    *size = (uint64_t)sb.st_size;
    return 0;
}

static int read_fd_all(int fd, uint64_t size, struct rf_buf *out)
{
    if (size > SIZE_MAX)
        return RF_ERR_LIMIT;
    int rc = rf_buf_reserve(out, (size_t)size);
    if (rc != 0)
        return rc;
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, out->data + out->len + got, (size_t)size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return RF_ERR_IO;
        got += (size_t)r;
    }
    out->len += got;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return rf_store_errno(errno);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int rf_blobdir_read_blob(struct rf_store_files *f, const char *blob, struct rf_buf *out)
{
    int fd = -1;
    uint64_t size = 0;
    size_t before = out->len;
    int rc = rf_blobdir_open_blob(f, blob, &fd, &size);
    if (rc == 0) {
        rc = read_fd_all(fd, size, out);
        close(fd);
    }
    if (rc != 0)
        out->len = before;
    return rc;
}

int rf_blobdir_object_fd(struct rf_store_files *f, const struct rf_buf *inl, const char *blob,
                         int *fd, uint64_t *size)
{
    *fd = -1;
    *size = 0;
    if (blob[0])
        return rf_blobdir_open_blob(f, blob, fd, size);
    int mfd = memfd_create("refuge-object", MFD_CLOEXEC);
    if (mfd < 0)
        return rf_store_errno(errno);
    int rc = write_all(mfd, inl->data, inl->len);
    if (rc == 0 && lseek(mfd, 0, SEEK_SET) != 0)
        rc = RF_ERR_IO;
    if (rc != 0) {
        close(mfd);
        return rc;
    }
    *fd = mfd;
    *size = inl->len;
    return 0;
}

void rf_blobdir_unlink(struct rf_store_files *f, char (*names)[RF_BLOB_NAME_LEN + 1], size_t n)
{
    size_t gone = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rf_blob_name_valid(names[i]))
            continue;
        if (unlinkat(f->blobs_fd, names[i], 0) == 0)
            gone++;
        else if (errno != ENOENT)
            rf_log_warn_err("store: cannot remove a deleted object's blob", rf_store_errno(errno));
    }
    /* Not durable until fsynced; if this is lost in a crash the next open's
     * sweep removes the then-unnamed files. */
    if (gone > 0 && fsync(f->blobs_fd) != 0)
        rf_log_warn_err("store: fsync of blobs after delete failed", rf_store_errno(errno));
}

/* ---- blobs ---- */

int rf_blob_begin(struct rf_store *st, struct rf_blob **out)
{
    assert(!rf_committer_in_completion());
    struct rf_store_files *f = rf_store_files_of(st);
    uint8_t rnd[RF_BLOB_NAME_LEN / 2];
    struct rf_blob *b;
    *out = NULL;
    if (f->readonly)
        return RF_ERR_INVALID;
    b = calloc(1, sizeof(*b));
    if (!b)
        return RF_ERR_NOMEM;
    b->f = f;
    b->fd = -1;
    for (int tries = 0; tries < 4; tries++) {
        randombytes_buf(rnd, sizeof(rnd));
        if (rf_hex_encode(b->name, sizeof(b->name), rnd, sizeof(rnd)) != 0)
            break;
        memcpy(b->tmpname, b->name, RF_BLOB_NAME_LEN);
        memcpy(b->tmpname + RF_BLOB_NAME_LEN, TMP_SUFFIX, sizeof(TMP_SUFFIX));
        b->fd = openat(f->tmp_fd, b->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                       0600);
        if (b->fd >= 0 || errno != EEXIST)
            break;
    }
    if (b->fd < 0) {
        int rc = rf_store_errno(errno);
        free(b);
        return rc == RF_ERR_NOT_FOUND ? RF_ERR_IO : rc;
    }
    *out = b;
    return 0;
}

/* Drops the temp file: after a failure, and on abort. */
static void blob_discard(struct rf_blob *b)
{
    if (b->async != NULL) {
        rf_blob_async_cancel(b->async);
        b->async = NULL;
    }
    if (b->fd >= 0) {
        close(b->fd);
        b->fd = -1;
        if (unlinkat(b->f->tmp_fd, b->tmpname, 0) != 0 && errno != ENOENT)
            rf_log_warn_err("store: cannot remove a blob temp file", rf_store_errno(errno));
    }
}

static int blob_fail(struct rf_blob *b, int err)
{
    b->err = err;
    blob_discard(b);
    return err;
}

int rf_blob_write(struct rf_blob *b, const uint8_t *p, size_t n)
{
    if (!b)
        return RF_ERR_INVALID;
    if (b->err != 0)
        return b->err;
    int rc = rf_store_fault_hit(b->f);
    if (rc != 0)
        return blob_fail(b, rc);
    if (b->async == NULL && b->f->writers != NULL && b->size + n > RF_BLOB_ASYNC_MIN)
        (void)rf_blob_async_begin(b->f->writers, b->fd, b->size, &b->async); /* busy: stays here */
    if (b->async != NULL) {
        if ((rc = rf_blob_async_write(b->async, p, n)) != 0)
            return blob_fail(b, rc);
        b->size += n;
        return 0;
    }
    while (n > 0) {
        ssize_t w = write(b->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return blob_fail(b, rf_store_errno(errno));
        }
        if (w == 0)
            return blob_fail(b, RF_ERR_IO);
        p += w;
        n -= (size_t)w;
        b->size += (uint64_t)w;
    }
    return 0;
}

uint64_t rf_blob_size(const struct rf_blob *b)
{
    return b ? b->size : 0;
}

int rf_blob_commit(struct rf_blob *b, char name[RF_BLOB_NAME_LEN + 1])
{
    assert(!rf_committer_in_completion());
    int rc;
    name[0] = '\0';
    if (!b)
        return RF_ERR_INVALID;
    struct rf_store_files *f = b->f;
    if ((rc = b->err) != 0)
        goto out;
    if (b->async != NULL) {
        rc = rf_blob_async_end(b->async);
        b->async = NULL;
        if (rc != 0) {
            blob_fail(b, rc);
            goto out;
        }
    }
    if ((rc = fsync_fd(f, b->fd)) != 0) {
        blob_fail(b, rc);
        goto out;
    }
    if (close(b->fd) != 0) {
        b->fd = -1;
        rc = RF_ERR_IO;
        unlinkat(f->tmp_fd, b->tmpname, 0);
        goto out;
    }
    b->fd = -1;
    int r = renameat2(f->tmp_fd, b->tmpname, f->blobs_fd, b->name, RENAME_NOREPLACE);
    if (r != 0 && errno == EINVAL) /* filesystem without NOREPLACE; 128 random bits */
        r = renameat(f->tmp_fd, b->tmpname, f->blobs_fd, b->name);
    if (r != 0) {
        rc = rf_store_errno(errno);
        unlinkat(f->tmp_fd, b->tmpname, 0);
        goto out;
    }
    if ((rc = fsync_fd(f, f->blobs_fd)) != 0) {
        /* nothing names it yet: take it back */
        unlinkat(f->blobs_fd, b->name, 0);
        goto out;
    }
    memcpy(name, b->name, RF_BLOB_NAME_LEN + 1);
    rc = 0;
out:
    if (rc == RF_ERR_NOT_FOUND)
        rc = RF_ERR_IO;
    free(b);
    return rc;
}

void rf_blob_abort(struct rf_blob *b)
{
    if (!b)
        return;
    blob_discard(b);
    free(b);
}

/* The owner of a blob whose op failed removes it at once rather than leaving
 * it to the next start's sweep. The row check guards against a caller bug
 * deleting live ciphertext. */
int rf_blob_discard(struct rf_store *st, const char *name)
{
    assert(!rf_committer_in_completion());
    struct rf_store_files *f = rf_store_files_of(st);
    if (!rf_blob_name_valid(name))
        return RF_ERR_INVALID;
    int rc = f->referenced(st, name);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return RF_ERR_EXISTS;
    char names[1][RF_BLOB_NAME_LEN + 1];
    memcpy(names[0], name, RF_BLOB_NAME_LEN + 1);
    rf_blobdir_unlink(f, names, 1);
    return 0;
}
