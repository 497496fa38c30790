/*
 * store.c - the storage interface's front: picks the backend when a store is
 * opened and passes every backend-specific call of store.h to it through the
 * store's ops table (store_internal.h). Code above the store never knows which
 * backend it runs on.
 *
 * Which backend. A data directory always holds the instance's configuration
 * and keys (and, on either backend, its blob files). If it holds the file
 * DIR/database, written by rf_store_create (refuge server init --db URL),
 * the store is the PostgreSQL database that file names; otherwise it is
 * SQLite, DIR/refuge.db, the default. DIR/database is created 0600 (the URL
 * may carry a password) and is never logged.
 */
#include "lib/err.h"
#include "lib/log.h"
#include "store/pq_dl.h"
#include "store/store_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sodium.h>
#include <unistd.h>

#define DB_FILE "database"
#define DB_URL_MAX 1024

uint32_t rf_store_today(void)
{
    time_t now = time(NULL);
    return now < 0 ? 0 : (uint32_t)(now / 86400);
}

int rf_store_url_valid(const char *url)
{
    size_t n = url ? strnlen(url, DB_URL_MAX + 1) : 0;
    if (n == 0 || n > DB_URL_MAX)
        return 0;
    if (strncmp(url, "postgresql://", 13) != 0 && strncmp(url, "postgres://", 11) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] < 0x21 || (unsigned char)url[i] > 0x7e)
            return 0;
    return 1;
}

/* Reads DIR/database: 0 and *url (malloc'd) if there is one, RF_ERR_NOT_FOUND
 * if there is none (SQLite), or an error. */
static int read_url(const char *datadir, char **url)
{
    *url = NULL;
    int dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? RF_ERR_NOT_FOUND : rf_store_errno(errno);
    int fd = openat(dfd, DB_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int e = errno;
    close(dfd);
    if (fd < 0)
        return e == ENOENT ? RF_ERR_NOT_FOUND : rf_store_errno(e);
    char buf[DB_URL_MAX + 2];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            return RF_ERR_IO;
        }
        if (r == 0 || (got += (size_t)r) == sizeof(buf) - 1)
            break;
    }
    close(fd);
    buf[got] = '\0';
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
        buf[--got] = '\0';
    if (!rf_store_url_valid(buf)) {
        rf_log_info("store: DIR/database does not hold a postgresql:// URL");
        return RF_ERR_FORMAT;
    }
    if (!(*url = strdup(buf)))
        return RF_ERR_NOMEM;
    return 0;
}

int rf_store_open(struct rf_store **out, const char *datadir)
{
    char *url = NULL;
    *out = NULL;
    if (!datadir || !*datadir)
        return RF_ERR_INVALID;
    int rc = read_url(datadir, &url);
    if (rc == RF_ERR_NOT_FOUND)
        return rf_sqlite_open(out, datadir);
    if (rc != 0)
        return rc;
    rc = rf_pg_open(out, datadir, url, RF_PG_OPEN);
    free(url);
    return rc;
}

int rf_store_open_readonly(struct rf_store **out, const char *datadir)
{
    char *url = NULL;
    *out = NULL;
    if (!datadir || !*datadir)
        return RF_ERR_INVALID;
    int rc = read_url(datadir, &url);
    if (rc == RF_ERR_NOT_FOUND)
        return rf_sqlite_open_readonly(out, datadir);
    if (rc != 0)
        return rc;
    rc = rf_pg_open(out, datadir, url, RF_PG_READONLY);
    free(url);
    return rc;
}

