/*
 * status.c - `refuge server status` (what an admin checks each week) and the
 * status file the running server keeps for it (status.h).
 *
 * The command never writes: the store is opened with rf_store_open_readonly
 * (no migration, no recovery, no lock taken, so it is safe beside a running
 * server and never delays its start), and every other source is read with
 * open/fstat/statvfs: DIR/serve.status (a running server's counts),
 * DIR/onion-hostname (the onion address `refuge serve --onion` wrote; the
 * key file beside it is never opened), the filesystem's free space.
 *
 * Output: text for a person with no operations background (sizes in kB/MB/
 * GB, dates, and under "Check" what is wrong and the command that fixes
 * it), or --json, a stable document (docs/operations.md): new keys may be
 * added, existing ones keep their meaning. Exit status: 0 when the report
 * was made (with or without warnings: "ok" says), 1 when the data directory
 * could not be read, 2 usage.
 *
 * Nothing here prints a name, key, codename or address of anyone: counts,
 * sizes, days, and the server's own onion address.
 */
#include "server/status.h"
#include "server/backup.h"
#include "server/onion.h"
#include "server/kdfpool.h"
#include "server/session.h"
#include "server/srv.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/roster.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#ifndef RF_VERSION
#define RF_VERSION "unknown"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define ONION_HOSTNAME_FILE RF_ONION_HOSTNAME_FILE
#define ONION_ID_LEN RF_ONION_ID_LEN
#define STAFF_MAX 1024
#define ROSTER_VERSIONS_MAX 100000

/* Thresholds of the warnings (docs/operations.md). */
#define DISK_LOW_PERCENT 10
#define DISK_LOW_BYTES (2ULL << 30)
#define BACKUP_LATE_DAYS 7
#define PURGE_LATE_DAYS 2
#define SESSIONS_FULL_PERCENT 90

/* ============================================================ the writer */

struct rf_status_writer {
    struct rf_srv *srv;
    char *path, *tmp;
    char metrics[80];
    struct timespec started;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    int stopping;
};

static int status_write(struct rf_status_writer *w)
{
    struct timespec now;
    unsigned waiting = 0, running = 0, sessions = 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (w->srv->kdf)
        rf_kdfpool_depth(w->srv->kdf, &waiting, &running);
    if (w->srv->sessions)
        sessions = rf_sessions_count(w->srv->sessions);
    char text[RF_STATUS_FILE_MAX];
    json_t *doc = json_pack(
        "{s:i,s:I,s:s,s:I,s:I,s:I,s:I,s:i,s:s?}", "format", 1, "pid", (json_int_t)getpid(),
        "version", RF_VERSION, "uptime_s", (json_int_t)(now.tv_sec - w->started.tv_sec),
        "sessions_active", (json_int_t)sessions, "sessions_max",
        (json_int_t)w->srv->limits.sessions_max, "kdf_waiting", (json_int_t)waiting, "period_s",
        RF_STATUS_PERIOD_S, "metrics", w->metrics[0] ? w->metrics : NULL);
    if (doc == NULL)
        return RF_ERR_NOMEM;
    size_t n = json_dumpb(doc, text, sizeof(text) - 1, JSON_COMPACT);
    json_decref(doc);
    if (n == 0 || n >= sizeof(text))
        return RF_ERR_LIMIT;
    text[n++] = '\n';
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return RF_ERR_IO;
    ssize_t k = write(fd, text, n);
    int rc = k >= 0 && (size_t)k == n ? 0 : RF_ERR_IO;
    if (close(fd) != 0)
        rc = RF_ERR_IO;
    /* no fsync: the file says "alive now"; after a crash it is stale anyway */
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = RF_ERR_IO;
    if (rc != 0)
        unlink(w->tmp);
    return rc;
}

