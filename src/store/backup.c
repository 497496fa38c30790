/*
 * backup.c - rf_store_backup and rf_store_restore for the SQLite backend:
 * a consistent archive of a live store, and bringing one back into an empty
 * data directory. The archive's bytes are lib/archive.h's format.
 *
 * Backup (rf_backup_write, for both backends). The snapshot is a standalone
 * SQLite database written into DIR/tmp/backup-<hex>.db (created empty 0600
 * first, so SQLite never creates it with its own mode) by the backend's
 * make: on SQLite the database copied with VACUUM INTO, on a connection of
 * its own: one read transaction, so the copy is one committed snapshot while
 * the server goes on writing; on PostgreSQL the rows exported in one
 * REPEATABLE READ snapshot into a temporary SQLite store and copied from it
 * the same way (backup_export.c). So every archive's database member is a
 * SQLite file, and restore gives a SQLite instance. The copy is then
 * opened read-only to count its rows and list the blobs its object rows name,
 * opened as a file, and unlinked by name at once: whatever happens next the
 * temp file is gone (and a crash before that leaves it in DIR/tmp, which the
 * next open empties). Then the members are streamed to fd: the database, each
 * named blob (ascending by name), and the manifest with their BLAKE2b-256
 * digests, computed as the bytes go out.
 *
 * Blobs and the snapshot. A committed blob never changes and is unlinked only
 * after the transaction removing its row commits. So a blob the snapshot
 * names and the directory lacks was deleted after the snapshot (a purge, a
 * person deleting a reply): its row is gone from the live database too. Then
 * the attempt is dropped (fd truncated back to where it started) and the
 * backup starts again with a new snapshot, up to BACKUP_TRIES times. A blob
 * whose row is still live and whose file is missing is damage: an error.
 * Once a blob is open, its unlink no longer matters.
 *
 * Restore. The target must be empty (or absent: created 0700). Pass one
 * reads the whole archive and writes nothing: every header canonical, the
 * members in the layout's order, every padding and trailer byte zero, nothing
 * after the end, the manifest parsed and every member's size and digest equal
 * to its line, the schema no newer than this binary's. Pass two reads it
 * again into DIR/tmp (the archive could change in between: the digests are
 * checked again), then renames the blobs into DIR/blobs and the database to
 * DIR/refuge.db last, fsyncing each directory. Then the store is opened
 * (migrations, recovery) and its rows counted against the manifest, and every
 * blob a row names must be there with its size. On any failure everything
 * restore created in DIR is removed (DIR too if restore created it): nothing
 * is ever left half-restored.
 */
#include "lib/archive.h"
#include "lib/err.h"
#include "lib/log.h"
#include "store/sqlite_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BACKUP_TRIES 3
#define IO_CHUNK (64 * 1024)
#define RESTORE_DB_TMP "restore-db.tmp"

#ifndef RF_REFUGE_VERSION
#define RF_REFUGE_VERSION "unknown"
#endif

static void (*snapshot_hook)(void *arg);
static void *snapshot_hook_arg;

void rf_store_backup_hook(void (*fn)(void *arg), void *arg)
{
    snapshot_hook = fn;
    snapshot_hook_arg = arg;
}

__attribute__((format(printf, 2, 3))) static void why_set(struct rf_backup_info *info,
                                                          const char *fmt, ...)
{
    va_list ap;
    if (!info || info->why[0])
        return; /* the first reason is the one that counts */
    va_start(ap, fmt);
    vsnprintf(info->why, sizeof(info->why), fmt, ap);
    va_end(ap);
}

/* ---- output: buffered writes to fd, counted ---- */