/* Writes DIR/database (0600, fsynced, then the directory) unless present. */
static int write_url(const char *datadir, const char *url)
{
    if (mkdir(datadir, 0700) != 0 && errno != EEXIST)
        return rf_store_errno(errno);
    int dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return rf_store_errno(errno);
    int rc = 0;
    struct stat sb;
    if (fstatat(dfd, "refuge.db", &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_size > 0) {
        rf_log_info("store: the data directory already holds a SQLite store");
        close(dfd);
        return RF_ERR_EXISTS;
    }
    int fd = openat(dfd, DB_FILE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = errno == EEXIST ? RF_ERR_EXISTS : rf_store_errno(errno);
        close(dfd);
        return rc;
    }
    size_t n = strlen(url);
    if (write(fd, url, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        rc = rf_store_errno(errno);
    close(fd);
    if (rc == 0 && fsync(dfd) != 0)
        rc = rf_store_errno(errno);
    if (rc != 0)
        unlinkat(dfd, DB_FILE, 0);
    close(dfd);
    return rc;
}

static void unlink_url(const char *datadir)
{
    int dfd = open(datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        unlinkat(dfd, DB_FILE, 0);
        close(dfd);
    }
}

int rf_store_create(struct rf_store **out, const char *datadir, const char *db_url)
{
    *out = NULL;
    if (!datadir || !*datadir)
        return RF_ERR_INVALID;
    if (!db_url)
        return rf_store_open(out, datadir);
    if (!rf_store_url_valid(db_url))
        return RF_ERR_INVALID;
    char *have = NULL;
    int rc = read_url(datadir, &have);
    if (rc == 0) {
        /* the same database again (init run twice): open it, the caller
         * finds the instance there and refuses */
        rc = strcmp(have, db_url) == 0 ? 0 : RF_ERR_EXISTS;
        free(have);
        return rc == 0 ? rf_pg_open(out, datadir, db_url, RF_PG_OPEN) : rc;
    }
    if (rc != RF_ERR_NOT_FOUND)
        return rc;
    if ((rc = write_url(datadir, db_url)) != 0)
        return rc;
    rc = rf_pg_open(out, datadir, db_url, RF_PG_OPEN);
    if (rc != 0)
        unlink_url(datadir); /* nothing half-made: without the file the directory is as before */
    return rc;
}

int rf_store_create_import(struct rf_store **out, const char *datadir, const char *db_url)
{
    *out = NULL;
    if (!datadir || !*datadir || (db_url && !rf_store_url_valid(db_url)))
        return RF_ERR_INVALID;
    char *have = NULL;
    int rc = read_url(datadir, &have);
    if (rc == 0) {
        sodium_memzero(have, strlen(have));
        free(have);
        return RF_ERR_EXISTS; /* DIR names a store already */
    }
    if (rc != RF_ERR_NOT_FOUND)
        return rc;
    struct stat sb;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/refuge.db", datadir) >= sizeof(path))
        return RF_ERR_INVALID;
    if (lstat(path, &sb) == 0)
        return RF_ERR_EXISTS;
    if (!db_url)
        return rf_sqlite_open(out, datadir); /* a new file: empty, its schema made */
    /* the database is checked empty before DIR/database names it */
    if ((rc = rf_pg_open(out, datadir, db_url, RF_PG_IMPORT)) != 0)
        return rc;
    if ((rc = write_url(datadir, db_url)) != 0) {
        rf_store_close(*out);
        *out = NULL;
        if (rc != RF_ERR_EXISTS)
            unlink_url(datadir);
    }
    return rc;
}

/* The family and port of a libpq host list ("10.0.0.5" or, for a standby
 * to fail over to, "10.0.0.5,10.0.0.6") and port list ("5432", or one per
 * host): every host a numeric address of one family, every port the same
 * (Landlock allows TCP connect by port). RF_ERR_INVALID otherwise: a Unix
 * socket, a name, mixed families or ports. */
static int net_of(const char *hosts, const char *ports, int *family, unsigned *port)
{
    if (hosts == NULL || *hosts == '\0')
        return RF_ERR_INVALID;
    *family = 0;
    for (const char *h = hosts; *h;) {
        const char *end = strchr(h, ',');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        char addr[INET6_ADDRSTRLEN + 1];
        unsigned char buf[sizeof(struct in6_addr)];
        if (len == 0 || len >= sizeof(addr))
            return RF_ERR_INVALID;
        memcpy(addr, h, len);
        addr[len] = '\0';
        int f = inet_pton(AF_INET, addr, buf) == 1    ? AF_INET
                : inet_pton(AF_INET6, addr, buf) == 1 ? AF_INET6
                                                      : 0;
        if (f == 0 || (*family != 0 && f != *family))
            return RF_ERR_INVALID;
        *family = f;
        h += len + (end != NULL);
        if (end != NULL && *h == '\0')
            return RF_ERR_INVALID;
    }
    /* one port, or one per host, an empty one meaning 5432 (libpq gives
     * "," for two hosts without ports) */
    unsigned long v = 0;
    const char *q = ports ? ports : "";
    for (;;) {
        char *end = (char *)q;
        unsigned long w = 5432;
        if (*q != ',' && *q != '\0')
            w = strtoul(q, &end, 10);
        if ((*end != ',' && *end != '\0') || w == 0 || w > 65535 || (v != 0 && w != v))
            return RF_ERR_INVALID;
        v = w;
        if (*end == '\0')
            break;
        q = end + 1;
    }
    *port = (unsigned)v;
    return 0;
}

int rf_store_net(const char *datadir, int *family, unsigned *port)
{
    char *url = NULL;
    *family = 0;
    *port = 0;
    int rc = read_url(datadir, &url);
    if (rc == RF_ERR_NOT_FOUND)
        return 0; /* SQLite: no network */
    if (rc == 0)
        rc = rf_pq_load();
    if (rc != 0) {
        if (url) {
            sodium_memzero(url, strlen(url));
            free(url);
        }
        return rc;
    }
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    sodium_memzero(url, strlen(url));
    free(url);
    if (!opts)
        return RF_ERR_FORMAT;
    const char *host = NULL, *hostaddr = NULL, *p = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            p = o->val;
    }
    rc = net_of(hostaddr ? hostaddr : host, p, family, port);
    PQconninfoFree(opts);
    if (rc != 0)
        *family = 0;
    return rc;
}

const char *rf_store_backend(const struct rf_store *st)
{
    return rf_store_files_of((struct rf_store *)st)->ops->name;
}

#define OPS(st) (rf_store_files_of(st)->ops)

void rf_store_close(struct rf_store *st)
{
    if (st)
        OPS(st)->close(st);
}

int rf_store_setting_get(struct rf_store *st, const char *key, struct rf_buf *out)
{
    return OPS(st)->setting_get(st, key, out);
}

int rf_store_source_by_lookup(struct rf_store *st, const uint8_t lookup_id[32],
                              struct rf_source *out)
{
    return OPS(st)->source_by_lookup(st, lookup_id, out);
}

int rf_store_source_by_case(struct rf_store *st, const char *case_id, struct rf_source *out)
{
    return OPS(st)->source_by_case(st, case_id, out);
}

int rf_store_objects_since(struct rf_store *st, int64_t after, struct rf_object *out, size_t cap,
                           size_t *n)
{
    return OPS(st)->objects_since(st, after, out, cap, n);
}

int rf_store_objects_of_source(struct rf_store *st, int64_t source_id, unsigned kinds,
                               struct rf_object *out, size_t cap, size_t *n)
{
    return OPS(st)->objects_of_source(st, source_id, kinds, out, cap, n);
}

int rf_store_object_get(struct rf_store *st, int64_t seq, struct rf_object *out)
{
    return OPS(st)->object_get(st, seq, out);
}

int rf_store_object_read(struct rf_store *st, int64_t seq, struct rf_buf *out)
{
    return OPS(st)->object_read(st, seq, out);
}

int rf_store_object_open(struct rf_store *st, int64_t seq, int *fd, uint64_t *size)
{
    return OPS(st)->object_open(st, seq, fd, size);
}

int rf_store_objects_range(struct rf_store *st, int64_t after, int64_t upto, size_t cap,
                           uint64_t max_size, rf_store_range_fn fn, void *ctx)
{
    if (cap == 0 || upto <= after)
        return 0;
    return OPS(st)->objects_range(st, after, upto, cap, max_size, fn, ctx);
}

int rf_store_staff_get(struct rf_store *st, const uint8_t sign_pk[32], struct rf_staff_rec *out)
{
    return OPS(st)->staff_get(st, sign_pk, out);
}

int rf_store_roster_latest(struct rf_store *st, uint32_t *version, struct rf_buf *raw)
{
    return OPS(st)->roster_latest(st, version, raw);
}

int rf_store_roster_get(struct rf_store *st, uint32_t version, struct rf_buf *raw)
{
    return OPS(st)->roster_get(st, version, raw);
}

int rf_store_staff_list(struct rf_store *st, struct rf_staff_rec *out, size_t cap, size_t *n)
{
    return OPS(st)->staff_list(st, out, cap, n);
}

int rf_store_grants_for(struct rf_store *st, const uint8_t keyid[8], int64_t after,
                        struct rf_grant_rec *out, size_t cap, size_t *n)
{
    return OPS(st)->grants_for(st, keyid, after, out, cap, n);
}

int rf_store_audit_list(struct rf_store *st, uint64_t after, struct rf_audit_entry *out, size_t cap,
                        size_t *n)
{
    return OPS(st)->audit_list(st, after, out, cap, n);
}

int rf_store_purge(struct rf_store *st, uint32_t today, uint32_t inactive_days,
                   struct rf_purge_counts *out)
{
    return rf_batch_purge(st, today, inactive_days, out);
}

int rf_store_checkpoint(struct rf_store *st)
{
    return OPS(st)->checkpoint(st);
}

int rf_store_backup(struct rf_store *st, int fd, struct rf_backup_info *info)
{
    return OPS(st)->backup(st, fd, info);
}

int rf_store_counts(struct rf_store *st, struct rf_store_counts *out)
{
    return OPS(st)->counts(st, out);
}

int rf_store_usage(struct rf_store *st, struct rf_store_usage *out)
{
    return OPS(st)->usage(st, out);
}

int rf_store_apply(struct rf_store *st, struct rf_op *ops, size_t n)
{
    return rf_batch_apply(st, ops, n);
}

int rf_store_export(struct rf_store *st, int (*emit)(void *ctx, const struct rf_row *row),
                    void *ctx)
{
    return OPS(st)->export_rows(st, emit, ctx);
}

int rf_store_import_begin(struct rf_store *st)
{
    return OPS(st)->import_begin(st);
}

int rf_store_import_row(struct rf_store *st, const struct rf_row *row)
{
    if (row->table > RF_TAB_COUNTERS || row->n > RF_ROW_COLS ||
        (row->table < RF_TAB_COUNTERS && row->n != strlen(rf_tables[row->table].types)) ||
        (row->table == RF_TAB_COUNTERS && row->n != 2))
        return RF_ERR_INVALID;
    return OPS(st)->import_row(st, row);
}

int rf_store_import_end(struct rf_store *st, int commit)
{
    return OPS(st)->import_end(st, commit);
}

int rf_store_alone(struct rf_store *st)
{
    return rf_store_files_of(st)->lock_fd >= 0;
}

/* ---- person sessions: one backend entry, the call in a struct ---- */

static int sess(struct rf_store *st, struct rf_sess_call *c)
{
    if (rf_store_files_of(st)->readonly)
        return c->kind == RF_SESS_GET || c->kind == RF_SESS_LIVE ? OPS(st)->session(st, c)
                                                                 : RF_ERR_INVALID;
    return OPS(st)->session(st, c);
}

int rf_store_session_put(struct rf_store *st, const struct rf_session_row *row, int64_t now,
                         uint64_t max)
{
    if (row->sealed_len == 0 || row->sealed_len > RF_SESSION_SEALED_MAX)
        return RF_ERR_INVALID;
    struct rf_sess_call c = {
        .kind = RF_SESS_PUT, .id = row->id, .row = row, .now = now, .max = max};
    return sess(st, &c);
}

int rf_store_session_get(struct rf_store *st, const uint8_t id[32], int64_t now,
                         struct rf_session_row *out)
{
    struct rf_sess_call c = {.kind = RF_SESS_GET, .id = id, .out = out, .now = now};
    return sess(st, &c);
}

int rf_store_session_touch(struct rf_store *st, const uint8_t id[32], int64_t now, int64_t until)
{
    struct rf_sess_call c = {.kind = RF_SESS_TOUCH, .id = id, .now = now, .until = until};
    return sess(st, &c);
}

int rf_store_session_delete(struct rf_store *st, const uint8_t id[32])
{
    struct rf_sess_call c = {.kind = RF_SESS_DELETE, .id = id};
    return sess(st, &c);
}

int rf_store_session_count(struct rf_store *st, const uint8_t id[32], int64_t now, uint32_t day,
                           uint64_t bytes, uint32_t max_msgs, uint64_t max_bytes)
{
    if (bytes > INT64_MAX || max_bytes > INT64_MAX)
        return RF_ERR_LIMIT;
    struct rf_sess_call c = {.kind = RF_SESS_COUNT,
                             .id = id,
                             .now = now,
                             .day = day,
                             .bytes = bytes,
                             .max_msgs = max_msgs,
                             .max_bytes = max_bytes};
    return sess(st, &c);
}

int rf_store_session_charge(struct rf_store *st, const uint8_t id[32], int64_t now, uint32_t day,
                            uint64_t bytes, uint64_t max_bytes)
{
    if (max_bytes > INT64_MAX)
        max_bytes = INT64_MAX;
    if (bytes > max_bytes)
        bytes = max_bytes; /* the counter stops at max_bytes anyway */
    struct rf_sess_call c = {.kind = RF_SESS_CHARGE,
                             .id = id,
                             .now = now,
                             .day = day,
                             .bytes = bytes,
                             .max_bytes = max_bytes};
    return sess(st, &c);
}

int rf_store_sessions_reap(struct rf_store *st, int64_t now, uint64_t *n)
{
    struct rf_sess_call c = {.kind = RF_SESS_REAP, .now = now};
    int rc = sess(st, &c);
    if (n != NULL)
        *n = rc == 0 ? c.n : 0;
    return rc;
}

int rf_store_sessions_live(struct rf_store *st, int64_t now, uint64_t *n)
{
    struct rf_sess_call c = {.kind = RF_SESS_LIVE, .now = now};
    int rc = sess(st, &c);
    *n = rc == 0 ? c.n : 0;
    return rc;
}
