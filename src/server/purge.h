/*
 * purge.h - retention on the server: the instance's retention settings, the
 * purge run (rf_store_purge with them), `refuge server purge`, and the purge
 * thread of `refuge serve`, which runs it at start and whenever the UTC day
 * changes (waking hourly; stopped at once on shutdown).
 *
 * Setting "instance.retention" (big-endian, like every Refuge format):
 *   v u8 (=1) | retention_days u32 | inactivity_days u32        (9 bytes)
 * retention_days: a case closed by its caseworkers is deleted that many days
 * later; inactivity_days: a case whose person has sent nothing for more than
 * that many days is deleted (0: never). Absent: the defaults below.
 */
#ifndef RF_PURGE_H
#define RF_PURGE_H

#include "store/store.h"

#include <stdint.h>

#define RF_RETENTION_DAYS_DEFAULT 90
#define RF_INACTIVITY_DAYS_DEFAULT 365
#define RF_RETENTION_DAYS_MAX 36500

struct rf_retention {
    uint32_t retention_days;
    uint32_t inactivity_days;
};

/* Reads the setting; the defaults if there is none. RF_ERR_FORMAT if damaged. */
int rf_retention_get(struct rf_store *st, struct rf_retention *out);
/* Writes the setting (both values at most RF_RETENTION_DAYS_MAX). */
int rf_retention_put(struct rf_store *st, const struct rf_retention *r);
/* One purge now, for today, with the instance's settings. */
int rf_purge_run(struct rf_store *st, struct rf_purge_counts *out);

/* The daily purge thread. */
struct rf_purger;
int rf_purger_start(struct rf_purger **out, struct rf_store *st);
/* Wakes and joins the thread (waiting for a purge in progress). NULL: no-op. */
void rf_purger_stop(struct rf_purger *p);

/* refuge server purge --data DIR: prints "purged N cases, N objects, N files". */
int rf_server_purge_main(int argc, char **argv);
/* refuge server settings --data DIR [--retention-days N] [--inactivity-days N]. */
int rf_server_settings_main(int argc, char **argv);

#endif