struct out {
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t bytes;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return rf_store_errno(errno);
        if (w == 0)
            return RF_ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int out_flush(struct out *o)
{
    int rc = write_all(o->fd, o->buf, o->len);
    o->len = 0;
    return rc;
}

static int out_put(struct out *o, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = IO_CHUNK - o->len < n ? IO_CHUNK - o->len : n;
        memcpy(o->buf + o->len, p, k);
        o->len += k;
        o->bytes += k;
        p += k;
        n -= k;
        if (o->len == IO_CHUNK) {
            int rc = out_flush(o);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int out_zeros(struct out *o, size_t n)
{
    static const uint8_t zero[RF_TAR_BLOCK];
    while (n > 0) {
        size_t k = n < sizeof(zero) ? n : sizeof(zero);
        int rc = out_put(o, zero, k);
        if (rc != 0)
            return rc;
        n -= k;
    }
    return 0;
}

static int read_some(int fd, uint8_t *p, size_t n, size_t *got)
{
    for (;;) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return rf_store_errno(errno);
        *got = (size_t)r;
        return 0;
    }
}

/* One member: header, size bytes from src (hashed), padding; adds it to m. */
static int put_member(struct out *o, struct rf_manifest *m, const char *name, int src,
                      uint64_t size, uint32_t day)
{
    uint8_t hdr[RF_TAR_BLOCK], digest[RF_DIGEST_BYTES];
    crypto_generichash_state h;
    int rc = rf_tar_header_encode(hdr, name, size, day);
    rc = rc ? rc : out_put(o, hdr, sizeof(hdr));
    if (rc != 0)
        return rc;
    crypto_generichash_init(&h, NULL, 0, sizeof(digest));
    uint64_t left = size;
    while (left > 0) {
        /* read straight into the output buffer's free space */
        if (o->len == IO_CHUNK && (rc = out_flush(o)) != 0)
            return rc;
        size_t room = IO_CHUNK - o->len, got = 0;
        size_t want = left < room ? (size_t)left : room;
        if ((rc = read_some(src, o->buf + o->len, want, &got)) != 0)
            return rc;
        if (got == 0)
            return RF_ERR_IO; /* the file shrank: never happens to a committed blob */
        crypto_generichash_update(&h, o->buf + o->len, got);
        o->len += got;
        o->bytes += got;
        left -= got;
    }
    crypto_generichash_final(&h, digest, sizeof(digest));
    if ((rc = out_zeros(o, rf_tar_padding(size))) != 0)
        return rc;
    return m ? rf_manifest_add(m, name, size, digest) : 0;
}

/* ---- the snapshot ---- */

struct blob_ref {
    char name[RF_BLOB_NAME_LEN + 1];
    uint64_t size;
};

struct snapshot {
    struct rf_backup_info *info;
    struct blob_ref *blobs;
    size_t n, cap;
};

static int count_rows(sqlite3 *db, const char *sql, uint64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(db, sql, -1, &s, NULL));
    if (rc == 0) {
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW)
            *out = (uint64_t)sqlite3_column_int64(s, 0);
        else
            rc = r == SQLITE_DONE ? RF_ERR_DB : rf_sqlite_err(r);
    }
    sqlite3_finalize(s);
    return rc;
}

/* Schema version and row counts of a database (a snapshot or a restored one). */
static int db_counts(sqlite3 *db, struct rf_backup_info *info)
{
    uint64_t v = 0;
    int rc = count_rows(db, "PRAGMA user_version", &v);
    rc = rc ? rc : count_rows(db, "SELECT count(*) FROM sources", &info->sources);
    rc = rc ? rc : count_rows(db, "SELECT count(*) FROM objects", &info->objects);
    rc = rc ? rc : count_rows(db, "SELECT count(*) FROM staff", &info->staff);
    rc = rc ? rc
            : count_rows(db, "SELECT count(*) FROM objects WHERE blob IS NOT NULL", &info->blobs);
    info->schema = (uint32_t)v;
    return rc;
}

static int snapshot_list_blobs(sqlite3 *db, struct snapshot *sn)
{
    sqlite3_stmt *s = NULL;
    int rc = rf_sqlite_err(sqlite3_prepare_v2(
        db, "SELECT blob, size FROM objects WHERE blob IS NOT NULL ORDER BY blob", -1, &s, NULL));
    while (rc == 0) {
        int r = sqlite3_step(s);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = rf_sqlite_err(r);
            break;
        }
        if (sn->n == sn->cap) {
            size_t cap = sn->cap ? sn->cap * 2 : 256;
            void *p = realloc(sn->blobs, cap * sizeof(*sn->blobs));
            if (!p) {
                rc = RF_ERR_NOMEM;
                break;
            }
            sn->blobs = p;
            sn->cap = cap;
        }
        struct blob_ref *b = &sn->blobs[sn->n];
        if ((rc = rf_sqlite_copy_text(b->name, sizeof(b->name), s, 0)) != 0)
            break;
        int64_t size = sqlite3_column_int64(s, 1);
        if (!rf_blob_name_valid(b->name) || size < 0) {
            rc = RF_ERR_DB;
            break;
        }
        b->size = (uint64_t)size;
        sn->n++;
    }
    sqlite3_finalize(s);
    return rc;
}