static void *writer_main(void *arg)
{
    struct rf_status_writer *w = arg;
    int failed = 0;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += RF_STATUS_PERIOD_S;
        while (!w->stopping && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
            ;
        if (w->stopping)
            break;
        pthread_mutex_unlock(&w->mu);
        int rc = status_write(w);
        if (rc != 0 && !failed) /* once, not every 5 s on a full disk */
            rf_log_error("status: cannot write the status file", rc);
        failed = rc != 0;
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void writer_free(struct rf_status_writer *w)
{
    free(w->path);
    free(w->tmp);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

int rf_status_writer_start(struct rf_status_writer **out, struct rf_srv *srv, const char *metrics)
{
    pthread_condattr_t ca;
    *out = NULL;
    if (metrics && strlen(metrics) >= sizeof(((struct rf_status_writer *)0)->metrics))
        return RF_ERR_LIMIT;
    struct rf_status_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return RF_ERR_NOMEM;
    w->srv = srv;
    if (metrics)
        snprintf(w->metrics, sizeof(w->metrics), "%s", metrics);
    clock_gettime(CLOCK_MONOTONIC, &w->started);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->path = join(srv->datadir, RF_STATUS_FILE);
    /* a temp name per process: several processes on one data directory
     * (PostgreSQL, docs/scale-out.md) each rename a whole file into place */
    char tmpname[64];
    snprintf(tmpname, sizeof(tmpname), RF_STATUS_FILE ".%ld.tmp", (long)getpid());
    w->tmp = join(srv->datadir, tmpname);
    int rc = w->path && w->tmp ? status_write(w) : RF_ERR_NOMEM;
    if (rc == 0 && pthread_create(&w->thread, NULL, writer_main, w) != 0)
        rc = RF_ERR_NOMEM;
    if (rc != 0) {
        if (w->path)
            unlink(w->path);
        writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void rf_status_writer_stop(struct rf_status_writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    unlink(w->path); /* stopped: nothing running to report */
    writer_free(w);
}

/* ======================================================= the status file */

static int get_int(json_t *o, const char *key, long long *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return RF_ERR_FORMAT;
    *out = json_integer_value(v);
    return 0;
}

static int get_str(json_t *o, const char *key, char *out, size_t cap, int nullable)
{
    json_t *v = json_object_get(o, key);
    out[0] = '\0';
    if (nullable && json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return RF_ERR_FORMAT;
    const char *s = json_string_value(v);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            return RF_ERR_FORMAT; /* printed as is: printable ASCII only */
    memcpy(out, s, json_string_length(v) + 1);
    return 0;
}

int rf_status_file_parse(const uint8_t *p, size_t n, struct rf_status_file *out)
{
    long long format = 0;
    memset(out, 0, sizeof(*out));
    if (n == 0 || n > RF_STATUS_FILE_MAX)
        return RF_ERR_FORMAT;
    json_t *o = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
    int rc = json_is_object(o) ? 0 : RF_ERR_FORMAT;
    rc = rc ? rc : get_int(o, "format", &format);
    if (rc == 0 && format != 1)
        rc = RF_ERR_FORMAT;
    rc = rc ? rc : get_int(o, "pid", &out->pid);
    rc = rc ? rc : get_int(o, "uptime_s", &out->uptime_s);
    rc = rc ? rc : get_int(o, "sessions_active", &out->sessions_active);
    rc = rc ? rc : get_int(o, "sessions_max", &out->sessions_max);
    rc = rc ? rc : get_int(o, "kdf_waiting", &out->kdf_waiting);
    rc = rc ? rc : get_str(o, "version", out->version, sizeof(out->version), 0);
    rc = rc ? rc : get_str(o, "metrics", out->metrics, sizeof(out->metrics), 1);
    if (rc == 0 && (out->pid == 0 || out->pid > INT32_MAX))
        rc = RF_ERR_FORMAT;
    json_decref(o);
    return rc;
}

/* ======================================================== the command */

struct report {
    const char *datadir;
    /* server */
    int running;
    int stale;       /* a file from a server that stopped without removing it */
    long long age_s; /* of the status file */
    struct rf_status_file sf;
    /* store */
    struct rf_store_counts counts;
    struct rf_store_usage usage;
    int have_disk;
    uint64_t disk_free, disk_total;
    uint32_t roster_version;
    unsigned roster, admins, pending, removed;
    uint32_t backup_day; /* 0: never */
    char onion[ONION_ID_LEN + 8];
    uint32_t today;
    json_t *warnings; /* [{code, message}] */
};

/* A warning: what is wrong and what to do (wrapped for the terminal), and
 * the command that does it (printed on a line of its own, never wrapped,
 * so that it can be copied; "" if none). */
static void warn(struct report *r, const char *code, const char *command, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn(struct report *r, const char *code, const char *command, const char *fmt, ...)
{
    char text[600], cmd[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    const char *at = strstr(command, "{DIR}"); /* the data directory, at most once */
    if (at == NULL)
        snprintf(cmd, sizeof(cmd), "%s", command);
    else
        snprintf(cmd, sizeof(cmd), "%.*s%s%s", (int)(at - command), command, r->datadir, at + 5);
    json_array_append_new(r->warnings, json_pack("{s:s,s:s,s:s?}", "code", code, "message", text,
                                                 "command", cmd[0] ? cmd : NULL));
}

/* Reads at most cap bytes of DIR/name (O_NOFOLLOW); *n bytes read. */
static int read_small(const char *dir, const char *name, uint8_t *buf, size_t cap, size_t *n,
                      struct stat *sb)
{
    char path[4096];
    *n = 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return RF_ERR_LIMIT;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? RF_ERR_NOT_FOUND : RF_ERR_IO;
    int rc = 0;
    if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        rc = RF_ERR_FORMAT;
    } else {
        ssize_t k = read(fd, buf, cap);
        if (k < 0)
            rc = RF_ERR_IO;
        else
            *n = (size_t)k;
    }
    close(fd);
    return rc;
}

static void read_server(struct report *r)
{
    uint8_t buf[RF_STATUS_FILE_MAX + 1];
    size_t n = 0;
    struct stat sb;
    if (read_small(r->datadir, RF_STATUS_FILE, buf, sizeof(buf), &n, &sb) != 0 ||
        rf_status_file_parse(buf, n, &r->sf) != 0)
        return;
    time_t now = time(NULL);
    r->age_s = now >= sb.st_mtime ? (long long)(now - sb.st_mtime) : 0;
    int alive = kill((pid_t)r->sf.pid, 0) == 0 || errno == EPERM;
    r->running = alive && r->age_s <= RF_STATUS_STALE_S;
    r->stale = !r->running;
}

static int valid_onion(const uint8_t *p, size_t n)
{
    if (n < ONION_ID_LEN + 6)
        return 0;
    for (size_t i = 0; i < ONION_ID_LEN; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '2' && p[i] <= '7')))
            return 0;
    if (memcmp(p + ONION_ID_LEN, ".onion", 6) != 0)
        return 0;
    return n == ONION_ID_LEN + 6 || p[ONION_ID_LEN + 6] == '\n';
}

static void read_onion(struct report *r)
{
    uint8_t buf[128];
    size_t n = 0;
    struct stat sb;
    if (read_small(r->datadir, ONION_HOSTNAME_FILE, buf, sizeof(buf), &n, &sb) == 0 &&
        valid_onion(buf, n)) {
        memcpy(r->onion, buf, ONION_ID_LEN + 6);
        r->onion[ONION_ID_LEN + 6] = '\0';
    }
}

/* Roster members now, admins, and enrolled keys not on it: waiting for
 * approval (never on any version) or removed (on an earlier one). */
static int read_team(struct report *r, struct rf_store *st)
{
    struct rf_buf raw;
    struct rf_roster *ros = malloc(sizeof(*ros));
    struct rf_staff_rec *staff = calloc(STAFF_MAX, sizeof(*staff));
    uint8_t *seen = calloc(STAFF_MAX, 1), *now = calloc(STAFF_MAX, 1);
    size_t nstaff = 0;
    int rc = ros && staff && seen && now ? 0 : RF_ERR_NOMEM;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    rc = rc ? rc : rf_store_staff_list(st, staff, STAFF_MAX, &nstaff);
    if (rc == 0) {
        rc = rf_store_roster_latest(st, &r->roster_version, &raw);
        if (rc == RF_ERR_NOT_FOUND) {
            r->roster_version = 0;
            rc = 0;
        }
    }
    for (uint32_t v = 1; rc == 0 && v <= r->roster_version && v <= ROSTER_VERSIONS_MAX; v++) {
        rf_buf_reset(&raw);
        if (rf_store_roster_get(st, v, &raw) != 0 || rf_roster_parse(ros, raw.data, raw.len) != 0)
            continue; /* status reports; `refuge audit verify` and the clients verify */
        int latest = v == r->roster_version;
        if (latest) {
            r->roster = ros->n;
            for (uint16_t i = 0; i < ros->n; i++)
                r->admins += ros->members[i].role == RF_ROLE_ADMIN;
        }
        for (size_t s = 0; s < nstaff; s++) {
            if (rf_roster_find(ros, staff[s].sign_pk) < 0)
                continue;
            seen[s] = 1;
            now[s] |= latest;
        }
    }
    for (size_t s = 0; rc == 0 && s < nstaff; s++) {
        if (now[s])
            continue;
        if (seen[s])
            r->removed++;
        else
            r->pending++;
    }
    rf_buf_free(&raw);
    free(ros);
    free(staff);
    free(seen);
    free(now);
    return rc;
}

static void day_text(uint32_t day, char *out, size_t cap)
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    if (day == 0 || gmtime_r(&t, &tm) == NULL)
        snprintf(out, cap, "never");
    else
        strftime(out, cap, "%Y-%m-%d", &tm);
}

static void size_text(uint64_t n, char *out, size_t cap)
{
    static const char *const units[] = {"bytes", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%llu bytes", (unsigned long long)n);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
}

static void ago_text(uint32_t day, uint32_t today, char *out, size_t cap)
{
    char d[32];
    day_text(day, d, sizeof(d));
    if (day == 0)
        snprintf(out, cap, "never");
    else if (day >= today)
        snprintf(out, cap, "%s (today)", d);
    else
        snprintf(out, cap, "%s (%u day%s ago)", d, today - day, today - day == 1 ? "" : "s");
}

static void decide_warnings(struct report *r)
{
    if (!r->running && r->stale)
        warn(r, "server_stopped_uncleanly", "sudo systemctl restart refuge",
             "A server ran on this data directory (pid %lld) but stopped without cleaning up "
             "%lld seconds ago: it crashed or was killed. Nothing it acknowledged is lost. "
             "Start it again (without the package: refuge serve --data DIR --listen ...) and "
             "read its log (journalctl -u refuge).",
             r->sf.pid, r->age_s);
    else if (!r->running)
        warn(r, "server_not_running", "sudo systemctl start refuge",
             "No server is running on this data directory, so people cannot reach the line. "
             "Start it (without the package: refuge serve --data DIR --listen ...).");
    if (r->roster_version == 0)
        warn(r, "no_caseworker", "refuge server token --data {DIR}",
             "No caseworker has enrolled yet: the line stays closed to people until the first "
             "one (the admin) enrolls. Make an enrollment token and give it to them for "
             "`refuge init --server URL --token TOKEN --name NAME` on their laptop.");
    else if (r->roster == 1)
        warn(r, "one_caseworker", "refuge staff invite",
             "Only one caseworker is on the roster. If their laptop or passphrase is lost, "
             "nobody can read what people sent. The admin invites a second caseworker from "
             "their laptop.");
    if (r->pending > 0)
        warn(r, "staff_waiting", "refuge staff approve NAME",
             "%u caseworker%s enrolled and wait%s for approval: they cannot read new cases yet. "
             "An admin compares the fingerprint they read out (refuge fingerprint) and approves "
             "them from the admin's laptop.",
             r->pending, r->pending == 1 ? "" : "s", r->pending == 1 ? "s" : "");
    if (r->have_disk && r->disk_total > 0 &&
        (r->disk_free * 100 / r->disk_total < DISK_LOW_PERCENT || r->disk_free < DISK_LOW_BYTES)) {
        char f[32];
        size_text(r->disk_free, f, sizeof(f));
        warn(r, "disk_low", "",
             "The disk holding the data directory is nearly full (%s left). When it is full, "
             "people's messages are refused (\"not saved\"). Free space, or move the data "
             "directory to a larger disk.",
             f);
    }
    if (r->backup_day == 0)
        warn(r, "no_backup", "refuge server backup --data {DIR} --out FILE",
             "No backup has been made. If this disk dies or the server is seized, everything "
             "is lost. Make one and keep it on another machine (or turn on the package's "
             "nightly backup).");
    else if (r->today > r->backup_day && r->today - r->backup_day > BACKUP_LATE_DAYS)
        warn(r, "backup_old", "refuge server backup --data {DIR} --out FILE",
             "The last backup is %u days old. Make a new one, and check the nightly backup "
             "(systemctl status refuge-backup.timer).",
             r->today - r->backup_day);
    uint32_t purge = r->counts.last_purge_day;
    if (r->counts.cases > 0 &&
        (purge == 0 || (r->today > purge && r->today - purge > PURGE_LATE_DAYS)))
        warn(r, "purge_late", "refuge server purge --data {DIR}",
             "Expired cases have not been deleted for more than %d days (a running server does "
             "it daily). Check that the server runs, or delete them now.",
             PURGE_LATE_DAYS);
    if (r->running && r->sf.sessions_max > 0 &&
        r->sf.sessions_active * 100 >= r->sf.sessions_max * SESSIONS_FULL_PERCENT)
        warn(r, "sessions_nearly_full", "",
             "%lld of %lld session places are taken: people logging in now may be told the "
             "line is busy. Raise the limit with refuge serve --sessions-max N.",
             r->sf.sessions_active, r->sf.sessions_max);
}

static const char *const kind_names[RF_STORE_KINDS] = {"other", "message", "file",  "reply",
                                                       "event", "note",    "other", "other"};

static json_t *json_day(uint32_t day)
{
    char d[32];
    if (day == 0)
        return json_null();
    day_text(day, d, sizeof(d));
    return json_string(d);
}

static json_t *report_json(struct report *r)
{
    json_t *objects = json_object(), *bytes = json_object();
    for (size_t k = 0; k < RF_STORE_KINDS; k++) {
        json_t *o = json_object_get(objects, kind_names[k]);
        json_int_t prev = o ? json_integer_value(o) : 0;
        json_int_t prevb = o ? json_integer_value(json_object_get(bytes, kind_names[k])) : 0;
        json_object_set_new(objects, kind_names[k],
                            json_integer(prev + (json_int_t)r->counts.objects[k]));
        json_object_set_new(bytes, kind_names[k],
                            json_integer(prevb + (json_int_t)r->counts.object_bytes[k]));
    }
    json_t *server = json_pack("{s:b}", "running", r->running);
    if (r->running) {
        json_object_set_new(server, "pid", json_integer(r->sf.pid));
        json_object_set_new(server, "uptime_s", json_integer(r->sf.uptime_s));
        json_object_set_new(server, "sessions_active", json_integer(r->sf.sessions_active));
        json_object_set_new(server, "sessions_max", json_integer(r->sf.sessions_max));
        json_object_set_new(server, "kdf_waiting", json_integer(r->sf.kdf_waiting));
        json_object_set_new(server, "version", json_string(r->sf.version));
        json_object_set_new(server, "metrics",
                            r->sf.metrics[0] ? json_string(r->sf.metrics) : json_null());
    } else {
        json_object_set_new(server, "sessions_active", json_null());
    }
    uint64_t total = r->usage.db_bytes + r->usage.wal_bytes + r->usage.blob_bytes;
    json_t *disk = r->have_disk ? json_pack("{s:I,s:I}", "free_bytes", (json_int_t)r->disk_free,
                                            "total_bytes", (json_int_t)r->disk_total)
                                : json_null();
    json_t *doc = json_pack(
        "{s:i,s:s,s:s,s:{s:i,s:i},s:o,s:{s:I,s:I,s:I,s:I,s:I},s:o,"
        "s:{s:I,s:o,s:o,s:{s:i,s:i,s:i,s:i},s:i,s:I},s:o,s:o,s:o,s:o}",
        "format", 1, "data_dir", r->datadir, "version", RF_VERSION, "schema", "database",
        r->counts.schema, "program", r->counts.schema_program, "server", server, "storage",
        "total_bytes", (json_int_t)total, "database_bytes", (json_int_t)r->usage.db_bytes,
        "wal_bytes", (json_int_t)r->usage.wal_bytes, "blob_bytes", (json_int_t)r->usage.blob_bytes,
        "blob_files", (json_int_t)r->usage.blob_files, "disk", disk, "counts", "cases",
        (json_int_t)r->counts.cases, "objects", objects, "object_bytes", bytes, "staff", "roster",
        (int)r->roster, "admins", (int)r->admins, "pending", (int)r->pending, "removed",
        (int)r->removed, "roster_version", (int)r->roster_version, "audit_entries",
        (json_int_t)r->counts.audit, "last_purge_day", json_day(r->counts.last_purge_day),
        "last_backup_day", json_day(r->backup_day), "onion",
        r->onion[0] ? json_string(r->onion) : json_null(), "warnings", json_incref(r->warnings));
    if (doc != NULL)
        json_object_set_new(doc, "ok", json_boolean(json_array_size(r->warnings) == 0));
    return doc;
}

static void uptime_text(long long s, char *out, size_t cap)
{
    if (s < 60)
        snprintf(out, cap, "%lld s", s);
    else if (s < 3600)
        snprintf(out, cap, "%lld min", s / 60);
    else if (s < 86400)
        snprintf(out, cap, "%lld h %lld min", s / 3600, (s % 3600) / 60);
    else
        snprintf(out, cap, "%lld days %lld h", s / 86400, (s % 86400) / 3600);
}

static void print_wrapped(const char *prefix, const char *text)
{
    /* 78 columns, continuation lines indented under the text */
    size_t indent = strlen(prefix), col = indent, width = 78;
    fputs(prefix, stdout);
    const char *p = text;
    while (*p) {
        size_t w = strcspn(p, " ");
        if (col > indent && col + 1 + w > width) {
            printf("\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            putchar(' ');
            col++;
        }
        fwrite(p, 1, w, stdout);
        col += w;
        p += w;
        while (*p == ' ')
            p++;
    }
    putchar('\n');
}

static void report_text(struct report *r)
{
    char a[64], b[64], c[64], t[64];
    printf("Refuge server status: %s\n", r->datadir);
    if (r->running) {
        uptime_text(r->sf.uptime_s, t, sizeof(t));
        printf("  Server       running (pid %lld, up %s); %lld %s logged in now (room for "
               "%lld)\n",
               r->sf.pid, t, r->sf.sessions_active,
               r->sf.sessions_active == 1 ? "person" : "people", r->sf.sessions_max);
        if (r->sf.metrics[0])
            printf("  Metrics      http://%s/metrics\n", r->sf.metrics);
    } else {
        printf("  Server       not running\n");
    }
    if (r->onion[0])
        printf("  Onion        http://%s/\n", r->onion);
    printf("  Version      %s (database schema %d%s)\n", RF_VERSION, r->counts.schema,
           r->counts.schema < r->counts.schema_program ? ", upgraded at the next start" : "");
    uint64_t total = r->usage.db_bytes + r->usage.wal_bytes + r->usage.blob_bytes;
    size_text(total, t, sizeof(t));
    size_text(r->usage.db_bytes, a, sizeof(a));
    size_text(r->usage.wal_bytes, b, sizeof(b));
    size_text(r->usage.blob_bytes, c, sizeof(c));
    printf("  Storage      %s used: database %s, write-ahead log %s, files %s (%llu)\n", t, a, b, c,
           (unsigned long long)r->usage.blob_files);
    if (r->have_disk) {
        size_text(r->disk_free, a, sizeof(a));
        size_text(r->disk_total, b, sizeof(b));
        printf("  Disk left    %s of %s (%llu%%)\n", a, b,
               (unsigned long long)(r->disk_total ? r->disk_free * 100 / r->disk_total : 0));
    }
    const uint64_t *o = r->counts.objects;
    printf("  Cases        %llu\n", (unsigned long long)r->counts.cases);
    printf("  Objects      %llu messages, %llu files, %llu replies, %llu case events, %llu notes "
           "(all encrypted)\n",
           (unsigned long long)o[1], (unsigned long long)o[2], (unsigned long long)o[3],
           (unsigned long long)o[4], (unsigned long long)o[5]);
    printf("  Caseworkers  %u on the roster (%u admin%s), %u waiting for approval, %u removed\n",
           r->roster, r->admins, r->admins == 1 ? "" : "s", r->pending, r->removed);
    ago_text(r->counts.last_purge_day, r->today, a, sizeof(a));
    printf("  Last purge   %s\n", a);
    ago_text(r->backup_day, r->today, a, sizeof(a));
    printf("  Last backup  %s\n", a);
    size_t nw = json_array_size(r->warnings);
    if (nw == 0) {
        printf("\nAll is well.\n");
        return;
    }
    printf("\nCheck (%zu):\n", nw);
    for (size_t i = 0; i < nw; i++) {
        json_t *w = json_array_get(r->warnings, i);
        print_wrapped("  ! ", json_string_value(json_object_get(w, "message")));
        const char *cmd = json_string_value(json_object_get(w, "command"));
        if (cmd != NULL)
            printf("      $ %s\n", cmd);
    }
}

static void usage_status(FILE *f)
{
    fputs("usage: refuge server status --data DIR [--json]\n"
          "Shows how the instance in DIR is doing: whether a server runs on it and how many\n"
          "people are logged in, version, storage used and disk left, cases and objects,\n"
          "caseworkers, the last purge and the last backup, the onion address; then what\n"
          "needs doing, if anything. Reads only: safe while refuge serve runs.\n"
          "  --json   the same as one JSON document (docs/operations.md)\n"
          "Exit status 0 when the report was made (\"ok\" in --json says whether anything\n"
          "needs doing), 1 when DIR could not be read.\n",
          f);
}

int rf_server_status_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *datadir = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            datadir = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage_status(stdout);
            return 0;
        default:
            usage_status(stderr);
            return EXIT_USAGE;
        }
    }
    if (datadir == NULL || optind != argc) {
        usage_status(stderr);
        return EXIT_USAGE;
    }
    struct report r;
    memset(&r, 0, sizeof(r));
    r.datadir = datadir;
    r.today = rf_store_today();
    r.warnings = json_array();
    struct rf_store *st = NULL;
    struct rf_buf probe;
    int ret = EXIT_RUNTIME;
    rf_buf_init_secure(&probe, 4096); /* the KDF setting holds the lookup key */
    int rc = rf_store_open_readonly(&st, datadir);
    if (rc == RF_ERR_NOT_FOUND) {
        fprintf(stderr,
                "refuge: no instance in %s. Give the data directory refuge serve uses (the "
                "package's is /var/lib/refuge), or create one: refuge server init --data DIR\n",
                datadir);
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr,
                "refuge: cannot read %s: %s. Run this as the user the server runs as, e.g. "
                "sudo -u refuge refuge server status --data %s\n",
                datadir, rc == RF_ERR_IO ? "permission denied or unreadable" : rf_strerror(rc),
                datadir);
        goto out;
    }
    rc = rf_store_setting_get(st, "instance.kdf", &probe);
    if (rc != 0) {
        fprintf(stderr,
                "refuge: no instance in %s (%s); create one: refuge server init --data "
                "DIR\n",
                datadir, rf_strerror(rc));
        goto out;
    }
    rc = rf_store_counts(st, &r.counts);
    rc = rc ? rc : rf_store_usage(st, &r.usage);
    rc = rc ? rc : read_team(&r, st);
    r.backup_day = rf_backup_last_day(st); /* the setting refuge server backup writes */
    if (rc != 0) {
        fprintf(stderr, "refuge: cannot read the instance in %s: %s\n", datadir, rf_strerror(rc));
        goto out;
    }
    struct statvfs vfs;
    if (statvfs(datadir, &vfs) == 0) {
        r.have_disk = 1;
        r.disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        r.disk_total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    }
    read_server(&r);
    read_onion(&r);
    decide_warnings(&r);
    if (json) {
        json_t *doc = report_json(&r);
        char *s = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
        json_decref(doc);
        if (s == NULL) {
            fprintf(stderr, "refuge: out of memory\n");
            goto out;
        }
        puts(s);
        rf_json_free(s);
    } else {
        report_text(&r);
    }
    fflush(stdout);
    ret = 0;
out:
    rf_buf_free(&probe);
    json_decref(r.warnings);
    rf_store_close(st);
    return ret;
}
