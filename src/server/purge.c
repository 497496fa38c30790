/*
 * purge.c - retention: the instance's retention setting, one purge run, the
 * `refuge server purge` command and the purge thread of `refuge serve`.
 *
 * The deleting itself is rf_store_purge (one transaction per case, blobs
 * unlinked after each commit, one "purge" audit entry with the counts). This
 * file decides when: `refuge server purge` runs it once (safe beside a
 * running server: the store is multi-process safe and waits for the other
 * writer); the thread runs it once per UTC day: at start unless it already
 * ran that day (the day of its last successful run is the setting
 * "instance.purge_day", u32), then whenever the day has changed, checking
 * once an hour (a failed run is retried at the next check). So a server that
 * runs for months purges daily, and one restarted often purges once a day,
 * not at every start. Only counts are ever printed or logged.
 */
#include "server/purge.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SET_RETENTION "instance.retention"
#define SET_RETENTION_LEN 9
#define SET_PURGE_DAY "instance.purge_day"
#define PURGE_WAKE_S 3600

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* ------------------------------------------------------------- settings */

int rf_retention_get(struct rf_store *st, struct rf_retention *out)
{
    struct rf_buf b;
    struct rf_reader r;
    uint8_t v = 0;
    out->retention_days = RF_RETENTION_DAYS_DEFAULT;
    out->inactivity_days = RF_INACTIVITY_DAYS_DEFAULT;
    rf_buf_init(&b, 64);
    int rc = rf_store_setting_get(st, SET_RETENTION, &b);
    if (rc == RF_ERR_NOT_FOUND) {
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    struct rf_retention got;
    rf_reader_init(&r, b.data, b.len);
    rc = rf_get_u8(&r, &v);
    if (rc == 0 && v != 1)
        rc = RF_ERR_VERSION;
    rc = rc ? rc : rf_get_u32(&r, &got.retention_days);
    rc = rc ? rc : rf_get_u32(&r, &got.inactivity_days);
    rc = rc ? rc : rf_reader_expect_end(&r);
    if (rc == 0 &&
        (got.retention_days > RF_RETENTION_DAYS_MAX || got.inactivity_days > RF_RETENTION_DAYS_MAX))
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        *out = got;
out:
    rf_buf_free(&b);
    return rc;
}

int rf_retention_put(struct rf_store *st, const struct rf_retention *ret)
{
    struct rf_buf b;
    struct rf_op op;
    if (ret->retention_days > RF_RETENTION_DAYS_MAX || ret->inactivity_days > RF_RETENTION_DAYS_MAX)
        return RF_ERR_INVALID;
    rf_buf_init(&b, 64);
    int rc = rf_buf_put_u8(&b, 1);
    rc = rc ? rc : rf_buf_put_u32(&b, ret->retention_days);
    rc = rc ? rc : rf_buf_put_u32(&b, ret->inactivity_days);
    if (rc == 0 && b.len != SET_RETENTION_LEN)
        rc = RF_ERR_FORMAT;
    if (rc == 0) {
        rf_op_setting_put(&op, SET_RETENTION, b.data, b.len);
        rc = rf_store_apply(st, &op, 1);
        if (rc == 0)
            rc = rf_op_status(&op);
    }
    rf_buf_free(&b);
    return rc;
}

int rf_purge_run(struct rf_store *st, struct rf_purge_counts *out)
{
    struct rf_retention ret;
    memset(out, 0, sizeof(*out));
    int rc = rf_retention_get(st, &ret);
    if (rc != 0) {
        rf_log_error("purge: the instance's retention setting is damaged", rc);
        return rc;
    }
    /* the deletion day was set to (day closed + retention_days) when closed,
     * so today is all the store needs for scheduled cases */
    rc = rf_store_purge(st, rf_store_today(), ret.inactivity_days, out);
    if (out->cases > 0)
        rf_log_num(RF_LOG_INFO, "purge: cases deleted", "cases", out->cases);
    return rc;
}

/* --------------------------------------------------------------- thread */

struct rf_purger {
    struct rf_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    int stopping;
};

/* Purges if today's purge has not run yet; 0 once it has. */
static int purge_daily(struct rf_store *st, uint32_t *last_day)
{
    uint32_t today = rf_store_today();
    if (today == *last_day)
        return 0;
    struct rf_purge_counts n;
    int rc = rf_purge_run(st, &n); /* failures are logged */
    if (rc == 0)
        rc = rf_store_day_put(st, SET_PURGE_DAY, today);
    if (rc == 0)
        *last_day = today;
    return rc;
}

static void *purger_main(void *arg)
{
    struct rf_purger *p = arg;
    uint32_t last_day =
        rf_store_day_get(p->st, SET_PURGE_DAY); /* the last successful run; 0: never */
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        pthread_mutex_unlock(&p->mu);
        purge_daily(p->st, &last_day);
        pthread_mutex_lock(&p->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += PURGE_WAKE_S;
        while (!p->stopping && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
            ; /* a wakeup without stopping: keep waiting until the hour is up */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int rf_purger_start(struct rf_purger **out, struct rf_store *st)
{
    pthread_condattr_t ca;
    *out = NULL;
    struct rf_purger *p = calloc(1, sizeof(*p));
    if (!p)
        return RF_ERR_NOMEM;
    p->st = st;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, purger_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return RF_ERR_NOMEM;
    }
    *out = p;
    return 0;
}

void rf_purger_stop(struct rf_purger *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* -------------------------------------------------------------- command */

static void usage_purge(FILE *f)
{
    fputs("usage: refuge server purge --data DIR\n"
          "Deletes now, with their files, the cases closed longer ago than the retention\n"
          "period and the cases whose person has sent nothing for longer than the inactivity\n"
          "period (instance settings). Prints only counts. Safe while refuge serve runs.\n",
          f);
}

int rf_server_purge_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *datadir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            datadir = optarg;
            break;
        case 'h':
            usage_purge(stdout);
            return 0;
        default:
            usage_purge(stderr);
            return EXIT_USAGE;
        }
    }
    if (datadir == NULL || optind != argc) {
        usage_purge(stderr);
        return EXIT_USAGE;
    }
    struct rf_store *st = NULL;
    struct rf_buf probe;
    struct rf_purge_counts n;
    int ret = EXIT_RUNTIME, rc;
    rf_buf_init_secure(&probe, 4096); /* the KDF setting holds the lookup key */
    struct stat sb;
    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "refuge: no data directory there; give the one refuge serve uses\n");
        goto out;
    }
    rc = rf_store_open(&st, datadir);
    if (rc != 0) {
        fprintf(stderr, "refuge: cannot open the data directory: %s\n", rf_strerror(rc));
        goto out;
    }
    rc = rf_store_setting_get(st, "instance.kdf", &probe); /* an instance, not a stray dir */
    if (rc != 0) {
        fprintf(stderr, "refuge: no instance here; run refuge server init first\n");
        goto out;
    }
    rc = rf_purge_run(st, &n);
    if (rc != 0) {
        fprintf(stderr, "refuge: purge stopped: %s\n", rf_strerror(rc));
        fprintf(stderr, "refuge: deleted so far: %llu cases, %llu objects, %llu files\n",
                (unsigned long long)n.cases, (unsigned long long)n.objects,
                (unsigned long long)n.blobs);
        goto out;
    }
    printf("purged %llu cases, %llu objects, %llu files\n", (unsigned long long)n.cases,
           (unsigned long long)n.objects, (unsigned long long)n.blobs);
    ret = 0;