static int open_db(const char *path, int flags, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = rf_sqlite_err(sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL));
    if (rc == 0) {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    }
    if (rc != 0) {
        sqlite3_close(db);
        db = NULL;
    }
    *out = db;
    return rc;
}

int rf_sqlite_vacuum_into(const char *from, const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    /* a connection of its own: the server's writer goes on meanwhile */
    int rc = open_db(from, SQLITE_OPEN_READONLY, &db);
    if (rc != 0)
        return rc;
    rc = rf_sqlite_err(sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &s, NULL));
    if (rc == 0) {
        sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
        int r = sqlite3_step(s);
        rc = r == SQLITE_DONE ? 0 : rf_sqlite_err(r);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

/* The SQLite backend's snapshot: its own database copied by VACUUM INTO. */
static int sqlite_snapshot(struct rf_store *st, const char *path, struct rf_backup_info *info)
{
    int rc = rf_sqlite_vacuum_into(st->dbpath, path);
    if (rc != 0)
        why_set(info, "cannot copy the database (VACUUM INTO)");
    return rc;
}

/* make() writes the snapshot into DIR/tmp/<tmpname> (created empty 0600
 * first); counts and the blob list from the copy, then the copy opened as
 * *fd and unlinked by name. */
static int snapshot_take(struct rf_store *st, const char *datadir, rf_backup_snapshot_fn make,
                         struct snapshot *sn, int *fd, uint64_t *size)
{
    char tmpname[64], hex[17], *path = NULL;
    uint8_t rnd[8];
    sqlite3 *db = NULL;
    int made = 0, rc;
    *fd = -1;
    randombytes_buf(rnd, sizeof(rnd));
    rf_hex_encode(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(tmpname, sizeof(tmpname), "backup-%s.db", hex);
    size_t plen = strlen(datadir) + strlen("/tmp/") + strlen(tmpname) + 1;
    if (!(path = malloc(plen)))
        return RF_ERR_NOMEM;
    snprintf(path, plen, "%s/tmp/%s", datadir, tmpname);
    int tfd = openat(st->files.tmp_fd, tmpname,
                     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (tfd < 0) {
        rc = rf_store_errno(errno);
        why_set(sn->info, "cannot create a temporary file in the data directory's tmp/");
        goto out;
    }
    close(tfd);
    made = 1;
    if ((rc = make(st, path, sn->info)) != 0)
        goto out;
    if ((rc = open_db(path, SQLITE_OPEN_READONLY, &db)) != 0 ||
        (rc = db_counts(db, sn->info)) != 0 || (rc = snapshot_list_blobs(db, sn)) != 0) {
        why_set(sn->info, "cannot read the database copy");
        goto out;
    }
    sqlite3_close(db);
    db = NULL;
    *fd = openat(st->files.tmp_fd, tmpname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (*fd < 0 || fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = RF_ERR_IO;
        goto out;
    }
    *size = (uint64_t)sb.st_size;
    rc = 0;
out:
    sqlite3_close(db);
    if (made && unlinkat(st->files.tmp_fd, tmpname, 0) != 0)
        rf_log_warn_err("backup: cannot remove the database copy", rf_store_errno(errno));
    if (rc != 0 && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    free(path);
    return rc;
}

/* Opens a blob the snapshot names. RF_ERR_CANCELLED: deleted since (start
 * again); RF_ERR_IO: missing while its row is live. */
static int blob_open(struct rf_store *st, const struct blob_ref *b, int *fd,
                     struct rf_backup_info *info)
{
    uint64_t size = 0;
    int rc = rf_blobdir_open_blob(&st->files, b->name, fd, &size);
    if (rc == RF_ERR_NOT_FOUND) {
        int live = st->files.referenced(st, b->name);
        if (live == 0)
            return RF_ERR_CANCELLED;
        why_set(info, "the blob %s is missing from the data directory though a row names it",
                b->name);
        return live < 0 ? live : RF_ERR_IO;
    }
    if (rc != 0) {
        why_set(info, "cannot open the blob %s", b->name);
        return rc;
    }
    if (size != b->size) {
        close(*fd);
        *fd = -1;
        why_set(info, "the blob %s has another size than its row says", b->name);
        return RF_ERR_IO;
    }
    return 0;
}

static int backup_once(struct rf_store *st, const char *datadir, rf_backup_snapshot_fn make,
                       struct out *o, struct rf_backup_info *info)
{
    struct snapshot sn = {info, NULL, 0, 0};
    struct rf_manifest m;
    struct rf_buf text;
    int dbfd = -1;
    uint64_t dbsize = 0;
    uint32_t day = rf_store_today();
    rf_manifest_init(&m);
    rf_buf_init(&text, RF_MANIFEST_MAX);
    int rc = snapshot_take(st, datadir, make, &sn, &dbfd, &dbsize);
    if (rc != 0)
        goto out;
    if (snapshot_hook)
        snapshot_hook(snapshot_hook_arg);
    if ((rc = put_member(o, &m, RF_ARCHIVE_DB, dbfd, dbsize, day)) != 0)
        goto out;
    for (size_t i = 0; i < sn.n; i++) {
        char name[RF_ARCHIVE_NAME_MAX + 1];
        int bfd = -1;
        if ((rc = blob_open(st, &sn.blobs[i], &bfd, info)) != 0)
            goto out;
        snprintf(name, sizeof(name), RF_ARCHIVE_BLOBS "%s", sn.blobs[i].name);
        rc = put_member(o, &m, name, bfd, sn.blobs[i].size, day);
        close(bfd);
        if (rc != 0)
            goto out;
    }
    snprintf(m.version, sizeof(m.version), "%s", RF_REFUGE_VERSION);
    snprintf(m.backend, sizeof(m.backend), "sqlite");
    m.schema = info->schema;
    m.day = day;
    m.sources = info->sources;
    m.objects = info->objects;
    m.staff = info->staff;
    m.blobs = info->blobs;
    if ((rc = rf_manifest_encode(&m, &text)) != 0)
        goto out;
    uint8_t hdr[RF_TAR_BLOCK];
    rc = rf_tar_header_encode(hdr, RF_ARCHIVE_MANIFEST, text.len, day);
    rc = rc ? rc : out_put(o, hdr, sizeof(hdr));
    rc = rc ? rc : out_put(o, text.data, text.len);
    rc = rc ? rc : out_zeros(o, rf_tar_padding(text.len));
    rc = rc ? rc : out_zeros(o, 2 * RF_TAR_BLOCK);
    rc = rc ? rc : out_flush(o);
    info->day = day;
out:
    if (dbfd >= 0)
        close(dbfd);
    free(sn.blobs);
    rf_manifest_free(&m);
    rf_buf_free(&text);
    return rc;
}

int rf_backup_write(struct rf_store *st, const char *datadir, rf_backup_snapshot_fn make, int fd,
                    struct rf_backup_info *info)
{
    struct out o = {fd, NULL, 0, 0};
    int rc = RF_ERR_CANCELLED;
    memset(info, 0, sizeof(*info));
    off_t start = lseek(fd, 0, SEEK_CUR);
    if (start < 0) {
        why_set(info, "the output must be a regular file");
        return RF_ERR_INVALID;
    }
    if (!(o.buf = malloc(IO_CHUNK)))
        return RF_ERR_NOMEM;
    for (int tries = 0; tries < BACKUP_TRIES && rc == RF_ERR_CANCELLED; tries++) {
        o.len = 0;
        o.bytes = 0;
        if (tries > 0) {
            rf_log_info("backup: a blob was deleted after the snapshot; starting again");
            if (ftruncate(fd, start) != 0 || lseek(fd, start, SEEK_SET) != start) {
                rc = rf_store_errno(errno);
                break;
            }
        }
        memset(info, 0, sizeof(*info));
        rc = backup_once(st, datadir, make, &o, info);
    }
    if (rc == RF_ERR_CANCELLED)
        why_set(info, "blobs kept being deleted while the backup ran; try again");
    if (rc != 0)
        why_set(info, "%s", rf_strerror(rc));
    info->bytes = o.bytes;
    free(o.buf);
    return rc;
}

int rf_sqlite_backup(struct rf_store *st, int fd, struct rf_backup_info *info)
{
    /* st->dbpath is DIR/refuge.db */
    size_t dl = strlen(st->dbpath) - strlen("/refuge.db");
    char *dir = strndup(st->dbpath, dl);
    if (!dir)
        return RF_ERR_NOMEM;
    int rc = rf_backup_write(st, dir, sqlite_snapshot, fd, info);
    free(dir);
    return rc;
}

/* ---- restore: reading an archive ---- */

struct in {
    int fd;
    uint8_t *buf;
    size_t pos, len;
    int eof;
    uint64_t bytes;
};

/* Exactly n bytes, or RF_ERR_TRUNCATED. */
static int in_get(struct in *r, uint8_t *p, size_t n)
{
    while (n > 0) {
        if (r->pos == r->len) {
            size_t got = 0;
            int rc = read_some(r->fd, r->buf, IO_CHUNK, &got);
            if (rc != 0)
                return rc;
            if (got == 0)
                return RF_ERR_TRUNCATED;
            r->pos = 0;
            r->len = got;
        }
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        memcpy(p, r->buf + r->pos, k);
        r->pos += k;
        r->bytes += k;
        p += k;
        n -= k;
    }
    return 0;
}

/* 1 if nothing is left to read. */
static int in_at_end(struct in *r)
{
    size_t got = 0;
    if (r->pos < r->len)
        return 0;
    if (read_some(r->fd, r->buf, IO_CHUNK, &got) != 0)
        return 0;
    r->pos = 0;
    r->len = got;
    return got == 0;
}

/* What a walk over an archive does with members: out_fd < 0 reads only;
 * else each DB/blob member is written into out_fd (DIR/tmp). */
struct walk {
    struct in in;
    int out_fd;
    struct rf_manifest got; /* the members as read */
    struct rf_manifest m;   /* the manifest */
    uint32_t day;
    struct rf_backup_info *info;
};

static void tmp_name_of(const char *name, char out[RF_BLOB_NAME_LEN + 8])
{
    if (rf_archive_member_kind(name) == RF_MEMBER_DB)
        snprintf(out, RF_BLOB_NAME_LEN + 8, "%s", RESTORE_DB_TMP);
    else
        snprintf(out, RF_BLOB_NAME_LEN + 8, "%s.tmp", name + strlen(RF_ARCHIVE_BLOBS));
}

static int walk_data(struct walk *w, const char *name, uint64_t size)
{
    uint8_t chunk[IO_CHUNK > 16384 ? 16384 : IO_CHUNK], digest[RF_DIGEST_BYTES];
    crypto_generichash_state h;
    char tmp[RF_BLOB_NAME_LEN + 8];
    int ofd = -1, rc = 0;
    if (w->out_fd >= 0) {
        tmp_name_of(name, tmp);
        ofd = openat(w->out_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (ofd < 0)
            return rf_store_errno(errno);
    }
    crypto_generichash_init(&h, NULL, 0, sizeof(digest));
    for (uint64_t left = size; left > 0 && rc == 0;) {
        size_t k = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
        rc = in_get(&w->in, chunk, k);
        if (rc == 0) {
            crypto_generichash_update(&h, chunk, k);
            if (ofd >= 0)
                rc = write_all(ofd, chunk, k);
        }
        left -= k;
    }
    if (rc == 0 && ofd >= 0 && fsync(ofd) != 0)
        rc = rf_store_errno(errno);
    if (ofd >= 0)
        close(ofd);
    crypto_generichash_final(&h, digest, sizeof(digest));
    return rc ? rc : rf_manifest_add(&w->got, name, size, digest);
}

static int walk_padding(struct walk *w, uint64_t size)
{
    uint8_t pad[RF_TAR_BLOCK];
    size_t n = rf_tar_padding(size);
    int rc = in_get(&w->in, pad, n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (pad[i] != 0) {
            why_set(w->info, "the archive is damaged: padding after a member is not zero");
            return RF_ERR_FORMAT;
        }
    return 0;
}

static int walk_manifest(struct walk *w, uint64_t size)
{
    if (size > RF_MANIFEST_MAX) {
        why_set(w->info, "the manifest is larger than %u bytes", RF_MANIFEST_MAX);
        return RF_ERR_LIMIT;
    }
    uint8_t *p = malloc(size ? (size_t)size : 1);
    if (!p)
        return RF_ERR_NOMEM;
    int rc = in_get(&w->in, p, (size_t)size);
    if (rc == 0) {
        rc = rf_manifest_parse(p, (size_t)size, &w->m);
        if (rc == RF_ERR_VERSION)
            why_set(w->info, "the manifest is of a newer archive format than this refuge reads");
        else if (rc != 0)
            why_set(w->info, "the manifest is damaged (%s)", rf_strerror(rc));
    }
    free(p);
    return rc;
}

/* The members one by one, in the layout's order, up to the trailer and EOF. */
static int walk_members(struct walk *w)
{
    uint8_t blk[RF_TAR_BLOCK];
    char name[RF_ARCHIVE_NAME_MAX + 1], last[RF_ARCHIVE_NAME_MAX + 1] = "";
    int seen_manifest = 0, rc;
    for (size_t i = 0;; i++) {
        uint64_t size = 0;
        uint32_t day = 0;
        if ((rc = in_get(&w->in, blk, sizeof(blk))) != 0)
            return rc;
        if (rf_tar_block_zero(blk))
            break;
        if (seen_manifest) {
            why_set(w->info, "the archive holds a member after its manifest");
            return RF_ERR_FORMAT;
        }
        if (rf_tar_header_decode(blk, name, &size, &day) != 0) {
            why_set(w->info,
                    "member %zu's header is damaged or outside the layout of a Refuge "
                    "backup (only regular files refuge.db, blobs/<hex>, MANIFEST)",
                    i + 1);
            return RF_ERR_FORMAT;
        }
        enum rf_member_kind k = rf_archive_member_kind(name);
        if (i == 0)
            w->day = day;
        if (day != w->day || (i == 0) != (k == RF_MEMBER_DB) ||
            (k == RF_MEMBER_BLOB && strcmp(last, name) >= 0)) {
            why_set(w->info, "the archive's member %s is out of place", name);
            return RF_ERR_FORMAT;
        }
        if (k == RF_MEMBER_BLOB)
            memcpy(last, name, sizeof(last));
        if (k == RF_MEMBER_MANIFEST) {
            seen_manifest = 1;
            rc = walk_manifest(w, size);
        } else {
            rc = walk_data(w, name, size);
        }
        if (rc == 0)
            rc = walk_padding(w, size);
        if (rc != 0)
            return rc;
    }
    if ((rc = in_get(&w->in, blk, sizeof(blk))) != 0)
        return rc;
    if (!rf_tar_block_zero(blk) || !in_at_end(&w->in)) {
        why_set(w->info, "the archive's end is damaged or has bytes after it");
        return RF_ERR_FORMAT;
    }
    if (!seen_manifest) {
        why_set(w->info, "the archive has no manifest");
        return RF_ERR_FORMAT;
    }
    return 0;
}

/* Every member read equals its manifest line, and nothing is missing or extra. */
static int walk_compare(struct walk *w)
{
    if (w->m.day != w->day) {
        why_set(w->info, "the manifest's day differs from its members'");
        return RF_ERR_FORMAT;
    }
    for (size_t i = 0; i < w->got.n || i < w->m.n; i++) {
        const struct rf_manifest_member *a = i < w->got.n ? &w->got.members[i] : NULL;
        const struct rf_manifest_member *b = i < w->m.n ? &w->m.members[i] : NULL;
        if (!a) {
            why_set(w->info, "the member %s listed in the manifest is missing", b->name);
            return RF_ERR_FORMAT;
        }
        if (b && strcmp(a->name, b->name) > 0) {
            why_set(w->info, "the member %s listed in the manifest is missing", b->name);
            return RF_ERR_FORMAT;
        }
        if (!b || strcmp(a->name, b->name) != 0) {
            why_set(w->info, "the member %s is not listed in the manifest", a->name);
            return RF_ERR_FORMAT;
        }
        if (a->size != b->size || sodium_memcmp(a->digest, b->digest, RF_DIGEST_BYTES) != 0) {
            why_set(w->info,
                    "the member %s does not match its digest in the manifest: "
                    "the archive is damaged",
                    a->name);
            return RF_ERR_FORMAT;
        }
    }
    return 0;
}

/* A whole pass over the archive from its start. */
static int walk_archive(struct walk *w, int fd, int out_fd)
{
    rf_manifest_free(&w->got);
    rf_manifest_free(&w->m);
    w->in.fd = fd;
    w->in.pos = w->in.len = 0;
    w->in.bytes = 0;
    w->out_fd = out_fd;
    if (lseek(fd, 0, SEEK_SET) != 0) {
        why_set(w->info, "the archive must be a regular file");
        return RF_ERR_INVALID;
    }
    int rc = walk_members(w);
    if (rc == RF_ERR_TRUNCATED)
        why_set(w->info, "the archive ends early: it is truncated");
    if (rc == 0)
        rc = walk_compare(w);
    return rc;
}

int rf_store_archive_check(int fd, struct rf_backup_info *info)
{
    struct walk w;
    memset(&w, 0, sizeof(w));
    memset(info, 0, sizeof(*info));
    w.info = info;
    if (!(w.in.buf = malloc(IO_CHUNK)))
        return RF_ERR_NOMEM;
    int rc = walk_archive(&w, fd, -1);
    if (rc == 0) {
        info->day = w.m.day;
        info->schema = w.m.schema;
        info->sources = w.m.sources;
        info->objects = w.m.objects;
        info->staff = w.m.staff;
        info->blobs = w.m.blobs;
        info->bytes = w.in.bytes;
    } else {
        why_set(info, "%s", rf_strerror(rc));
    }
    rf_manifest_free(&w.got);
    rf_manifest_free(&w.m);
    free(w.in.buf);
    return rc;
}

/* ---- restore: the target directory ---- */

/* 0 if dir is absent (*exists = 0) or an empty directory. */
static int target_check(const char *dir, int *exists, struct rf_backup_info *info)
{
    struct stat sb;
    *exists = 0;
    if (lstat(dir, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        why_set(info, "cannot look at the target directory");
        return rf_store_errno(errno);
    }
    if (!S_ISDIR(sb.st_mode)) {
        why_set(info, "the target exists and is not a directory");
        return RF_ERR_EXISTS;
    }
    *exists = 1;
    DIR *d = opendir(dir);
    if (!d) {
        why_set(info, "cannot read the target directory");
        return rf_store_errno(errno);
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            why_set(info, "the target directory is not empty; restore only into an empty or "
                          "new directory");
            rc = RF_ERR_EXISTS;
            break;
        }
    closedir(d);
    return rc;
}

/* Removes every entry of the directory dfd/name (files only), then it. */
static void wipe_subdir(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        DIR *d = fdopendir(fd);
        struct dirent *e;
        if (d) {
            while ((e = readdir(d)) != NULL)
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                    unlinkat(fd, e->d_name, 0);
            closedir(d);
        } else {
            close(fd);
        }
    }
    unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Empties dir, which held nothing before restore began: what is in it now is
 * ours (the store's layout: files, and the blobs and tmp directories). */
static void target_wipe(const char *dir, int created)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0)
        return;
    DIR *d = fdopendir(dup(dfd));
    struct dirent *e;
    if (d) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (unlinkat(dfd, e->d_name, 0) != 0 && (errno == EISDIR || errno == EPERM))
                wipe_subdir(dfd, e->d_name);
        }
        closedir(d);
    }
    fsync(dfd);
    close(dfd);
    if (created)
        rmdir(dir);
}

static int mkdir_at(int dfd, const char *name, int *out)
{
    if (mkdirat(dfd, name, 0700) != 0)
        return rf_store_errno(errno);
    *out = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return *out >= 0 ? 0 : rf_store_errno(errno);
}

/* Pass two: the archive into DIR/tmp, then renamed into place. */
static int restore_files(struct walk *w, int fd, int dfd, const struct rf_manifest *expect)
{
    int blobs_fd = -1, tmp_fd = -1;
    int rc = mkdir_at(dfd, "blobs", &blobs_fd);
    rc = rc ? rc : mkdir_at(dfd, "tmp", &tmp_fd);
    if (rc != 0) {
        why_set(w->info, "cannot create the data directory's blobs/ and tmp/");
        goto out;
    }
    if ((rc = walk_archive(w, fd, tmp_fd)) != 0) {
        if (rc == RF_ERR_NOSPACE)
            why_set(w->info, "the disk is full");
        goto out;
    }
    /* the archive read now must be the one checked before */
    if (w->m.n != expect->n) {
        why_set(w->info, "the archive changed while it was being restored");
        rc = RF_ERR_FORMAT;
        goto out;
    }
    for (size_t i = 0; i < w->m.n; i++) {
        if (sodium_memcmp(w->m.members[i].digest, expect->members[i].digest, RF_DIGEST_BYTES) !=
            0) {
            why_set(w->info, "the archive changed while it was being restored");
            rc = RF_ERR_FORMAT;
            goto out;
        }
    }
    for (size_t i = 1; i < w->m.n; i++) {
        char tmp[RF_BLOB_NAME_LEN + 8];
        const char *name = w->m.members[i].name;
        tmp_name_of(name, tmp);
        if (renameat(tmp_fd, tmp, blobs_fd, name + strlen(RF_ARCHIVE_BLOBS)) != 0) {
            rc = rf_store_errno(errno);
            goto out;
        }
    }
    if (fsync(blobs_fd) != 0 || fsync(tmp_fd) != 0 ||
        renameat(tmp_fd, RESTORE_DB_TMP, dfd, "refuge.db") != 0 || fsync(dfd) != 0) {
        rc = rf_store_errno(errno);
        why_set(w->info, "cannot move the restored files into place");
        goto out;
    }
out:
    if (blobs_fd >= 0)
        close(blobs_fd);
    if (tmp_fd >= 0)
        close(tmp_fd);
    return rc;
}

/* Every blob a row names is there with its size. */
static int restored_blobs_ok(struct rf_store *st, struct rf_backup_info *info)
{
    struct snapshot sn = {info, NULL, 0, 0};
    sqlite3 *db = NULL;
    int rc = open_db(st->dbpath, SQLITE_OPEN_READONLY, &db);
    rc = rc ? rc : snapshot_list_blobs(db, &sn);
    for (size_t i = 0; rc == 0 && i < sn.n; i++) {
        uint64_t size = 0;
        if (rf_blobdir_stat(&st->files, sn.blobs[i].name, &size) != 0 || size != sn.blobs[i].size) {
            why_set(info, "the restored database names a blob the archive lacks");
            rc = RF_ERR_FORMAT;
        }
    }
    struct rf_backup_info c;
    memset(&c, 0, sizeof(c));
    /* a migration at open may add rows (schema 2 adds the teamconfig case) */
    int same = info->schema == (uint32_t)rf_sqlite_schema_version();
    if (rc == 0 && (rc = db_counts(db, &c)) == 0 &&
        ((same && (c.sources != info->sources || c.staff != info->staff)) ||
         c.objects != info->objects || c.blobs != info->blobs)) {
        why_set(info, "the restored database does not hold what the manifest counts");
        rc = RF_ERR_FORMAT;
    }
    sqlite3_close(db);
    free(sn.blobs);
    return rc;
}

int rf_store_restore(int fd, const char *datadir, struct rf_backup_info *info)
{
    struct walk w;
    struct rf_manifest expect;
    struct rf_store *st = NULL;
    int exists = 0, created = 0, dfd = -1;
    memset(info, 0, sizeof(*info));
    memset(&w, 0, sizeof(w));
    rf_manifest_init(&expect);
    w.info = info;
    int rc = target_check(datadir, &exists, info);
    if (rc != 0)
        return rc;
    if (!(w.in.buf = malloc(IO_CHUNK)))
        return RF_ERR_NOMEM;
    /* pass one: read everything, write nothing */
    if ((rc = walk_archive(&w, fd, -1)) != 0)
        goto out;
    expect = w.m;
    rf_manifest_init(&w.m);
    if (strcmp(expect.backend, "sqlite") != 0) {
        why_set(info, "the archive is of another storage backend (%s)", expect.backend);
        rc = RF_ERR_VERSION;
        goto out;
    }
    if (expect.schema > (uint32_t)rf_sqlite_schema_version()) {
        why_set(info,
                "the archive's database schema (%u) is newer than this refuge's (%d): restore "
                "it with refuge %s or later",
                expect.schema, rf_sqlite_schema_version(), expect.version);
        rc = RF_ERR_VERSION;
        goto out;
    }
    info->day = expect.day;
    info->schema = expect.schema;
    info->sources = expect.sources;
    info->objects = expect.objects;
    info->staff = expect.staff;
    info->blobs = expect.blobs;
    info->bytes = w.in.bytes;
    /* pass two */
    if (!exists) {
        if (mkdir(datadir, 0700) != 0) {
            rc = rf_store_errno(errno);
            why_set(info, "cannot create the target directory (does its parent exist?)");
            goto out;
        }
        created = 1;
    }
    dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0) {
        rc = rf_store_errno(errno);
        goto out;
    }
    fchmod(dfd, 0700);
    if ((rc = restore_files(&w, fd, dfd, &expect)) != 0)
        goto out;
    /* the store's own open checks it: migrations, recovery */
    if ((rc = rf_store_open(&st, datadir)) != 0) {
        why_set(info, "the restored database does not open (%s)", rf_strerror(rc));
        goto out;
    }
    rc = restored_blobs_ok(st, info);
out:
    if (st)
        rf_store_close(st);
    if (dfd >= 0)
        close(dfd);
    if (rc != 0 && (created || exists))
        target_wipe(datadir, created);
    if (rc != 0)
        why_set(info, "%s", rf_strerror(rc));
    rf_manifest_free(&expect);
    rf_manifest_free(&w.got);
    rf_manifest_free(&w.m);
    free(w.in.buf);
    return rc;
}