out:
    rf_buf_free(&probe);
    if (st)
        rf_store_close(st);
    return ret;
}

/* ------------------------------------------------------------- settings */

static void usage_settings(FILE *f)
{
    fputs("usage: refuge server settings --data DIR [--retention-days N] [--inactivity-days N]\n"
          "Shows the instance's retention settings, after changing those given:\n"
          "  --retention-days N   closed cases are deleted N days after closing (0 to 36500)\n"
          "  --inactivity-days N  cases whose person sent nothing for more than N days are\n"
          "                       deleted (0: never)\n"
          "A change applies to cases closed from now on and to the next purge. Safe while\n"
          "refuge serve runs.\n",
          f);
}

int rf_server_settings_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"retention-days", required_argument, 0, 'r'},
        {"inactivity-days", required_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *datadir = NULL;
    long long set[2] = {-1, -1}; /* retention, inactivity; -1: unchanged */
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            datadir = optarg;
            break;
        case 'r':
        case 'i': {
            char *end = NULL;
            long long v = optarg[0] >= '0' && optarg[0] <= '9' ? strtoll(optarg, &end, 10) : -1;
            if (v < 0 || v > RF_RETENTION_DAYS_MAX || !end || *end != '\0') {
                fputs("refuge: --retention-days and --inactivity-days take a number of days, 0 "
                      "to 36500\n",
                      stderr);
                return EXIT_USAGE;
            }
            set[c == 'r' ? 0 : 1] = v;
            break;
        }
        case 'h':
            usage_settings(stdout);
            return 0;
        default:
            usage_settings(stderr);
            return EXIT_USAGE;
        }
    }
    if (datadir == NULL || optind != argc) {
        usage_settings(stderr);
        return EXIT_USAGE;
    }
    struct rf_store *st = NULL;
    struct rf_retention ret;
    int code = EXIT_RUNTIME, rc;
    struct stat sb;
    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "refuge: no data directory there; give the one refuge serve uses\n");
        goto out;
    }
    if ((rc = rf_store_open(&st, datadir)) != 0) {
        fprintf(stderr, "refuge: cannot open the data directory: %s\n", rf_strerror(rc));
        goto out;
    }
    if ((rc = rf_retention_get(st, &ret)) != 0) {
        fprintf(stderr, "refuge: cannot read the retention settings: %s\n", rf_strerror(rc));
        goto out;
    }
    if (set[0] >= 0 || set[1] >= 0) {
        if (set[0] >= 0)
            ret.retention_days = (uint32_t)set[0];
        if (set[1] >= 0)
            ret.inactivity_days = (uint32_t)set[1];
        if ((rc = rf_retention_put(st, &ret)) != 0) {
            fprintf(stderr, "refuge: cannot write the retention settings: %s\n", rf_strerror(rc));
            goto out;
        }
    }
    printf("retention_days %lu\ninactivity_days %lu\n", (unsigned long)ret.retention_days,
           (unsigned long)ret.inactivity_days);
    code = 0;
out:
    if (st)
        rf_store_close(st);
    return code;
}
